package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/go-redsync/redsync/v4"
	"github.com/go-redsync/redsync/v4/redis/goredis/v9"
	"github.com/redis/go-redis/v9"
)

// RedisStoreOptions configures a RedisStore; zero fields take their defaults.
type RedisStoreOptions struct {
	// Prefix starts every key (default "cascade:"). Stores sharing a prefix share rooms.
	Prefix string
	// LockTTL is how long a room lock outlives a holder that never releases it (default 8 s).
	// It must exceed the longest critical section (a few round trips); a section that outlives
	// it writes nothing and fails with ErrLockLost.
	LockTTL time.Duration
	// LockWait bounds the wait for a room lock (default DefaultLockWait).
	LockWait time.Duration
	// Logger receives failures to release a lock, which are not returned (default: discard).
	Logger *slog.Logger
}

// Option defaults.
const (
	DefaultRedisPrefix = "cascade:"
	DefaultLockTTL     = 8 * time.Second
)

// unlockTimeout bounds the release of a lock; the release runs even if the caller's context is
// done (else the lock would stay until LockTTL).
const unlockTimeout = 2 * time.Second

func (o RedisStoreOptions) withDefaults() RedisStoreOptions {
	if o.Prefix == "" {
		o.Prefix = DefaultRedisPrefix
	}
	if o.LockTTL <= 0 {
		o.LockTTL = DefaultLockTTL
	}
	if o.LockWait <= 0 {
		o.LockWait = DefaultLockWait
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}

// RedisStore is a RoomStore in Redis, shared by the nodes of a cluster; the key layout is
// documented at the top of store.go. Each room is serialised by a redsync lock.
type RedisStore struct {
	rdb    redis.UniversalClient
	rs     *redsync.Redsync
	opt    RedisStoreOptions
	log    *slog.Logger
	closed atomic.Bool
}

// NewRedisStore returns a store on client, which the caller keeps and closes.
func NewRedisStore(client redis.UniversalClient, opts RedisStoreOptions) *RedisStore {
	opts = opts.withDefaults()
	return &RedisStore{
		rdb: client,
		rs:  redsync.New(goredis.NewPool(client)),
		opt: opts,
		log: opts.Logger.With("component", "roomstore"),
	}
}

// Hash fields of a room record.
const (
	fieldMetadata = "metadata"
	fieldMax      = "max"
	fieldCreated  = "created"
)

func (s *RedisStore) roomKey(name string) string { return s.opt.Prefix + "room:" + name }
func (s *RedisStore) roomsKey() string           { return s.opt.Prefix + "rooms" }
func (s *RedisStore) occKey(room string) string  { return s.opt.Prefix + "occ:" + room }
func (s *RedisStore) nodeKey(node NodeID) string {
	return s.opt.Prefix + "node:" + string(node) + ":rooms"
}
func (s *RedisStore) lockKey(room string) string { return s.opt.Prefix + "lock:room:" + room }

func (s *RedisStore) begin() error {
	if s.closed.Load() {
		return ErrStoreClosed
	}
	return nil
}

func roomFields(info RoomInfo) []any {
	return []any{
		fieldMetadata, info.Metadata,
		fieldMax, strconv.Itoa(info.MaxParticipants),
		fieldCreated, info.CreatedAt.Format(time.RFC3339Nano),
	}
}

func lockLost(room string) error { return fmt.Errorf("%w: room %q", ErrLockLost, room) }

func redisError(op, room string, err error) error { return fmt.Errorf("%s %q: %w", op, room, err) }

// lockRetryDelay is the pause before retrying a taken lock: 1-2 ms at first, doubling up to
// 16-32 ms, jittered so that waiters spread out.
func lockRetryDelay(attempt int) time.Duration {
	d := 2 * time.Millisecond << min(attempt, 4)
	return d/2 + rand.N(d/2)
}

// isRetryableLockError: the lock is held by someone else (or was got too late to be valid).
func isRetryableLockError(err error) bool {
	var taken *redsync.ErrTaken
	return errors.As(err, &taken) || errors.Is(err, redsync.ErrFailed)
}

// acquire takes the room's lock, retrying with backoff while another holder has it, for at most
// LockWait and until ctx is done (then ErrLockTimeout). A Redis failure ends it at once with
// that failure; so does a wait during which Redis never answered: ErrLockTimeout always means
// that someone else held the lock.
func (s *RedisStore) acquire(ctx context.Context, room string) (*redsync.Mutex, error) {
	m := s.rs.NewMutex(s.lockKey(room), redsync.WithExpiry(s.opt.LockTTL), redsync.WithTries(1))
	wctx, cancel := context.WithTimeout(ctx, s.opt.LockWait)
	defer cancel()
	var timer *time.Timer
	sawTaken := false
	for attempt := 0; ; attempt++ {
		err := m.TryLockContext(wctx)
		if err == nil {
			return m, nil
		}
		taken := isRetryableLockError(err)
		sawTaken = sawTaken || taken
		if wctx.Err() != nil && (sawTaken || errors.Is(ctx.Err(), context.Canceled)) {
			return nil, lockWaitError(wctx, room)
		}
		if !taken {
			return nil, redisError("lock room", room, err) // Redis failed, or never answered in time
		}
		if timer == nil {
			timer = time.NewTimer(lockRetryDelay(attempt))
		} else {
			timer.Reset(lockRetryDelay(attempt))
		}
		select {
		case <-wctx.Done():
			timer.Stop()
			return nil, lockWaitError(wctx, room)
		case <-timer.C:
		}
	}
}

// release unlocks m, also when ctx is done; a failure is logged: the lock then expires.
func (s *RedisStore) release(ctx context.Context, m *redsync.Mutex) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), unlockTimeout)
	defer cancel()
	if ok, err := m.UnlockContext(ctx); !ok {
		s.log.Warn("cannot release a room lock; it will expire", "lock", m.Name(), "err", err)
	}
}

