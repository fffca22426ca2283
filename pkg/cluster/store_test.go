package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"

	"github.com/cascade-sfu/cascade/pkg/cluster/redistest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestMemoryStore(t *testing.T) {
	testRoomStore(t, func(t *testing.T) RoomStore {
		s := NewMemoryStore()
		t.Cleanup(func() { _ = s.Close() })
		return s
	})
}

func TestRedisStore(t *testing.T) {
	srv := redistest.Start(t)
	testRoomStore(t, func(t *testing.T) RoomStore {
		return newTestRedisStore(t, srv.Client(), RedisStoreOptions{})
	})
}

// newTestRedisStore returns a store with a prefix of its own (the test's name) unless opt sets one.
func newTestRedisStore(t testing.TB, c redis.UniversalClient, opt RedisStoreOptions) *RedisStore {
	if opt.Prefix == "" {
		opt.Prefix = "test:" + t.Name() + ":"
	}
	s := NewRedisStore(c, opt)
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// TestMemoryStoreLocksDoNotAccumulate: a room's lock entry lives only while held or awaited.
func TestMemoryStoreLocksDoNotAccumulate(t *testing.T) {
	s := NewMemoryStore()
	ctx := t.Context()
	for _, room := range []string{"a", "b", "c"} {
		mustJoin(t, s, occ(room, "u", "s", "n1"), 0)
		mustLeave(t, s, room, "u", "s", true)
	}
	unlock, err := s.lockRoom(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.peer(t, 10*time.Millisecond).Join(ctx, occ("a", "u", "s", "n1"), 0); !errors.Is(err, ErrLockTimeout) {
		t.Fatalf("Join = %v; want ErrLockTimeout", err)
	}
	unlock()
	s.st.mu.Lock()
	defer s.st.mu.Unlock()
	if len(s.st.locks) != 0 || len(s.st.nodes) != 0 || len(s.st.occ) != 0 {
		t.Fatalf("left behind: %d locks, %d node sets, %d occupant maps", len(s.st.locks), len(s.st.nodes), len(s.st.occ))
	}
}

// TestRedisStoreLayout pins the documented key layout (see store.go): other tools read it.
func TestRedisStoreLayout(t *testing.T) {
	srv := redistest.Start(t)
	c := srv.Client()
	ctx := t.Context()
	s := newTestRedisStore(t, c, RedisStoreOptions{Prefix: "lay:"})
	info := mustCreate(t, s, RoomInfo{Name: "r", Metadata: "m", MaxParticipants: 3})
	mustJoin(t, s, occ("r", "alice", "s1", "n1"), 0)

	room, err := c.HGetAll(ctx, "lay:room:r").Result()
	if err != nil || room["metadata"] != "m" || room["max"] != "3" || room["created"] != info.CreatedAt.Format(time.RFC3339Nano) {
		t.Fatalf("lay:room:r = %v, %v", room, err)
	}
	if ok, err := c.SIsMember(ctx, "lay:rooms", "r").Result(); err != nil || !ok {
		t.Fatalf("SISMEMBER lay:rooms r = %v, %v", ok, err)
	}
	raw, err := c.HGet(ctx, "lay:occ:r", "alice").Result()
	if err != nil {
		t.Fatal(err)
	}
	var o map[string]any
	if err := json.Unmarshal([]byte(raw), &o); err != nil || o["session"] != "s1" || o["node"] != "n1" || o["identity"] != "alice" {
		t.Fatalf("lay:occ:r alice = %s, %v", raw, err)
	}
	if ok, err := c.SIsMember(ctx, "lay:node:n1:rooms", "r").Result(); err != nil || !ok {
		t.Fatalf("SISMEMBER lay:node:n1:rooms r = %v, %v", ok, err)
	}
	if n, err := c.Exists(ctx, "lay:lock:room:r").Result(); err != nil || n != 0 {
		t.Fatalf("the room lock is still held after Join: EXISTS = %d, %v", n, err)
	}
	// Nothing but the locks expires.
	for _, k := range []string{"lay:room:r", "lay:rooms", "lay:occ:r", "lay:node:n1:rooms"} {
		if ttl, err := c.TTL(ctx, k).Result(); err != nil || ttl != -1 {
			t.Fatalf("TTL %s = %v, %v; want no expiry", k, ttl, err)
		}
	}

	// The lock key exists, with LockTTL, while held.
	unlock, err := s.lockRoom(ctx, "r")
	if err != nil {
		t.Fatal(err)
	}
	if ttl, err := c.PTTL(ctx, "lay:lock:room:r").Result(); err != nil || ttl <= 0 || ttl > DefaultLockTTL {
		t.Fatalf("PTTL of the held lock = %v, %v", ttl, err)
	}
	unlock()

	mustLeave(t, s, "r", "alice", "s1", true)
	if n, err := c.Exists(ctx, "lay:occ:r", "lay:node:n1:rooms").Result(); err != nil || n != 0 {
		t.Fatalf("after the last leave, %d of the occupant keys remain (%v)", n, err)
	}
	if err := s.DeleteRoom(ctx, "r"); err != nil {
		t.Fatal(err)
	}
	if keys, err := c.Keys(ctx, "lay:*").Result(); err != nil || len(keys) != 0 {
		t.Fatalf("keys left after delete: %v, %v", keys, err)
	}
}

// TestRedisStoreSurvivesNodeRestart: a node restarts with a new client and a new store, and
// finds the rooms and occupants of the cluster as they were.
func TestRedisStoreSurvivesNodeRestart(t *testing.T) {
	srv := redistest.Start(t)
	ctx := t.Context()
	opt := RedisStoreOptions{Prefix: "restart:"}

	c1 := srv.NewClient()
	before := NewRedisStore(c1, opt)
	info := mustCreate(t, before, RoomInfo{Name: "r", Metadata: "m", MaxParticipants: 4})
	mustJoin(t, before, occ("r", "alice", "s1", "n1"), 0)
	mustJoin(t, before, occ("r", "bob", "s1", "n2"), 0)
	if err := before.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c1.Close(); err != nil {
		t.Fatal(err)
	}

	c2 := srv.NewClient()
	defer c2.Close()
	after := NewRedisStore(c2, opt)
	defer after.Close()
	if got, err := after.Room(ctx, "r"); err != nil || !sameRoom(got, info) {
		t.Fatalf("Room after restart = %+v, %v; want %+v", got, err, info)
	}
	if got := describe(occupants(t, after, "r")); got != "alice/s1@n1 bob/s1@n2" {
		t.Fatalf("Occupants after restart = %s", got)
	}
	if removed, err := after.RemoveNode(ctx, "n1"); err != nil || describe(removed["r"]) != "alice/s1@n1" {
		t.Fatalf("RemoveNode(n1) = %v, %v", removed, err)
	}
}

// TestRedisStoreRedisRestart: while Redis is down every call fails (no panic, no hang past its
// bounds); after Redis comes back (empty: no persistence here) the same store works again.
func TestRedisStoreRedisRestart(t *testing.T) {
	srv := redistest.Start(t)
	// One dial per attempt (go-redis dials 5 times by default) keeps the failing calls short.
	c := redis.NewClient(&redis.Options{Addr: srv.Addr(), DialerRetries: 1, MaxRetries: 1})
	defer c.Close()
	s := newTestRedisStore(t, c, RedisStoreOptions{LockWait: 500 * time.Millisecond})
	mustCreate(t, s, RoomInfo{Name: "r"})
	mustJoin(t, s, occ("r", "alice", "s1", "n1"), 0)

	srv.Stop(t)
	var ctx context.Context
	calls := map[string]func() error{
		"CreateRoom": func() error { _, _, err := s.CreateRoom(ctx, RoomInfo{Name: "x"}); return err },
		"Room":       func() error { _, err := s.Room(ctx, "r"); return err },
		"Rooms":      func() error { _, err := s.Rooms(ctx); return err },
		"UpdateRoom": func() error { _, err := s.UpdateRoom(ctx, "r", "", 0); return err },
		"DeleteRoom": func() error { return s.DeleteRoom(ctx, "r") },
		"Join":       func() error { _, err := s.Join(ctx, occ("r", "bob", "s1", "n1"), 0); return err },
		"Leave":      func() error { _, err := s.Leave(ctx, "r", "alice", "s1"); return err },
		"Occupants":  func() error { _, err := s.Occupants(ctx, "r"); return err },
		"RoomNodes":  func() error { _, err := s.RoomNodes(ctx, "r"); return err },
		"RemoveNode": func() error { _, err := s.RemoveNode(ctx, "n1"); return err },
	}
	for name, call := range calls {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(t.Context(), 3*time.Second)
		start := time.Now()
		err := call()
		cancel()
		if err == nil {
			t.Fatalf("%s succeeded while Redis is down", name)
		}
		if errors.Is(err, ErrLockTimeout) {
			t.Fatalf("%s while down: %v; want the Redis error, not ErrLockTimeout", name, err)
		}
		if d := time.Since(start); d > 2500*time.Millisecond {
			t.Fatalf("%s took %v to fail", name, d)
		}
		t.Logf("%s while down, after %v: %v", name, time.Since(start).Round(time.Millisecond), err)
	}

	srv.Restart(t)
	// The client redials by itself (go-redis retries a failed pool in the background, about
	// once a second); the store needs nothing.
	ctx = t.Context()
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, err := s.Room(ctx, "r")
		if errors.Is(err, ErrRoomNotFound) {
			break // Redis is back, empty: no persistence here
		}
		if time.Now().After(deadline) {
			t.Fatalf("Room after Redis restarted = %v; want ErrRoomNotFound within 5 s", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	mustCreate(t, s, RoomInfo{Name: "r"})
	mustJoin(t, s, occ("r", "alice", "s2", "n1"), 0)
	if got := describe(occupants(t, s, "r")); got != "alice/s2@n1" {
		t.Fatalf("Occupants = %s", got)
	}
}

// TestRedisStoreLockLost: a critical section that outlives LockTTL, while another node took
// the lock, writes nothing.
func TestRedisStoreLockLost(t *testing.T) {
	srv := redistest.Start(t)
	ctx := t.Context()
	const ttl = 200 * time.Millisecond
	s := newTestRedisStore(t, srv.Client(), RedisStoreOptions{LockTTL: ttl})
	other := newTestRedisStore(t, srv.Client(), RedisStoreOptions{Prefix: s.opt.Prefix})

	err := s.withRoom(ctx, "r", func(tx *redis.Tx) error {
		time.Sleep(ttl + 50*time.Millisecond) // a stall: the lock expires
		unlock, err := other.lockRoom(ctx, "r")
		if err != nil {
			return err
		}
		defer unlock()
		_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.Set(ctx, s.opt.Prefix+"written", "1", 0)
			return nil
		})
		return err
	})
	wantErr(t, "withRoom past LockTTL", err, ErrLockLost)
	if n, err := srv.Client().Exists(ctx, s.opt.Prefix+"written").Result(); err != nil || n != 0 {
		t.Fatalf("the stalled section wrote (EXISTS = %d, %v)", n, err)
	}
	// The late release of the expired lock is harmless.
	mustJoin(t, s, occ("r", "alice", "s1", "n1"), 0)
}
