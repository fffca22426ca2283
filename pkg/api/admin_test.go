package api

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cascade-sfu/cascade/geo"
	"github.com/cascade-sfu/cascade/pkg/auth"
	"github.com/cascade-sfu/cascade/pkg/cluster"
)

// fakeLocal is one node's sessions: alice in room "r" with a muted-able track.
type fakeLocal struct {
	mu      sync.Mutex
	evicted []string
	names   map[string]string
	muted   map[string]bool
	sent    []string
	closed  []string
	drained bool
}

func (f *fakeLocal) Participants(room string) []cluster.AdminParticipant {
	f.mu.Lock()
	defer f.mu.Unlock()
	if room != "r" {
		return []cluster.AdminParticipant{}
	}
	return []cluster.AdminParticipant{{Identity: "alice", Name: f.names["alice"], Node: "eu", Session: "SE_1", Kind: "websocket",
		Tracks: []cluster.AdminTrack{{ID: "TR_1", Kind: "audio", Source: "microphone", Muted: f.muted["TR_1"]}}}}
}

func (f *fakeLocal) Evict(room, id string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.evicted = append(f.evicted, room+"/"+id)
	return room == "r" && id == "alice"
}

func (f *fakeLocal) Rename(room, id, name string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.names[id] = name
	return true
}

func (f *fakeLocal) Mute(room, id, track string, muted bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if track != "TR_1" {
		return cluster.ErrTrackNotFound
	}
	f.muted[track] = muted
	return nil
}

func (f *fakeLocal) Send(room, text string, _ uint64, _ int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.sent = append(f.sent, text)
}

func (f *fakeLocal) CloseRoom(room string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closed = append(f.closed, room)
	return 1
}

func (f *fakeLocal) Drain() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.drained = true
}

type adminFixture struct {
	srv   *httptest.Server
	store *cluster.MemoryStore
	local *fakeLocal
	admin string // a cluster admin token
	room  string // a room token with the room admin grant
}

func newAdminFixture(t *testing.T) *adminFixture {
	t.Helper()
	reg, store := cluster.NewMemoryRegistry(), cluster.NewMemoryStore()
	ctx := context.Background()
	self := cluster.Node{ID: "eu", URL: "http://eu", State: cluster.StateActive}
	if _, err := reg.Register(ctx, self, time.Hour); err != nil {
		t.Fatal(err)
	}
	if _, err := store.Join(ctx, cluster.Occupant{Room: "r", Identity: "alice", SessionID: "SE_1", Node: "eu"}, 0); err != nil {
		t.Fatal(err)
	}
	v, err := auth.NewVerifier(map[string]string{"k": secret})
	if err != nil {
		t.Fatal(err)
	}
	loc, _ := geo.NewLocator("")
	local := &fakeLocal{names: map[string]string{"alice": "Alice"}, muted: map[string]bool{}}
	rpc := cluster.NewRPC(cluster.RPCConfig{Self: "eu"})
	t.Cleanup(rpc.Close)
	op := cluster.NewAdmin(cluster.AdminConfig{Self: "eu", RPC: rpc, Store: store, Registry: reg, Local: local})
	s := New(Config{Self: func() cluster.Node { return self }, Registry: reg, Store: store, Locator: loc, Verifier: v, Operator: op})
	mux := http.NewServeMux()
	s.Register(mux)
	f := &adminFixture{srv: httptest.NewServer(mux), store: store, local: local}
	t.Cleanup(f.srv.Close)
	now := time.Now()
	f.admin, _ = auth.Sign("k", secret, auth.Grants{Identity: "ops", ClusterAdmin: true}, time.Hour, now)
	f.room, _ = auth.Sign("k", secret, auth.Grants{Room: "r", Identity: "host", RoomAdmin: true, CanPublish: true, CanSubscribe: true}, time.Hour, now)
	return f
}

// do sends a request and returns the status and the decoded JSON body.
func (f *adminFixture) do(t *testing.T, method, path, token, body string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(method, f.srv.URL+path, strings.NewReader(body))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatalf("%s %s: %d with a body that is not a JSON object: %v", method, path, resp.StatusCode, err)
	}
	return resp.StatusCode, out
}

