package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cascade-sfu/cascade/pkg/api"
	"github.com/cascade-sfu/cascade/pkg/auth"
	"github.com/cascade-sfu/cascade/pkg/cluster"
)

// opsRooms is one node's sessions for the admin commands: alice in room "r" with a camera.
type opsRooms struct {
	mu      sync.Mutex
	log     []string
	name    string
	muted   bool
	drained bool
}

func (o *opsRooms) record(s string) {
	o.mu.Lock()
	o.log = append(o.log, s)
	o.mu.Unlock()
}

func (o *opsRooms) Participants(room string) []cluster.AdminParticipant {
	o.mu.Lock()
	defer o.mu.Unlock()
	return []cluster.AdminParticipant{{Identity: "alice", Name: o.name, Node: "eu", Session: "SE_1", Kind: "websocket",
		Tracks: []cluster.AdminTrack{{ID: "TR_cam", Kind: "video", Source: "camera", Muted: o.muted}}}}
}
func (o *opsRooms) Evict(room, id string) bool {
	o.record("evict " + room + " " + id)
	return id == "alice"
}
func (o *opsRooms) Rename(room, id, name string) bool {
	o.mu.Lock()
	o.name = name
	o.mu.Unlock()
	return true
}
func (o *opsRooms) Mute(room, id, track string, muted bool) error {
	if track != "TR_cam" {
		return cluster.ErrTrackNotFound
	}
	o.mu.Lock()
	o.muted = muted
	o.mu.Unlock()
	return nil
}
func (o *opsRooms) Send(room, text string, _ uint64, _ int64) { o.record("send " + room + " " + text) }
func (o *opsRooms) CloseRoom(room string) int                 { o.record("close " + room); return 1 }
func (o *opsRooms) Drain() {
	o.mu.Lock()
	o.drained = true
	o.mu.Unlock()
}

