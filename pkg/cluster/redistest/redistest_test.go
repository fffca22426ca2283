package redistest_test

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/cascade-sfu/cascade/pkg/cluster/redistest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestStartRestart(t *testing.T) {
	srv := redistest.Start(t)
	ctx := t.Context()
	c := srv.Client()
	if err := c.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	addr := srv.Addr()

	srv.Stop(t)
	if err := c.Get(ctx, "k").Err(); err == nil {
		t.Fatal("GET answered while the server is stopped")
	}

	srv.Restart(t)
	if srv.Addr() != addr {
		t.Fatalf("address changed across restart: %s -> %s", addr, srv.Addr())
	}
	if n, err := c.Exists(ctx, "k").Result(); err != nil || n != 0 {
		t.Fatalf("after restart: EXISTS k = %d, %v; want 0 (no persistence), nil", n, err)
	}
	srv.Restart(t) // restart of a running server
	if err := c.Ping(ctx).Err(); err != nil {
		t.Fatal(err)
	}
}
