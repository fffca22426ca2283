package cluster

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cascade-sfu/cascade/pkg/cluster/redistest"
)

// nodeRooms is a node's sessions for Admin tests: identities by room, and what was asked.
type nodeRooms struct {
	node NodeID
	mu   sync.Mutex
	here map[string][]string
	log  []string
}

func (n *nodeRooms) has(room, id string) bool {
	for _, h := range n.here[room] {
		if h == id {
			return true
		}
	}
	return false
}

func (n *nodeRooms) Participants(room string) []AdminParticipant {
	n.mu.Lock()
	defer n.mu.Unlock()
	out := []AdminParticipant{}
	for _, id := range n.here[room] {
		out = append(out, AdminParticipant{Identity: id, Node: n.node, Tracks: []AdminTrack{}})
	}
	return out
}

func (n *nodeRooms) act(s string) {
	n.mu.Lock()
	n.log = append(n.log, s)
	n.mu.Unlock()
}

func (n *nodeRooms) Evict(room, id string) bool {
	n.act("evict " + id)
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.has(room, id)
}
func (n *nodeRooms) Rename(room, id, name string) bool {
	n.act("rename " + id + " " + name)
	return true
}
func (n *nodeRooms) Mute(room, id, track string, muted bool) error {
	n.act("mute " + id + " " + track)
	return ErrTrackNotFound
}
func (n *nodeRooms) Send(room, text string, _ uint64, _ int64) { n.act("send " + text) }
func (n *nodeRooms) CloseRoom(room string) int                 { n.act("close " + room); return 1 }
func (n *nodeRooms) Drain()                                    { n.act("drain") }

func (n *nodeRooms) actions() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]string(nil), n.log...)
}

// Admin on node a acts on sessions of node b through real Redis.
func TestAdminRoutesToTheHostingNode(t *testing.T) {
	srv := redistest.Start(t)
	ctx := context.Background()
	store := NewRedisStore(srv.Client(), RedisStoreOptions{Prefix: "t:"})
	defer store.Close()
	reg := NewRedisRegistry(srv.Client(), "t:")
	for _, id := range []NodeID{"a", "b"} {
		if _, err := reg.Register(ctx, Node{ID: id, State: StateActive}, time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	for _, o := range []Occupant{{Room: "r", Identity: "alice", SessionID: "S1", Node: "a"}, {Room: "r", Identity: "bob", SessionID: "S2", Node: "b"}} {
		if _, err := store.Join(ctx, o, 0); err != nil {
			t.Fatal(err)
		}
	}
	rpcA, rpcB := rpcPair(t, 2*time.Second)
	roomsA := &nodeRooms{node: "a", here: map[string][]string{"r": {"alice"}}}
	roomsB := &nodeRooms{node: "b", here: map[string][]string{"r": {"bob"}}}
	admin := NewAdmin(AdminConfig{Self: "a", RPC: rpcA, Store: store, Registry: reg, Local: roomsA})
	NewAdmin(AdminConfig{Self: "b", RPC: rpcB, Store: store, Registry: reg, Local: roomsB})

	ps, err := admin.Participants(ctx, "r")
	if err != nil || len(ps) != 2 || ps[0].Identity != "alice" || ps[0].Node != "a" || ps[1].Identity != "bob" || ps[1].Node != "b" {
		t.Fatalf("participants %+v %v", ps, err)
	}
	if err := admin.Evict(ctx, "r", "bob"); err != nil {
		t.Fatal(err)
	}
	if err := admin.Evict(ctx, "r", "carol"); !errors.Is(err, ErrParticipantNotFound) {
		t.Fatalf("evict an unknown identity: %v", err)
	}
	if err := admin.Evict(ctx, "nope", "bob"); !errors.Is(err, ErrRoomNotFound) {
		t.Fatalf("evict in an unknown room: %v", err)
	}
	if err := admin.Mute(ctx, "r", "bob", "TR_x", true); !errors.Is(err, ErrTrackNotFound) {
		t.Fatalf("mute an unknown track: %v", err)
	}
	if err := admin.Rename(ctx, "r", "bob", "Bob"); err != nil {
		t.Fatal(err)
	}
	if err := admin.Send(ctx, "r", "hello"); err != nil {
		t.Fatal(err)
	}
	if err := admin.Drain(ctx, "b"); err != nil {
		t.Fatal(err)
	}
	if err := admin.Drain(ctx, "ghost"); !errors.Is(err, ErrNodeNotFound) {
		t.Fatalf("drain an unknown node: %v", err)
	}
	want := "evict bob|mute bob TR_x|rename bob Bob|send hello|drain"
	if got := strings.Join(roomsB.actions(), "|"); got != want {
		t.Fatalf("b was asked %q, want %q", got, want)
	}
	if got := strings.Join(roomsA.actions(), "|"); got != "send hello" {
		t.Fatalf("a was asked %q", got)
	}

	// A hosting node that does not answer: the room's others still answer, and the caller
	// learns which node is missing.
	if _, err := store.Join(ctx, Occupant{Room: "r", Identity: "dan", SessionID: "S3", Node: "gone"}, 0); err != nil {
		t.Fatal(err)
	}
	ps, err = admin.Participants(ctx, "r")
	if !errors.Is(err, ErrNodeUnreachable) || len(ps) != 2 {
		t.Fatalf("with a silent node: %d participants, %v", len(ps), err)
	}
	if err := admin.Evict(ctx, "r", "dan"); !errors.Is(err, ErrNodeUnreachable) {
		t.Fatalf("evict on a silent node: %v", err)
	}
}