// lockRoom takes the room lock and returns its release.
func (s *RedisStore) lockRoom(ctx context.Context, room string) (unlock func(), err error) {
	m, err := s.acquire(ctx, room)
	if err != nil {
		return nil, err
	}
	return func() { s.release(ctx, m) }, nil
}

// withRoom runs fn under the room lock, on a connection watching the lock key: a MULTI/EXEC
// that fn sends fails (and withRoom returns ErrLockLost) if the lock expired meanwhile.
func (s *RedisStore) withRoom(ctx context.Context, room string, fn func(tx *redis.Tx) error) error {
	if err := s.begin(); err != nil {
		return err
	}
	m, err := s.acquire(ctx, room)
	if err != nil {
		return err
	}
	defer s.release(ctx, m)
	err = s.rdb.Watch(ctx, func(tx *redis.Tx) error {
		// The lock was ours when WATCH ran if its validity had not ended; any change of the
		// key after that (expiry, another holder) makes EXEC fail.
		if !time.Now().Before(m.Until()) {
			return lockLost(room)
		}
		return fn(tx)
	}, m.Name())
	if errors.Is(err, redis.TxFailedErr) {
		return lockLost(room)
	}
	return err
}

// CreateRoom implements RoomStore.
func (s *RedisStore) CreateRoom(ctx context.Context, info RoomInfo) (RoomInfo, bool, error) {
	info, err := normalizeRoom(info)
	if err != nil {
		return RoomInfo{}, false, err
	}
	created := false
	err = s.withRoom(ctx, info.Name, func(tx *redis.Tx) error {
		h, err := tx.HGetAll(ctx, s.roomKey(info.Name)).Result()
		if err != nil {
			return redisError("read room", info.Name, err)
		}
		if len(h) > 0 {
			info, err = parseRoom(info.Name, h)
			return err
		}
		_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.HSet(ctx, s.roomKey(info.Name), roomFields(info)...)
			p.SAdd(ctx, s.roomsKey(), info.Name)
			return nil
		})
		created = err == nil
		return err
	})
	if err != nil {
		return RoomInfo{}, false, err
	}
	return info, created, nil
}

// Room implements RoomStore.
func (s *RedisStore) Room(ctx context.Context, name string) (RoomInfo, error) {
	if err := s.begin(); err != nil {
		return RoomInfo{}, err
	}
	h, err := s.rdb.HGetAll(ctx, s.roomKey(name)).Result()
	if err != nil {
		return RoomInfo{}, redisError("read room", name, err)
	}
	return parseRoom(name, h)
}

// Rooms implements RoomStore.
func (s *RedisStore) Rooms(ctx context.Context) ([]RoomInfo, error) {
	if err := s.begin(); err != nil {
		return nil, err
	}
	names, err := s.rdb.SMembers(ctx, s.roomsKey()).Result()
	if err != nil {
		return nil, fmt.Errorf("list rooms: %w", err)
	}
	cmds := make([]*redis.MapStringStringCmd, len(names))
	_, err = s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, name := range names {
			cmds[i] = p.HGetAll(ctx, s.roomKey(name))
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read rooms: %w", err)
	}
	out := make([]RoomInfo, 0, len(names))
	for i, name := range names {
		info, err := parseRoom(name, cmds[i].Val())
		if errors.Is(err, ErrRoomNotFound) {
			continue // deleted between SMEMBERS and HGETALL
		}
		if err != nil {
			return nil, err
		}
		out = append(out, info)
	}
	sortRooms(out)
	return out, nil
}

