package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// Registry records which nodes are alive. A record expires unless refreshed, so a node that
// dies disappears within the TTL; the set of known ids lets survivors find records that expired.
type Registry interface {
	// Register writes or refreshes n's record for ttl. existed is false when there was no
	// record: the first registration, or the record expired or Redis lost its data.
	Register(ctx context.Context, n Node, ttl time.Duration) (existed bool, err error)
	// Deregister deletes n's record at once (graceful shutdown).
	Deregister(ctx context.Context, id NodeID) error
	// Nodes returns the alive nodes, sorted by id.
	Nodes(ctx context.Context) ([]Node, error)
	// Expired returns ids that registered once and whose record is gone without Deregister.
	Expired(ctx context.Context) ([]NodeID, error)
	// Forget removes an expired id once its leftovers are cleaned up.
	Forget(ctx context.Context, id NodeID) error
}

// MemoryRegistry is the Registry of a single node without Redis.
type MemoryRegistry struct {
	now func() time.Time

	mu      sync.Mutex // guards the fields below
	records map[NodeID]memRecord
}

type memRecord struct {
	node    Node
	expires time.Time
}

// NewMemoryRegistry returns an empty registry.
func NewMemoryRegistry() *MemoryRegistry {
	return &MemoryRegistry{now: time.Now, records: map[NodeID]memRecord{}}
}

func (r *MemoryRegistry) Register(_ context.Context, n Node, ttl time.Duration) (bool, error) {
	now := r.now()
	n.LastSeen = now
	n.LinkRTT = maps.Clone(n.LinkRTT) // the caller keeps its maps
	n.LinkQuality = maps.Clone(n.LinkQuality)
	n.Links = slices.Clone(n.Links)
	r.mu.Lock()
	old, ok := r.records[n.ID]
	r.records[n.ID] = memRecord{node: n, expires: now.Add(ttl)}
	r.mu.Unlock()
	return ok && now.Before(old.expires), nil
}

func (r *MemoryRegistry) Deregister(_ context.Context, id NodeID) error {
	r.mu.Lock()
	delete(r.records, id)
	r.mu.Unlock()
	return nil
}

func (r *MemoryRegistry) Nodes(context.Context) ([]Node, error) {
	now := r.now()
	r.mu.Lock()
	var out []Node
	for _, rec := range r.records {
		if now.Before(rec.expires) {
			n := rec.node
			n.LinkRTT = maps.Clone(n.LinkRTT) // callers may change what they get
			n.LinkQuality = maps.Clone(n.LinkQuality)
			n.Links = slices.Clone(n.Links)
			out = append(out, n)
		}
	}
	r.mu.Unlock()
	sortNodes(out)
	return out, nil
}

func (r *MemoryRegistry) Expired(context.Context) ([]NodeID, error) {
	now := r.now()
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []NodeID
	for id, rec := range r.records {
		if !now.Before(rec.expires) {
			out = append(out, id)
		}
	}
	return out, nil
}

func (r *MemoryRegistry) Forget(_ context.Context, id NodeID) error {
	now := r.now()
	r.mu.Lock()
	if rec, ok := r.records[id]; ok && !now.Before(rec.expires) {
		delete(r.records, id)
	}
	r.mu.Unlock()
	return nil
}

func sortNodes(ns []Node) { sort.Slice(ns, func(i, j int) bool { return ns[i].ID < ns[j].ID }) }

// RedisRegistry keeps node records in Redis:
//
//	<prefix>node:<id>  JSON Node, expiring after the TTL
//	<prefix>nodes      set of every id that registered and was not yet forgotten
type RedisRegistry struct {
	rdb    redis.UniversalClient
	prefix string
}

// NewRedisRegistry uses rdb with the given key prefix (e.g. "cascade:").
func NewRedisRegistry(rdb redis.UniversalClient, prefix string) *RedisRegistry {
	return &RedisRegistry{rdb: rdb, prefix: prefix}
}

func (r *RedisRegistry) key(id NodeID) string { return r.prefix + "node:" + string(id) }
func (r *RedisRegistry) set() string          { return r.prefix + "nodes" }

func (r *RedisRegistry) Register(ctx context.Context, n Node, ttl time.Duration) (bool, error) {
	n.LastSeen = time.Now().UTC()
	b, err := json.Marshal(n)
	if err != nil {
		return false, err
	}
	var old *redis.StatusCmd
	_, err = r.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		old = p.SetArgs(ctx, r.key(n.ID), b, redis.SetArgs{TTL: ttl, Get: true})
		p.SAdd(ctx, r.set(), string(n.ID))
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return false, fmt.Errorf("register %s: %w", n.ID, err)
	}
	return old.Err() == nil, nil
}

func (r *RedisRegistry) Deregister(ctx context.Context, id NodeID) error {
	_, err := r.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Del(ctx, r.key(id))
		p.SRem(ctx, r.set(), string(id))
		return nil
	})
	return err
}

// records returns the known ids and the record of each (nil when expired).
func (r *RedisRegistry) records(ctx context.Context) ([]string, []any, error) {
	ids, err := r.rdb.SMembers(ctx, r.set()).Result()
	if err != nil || len(ids) == 0 {
		return nil, nil, err
	}
	keys := make([]string, len(ids))
	for i, id := range ids {
		keys[i] = r.key(NodeID(id))
	}
	vals, err := r.rdb.MGet(ctx, keys...).Result()
	if err != nil {
		return nil, nil, err
	}
	return ids, vals, nil
}

func (r *RedisRegistry) Nodes(ctx context.Context) ([]Node, error) {
	_, vals, err := r.records(ctx)
	if err != nil {
		return nil, err
	}
	var out []Node
	for _, v := range vals {
		s, ok := v.(string)
		if !ok {
			continue
		}
		var n Node
		if json.Unmarshal([]byte(s), &n) == nil {
			out = append(out, n)
		}
	}
	sortNodes(out)
	return out, nil
}

func (r *RedisRegistry) Expired(ctx context.Context) ([]NodeID, error) {
	ids, vals, err := r.records(ctx)
	if err != nil {
		return nil, err
	}
	var out []NodeID
	for i, v := range vals {
		if v == nil {
			out = append(out, NodeID(ids[i]))
		}
	}
	return out, nil
}

// Forget removes id from the known set unless it has re-registered meanwhile.
func (r *RedisRegistry) Forget(ctx context.Context, id NodeID) error {
	n, err := r.rdb.Exists(ctx, r.key(id)).Result()
	if err != nil {
		return err
	}
	if n > 0 {
		return nil
	}
	return r.rdb.SRem(ctx, r.set(), string(id)).Err()
}
