package loadgen

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/cascade-sfu/cascade/pkg/auth"
	"github.com/cascade-sfu/cascade/pkg/room"
	"github.com/cascade-sfu/cascade/pkg/rtc"
	"github.com/cascade-sfu/cascade/pkg/signal"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const (
	testKey    = "loadtest"
	testSecret = "loadgen-test-secret-0123456789"
)

// startNode runs an in-process Cascade node on 127.0.0.1, wired like cmd/sfu, with the
// default join limits (a load test from one address must pass them).
func startNode(t *testing.T) string {
	t.Helper()
	verifier, err := auth.NewVerifier(map[string]string{testKey: testSecret})
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	engine, err := rtc.NewEngine(rtc.Config{UDPAddr: "127.0.0.1:0", Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	rcfg := room.DefaultConfig()
	rcfg.Logger = log
	rooms := room.NewManager(rcfg)
	sig := signal.NewServer(signal.Config{
		Rooms: rooms, Engine: engine, Verifier: verifier, Logger: log,
		JoinRate: signal.DefaultJoinRate, JoinBurst: signal.DefaultJoinBurst,
		FailedJoinRate: signal.DefaultFailedJoinRate, FailedJoinBurst: signal.DefaultFailedJoinBurst,
	})
	mux := http.NewServeMux()
	sig.Register(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(func() {
		sig.Drain()
		rooms.Close()
		sig.Close()
		srv.Close()
		_ = engine.Close()
	})
	return srv.URL
}

func testToken(room string) func(string, bool, bool) (string, error) {
	return func(id string, publish, admin bool) (string, error) {
		g := auth.Grants{Room: room, Identity: id, CanPublish: publish, CanSubscribe: !publish, ClusterAdmin: admin}
		return auth.Sign(testKey, testSecret, g, time.Hour, time.Now())
	}
}