var adminEndpoints = []struct{ method, path, body string }{
	{"GET", "/v1/nodes", ""},
	{"GET", "/v1/rooms", ""},
	{"POST", "/v1/rooms", `{"name":"new"}`},
	{"DELETE", "/v1/rooms/r", ""},
	{"GET", "/v1/rooms/r/participants", ""},
	{"DELETE", "/v1/rooms/r/participants/alice", ""},
	{"PATCH", "/v1/rooms/r/participants/alice", `{"name":"A"}`},
	{"POST", "/v1/rooms/r/participants/alice/tracks/TR_1/mute", `{"muted":true}`},
	{"POST", "/v1/rooms/r/messages", `{"text":"hello"}`},
	{"POST", "/v1/nodes/eu/drain", ""},
}

func TestAdminEndpointsRefuseWithoutTheAdminGrant(t *testing.T) {
	f := newAdminFixture(t)
	for _, e := range adminEndpoints {
		for _, c := range []struct {
			name, token string
			want        int
		}{{"no token", "", 401}, {"bad token", "not-a-token", 401}, {"room token", f.room, 403}} {
			code, body := f.do(t, e.method, e.path, c.token, e.body)
			if code != c.want || body["error"] == "" || body["error"] == nil {
				t.Errorf("%s %s with %s: %d %v, want %d with an error message", e.method, e.path, c.name, code, body, c.want)
			}
		}
	}
	// Nothing happened.
	if len(f.local.evicted)+len(f.local.sent)+len(f.local.closed) > 0 || f.local.drained || f.local.names["alice"] != "Alice" {
		t.Fatalf("a refused call acted: %+v", f.local)
	}
}

func TestAdminActions(t *testing.T) {
	f := newAdminFixture(t)
	code, body := f.do(t, "GET", "/v1/rooms/r/participants", f.admin, "")
	ps, _ := body["participants"].([]any)
	if code != 200 || len(ps) != 1 || ps[0].(map[string]any)["session_id"] != "SE_1" || ps[0].(map[string]any)["node"] != "eu" {
		t.Fatalf("participants: %d %v", code, body)
	}
	if code, body = f.do(t, "PATCH", "/v1/rooms/r/participants/alice", f.admin, `{"name":"Alice B."}`); code != 200 || f.local.names["alice"] != "Alice B." {
		t.Fatalf("rename: %d %v", code, body)
	}
	if code, body = f.do(t, "POST", "/v1/rooms/r/participants/alice/tracks/TR_1/mute", f.admin, ""); code != 200 || !f.local.muted["TR_1"] {
		t.Fatalf("mute: %d %v", code, body)
	}
	if code, body = f.do(t, "POST", "/v1/rooms/r/participants/alice/tracks/TR_1/mute", f.admin, `{"muted":false}`); code != 200 || f.local.muted["TR_1"] {
		t.Fatalf("unmute: %d %v", code, body)
	}
	if code, body = f.do(t, "POST", "/v1/rooms/r/messages", f.admin, `{"text":"maintenance at 12:00"}`); code != 200 || len(f.local.sent) != 1 {
		t.Fatalf("send: %d %v", code, body)
	}
	if code, body = f.do(t, "DELETE", "/v1/rooms/r/participants/alice", f.admin, ""); code != 200 || len(f.local.evicted) != 1 {
		t.Fatalf("evict: %d %v", code, body)
	}
	if code, body = f.do(t, "POST", "/v1/rooms", f.admin, `{"name":"town-hall","metadata":"{\"topic\":\"q4\"}","max_participants":3}`); code != 201 || body["max_participants"] != 3.0 {
		t.Fatalf("create: %d %v", code, body)
	}
	if info, err := f.store.Room(context.Background(), "town-hall"); err != nil || info.MaxParticipants != 3 || info.Metadata != `{"topic":"q4"}` {
		t.Fatalf("stored room %+v %v", info, err)
	}
	if code, _ = f.do(t, "POST", "/v1/rooms", f.admin, `{"name":"town-hall"}`); code != 409 {
		t.Fatalf("creating an existing room: %d, want 409", code)
	}
	if code, body = f.do(t, "DELETE", "/v1/rooms/r", f.admin, ""); code != 200 || len(f.local.closed) != 1 {
		t.Fatalf("delete: %d %v", code, body)
	}
	if _, err := f.store.Room(context.Background(), "r"); err == nil {
		t.Fatal("deleted room still stored")
	}
	if code, body = f.do(t, "POST", "/v1/nodes/eu/drain", f.admin, ""); code != 202 || !f.local.drained {
		t.Fatalf("drain: %d %v", code, body)
	}
}