func adminServer(t *testing.T) (*httptest.Server, *opsRooms, *cluster.MemoryStore) {
	t.Helper()
	reg, store := cluster.NewMemoryRegistry(), cluster.NewMemoryStore()
	self := cluster.Node{ID: "eu", State: cluster.StateActive}
	if _, err := reg.Register(context.Background(), self, time.Hour); err != nil {
		t.Fatal(err)
	}
	if _, err := store.Join(context.Background(), cluster.Occupant{Room: "r", Identity: "alice", SessionID: "SE_1", Node: "eu"}, 0); err != nil {
		t.Fatal(err)
	}
	v, err := auth.NewVerifier(map[string]string{testKey: testSecret})
	if err != nil {
		t.Fatal(err)
	}
	ops := &opsRooms{name: "Alice"}
	rpc := cluster.NewRPC(cluster.RPCConfig{Self: "eu"})
	t.Cleanup(rpc.Close)
	mux := http.NewServeMux()
	api.New(api.Config{
		Self: func() cluster.Node { return self }, Registry: reg, Store: store, Verifier: v,
		Operator: cluster.NewAdmin(cluster.AdminConfig{Self: "eu", RPC: rpc, Store: store, Registry: reg, Local: ops}),
	}).Register(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv, ops, store
}

var creds = map[string]string{envAPIKey: testKey, envAPISecret: testSecret}

func TestAdminCommands(t *testing.T) {
	srv, ops, store := adminServer(t)
	ok := func(want string, args ...string) string {
		t.Helper()
		res := runArgs(t, creds, append([]string{"--server", srv.URL}, args...)...)
		if res.code != exitOK || !strings.Contains(res.stdout, want) {
			t.Fatalf("relayctl %q: exit %d, stdout %q, stderr %q; want %q in stdout", args, res.code, res.stdout, res.stderr, want)
		}
		return res.stdout
	}
	ok("renamed alice", "rename", "--room", "r", "--identity", "alice", "--name", "Alice B.")
	ok("muted TR_cam", "mute", "--room", "r", "--identity", "alice", "--track", "TR_cam")
	table := ok("TR_cam video/camera (muted)", "participants", "--room", "r")
	if !strings.Contains(table, "alice") || !strings.Contains(table, "Alice B.") || !strings.Contains(table, "SE_1") || !strings.HasPrefix(table, "IDENTITY") {
		t.Fatalf("participants table:\n%s", table)
	}
	ok("unmuted", "mute", "--room", "r", "--identity", "alice", "--track", "TR_cam", "--unmute")
	var js api.Participants
	if err := json.Unmarshal([]byte(ok(`"session_id"`, "participants", "--room", "r", "--json")), &js); err != nil || len(js.Participants) != 1 || js.Participants[0].Tracks[0].Muted {
		t.Fatalf("participants --json: %+v %v", js, err)
	}
	ok("sent to r", "send", "--room", "r", "--text", "maintenance in 5 minutes")
	ok("evicted alice", "evict", "--room", "r", "--identity", "alice")
	ok("created room town (max participants: 4)", "room", "create", "town", "--max-participants", "4", "--metadata", `{"topic":"q4"}`)
	if info, err := store.Room(context.Background(), "town"); err != nil || info.MaxParticipants != 4 || info.Metadata != `{"topic":"q4"}` {
		t.Fatalf("stored %+v %v", info, err)
	}
	ok("deleted room r", "room", "delete", "r")
	ok("node eu is draining", "drain", "eu")
	if !ops.drained || strings.Join(ops.log, "|") != "send r maintenance in 5 minutes|evict r alice|close r" {
		t.Fatalf("node saw %q, drained %v", ops.log, ops.drained)
	}
	// "self" is the node answering at --server (a preStop hook drains its own node).
	ops.mu.Lock()
	ops.drained = false
	ops.mu.Unlock()
	ok("node eu is draining", "drain", "self")
	if !ops.drained {
		t.Fatal("drain self did not drain the answering node")
	}
}

func TestAdminCommandsFail(t *testing.T) {
	srv, ops, _ := adminServer(t)
	roomTok, _ := auth.Sign(testKey, testSecret, auth.Grants{Room: "r", Identity: "h", RoomAdmin: true}, time.Hour, time.Now())
	for _, c := range []struct {
		env  map[string]string
		args []string
		code int
		want string
	}{
		{nil, []string{"evict", "--room", "r", "--identity", "alice"}, exitUsage, "no API key"},
		{nil, []string{"evict", "--room", "r", "--identity", "alice", "--token", roomTok}, exitError, "403 Forbidden: this endpoint needs a cluster admin token"},
		{nil, []string{"drain", "eu", "--token", "garbage"}, exitError, "401 Unauthorized"},
		{creds, []string{"evict", "--room", "r"}, exitUsage, "--identity is required"},
		{creds, []string{"evict", "--room", "r", "--identity", "bob"}, exitError, "404 Not Found: participant not found"},
		{creds, []string{"mute", "--room", "r", "--identity", "alice", "--track", "TR_x"}, exitError, "404 Not Found"},
		{creds, []string{"room", "create"}, exitUsage, "want 1 argument"},
		{creds, []string{"room", "create", "x", "--metadata", "{oops"}, exitUsage, "--metadata must be JSON"},
		{creds, []string{"room", "rename", "x"}, exitUsage, "want 'create ROOM' or 'delete ROOM'"},
		{creds, []string{"room", "delete", "nope"}, exitError, "404 Not Found"},
		{creds, []string{"drain", "ghost"}, exitError, "404 Not Found"},
		{creds, []string{"send", "--room", "r", "--text", strings.Repeat("x", 5000)}, exitError, "400 Bad Request"},
	} {
		res := runArgs(t, c.env, append([]string{"--server", srv.URL}, c.args...)...)
		if res.code != c.code || !strings.Contains(res.stderr, c.want) {
			t.Errorf("relayctl %.60q: exit %d, stderr %q; want exit %d with %q", c.args, res.code, res.stderr, c.code, c.want)
		}
	}
	if ops.drained || len(ops.log) > 0 {
		t.Fatalf("a failed command acted: %q", ops.log)
	}
}

func TestTokenClusterAdmin(t *testing.T) {
	res := runArgs(t, creds, "token", "--cluster-admin")
	if res.code != exitOK {
		t.Fatalf("exit %d: %s", res.code, res.stderr)
	}
	g := verify(t, testKey, testSecret, res.stdout)
	if !g.ClusterAdmin || g.Room != "" || g.Identity != "operator" || g.CanPublish || g.RoomAdmin {
		t.Fatalf("grants %+v", g)
	}
	// --admin stays the room admin grant.
	res = runArgs(t, creds, "token", "--room", "r", "--identity", "h", "--admin")
	if g := verify(t, testKey, testSecret, res.stdout); g.ClusterAdmin || !g.RoomAdmin {
		t.Fatalf("--admin grants %+v", g)
	}
	if res := runArgs(t, creds, "token", "--cluster-admin", "--room", "r"); res.code != exitUsage {
		t.Fatalf("--cluster-admin with --room: exit %d", res.code)
	}
}