// UpdateRoom implements RoomStore.
func (s *RedisStore) UpdateRoom(ctx context.Context, name, metadata string, maxParticipants int) (RoomInfo, error) {
	if err := checkName("room name", name); err != nil {
		return RoomInfo{}, err
	}
	if err := checkRoomSettings(metadata, maxParticipants); err != nil {
		return RoomInfo{}, err
	}
	var info RoomInfo
	err := s.withRoom(ctx, name, func(tx *redis.Tx) error {
		h, err := tx.HGetAll(ctx, s.roomKey(name)).Result()
		if err != nil {
			return redisError("read room", name, err)
		}
		if info, err = parseRoom(name, h); err != nil {
			return err
		}
		info.Metadata, info.MaxParticipants = metadata, maxParticipants
		_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.HSet(ctx, s.roomKey(name), fieldMetadata, metadata, fieldMax, strconv.Itoa(maxParticipants))
			return nil
		})
		return err
	})
	if err != nil {
		return RoomInfo{}, err
	}
	return info, nil
}

// DeleteRoom implements RoomStore.
func (s *RedisStore) DeleteRoom(ctx context.Context, name string) error {
	if err := checkName("room name", name); err != nil {
		return err
	}
	return s.withRoom(ctx, name, func(tx *redis.Tx) error {
		var exists *redis.IntCmd
		var occupants *redis.IntCmd
		_, err := tx.Pipelined(ctx, func(p redis.Pipeliner) error {
			exists = p.Exists(ctx, s.roomKey(name))
			occupants = p.HLen(ctx, s.occKey(name))
			return nil
		})
		switch {
		case err != nil:
			return redisError("read room", name, err)
		case exists.Val() == 0:
			return roomNotFound(name)
		case occupants.Val() > 0:
			return roomOccupied(name, int(occupants.Val()))
		}
		_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.Del(ctx, s.roomKey(name), s.occKey(name))
			p.SRem(ctx, s.roomsKey(), name)
			return nil
		})
		return err
	})
}

// Join implements RoomStore.
func (s *RedisStore) Join(ctx context.Context, o Occupant, capacity int) (*Occupant, error) {
	o, err := normalizeOccupant(o)
	if err != nil {
		return nil, err
	}
	data, err := json.Marshal(occupantJSON(o))
	if err != nil {
		return nil, err
	}
	var plan joinPlan
	err = s.withRoom(ctx, o.Room, func(tx *redis.Tx) error {
		var occ *redis.MapStringStringCmd
		var exists *redis.IntCmd
		_, err := tx.Pipelined(ctx, func(p redis.Pipeliner) error {
			occ = p.HGetAll(ctx, s.occKey(o.Room))
			exists = p.Exists(ctx, s.roomKey(o.Room))
			return nil
		})
		if err != nil {
			return redisError("read room", o.Room, err)
		}
		cur, err := decodeOccupants(o.Room, occ.Val())
		if err != nil {
			return err
		}
		if plan, err = planJoin(cur, o, capacity); err != nil {
			return err
		}
		_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
			if exists.Val() == 0 {
				p.HSet(ctx, s.roomKey(o.Room), roomFields(RoomInfo{Name: o.Room, CreatedAt: stamp(time.Time{})})...)
			}
			p.SAdd(ctx, s.roomsKey(), o.Room)
			p.HSet(ctx, s.occKey(o.Room), o.Identity, data)
			p.SAdd(ctx, s.nodeKey(o.Node), o.Room)
			if plan.dropNode != "" {
				p.SRem(ctx, s.nodeKey(plan.dropNode), o.Room)
			}
			return nil
		})
		return err
	})
	if err != nil {
		return nil, err
	}
	return plan.replaced, nil
}

// Leave implements RoomStore.
func (s *RedisStore) Leave(ctx context.Context, room, identity, sessionID string) (bool, error) {
	if err := checkLeave(room, identity, sessionID); err != nil {
		return false, err
	}
	removed := false
	err := s.withRoom(ctx, room, func(tx *redis.Tx) error {
		cur, err := s.readOccupants(ctx, tx, room)
		if err != nil {
			return err
		}
		old, remove, lastOfNode := planLeave(cur, identity, sessionID)
		if !remove {
			return nil
		}
		_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.HDel(ctx, s.occKey(room), identity)
			if lastOfNode {
				p.SRem(ctx, s.nodeKey(old.Node), room)
			}
			return nil
		})
		removed = err == nil
		return err
	})
	return removed, err
}

