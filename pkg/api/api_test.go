package api

import (
	"context"
	"encoding/json"
	"maps"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/cascade-sfu/cascade/geo"
	"github.com/cascade-sfu/cascade/pkg/auth"
	"github.com/cascade-sfu/cascade/pkg/cluster"
)

const secret = "api-test-secret-0123"

type fixture struct {
	srv   *httptest.Server
	reg   *cluster.MemoryRegistry
	store *cluster.MemoryStore
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	reg, store := cluster.NewMemoryRegistry(), cluster.NewMemoryStore()
	ctx := context.Background()
	for _, n := range []cluster.Node{
		{ID: "eu", Region: "eu", Lat: 52.37, Lon: 4.90, URL: "http://eu", State: cluster.StateActive},
		{ID: "sgp", Region: "sgp", Lat: 1.35, Lon: 103.82, URL: "http://sgp", State: cluster.StateActive, LinkRTT: map[cluster.NodeID]time.Duration{"eu": 160250 * time.Microsecond, "hcm": 30 * time.Millisecond},
			LinkQuality: map[cluster.NodeID]cluster.LinkQuality{"hcm": {RTT: 31 * time.Millisecond, Jitter: 1500 * time.Microsecond, Loss: 0.02}}},
		{ID: "hcm", Region: "hcm", Lat: 10.82, Lon: 106.63, URL: "http://hcm", State: cluster.StateActive},
	} {
		if _, err := reg.Register(ctx, n, time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	v, err := auth.NewVerifier(map[string]string{"k": secret})
	if err != nil {
		t.Fatal(err)
	}
	loc, _ := geo.NewLocator("")
	s := New(Config{
		Self: func() cluster.Node {
			return cluster.Node{ID: "eu", Lat: 52.37, Lon: 4.90, URL: "http://eu", State: cluster.StateActive, LinkRTT: map[cluster.NodeID]time.Duration{"sgp": 161 * time.Millisecond}}
		},
		Registry: reg, Store: store, Locator: loc, Verifier: v,
	})
	mux := http.NewServeMux()
	s.Register(mux)
	f := &fixture{srv: httptest.NewServer(mux), reg: reg, store: store}
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fixture) get(t *testing.T, path, token string, out any) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, f.srv.URL+path, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if out != nil && resp.StatusCode == http.StatusOK {
		if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
			t.Fatal(err)
		}
	}
	return resp.StatusCode
}

func TestRoute(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	cases := []struct {
		query, want, source string
	}{
		{"lat=10.8&lon=106.7", "hcm", "explicit"},
		{"lat=48.8&lon=2.3", "eu", "explicit"},
		{"region=sgp", "sgp", "region"},
		{"", "eu", "node"},
		{"region=nowhere", "eu", "node"},
	}
	for _, c := range cases {
		var r Route
		if code := f.get(t, "/v1/route?"+c.query, "", &r); code != 200 || r.NodeID != c.want || r.Source != c.source {
			t.Errorf("%q: %d %+v, want %s by %s", c.query, code, r, c.want, c.source)
		}
	}
	// Room affinity: from Brunei hcm is closest, but sgp (about 15% farther) already hosts the
	// room, so a client of that room goes to sgp; a client of another room to hcm.
	if _, err := f.store.Join(ctx, cluster.Occupant{Room: "r", Identity: "a", SessionID: "s", Node: "sgp"}, 0); err != nil {
		t.Fatal(err)
	}
	var r Route
	f.get(t, "/v1/route?lat=4.9&lon=114.9", "", &r)
	if r.NodeID != "hcm" {
		t.Fatalf("Brunei client without a room: %+v", r)
	}
	f.get(t, "/v1/route?lat=4.9&lon=114.9&room=r", "", &r)
	if r.NodeID != "sgp" {
		t.Fatalf("Brunei client of a room on sgp: %+v", r)
	}
	// Draining nodes take no clients; alternatives never list them.
	_, _ = f.reg.Register(ctx, cluster.Node{ID: "hcm", Lat: 10.82, Lon: 106.63, URL: "http://hcm", State: cluster.StateDraining}, time.Hour)
	f.get(t, "/v1/route?lat=10.8&lon=106.7", "", &r)
	if r.NodeID != "sgp" || len(r.Alternatives) != 1 || r.Alternatives[0].NodeID != "eu" {
		t.Fatalf("with hcm draining: %+v", r)
	}
	for _, bad := range []string{"lat=100&lon=0", "lat=1", "lat=x&lon=1", "room=bad%20room", "lat=NaN&lon=1",
		"exclude=" + strings.Repeat("x", 129), strings.Repeat("exclude=a&", 9)} {
		if code := f.get(t, "/v1/route?"+bad, "", nil); code != http.StatusBadRequest {
			t.Errorf("%q: %d, want 400", bad, code)
		}
	}
}

