package api

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/cascade-sfu/cascade/pkg/auth"
	"github.com/cascade-sfu/cascade/pkg/cluster"
	"github.com/cascade-sfu/cascade/pkg/relay"
)

type fakeRelays []relay.LinkInfo

func (f fakeRelays) Links() []relay.LinkInfo { return f }

// relayFixture serves the API of node "eu" with the given relay links (none with nil).
func relayFixture(t *testing.T, src RelaySource) *fixture {
	t.Helper()
	v, err := auth.NewVerifier(map[string]string{"k": secret})
	if err != nil {
		t.Fatal(err)
	}
	s := New(Config{
		Self:     func() cluster.Node { return cluster.Node{ID: "eu", State: cluster.StateActive} },
		Verifier: v, Relays: src,
	})
	mux := http.NewServeMux()
	s.Register(mux)
	f := &fixture{srv: httptest.NewServer(mux)}
	t.Cleanup(f.srv.Close)
	return f
}

func TestRelaysNeedsAdmin(t *testing.T) {
	f := relayFixture(t, fakeRelays{})
	roomHost, err1 := auth.Sign("k", secret, auth.Grants{Room: "r", Identity: "h", RoomAdmin: true}, time.Minute, time.Now())
	otherKey, err2 := auth.Sign("k", "another-secret-0123456", auth.Grants{Identity: "ops", ClusterAdmin: true}, time.Minute, time.Now())
	if err1 != nil || err2 != nil {
		t.Fatal(err1, err2)
	}
	for _, c := range []struct {
		name, token string
		want        int
	}{
		{"no token", "", http.StatusUnauthorized},
		{"garbage", "garbage", http.StatusUnauthorized},
		{"wrong secret", otherKey, http.StatusUnauthorized},
		{"room host", roomHost, http.StatusForbidden},
	} {
		if code := f.get(t, "/v1/relays", c.token, nil); code != c.want {
			t.Errorf("%s: %d, want %d", c.name, code, c.want)
		}
	}
}

func TestRelays(t *testing.T) {
	created := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	f := relayFixture(t, fakeRelays{
		{
			Peer: "hcm", ID: "abc", Offerer: true, State: relay.StateOpen, Created: created,
			OpenedAfter: 412500 * time.Microsecond, RTT: 181250 * time.Microsecond,
			BytesSent: 1_000_000, BytesReceived: 250_000, SendBitrate: 2_500_000, RecvBitrate: 64_000,
			BandwidthEstimate: 3_000_000, ControlDropped: 1,
		},
		{Peer: "sgp", ID: "def", State: relay.StateConnecting, Created: created, BytesSent: 300},
		{Peer: "syd", ID: "ghi", State: relay.StateClosed, Created: created},
	})
	admin, _ := auth.Sign("k", secret, auth.Grants{Identity: "ops", ClusterAdmin: true}, time.Minute, time.Now())
	var out Relays
	if code := f.get(t, "/v1/relays", admin, &out); code != http.StatusOK {
		t.Fatalf("relays: %d", code)
	}
	if out.From != "eu" || len(out.Links) != 2 {
		t.Fatalf("relays: %+v", out)
	}
	hcm, sgp := out.Links[0], out.Links[1]
	if hcm.Peer != "hcm" || hcm.ID != "abc" || !hcm.Offerer || hcm.State != "open" || !hcm.Created.Equal(created) ||
		hcm.OpenedAfterMs == nil || *hcm.OpenedAfterMs != 412.5 || hcm.RTTMs == nil || *hcm.RTTMs != 181.25 ||
		hcm.BytesSent != 1_000_000 || hcm.BytesReceived != 250_000 || hcm.BitrateOut != 2_500_000 ||
		hcm.BitrateIn != 64_000 || hcm.EstimateBps != 3_000_000 || hcm.ControlDropped != 1 {
		t.Errorf("open link: %+v", hcm)
	}
	if sgp.Peer != "sgp" || sgp.State != "connecting" || sgp.OpenedAfterMs != nil || sgp.RTTMs != nil || sgp.BytesSent != 300 {
		t.Errorf("connecting link: %+v", sgp)
	}

	// The wire names operators and relayctl rely on.
	var raw struct {
		From  string           `json:"from"`
		Links []map[string]any `json:"links"`
	}
	f.get(t, "/v1/relays", admin, &raw)
	for _, k := range []string{
		"peer", "id", "offerer", "state", "created", "opened_after_ms", "rtt_ms", "bytes_sent", "bytes_received",
		"bitrate_out", "bitrate_in", "estimate_bps", "control_dropped",
	} {
		if _, ok := raw.Links[0][k]; !ok {
			t.Errorf("no %q in %v", k, raw.Links[0])
		}
	}
	if raw.Links[1]["rtt_ms"] != nil || raw.Links[1]["opened_after_ms"] != nil {
		t.Errorf("connecting link: %v, want null rtt_ms and opened_after_ms", raw.Links[1])
	}
}

func TestRelaysWithoutSource(t *testing.T) {
	f := relayFixture(t, nil)
	admin, _ := auth.Sign("k", secret, auth.Grants{Identity: "ops", ClusterAdmin: true}, time.Minute, time.Now())
	var raw map[string]any
	if code := f.get(t, "/v1/relays", admin, &raw); code != http.StatusOK {
		t.Fatalf("relays: %d", code)
	}
	if links, ok := raw["links"].([]any); !ok || len(links) != 0 || raw["from"] != "eu" {
		t.Fatalf("relays without a source: %v, want from eu and links []", raw)
	}
}