// Occupants implements RoomStore.
func (s *RedisStore) Occupants(ctx context.Context, room string) ([]Occupant, error) {
	if err := s.begin(); err != nil {
		return nil, err
	}
	cur, err := s.readOccupants(ctx, s.rdb, room)
	if err != nil {
		return nil, err
	}
	return sortedOccupants(cur), nil
}

// RoomNodes implements RoomStore.
func (s *RedisStore) RoomNodes(ctx context.Context, room string) (map[NodeID]int, error) {
	if err := s.begin(); err != nil {
		return nil, err
	}
	cur, err := s.readOccupants(ctx, s.rdb, room)
	if err != nil {
		return nil, err
	}
	return countByNode(cur), nil
}

// RemoveNode implements RoomStore.
func (s *RedisStore) RemoveNode(ctx context.Context, node NodeID) (map[string][]Occupant, error) {
	if err := checkName("node id", string(node)); err != nil {
		return nil, err
	}
	if err := s.begin(); err != nil {
		return nil, err
	}
	rooms, err := s.rdb.SMembers(ctx, s.nodeKey(node)).Result()
	if err != nil {
		return nil, fmt.Errorf("list rooms of node %q: %w", node, err)
	}
	removed := make(map[string][]Occupant)
	var errs []error
	slices.Sort(rooms)
	for _, room := range rooms {
		gone, err := s.removeNodeFromRoom(ctx, node, room)
		if err != nil {
			errs = append(errs, err)
		}
		if len(gone) > 0 {
			removed[room] = gone
		}
	}
	return removed, removeNodeError(node, errs)
}

// removeNodeFromRoom removes node's occupants of room, and room from node's set.
func (s *RedisStore) removeNodeFromRoom(ctx context.Context, node NodeID, room string) ([]Occupant, error) {
	var gone []Occupant
	err := s.withRoom(ctx, room, func(tx *redis.Tx) error {
		cur, err := s.readOccupants(ctx, tx, room)
		if err != nil {
			return err
		}
		gone = planRemoveNode(cur, node)
		_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
			for _, o := range gone {
				p.HDel(ctx, s.occKey(room), o.Identity)
			}
			p.SRem(ctx, s.nodeKey(node), room)
			return nil
		})
		return err
	})
	if err != nil {
		return nil, err
	}
	return gone, nil
}

// Close implements RoomStore. The client stays open: it belongs to the caller.
func (s *RedisStore) Close() error {
	s.closed.Store(true)
	return nil
}

func (s *RedisStore) readOccupants(ctx context.Context, c redis.Cmdable, room string) (map[string]Occupant, error) {
	h, err := c.HGetAll(ctx, s.occKey(room)).Result()
	if err != nil {
		return nil, redisError("read occupants of", room, err)
	}
	return decodeOccupants(room, h)
}

// occupantJSON is an Occupant as stored in Redis.
type occupantJSON struct {
	Room      string    `json:"room"`
	Identity  string    `json:"identity"`
	SessionID string    `json:"session"`
	Node      NodeID    `json:"node"`
	Host      bool      `json:"host,omitempty"`
	JoinedAt  time.Time `json:"joined"`
}

func decodeOccupants(room string, h map[string]string) (map[string]Occupant, error) {
	out := make(map[string]Occupant, len(h))
	for id, v := range h {
		var o occupantJSON
		if err := json.Unmarshal([]byte(v), &o); err != nil {
			return nil, fmt.Errorf("occupant %q of room %q: %w", id, room, err)
		}
		o.Room, o.Identity = room, id // the key is authoritative
		out[id] = Occupant(o)
	}
	return out, nil
}

func parseRoom(name string, h map[string]string) (RoomInfo, error) {
	if len(h) == 0 {
		return RoomInfo{}, roomNotFound(name)
	}
	info := RoomInfo{Name: name, Metadata: h[fieldMetadata]}
	var err error
	if v := h[fieldMax]; v != "" {
		if info.MaxParticipants, err = strconv.Atoi(v); err != nil {
			return RoomInfo{}, fmt.Errorf("room %q: field %s: %w", name, fieldMax, err)
		}
	}
	if v := h[fieldCreated]; v != "" {
		if info.CreatedAt, err = time.Parse(time.RFC3339Nano, v); err != nil {
			return RoomInfo{}, fmt.Errorf("room %q: field %s: %w", name, fieldCreated, err)
		}
	}
	return info, nil
}
