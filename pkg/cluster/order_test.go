package cluster

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/cascade-sfu/cascade/pkg/cluster/redistest"
)

// testMessageOrder is the contract every MessageOrder meets.
func testMessageOrder(t *testing.T, o MessageOrder) {
	ctx := context.Background()
	if n, err := o.Current(ctx, "r"); err != nil || n != 0 {
		t.Fatalf("Current of a new room: %d %v, want 0", n, err)
	}
	// Concurrent takers each get a different number, and together every number up to N.
	const takers, each = 8, 25
	var mu sync.Mutex
	seen := map[uint64]bool{}
	var wg sync.WaitGroup
	for range takers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range each {
				n, err := o.Next(ctx, "r")
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				if seen[n] {
					t.Errorf("number %d taken twice", n)
				}
				seen[n] = true
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	for n := uint64(1); n <= takers*each; n++ {
		if !seen[n] {
			t.Fatalf("number %d never taken", n)
		}
	}
	if n, err := o.Current(ctx, "r"); err != nil || n != takers*each {
		t.Fatalf("Current: %d %v, want %d", n, err, takers*each)
	}
	if n, _ := o.Next(ctx, "other"); n != 1 {
		t.Fatalf("another room starts at %d, want 1", n)
	}
	if _, err := o.Next(ctx, ""); !errors.Is(err, ErrInvalid) {
		t.Fatalf("empty room name: %v, want ErrInvalid", err)
	}
}

func TestMemoryOrder(t *testing.T) { testMessageOrder(t, NewMemoryOrder()) }

func TestRedisOrder(t *testing.T) {
	srv := redistest.Start(t)
	o := NewRedisOrder(srv.Client(), "test:"+t.Name()+":")
	testMessageOrder(t, o)
	// Two nodes (two clients) share the counter.
	other := NewRedisOrder(srv.NewClient(), "test:"+t.Name()+":")
	a, _ := o.Next(context.Background(), "shared")
	b, _ := other.Next(context.Background(), "shared")
	if a != 1 || b != 2 {
		t.Fatalf("two nodes took %d and %d, want 1 and 2", a, b)
	}
	srv.Stop(t)
	if _, err := o.Next(context.Background(), "shared"); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Next with Redis down: %v, want ErrUnavailable", err)
	}
}
