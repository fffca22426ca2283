package main

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/cascade-sfu/cascade/pkg/cluster"
)

const ms = time.Millisecond

type rtts = map[cluster.NodeID]time.Duration

type qualities = map[cluster.NodeID]cluster.LinkQuality

func TestLegCost(t *testing.T) {
	cases := []struct {
		rtt  time.Duration
		q    cluster.LinkQuality
		want time.Duration
	}{
		{220 * ms, cluster.LinkQuality{}, 220 * ms}, // not measured: the RTT alone
		{200 * ms, cluster.LinkQuality{Jitter: 4 * ms}, 210 * ms},
		{200 * ms, cluster.LinkQuality{Loss: 0.01}, 212 * ms},
		{100 * ms, cluster.LinkQuality{Loss: 2}, 700 * ms}, // loss is capped at 1
	}
	for _, c := range cases {
		if got := legCost(c.rtt, c.q); got != c.want {
			t.Errorf("legCost(%v, %+v) = %v, want %v", c.rtt, c.q, got, c.want)
		}
	}
}

func TestChoosePath(t *testing.T) {
	cases := []struct {
		name      string
		current   cluster.NodeID
		direct    time.Duration
		hasDirect bool
		through   rtts
		want      cluster.NodeID
	}{
		{"no third node", "", 200 * ms, true, nil, "hcm"},
		// Europe → Singapore → Ho Chi Minh City (160 + 30 ms) beats a 260 ms direct path.
		{"through sgp is shorter", "", 260 * ms, true, rtts{"sgp": 190 * ms}, "sgp"},
		// The default lab topology by RTT alone: 14% shorter through sgp.
		{"through sgp is 14% shorter", "", 220 * ms, true, rtts{"sgp": 190 * ms}, "sgp"},
		{"not 10% shorter", "", 220 * ms, true, rtts{"sgp": 200 * ms}, "hcm"},
		{"exactly 10% shorter", "", 250 * ms, true, rtts{"sgp": 225 * ms}, "sgp"},
		{"the shortest of several", "", 400 * ms, true, rtts{"sgp": 250 * ms, "hkg": 230 * ms, "bom": 300 * ms}, "hkg"},
		{"ties go to the smaller id", "", 400 * ms, true, rtts{"sgp": 230 * ms, "hkg": 230 * ms}, "hkg"},
		{"direct unknown and no current choice", "", 0, false, rtts{"sgp": 10 * ms}, "hcm"},
		// Stickiness.
		{"a similar via does not replace the current one", "sgp", 400 * ms, true, rtts{"sgp": 200 * ms, "hkg": 180 * ms}, "sgp"},
		{"a via 20% faster replaces the current one", "sgp", 400 * ms, true, rtts{"sgp": 200 * ms, "hkg": 160 * ms}, "hkg"},
		{"a current via slower than direct but within 20% stays", "sgp", 200 * ms, true, rtts{"sgp": 230 * ms}, "sgp"},
		{"direct 20% faster than the current via wins", "sgp", 200 * ms, true, rtts{"sgp": 250 * ms}, "hcm"},
		{"a via no longer measurable is replaced", "sgp", 400 * ms, true, rtts{"hkg": 380 * ms}, "hcm"},
		{"a current via is kept when direct becomes unknown", "sgp", 0, false, rtts{"sgp": 200 * ms}, "sgp"},
		{"direct stays when a via is only 15% faster", "hcm", 200 * ms, true, rtts{"sgp": 170 * ms}, "hcm"},
	}
	for _, c := range cases {
		if got := choosePath("hcm", c.current, c.direct, c.hasDirect, c.through); got != c.want {
			t.Errorf("%s: %s, want %s", c.name, got, c.want)
		}
	}
}

// serfRTT is a fake Serf estimate from a table of symmetric pairs.
func serfRTT(pairs map[[2]cluster.NodeID]time.Duration) func(a, b cluster.NodeID) (time.Duration, bool) {
	return func(a, b cluster.NodeID) (time.Duration, bool) {
		if rtt, ok := pairs[[2]cluster.NodeID{a, b}]; ok {
			return rtt, true
		}
		rtt, ok := pairs[[2]cluster.NodeID{b, a}]
		return rtt, ok
	}
}

