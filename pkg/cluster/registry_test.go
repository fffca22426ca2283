package cluster

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cascade-sfu/cascade/pkg/cluster/redistest"
)

// testRegistry is the contract every Registry meets. expire makes a record's TTL pass.
func testRegistry(t *testing.T, reg Registry, expire func()) {
	ctx := context.Background()
	a := Node{
		ID: "a", Region: "eu", Lat: 52.37, Lon: 4.9, URL: "http://a", State: StateActive, Participants: 3,
		LinkRTT:     map[NodeID]time.Duration{"b": 181250 * time.Microsecond, "c": 3 * time.Millisecond},
		LinkQuality: map[NodeID]LinkQuality{"b": {RTT: 182 * time.Millisecond, Jitter: 1500 * time.Microsecond, Loss: 0.02}},
		Links:       []LinkSummary{{Peer: "b", State: "open", RTT: 181250 * time.Microsecond, BitrateOut: 1_500_000, BitrateIn: 64_000, LossOut: 0.02, PausedLayers: 1}},
	}
	b := Node{ID: "b", Region: "sgp", State: StateDraining}
	if existed, err := reg.Register(ctx, a, 300*time.Millisecond); err != nil || existed {
		t.Fatalf("first register: existed=%v err=%v", existed, err)
	}
	if existed, err := reg.Register(ctx, a, 300*time.Millisecond); err != nil || !existed {
		t.Fatalf("refresh: existed=%v err=%v", existed, err)
	}
	a.LinkRTT["b"] = time.Hour // the record is what was registered, not the caller's maps
	a.LinkQuality["b"] = LinkQuality{Loss: 1}
	a.Links[0].BitrateOut = 1
	if _, err := reg.Register(ctx, b, time.Hour); err != nil {
		t.Fatal(err)
	}
	nodes, err := reg.Nodes(ctx)
	if err != nil || len(nodes) != 2 || nodes[0].ID != "a" || nodes[1].ID != "b" {
		t.Fatalf("nodes %+v %v", nodes, err)
	}
	if nodes[0].URL != "http://a" || nodes[0].Participants != 3 || nodes[1].State != StateDraining || nodes[0].LastSeen.IsZero() {
		t.Fatalf("records lost fields: %+v", nodes)
	}
	if rtt := nodes[0].LinkRTT; len(rtt) != 2 || rtt["b"] != 181250*time.Microsecond || rtt["c"] != 3*time.Millisecond {
		t.Fatalf("a's measured link RTTs: %v", rtt)
	}
	if q := nodes[0].LinkQuality; len(q) != 1 || q["b"] != (LinkQuality{RTT: 182 * time.Millisecond, Jitter: 1500 * time.Microsecond, Loss: 0.02}) {
		t.Fatalf("a's measured link quality: %v", q)
	}
	want := LinkSummary{Peer: "b", State: "open", RTT: 181250 * time.Microsecond, BitrateOut: 1_500_000, BitrateIn: 64_000, LossOut: 0.02, PausedLayers: 1}
	if l := nodes[0].Links; len(l) != 1 || l[0] != want {
		t.Fatalf("a's link summaries: %+v", l)
	}
	nodes[0].Links[0].Peer = "z"
	if again, _ := reg.Nodes(ctx); again[0].Links[0].Peer != "b" {
		t.Fatalf("a reader changed the record's links: %+v", again[0].Links)
	}
	if len(nodes[1].LinkRTT) != 0 || len(nodes[1].Links) != 0 {
		t.Fatalf("b measured no link but its record has %v", nodes[1].LinkRTT)
	}
	nodes[0].LinkRTT["c"] = time.Hour // a reader's changes stay its own
	nodes[0].LinkQuality["b"] = LinkQuality{}
	if again, _ := reg.Nodes(ctx); again[0].LinkRTT["c"] != 3*time.Millisecond || again[0].LinkQuality["b"].Loss != 0.02 {
		t.Fatalf("a reader changed the record: %v %v", again[0].LinkRTT, again[0].LinkQuality)
	}
	if exp, _ := reg.Expired(ctx); len(exp) != 0 {
		t.Fatalf("expired before the TTL: %v", exp)
	}
	expire()
	nodes, _ = reg.Nodes(ctx)
	if len(nodes) != 1 || nodes[0].ID != "b" {
		t.Fatalf("after a's TTL: %+v", nodes)
	}
	exp, err := reg.Expired(ctx)
	if err != nil || len(exp) != 1 || exp[0] != "a" {
		t.Fatalf("expired %v %v", exp, err)
	}
	if err := reg.Forget(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	if exp, _ := reg.Expired(ctx); len(exp) != 0 {
		t.Fatalf("forgotten node still expired: %v", exp)
	}
	// Registering again after the record expired reports that it had vanished.
	if existed, err := reg.Register(ctx, a, time.Hour); err != nil || existed {
		t.Fatalf("re-register after expiry: existed=%v err=%v", existed, err)
	}
	_ = reg.Deregister(ctx, "a")
	// A graceful leave is not an expiry.
	if err := reg.Deregister(ctx, "b"); err != nil {
		t.Fatal(err)
	}
	nodes, _ = reg.Nodes(ctx)
	exp, _ = reg.Expired(ctx)
	if len(nodes) != 0 || len(exp) != 0 {
		t.Fatalf("after deregister: %v %v", nodes, exp)
	}
}

func TestMemoryRegistry(t *testing.T) {
	reg := NewMemoryRegistry()
	now := time.Now()
	reg.now = func() time.Time { return now }
	testRegistry(t, reg, func() { now = now.Add(time.Second) })
}

func TestRedisRegistry(t *testing.T) {
	srv := redistest.Start(t)
	reg := NewRedisRegistry(srv.Client(), "reg:")
	testRegistry(t, reg, func() { time.Sleep(400 * time.Millisecond) })
}

// The agent of a surviving node removes a dead node's occupants once its record expires.
func TestAgentReapsDeadNode(t *testing.T) {
	reg, store := NewMemoryRegistry(), NewMemoryStore()
	defer store.Close()
	ctx := context.Background()
	if _, err := store.Join(ctx, Occupant{Room: "r", Identity: "ghost", SessionID: "s1", Node: "dead"}, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := store.Join(ctx, Occupant{Room: "r", Identity: "alive", SessionID: "s2", Node: "me"}, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := reg.Register(ctx, Node{ID: "dead", State: StateActive}, 50*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	removed := make(chan map[string][]Occupant, 1)
	a := StartAgent(AgentConfig{
		Self: func() Node { return Node{ID: "me", State: StateActive} }, Registry: reg, Store: store,
		TTL: time.Second, Heartbeat: 100 * time.Millisecond, ReapInterval: 50 * time.Millisecond,
		OnNodeDead: func(id NodeID, r map[string][]Occupant) {
			if id == "dead" {
				removed <- r
			}
		},
	})
	defer a.Close(ctx)
	select {
	case r := <-removed:
		if len(r["r"]) != 1 || r["r"][0].Identity != "ghost" {
			t.Fatalf("removed %+v", r)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("dead node not reaped")
	}
	occ, _ := store.Occupants(ctx, "r")
	if len(occ) != 1 || occ[0].Identity != "alive" {
		t.Fatalf("occupants after reaping: %+v", occ)
	}
	nodes, _ := reg.Nodes(ctx)
	if len(nodes) != 1 || nodes[0].ID != "me" {
		t.Fatalf("registry: %+v", nodes)
	}
	if err := a.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if nodes, _ := reg.Nodes(ctx); len(nodes) != 0 {
		t.Fatalf("closed agent still registered: %+v", nodes)
	}
}

// An agent whose own record vanishes (Redis lost its data) is told to re-assert its state.
func TestAgentNoticesLostRecord(t *testing.T) {
	reg := NewMemoryRegistry()
	lost := make(chan struct{}, 1)
	var calls atomic.Int32
	a := StartAgent(AgentConfig{
		Self: func() Node { return Node{ID: "me", State: StateActive} }, Registry: reg, Store: NewMemoryStore(),
		TTL: time.Hour, Heartbeat: 20 * time.Millisecond, ReapInterval: time.Hour,
		Lost: func() error {
			calls.Add(1)
			select {
			case lost <- struct{}{}:
			default:
			}
			if calls.Load() < 3 {
				return errors.New("redis: not taking writes yet")
			}
			return nil
		},
	})
	defer a.Close(context.Background())
	select {
	case <-lost:
		t.Fatal("Lost called on the first registration")
	case <-time.After(100 * time.Millisecond):
	}
	_ = reg.Deregister(context.Background(), "me") // what a Redis restart does to the record
	select {
	case <-lost:
	case <-time.After(5 * time.Second):
		t.Fatal("the vanished record went unnoticed")
	}
	// It failed: it is retried at the next heartbeats until it succeeds, then no more.
	deadline := time.Now().Add(5 * time.Second)
	for calls.Load() < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("a failed re-assert was retried %d times, want until it succeeds", calls.Load()-1)
		}
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond) // five more heartbeats
	if n := calls.Load(); n != 3 {
		t.Fatalf("Lost called %d times, want 3 (twice failed, then done)", n)
	}
}