func TestAdminRejectsBadInput(t *testing.T) {
	f := newAdminFixture(t)
	big := `{"name":"x","metadata":"` + strings.Repeat("a", maxAdminBody) + `"}`
	for _, c := range []struct {
		method, path, body string
		want               int
	}{
		{"POST", "/v1/rooms", `{"name":""}`, 400},
		{"POST", "/v1/rooms", `{"name":"bad name!"}`, 400},
		{"POST", "/v1/rooms", `{"name":"x","max_participants":-1}`, 400},
		{"POST", "/v1/rooms", `{"name":"x","surprise":1}`, 400},
		{"POST", "/v1/rooms", `not json`, 400},
		{"POST", "/v1/rooms", big, 413},
		{"DELETE", "/v1/rooms/nope", "", 404},
		{"GET", "/v1/rooms/nope/participants", "", 404},
		{"DELETE", "/v1/rooms/r/participants/bob", "", 404},
		{"DELETE", "/v1/rooms/nope/participants/bob", "", 404},
		{"PATCH", "/v1/rooms/r/participants/alice", `{"name":""}`, 400},
		{"PATCH", "/v1/rooms/r/participants/alice", `{"name":"` + strings.Repeat("n", MaxDisplayName+1) + `"}`, 400},
		{"PATCH", "/v1/rooms/r/participants/alice", `{"name":"a\u0007b"}`, 400},
		{"PATCH", "/v1/rooms/r/participants/bob", `{"name":"Bob"}`, 404},
		{"POST", "/v1/rooms/r/participants/alice/tracks/TR_9/mute", "", 404},
		{"POST", "/v1/rooms/r/participants/alice/tracks/TR_1/mute", `{"muted":"yes"}`, 400},
		{"POST", "/v1/rooms/r/messages", `{"text":""}`, 400},
		{"POST", "/v1/rooms/r/messages", `{"text":"` + strings.Repeat("t", MaxMessageText+1) + `"}`, 400},
		{"POST", "/v1/rooms/nope/messages", `{"text":"hi"}`, 404},
		{"POST", "/v1/nodes/ghost/drain", "", 404},
	} {
		code, body := f.do(t, c.method, c.path, f.admin, c.body)
		if code != c.want || body["error"] == nil {
			t.Errorf("%s %s %.40q: %d %v, want %d with an error", c.method, c.path, c.body, code, body, c.want)
		}
	}
	if f.local.drained || len(f.local.sent) > 0 {
		t.Fatal("a refused call acted")
	}
}

// The error body of the older endpoints is JSON too.
func TestErrorsAreJSON(t *testing.T) {
	f := newAdminFixture(t)
	req, _ := http.NewRequest("GET", f.srv.URL+"/v1/route?region="+strings.Repeat("x", 70), bytes.NewReader(nil))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var e ErrorBody
	if resp.StatusCode != 400 || json.NewDecoder(resp.Body).Decode(&e) != nil || e.Error == "" {
		t.Fatalf("route error: %d %+v", resp.StatusCode, e)
	}
}

// blockingOperator holds every Participants call until release is closed.
type blockingOperator struct {
	Operator
	entered chan struct{}
	release chan struct{}
}

func (b blockingOperator) Participants(context.Context, string) ([]cluster.AdminParticipant, error) {
	b.entered <- struct{}{}
	<-b.release
	return []cluster.AdminParticipant{}, nil
}

func TestAdminActionsAreBounded(t *testing.T) {
	v, _ := auth.NewVerifier(map[string]string{"k": secret})
	op := blockingOperator{entered: make(chan struct{}, maxAdminActions), release: make(chan struct{})}
	s := New(Config{Verifier: v, Operator: op})
	mux := http.NewServeMux()
	s.Register(mux)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	tok, _ := auth.Sign("k", secret, auth.Grants{Identity: "ops", ClusterAdmin: true}, time.Hour, time.Now())
	get := func() int {
		req, _ := http.NewRequest("GET", srv.URL+"/v1/rooms/r/participants", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Error(err)
			return 0
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	var wg sync.WaitGroup
	codes := make(chan int, maxAdminActions)
	for range maxAdminActions {
		wg.Add(1)
		go func() { defer wg.Done(); codes <- get() }()
	}
	for range maxAdminActions {
		<-op.entered
	}
	if code := get(); code != http.StatusTooManyRequests {
		t.Fatalf("action over the bound: %d, want 429", code)
	}
	close(op.release)
	wg.Wait()
	close(codes)
	for c := range codes {
		if c != 200 {
			t.Fatalf("a bounded action answered %d", c)
		}
	}
	if code := get(); code != 200 {
		t.Fatalf("after the others finished: %d", code)
	}
}