// The whole decision from eu toward hcm, with sgp as the possible via: which RTT each leg
// takes, and the path that follows.
func TestAutoPathDecision(t *testing.T) {
	t0 := time.Now()
	// Serf thinks the direct path is best: 200 ms direct, 160 + 100 ms through sgp.
	serf := serfRTT(map[[2]cluster.NodeID]time.Duration{{"eu", "hcm"}: 200 * ms, {"eu", "sgp"}: 160 * ms, {"sgp", "hcm"}: 100 * ms})
	cases := []struct {
		name     string
		own      rtts
		quality  qualities
		others   map[cluster.NodeID]published
		estimate func(a, b cluster.NodeID) (time.Duration, bool)
		want     cluster.NodeID
		wantVia  time.Duration // RTT through sgp, 0 if unknown
	}{
		{
			name: "measured links say via sgp is 20%+ faster although Serf says direct",
			own:  rtts{"hcm": 300 * ms, "sgp": 150 * ms}, estimate: serf,
			others: map[cluster.NodeID]published{"sgp": {at: t0, rtt: rtts{"eu": 150 * ms, "hcm": 30 * ms}}},
			want:   "sgp", wantVia: 180 * ms,
		},
		{
			name: "measured direct link is fine",
			own:  rtts{"hcm": 150 * ms}, estimate: serfRTT(map[[2]cluster.NodeID]time.Duration{{"eu", "hcm"}: 300 * ms, {"eu", "sgp"}: 80 * ms, {"sgp", "hcm"}: 60 * ms}),
			want: "hcm", wantVia: 140 * ms,
		},
		{
			// The default lab topology as the probes see it: the direct public route is
			// jittery (12 ms mean deviation) and lossy (1.6% round trip); the backbone legs
			// are clean. Direct costs 220 + 30 + 21.1 ms, through sgp 163.75 + 33.75 ms.
			name:    "probes: a jittery, lossy direct route loses to clean legs",
			own:     rtts{"hcm": 215 * ms, "sgp": 158 * ms},
			quality: qualities{"hcm": {RTT: 220 * ms, Jitter: 12 * ms, Loss: 0.016}, "sgp": {RTT: 160 * ms, Jitter: 1500 * time.Microsecond}},
			others: map[cluster.NodeID]published{"sgp": {
				at: t0, rtt: rtts{"hcm": 31 * ms}, quality: qualities{"hcm": {RTT: 30 * ms, Jitter: 1500 * time.Microsecond}},
			}},
			want: "sgp", wantVia: 197500 * time.Microsecond,
		},
		{
			name:    "probes: a clean direct route stays",
			own:     rtts{"hcm": 215 * ms, "sgp": 158 * ms},
			quality: qualities{"hcm": {RTT: 220 * ms, Jitter: 1 * ms}, "sgp": {RTT: 160 * ms, Jitter: 8 * ms, Loss: 0.01}},
			others: map[cluster.NodeID]published{"sgp": {
				at: t0, rtt: rtts{"hcm": 31 * ms}, quality: qualities{"hcm": {RTT: 30 * ms}},
			}},
			want: "hcm", wantVia: 219600 * time.Microsecond,
		},
		{
			// Our link to hcm just opened: no probe figures of ours yet, one low ICE sample.
			// hcm's probes have measured the same link: jittery and lossy.
			name:    "before our probes measure a link, the peer's figures for it count",
			own:     rtts{"hcm": 205 * ms, "sgp": 158 * ms},
			quality: qualities{"sgp": {RTT: 160 * ms}},
			others: map[cluster.NodeID]published{
				"hcm": {at: t0, quality: qualities{"eu": {RTT: 222 * ms, Jitter: 8 * ms, Loss: 0.016}, "sgp": {RTT: 31 * ms}}},
			},
			want: "sgp", wantVia: 191 * ms,
		},
		{
			name:    "a peer's probe figures beat its ICE RTT",
			own:     rtts{"hcm": 300 * ms, "sgp": 100 * ms},
			quality: qualities{"sgp": {RTT: 100 * ms}},
			others: map[cluster.NodeID]published{"hcm": {
				at: t0, rtt: rtts{"sgp": 30 * ms}, quality: qualities{"sgp": {RTT: 150 * ms, Loss: 0.1}},
			}},
			want: "hcm", wantVia: 340 * ms,
		},
		{
			name: "no measurements: Serf decides (direct)", estimate: serf,
			want: "hcm", wantVia: 260 * ms,
		},
		{
			name: "no measurements: Serf decides (via)", estimate: serfRTT(map[[2]cluster.NodeID]time.Duration{{"eu", "hcm"}: 260 * ms, {"eu", "sgp"}: 160 * ms, {"sgp", "hcm"}: 30 * ms}),
			want: "sgp", wantVia: 190 * ms,
		},
		{
			name: "one leg measured, the other from Serf",
			own:  rtts{"hcm": 300 * ms}, estimate: serf,
			others: map[cluster.NodeID]published{"hcm": {at: t0, rtt: rtts{"sgp": 40 * ms}}},
			want:   "sgp", wantVia: 200 * ms,
		},
		{
			name: "this node's live measurement beats what the peer published",
			own:  rtts{"hcm": 300 * ms, "sgp": 250 * ms}, estimate: serf,
			others: map[cluster.NodeID]published{"sgp": {at: t0, rtt: rtts{"eu": 20 * ms, "hcm": 30 * ms}}},
			want:   "hcm", wantVia: 280 * ms,
		},
		{
			name: "the fresher of two records wins for a leg between two other nodes",
			own:  rtts{"hcm": 300 * ms, "sgp": 100 * ms}, estimate: serf,
			others: map[cluster.NodeID]published{
				"sgp": {at: t0, rtt: rtts{"hcm": 30 * ms}},
				"hcm": {at: t0.Add(time.Second), rtt: rtts{"sgp": 200 * ms}},
			},
			want: "hcm", wantVia: 300 * ms,
		},
		{
			name: "without Serf a via needs both legs measured",
			own:  rtts{"hcm": 300 * ms, "sgp": 100 * ms},
			want: "hcm",
		},
		{
			name: "without Serf or measurements: direct",
			want: "hcm",
		},
	}
	for _, c := range cases {
		src := rttSources{self: "eu", own: c.own, ownQuality: c.quality, others: c.others, estimate: c.estimate}
		direct, hasDirect, through := src.paths("hcm", []cluster.NodeID{"eu", "hcm", "sgp"})
		if got := choosePath("hcm", "", direct, hasDirect, through); got != c.want || through["sgp"] != c.wantVia {
			t.Errorf("%s: %s (through sgp %v), want %s (%v)", c.name, got, through["sgp"], c.want, c.wantVia)
		}
	}
}

