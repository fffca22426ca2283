package cluster

import (
	"context"
	"testing"
	"time"
)

// storeHooks are the seams the contract tests use on every RoomStore of this package.
type storeHooks interface {
	RoomStore
	// lockRoom takes a room's lock as the store's operations do (production code).
	lockRoom(ctx context.Context, room string) (unlock func(), err error)
	// peer returns another handle on the same shared state, as another node holds it, with
	// its own lock wait (0: the default). Defined in this file: test-only.
	peer(t *testing.T, lockWait time.Duration) RoomStore
}

var (
	_ storeHooks = (*MemoryStore)(nil)
	_ storeHooks = (*RedisStore)(nil)
)

func (s *MemoryStore) peer(t *testing.T, lockWait time.Duration) RoomStore {
	if lockWait <= 0 {
		lockWait = DefaultLockWait
	}
	p := &MemoryStore{st: s.st, lockWait: lockWait}
	t.Cleanup(func() { _ = p.Close() })
	return p
}

func (s *RedisStore) peer(t *testing.T, lockWait time.Duration) RoomStore {
	opt := s.opt
	opt.LockWait = lockWait
	p := NewRedisStore(s.rdb, opt)
	t.Cleanup(func() { _ = p.Close() })
	return p
}
