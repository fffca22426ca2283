package dashboard

import (
	"context"
	"encoding/json"
	"log/slog"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/cascade-sfu/cascade/pkg/cluster"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// clock is a settable time for the retention window.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

// gossip is a settable membership verdict.
type gossip struct {
	mu sync.Mutex
	s  map[cluster.NodeID]cluster.MemberStatus
}

func (g *gossip) Status(id cluster.NodeID) cluster.MemberStatus {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.s[id]
}

func (g *gossip) set(id cluster.NodeID, s cluster.MemberStatus) {
	g.mu.Lock()
	g.s[id] = s
	g.mu.Unlock()
}

func stateOf(s Snapshot, id string) string {
	for _, n := range s.Nodes {
		if n.ID == id {
			return n.State
		}
	}
	return "absent"
}

type fixture struct {
	reg   *cluster.MemoryRegistry
	clk   *clock
	gos   *gossip
	model *model
}

func newFixture(t *testing.T) *fixture {
	f := &fixture{reg: cluster.NewMemoryRegistry(), clk: &clock{t: time.Unix(1_800_000_000, 0)}, gos: &gossip{s: map[cluster.NodeID]cluster.MemberStatus{}}}
	self := cluster.Node{ID: "a", Region: "eu", Lat: 52, Lon: 5, State: cluster.StateActive,
		Links: []cluster.LinkSummary{{Peer: "b", RTT: 12 * time.Millisecond, BitrateOut: 2e6, BitrateIn: 5e5, LossOut: 0.01, PausedLayers: 2}}}
	f.model = newModel(Config{
		Self: func() cluster.Node { return self }, Registry: f.reg, Gossip: f.gos, FailedRetention: time.Minute,
		MaxRooms: 10, Now: f.clk.now, Logger: discard(),
	})
	return f
}

func (f *fixture) register(t *testing.T, n cluster.Node, ttl time.Duration) {
	t.Helper()
	if _, err := f.reg.Register(context.Background(), n, ttl); err != nil {
		t.Fatal(err)
	}
}

// A node that stops refreshing its record is failed once the record expires, stays in the view
// as failed for the retention window, then goes; the others are untouched.
func TestFailedNodeIsRememberedThenDropped(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.register(t, cluster.Node{ID: "a", State: cluster.StateActive}, time.Hour)
	f.register(t, cluster.Node{ID: "b", Region: "sgp", State: cluster.StateActive}, 200*time.Millisecond)
	f.register(t, cluster.Node{ID: "c", State: cluster.StateActive}, time.Hour)
	s := f.model.build(ctx)
	if stateOf(s, "a") != StateActive || stateOf(s, "b") != StateActive || stateOf(s, "c") != StateActive {
		t.Fatalf("all three should be active: %+v", s.Nodes)
	}
	if len(s.Links) != 1 || s.Links[0].Src != "a" || s.Links[0].Dst != "b" || s.Links[0].RTTMs != 12 || s.Links[0].PausedLayers != 2 || s.Links[0].BitrateOut != 2e6 {
		t.Fatalf("links: %+v", s.Links)
	}
	time.Sleep(300 * time.Millisecond) // b's record expires (real TTL in the registry)
	s = f.model.build(ctx)
	if stateOf(s, "b") != StateFailed || stateOf(s, "c") != StateActive {
		t.Fatalf("b should be failed, c active: %+v", s.Nodes)
	}
	for _, n := range s.Nodes {
		if n.ID == "b" && (n.FailedAt == nil || n.Region != "sgp") {
			t.Fatalf("failed node lost what was known of it: %+v", n)
		}
	}
	f.clk.add(59 * time.Second)
	if s = f.model.build(ctx); stateOf(s, "b") != StateFailed {
		t.Fatalf("b dropped before the retention window: %+v", s.Nodes)
	}
	f.clk.add(2 * time.Second)
	if s = f.model.build(ctx); stateOf(s, "b") != "absent" {
		t.Fatalf("b still shown after the retention window: %+v", s.Nodes)
	}
}

// Gossip's failed verdict is enough, before the record expires; a node that comes back is
// active again.
func TestGossipFailedThenBack(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.register(t, cluster.Node{ID: "b", State: cluster.StateActive}, time.Hour)
	f.model.build(ctx)
	f.gos.set("b", cluster.MemberFailed)
	if s := f.model.build(ctx); stateOf(s, "b") != StateFailed {
		t.Fatalf("gossip said failed: %+v", s.Nodes)
	}
	f.gos.set("b", cluster.MemberAlive)
	f.register(t, cluster.Node{ID: "b", State: cluster.StateActive}, time.Hour)
	if s := f.model.build(ctx); stateOf(s, "b") != StateActive {
		t.Fatalf("b came back: %+v", s.Nodes)
	}
}

// Draining shows as draining; a drained node that deregisters has left and is not failed.
func TestDrainingThenLeft(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.register(t, cluster.Node{ID: "b", State: cluster.StateDraining}, time.Hour)
	if s := f.model.build(ctx); stateOf(s, "b") != StateDraining {
		t.Fatalf("draining: %+v", s.Nodes)
	}
	if err := f.reg.Deregister(ctx, "b"); err != nil {
		t.Fatal(err)
	}
	if s := f.model.build(ctx); stateOf(s, "b") != "absent" {
		t.Fatalf("a node that left after draining should go: %+v", s.Nodes)
	}
	// Killed while draining (its record expired rather than being deleted): failed.
	f.register(t, cluster.Node{ID: "c", State: cluster.StateDraining}, 100*time.Millisecond)
	f.model.build(ctx)
	time.Sleep(200 * time.Millisecond)
	if s := f.model.build(ctx); stateOf(s, "c") != StateFailed {
		t.Fatalf("a draining node whose record expired is failed: %+v", s.Nodes)
	}
}

// Rooms list the nodes hosting their participants.
func TestRoomsByNode(t *testing.T) {
	f := newFixture(t)
	store := cluster.NewMemoryStore()
	defer store.Close()
	ctx := context.Background()
	for _, o := range []cluster.Occupant{{Room: "r1", Identity: "x", SessionID: "1", Node: "a"}, {Room: "r1", Identity: "y", SessionID: "2", Node: "b"}, {Room: "r1", Identity: "z", SessionID: "3", Node: "b"}} {
		if _, err := store.Join(ctx, o, 0); err != nil {
			t.Fatal(err)
		}
	}
	f.model.cfg.Rooms = store
	s := f.model.build(ctx)
	b, _ := json.Marshal(s.Rooms)
	if len(s.Rooms) != 1 || s.Rooms[0].Participants != 3 || s.Rooms[0].Nodes["a"] != 1 || s.Rooms[0].Nodes["b"] != 2 {
		t.Fatalf("rooms: %s", b)
	}
}

func discard() *slog.Logger { return slog.New(slog.DiscardHandler) }