// fakeLinks is this node's measured link RTTs and probe figures, changed by the test.
type fakeLinks struct {
	mu  sync.Mutex
	rtt rtts
	q   qualities
}

func (f *fakeLinks) setQuality(q qualities) {
	f.mu.Lock()
	f.q = q
	f.mu.Unlock()
}

func (f *fakeLinks) set(r rtts) {
	f.mu.Lock()
	f.rtt = r
	f.mu.Unlock()
}

func (f *fakeLinks) get() (map[cluster.NodeID]time.Duration, map[cluster.NodeID]cluster.LinkQuality) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.rtt, f.q
}

// The policy reads other nodes' records from the registry, and does not flap between two
// similar vias as their measurements move; a via 20% faster than the current one wins.
func TestAutoPathIsSticky(t *testing.T) {
	reg := cluster.NewMemoryRegistry()
	ctx := context.Background()
	register := func(n cluster.Node) {
		t.Helper()
		if _, err := reg.Register(ctx, n, time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	// eu's direct link to hcm measures 400 ms; sgp and hkg each relay in about 200 ms.
	register(cluster.Node{ID: "hcm", State: cluster.StateActive})
	register(cluster.Node{ID: "sgp", State: cluster.StateActive, LinkRTT: rtts{"hcm": 100 * ms}})
	register(cluster.Node{ID: "hkg", State: cluster.StateActive, LinkRTT: rtts{"hcm": 105 * ms}})
	links := &fakeLinks{rtt: rtts{"hcm": 400 * ms, "sgp": 100 * ms, "hkg": 100 * ms}}
	register(cluster.Node{ID: "eu", State: cluster.StateActive})
	nodes := startNodeCache(reg, "eu", 10*ms, 30*ms, slog.New(slog.DiscardHandler))
	defer nodes.Close()
	p := newAutoPath("eu", nodes, links.get, slog.New(slog.DiscardHandler))
	// The cache reads the registry in the background.
	deadline := time.Now().Add(5 * time.Second)
	for p.Next("hcm") != "sgp" {
		if time.Now().After(deadline) {
			t.Fatalf("eu goes to hcm through %s, want sgp (200 ms vs 400 ms direct)", p.Next("hcm"))
		}
		time.Sleep(10 * ms)
	}
	// hkg becomes a little faster than sgp, then sgp again, then hkg: the path stays on sgp.
	for i, hkgToHCM := range []time.Duration{80 * ms, 110 * ms, 70 * ms} {
		register(cluster.Node{ID: "hkg", State: cluster.StateActive, LinkRTT: rtts{"hcm": hkgToHCM}})
		waitCached(t, nodes, "hkg", hkgToHCM)
		if hop := p.Next("hcm"); hop != "sgp" {
			t.Fatalf("step %d (through hkg %v, through sgp 200 ms): the path moved to %s", i, 100*ms+hkgToHCM, hop)
		}
	}
	// hkg becomes 20% faster than sgp: the path moves.
	register(cluster.Node{ID: "hkg", State: cluster.StateActive, LinkRTT: rtts{"hcm": 60 * ms}})
	deadline = time.Now().Add(5 * time.Second)
	for p.Next("hcm") != "hkg" {
		if time.Now().After(deadline) {
			t.Fatalf("through hkg 160 ms vs sgp 200 ms: still %s", p.Next("hcm"))
		}
		time.Sleep(10 * ms)
	}
	// hkg starts draining: it relays no more.
	register(cluster.Node{ID: "hkg", State: cluster.StateDraining, LinkRTT: rtts{"hcm": 60 * ms}})
	deadline = time.Now().Add(5 * time.Second)
	for p.Next("hcm") != "sgp" {
		if time.Now().After(deadline) {
			t.Fatalf("hkg drains: still through %s", p.Next("hcm"))
		}
		time.Sleep(10 * ms)
	}
	// eu's own direct link gets fast: 20% faster than the via, so direct.
	links.set(rtts{"hcm": 150 * ms, "sgp": 100 * ms})
	if hop := p.Next("hcm"); hop != "hcm" {
		t.Fatalf("direct 150 ms vs through sgp 200 ms: %s", hop)
	}
}

// waitCached waits until the cache holds id's record with a measured RTT to hcm.
func waitCached(t *testing.T, c *nodeCache, id cluster.NodeID, toHCM time.Duration) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		for _, n := range c.Nodes() {
			if n.ID == id && n.LinkRTT["hcm"] == toHCM {
				return
			}
		}
		time.Sleep(5 * ms)
	}
	t.Fatalf("the cache never read %s's record with %v to hcm", id, toHCM)
}

