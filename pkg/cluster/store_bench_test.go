package cluster

import (
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/cascade-sfu/cascade/pkg/cluster/redistest"
)

// BenchmarkJoinLeave measures Join+Leave pairs, each under the room lock, in one room and
// spread over rooms, serially and from parallel goroutines (as several sessions of a node).
// One op is one pair; pairs/s is reported too.
func BenchmarkJoinLeave(b *testing.B) {
	b.Run("memory", func(b *testing.B) {
		benchJoinLeave(b, func(b *testing.B) RoomStore { return NewMemoryStore() })
	})
	b.Run("redis", func(b *testing.B) {
		srv := redistest.Start(b)
		benchJoinLeave(b, func(b *testing.B) RoomStore {
			return newTestRedisStore(b, srv.Client(), RedisStoreOptions{})
		})
	})
}

func benchJoinLeave(b *testing.B, newStore func(b *testing.B) RoomStore) {
	b.Run("serial", func(b *testing.B) {
		s := newStore(b)
		ctx := b.Context()
		// A resident occupant, so that the room is not empty (HGETALL has something to read).
		if _, err := s.Join(ctx, occ("r", "resident", "s", "n0"), 0); err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		for b.Loop() {
			if err := joinLeave(b, s, "r", "alice"); err != nil {
				b.Fatal(err)
			}
		}
		reportPairs(b)
	})
	for _, rooms := range []int{1, 64} {
		b.Run(fmt.Sprintf("parallel/rooms=%d", rooms), func(b *testing.B) {
			s := newStore(b)
			var next atomic.Int64
			b.ReportAllocs()
			b.SetParallelism(4) // 4 goroutines per core: sessions joining at once
			b.RunParallel(func(pb *testing.PB) {
				n := next.Add(1)
				room := fmt.Sprintf("r%d", n%int64(rooms))
				identity := fmt.Sprintf("u%d", n)
				for pb.Next() {
					if err := joinLeave(b, s, room, identity); err != nil {
						b.Error(err) // not Fatal: this is not the benchmark's goroutine
						return
					}
				}
			})
			reportPairs(b)
		})
	}
}

func joinLeave(b *testing.B, s RoomStore, room, identity string) error {
	ctx := b.Context()
	if _, err := s.Join(ctx, occ(room, identity, "s1", "n1"), 0); err != nil {
		return err
	}
	if ok, err := s.Leave(ctx, room, identity, "s1"); err != nil || !ok {
		return fmt.Errorf("Leave = %v, %v", ok, err)
	}
	return nil
}

func reportPairs(b *testing.B) {
	if s := b.Elapsed().Seconds(); s > 0 {
		b.ReportMetric(float64(b.N)/s, "pairs/s")
	}
}