// A client failing over excludes the node it lost, whose health record has not expired yet:
// the route and its alternatives skip it.
func TestRouteExcludesLostNodes(t *testing.T) {
	f := newFixture(t)
	var r Route
	if code := f.get(t, "/v1/route?lat=10.8&lon=106.7&exclude=hcm", "", &r); code != 200 || r.NodeID != "sgp" {
		t.Fatalf("excluding hcm from Saigon: %d %+v", code, r)
	}
	for _, a := range r.Alternatives {
		if a.NodeID == "hcm" {
			t.Fatalf("excluded node among the alternatives: %+v", r)
		}
	}
	if code := f.get(t, "/v1/route?lat=10.8&lon=106.7&exclude=hcm&exclude=sgp", "", &r); code != 200 || r.NodeID != "eu" || len(r.Alternatives) != 0 {
		t.Fatalf("excluding hcm and sgp: %d %+v", code, r)
	}
	if code := f.get(t, "/v1/route?exclude=hcm&exclude=sgp&exclude=eu", "", nil); code != http.StatusServiceUnavailable {
		t.Fatalf("every node excluded: %d, want 503", code)
	}
}

func TestOperatorEndpointsNeedAdmin(t *testing.T) {
	f := newFixture(t)
	admin, _ := auth.Sign("k", secret, auth.Grants{Identity: "ops", ClusterAdmin: true}, time.Minute, time.Now())
	roomHost, _ := auth.Sign("k", secret, auth.Grants{Room: "r", Identity: "h", RoomAdmin: true}, time.Minute, time.Now())
	for _, path := range []string{"/v1/nodes", "/v1/rooms"} {
		if code := f.get(t, path, "", nil); code != http.StatusUnauthorized {
			t.Errorf("%s without token: %d", path, code)
		}
		if code := f.get(t, path, "garbage", nil); code != http.StatusUnauthorized {
			t.Errorf("%s with garbage: %d", path, code)
		}
		if code := f.get(t, path, roomHost, nil); code != http.StatusForbidden {
			t.Errorf("%s with a room host token: %d", path, code)
		}
	}
	var nodes Nodes
	if code := f.get(t, "/v1/nodes", admin, &nodes); code != 200 || nodes.From != "eu" || len(nodes.Nodes) != 3 {
		t.Fatalf("nodes: %d %+v", code, nodes)
	}
	_, _ = f.store.Join(context.Background(), cluster.Occupant{Room: "r", Identity: "a", SessionID: "s", Node: "sgp"}, 0)
	var rooms Rooms
	if code := f.get(t, "/v1/rooms", admin, &rooms); code != 200 || len(rooms.Rooms) != 1 || rooms.Rooms[0].Nodes["sgp"] != 1 {
		t.Fatalf("rooms: %d %+v", code, rooms)
	}
}

// /v1/nodes shows each node's measured relay link RTTs: the answering node's own, live, and
// the others' from their registry records.
func TestNodesShowMeasuredLinkRTT(t *testing.T) {
	f := newFixture(t)
	admin, _ := auth.Sign("k", secret, auth.Grants{Identity: "ops", ClusterAdmin: true}, time.Minute, time.Now())
	var out Nodes
	if code := f.get(t, "/v1/nodes", admin, &out); code != 200 || len(out.Nodes) != 3 {
		t.Fatalf("nodes: %d %+v", code, out)
	}
	want := map[string]map[string]float64{"eu": {"sgp": 161}, "sgp": {"eu": 160.25, "hcm": 30}, "hcm": {}}
	for _, n := range out.Nodes {
		if !maps.Equal(n.LinkRTTMs, want[n.ID]) || n.LinkRTTMs == nil {
			t.Errorf("%s: link RTTs %v, want %v", n.ID, n.LinkRTTMs, want[n.ID])
		}
		wantQ := map[string]LinkQualityView(nil)
		if n.ID == "sgp" {
			wantQ = map[string]LinkQualityView{"hcm": {RTTMs: 31, JitterMs: 1.5, Loss: 0.02}}
		}
		if !maps.Equal(n.LinkQuality, wantQ) {
			t.Errorf("%s: link quality %v, want %v", n.ID, n.LinkQuality, wantQ)
		}
	}
}

func TestPingIsUncachedAndCrossOrigin(t *testing.T) {
	f := newFixture(t)
	resp, err := http.Get(f.srv.URL + "/v1/ping")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent || resp.Header.Get("Access-Control-Allow-Origin") != "*" || resp.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("ping: %d %v", resp.StatusCode, resp.Header)
	}
}