// The cache forgets what it read once the registry has been unreadable for five intervals, so
// that old measurements do not steer paths for ever.
func TestNodeCacheForgetsStaleRecords(t *testing.T) {
	reg := &flakyRegistry{nodes: []cluster.Node{{ID: "sgp", State: cluster.StateActive}}}
	c := startNodeCache(reg, "sgp", 10*ms, 30*ms, slog.New(slog.DiscardHandler))
	defer c.Close()
	deadline := time.Now().Add(5 * time.Second)
	for len(c.Nodes()) != 1 {
		if time.Now().After(deadline) {
			t.Fatal("the cache never read the registry")
		}
		time.Sleep(5 * ms)
	}
	reg.fail()
	deadline = time.Now().Add(5 * time.Second)
	for len(c.Nodes()) != 0 {
		if time.Now().After(deadline) {
			t.Fatal("records kept although the registry is unreadable")
		}
		time.Sleep(5 * ms)
	}
	c.Close() // twice is safe
}

type flakyRegistry struct {
	mu     sync.Mutex
	nodes  []cluster.Node
	broken bool
}

func (f *flakyRegistry) fail() {
	f.mu.Lock()
	f.broken = true
	f.mu.Unlock()
}

func (f *flakyRegistry) Nodes(context.Context) ([]cluster.Node, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.broken {
		return nil, context.DeadlineExceeded
	}
	return f.nodes, nil
}

// A node whose record leaves the registry is gone (its relay links close); one the cache has
// never seen is not (a node that just started is not refused), nor is anything while the
// registry is unreadable (a Redis outage must not tear every link down).
func TestNodeCacheGone(t *testing.T) {
	reg := &flakyRegistry{nodes: []cluster.Node{{ID: "sgp"}, {ID: "hcm"}}}
	c := startNodeCache(reg, "hcm", 10*ms, 300*ms, slog.New(slog.DiscardHandler))
	defer c.Close()
	eventuallyTrue := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatal(what)
			}
			time.Sleep(5 * ms)
		}
	}
	eventuallyTrue("the cache never read the registry", func() bool { return len(c.Nodes()) == 2 })
	if c.Gone("sgp") || c.Gone("new") {
		t.Fatal("a listed node, or one never seen, reported gone")
	}
	reg.mu.Lock()
	reg.nodes = []cluster.Node{{ID: "hcm"}}
	reg.mu.Unlock()
	eventuallyTrue("sgp left the registry but is not reported gone", func() bool { return c.Gone("sgp") })
	if c.Gone("hcm") {
		t.Fatal("hcm is still listed but reported gone")
	}
	reg.mu.Lock()
	reg.nodes = []cluster.Node{{ID: "hcm"}, {ID: "sgp"}}
	reg.mu.Unlock()
	eventuallyTrue("sgp came back but is still reported gone", func() bool { return !c.Gone("sgp") })
	reg.mu.Lock()
	reg.nodes = []cluster.Node{{ID: "hcm"}}
	reg.mu.Unlock()
	eventuallyTrue("sgp left again but is not reported gone", func() bool { return c.Gone("sgp") })
	// Redis restarts empty: this node's own record is missing too, so the read says nothing
	// about the others; once the records are back, only a node still missing is gone.
	reg.mu.Lock()
	reg.nodes = []cluster.Node{{ID: "hcm"}, {ID: "sgp"}}
	reg.mu.Unlock()
	eventuallyTrue("sgp listed again", func() bool { return !c.Gone("sgp") })
	reg.mu.Lock()
	reg.nodes = nil
	reg.mu.Unlock()
	time.Sleep(50 * ms) // several reads of the empty registry
	if c.Gone("sgp") || c.Gone("hcm") {
		t.Fatal("a read without this node's own record declared nodes gone")
	}
	reg.mu.Lock()
	reg.nodes = []cluster.Node{{ID: "hcm"}} // hcm wrote its record back; sgp did not (yet)
	reg.mu.Unlock()
	time.Sleep(50 * ms) // well within the 300 ms grace
	if c.Gone("sgp") {
		t.Fatal("sgp reported gone within the grace after the registry came back empty")
	}
	eventuallyTrue("sgp, still missing after the grace, is not reported gone", func() bool { return c.Gone("sgp") })
	reg.fail()
	eventuallyTrue("with the registry unreadable, a node is still reported gone", func() bool { return !c.Gone("sgp") })
}

// With the default policy the path is direct; when the direct link is cut (its probes go
// unanswered) it goes through the cheapest via whose legs are up, stays there while no direct
// link answers, and comes back once one has answered for the recovery time.
func TestFailoverAroundCutLink(t *testing.T) {
	reg := cluster.NewMemoryRegistry()
	ctx := context.Background()
	for _, n := range []cluster.Node{
		{ID: "eu", State: cluster.StateActive},
		{ID: "hcm", State: cluster.StateActive},
		{ID: "sgp", State: cluster.StateActive, LinkQuality: qualities{"hcm": {RTT: 30 * ms}}},
		{ID: "hkg", State: cluster.StateActive, LinkQuality: qualities{"hcm": {Down: true}}}, // its leg is cut too
	} {
		if _, err := reg.Register(ctx, n, time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	links := &fakeLinks{
		rtt: rtts{"hcm": 220 * ms, "sgp": 160 * ms, "hkg": 40 * ms},
		q:   qualities{"hcm": {RTT: 220 * ms}, "sgp": {RTT: 160 * ms}, "hkg": {RTT: 40 * ms}},
	}
	nodes := startNodeCache(reg, "eu", 10*ms, 30*ms, slog.New(slog.DiscardHandler))
	defer nodes.Close()
	p := newAutoPath("eu", nodes, links.get, slog.New(slog.DiscardHandler))
	p.failoverOnly, p.recoverAfter = true, 200*ms
	waitCached(t, nodes, "sgp", 0)
	if hop := p.Next("hcm"); hop != "hcm" {
		t.Fatalf("healthy direct link: %s, want direct", hop)
	}
	links.setQuality(qualities{"hcm": {RTT: 220 * ms, Down: true}, "sgp": {RTT: 160 * ms}, "hkg": {RTT: 40 * ms}})
	if hop := p.Next("hcm"); hop != "sgp" {
		t.Fatalf("cut direct link: %s, want sgp (hkg's leg to hcm is cut too)", hop)
	}
	if w := p.Warm(); len(w) != 1 || w[0] != "hcm" {
		t.Fatalf("Warm %v, want the cut destination", w)
	}
	// The cut link closes (no figures): still around it.
	links.setQuality(qualities{"sgp": {RTT: 160 * ms}})
	time.Sleep(300 * ms)
	if hop := p.Next("hcm"); hop != "sgp" {
		t.Fatalf("no direct link yet: %s, want sgp", hop)
	}
	// A new direct link answers: back to direct only after the recovery time.
	links.setQuality(qualities{"hcm": {RTT: 220 * ms}, "sgp": {RTT: 160 * ms}})
	if hop := p.Next("hcm"); hop != "sgp" {
		t.Fatalf("direct answered a moment ago: %s, want sgp still", hop)
	}
	deadline := time.Now().Add(5 * time.Second)
	for p.Next("hcm") != "hcm" {
		if time.Now().After(deadline) {
			t.Fatal("never went back to the direct path")
		}
		time.Sleep(20 * ms)
	}
	if w := p.Warm(); len(w) != 0 {
		t.Fatalf("Warm %v after recovery", w)
	}
}
