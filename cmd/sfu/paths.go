package main

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cascade-sfu/cascade/pkg/cluster"
)

// The auto relay path policy (--relay-via auto).
//
// The RTT of a leg X→Y is, in order of preference:
//   - for a leg from this node, the RTT its own open link to Y measures now;
//   - the RTT X or Y published for their link in its registry record (Node.LinkRTT), the
//     fresher record when both did;
//   - the Serf network-coordinate estimate.
//
// Measured RTTs are the ICE round trips (STUN consent checks) on each relay link's selected
// candidate pair: the same 5-tuple as the link's media and RTCP, so the same network path,
// though a STUN check is answered at once and so leaves out any queueing in the SFUs.
//
// A path through a via node costs both its legs. With no usable current choice for a
// destination, a via is taken only when it is at least 20% faster than the direct path. Once
// a path is chosen, another replaces it only when it is at least 20% faster than the current
// one (stickiness): two similar vias, or a via and a direct path whose figures come from
// different sources, do not make the path flap. A via therefore stays while the direct path
// is less than 20% faster than it.

// muchFaster reports whether a path of RTT alt is at least 20% faster than one of RTT than.
func muchFaster(alt, than time.Duration) bool { return alt*5 <= than*4 }

// choosePath returns the next hop toward to: to itself (the direct path) or a via node.
// direct is the RTT of the direct path (hasDirect false when unknown); through holds the RTT
// of the path through each via whose two legs are known; current is the hop chosen last
// ("" for none). A path replaces current only when it is at least 20% faster; when current is
// unknown or no longer measurable the direct path is the reference. Among several such paths
// the fastest wins; ties go to the direct path, then to the smaller id.
func choosePath(to, current cluster.NodeID, direct time.Duration, hasDirect bool, through map[cluster.NodeID]time.Duration) cluster.NodeID {
	cur, ok := through[current]
	if current == to {
		cur, ok = direct, hasDirect
	}
	if !ok {
		if !hasDirect {
			return to // nothing to compare with: the direct link will measure itself
		}
		current, cur = to, direct
	}
	best, bestRTT := current, cur
	consider := func(id cluster.NodeID, rtt time.Duration) {
		if id == current || !muchFaster(rtt, cur) {
			return
		}
		if best == current || rtt < bestRTT || (rtt == bestRTT && best != to && id < best) {
			best, bestRTT = id, rtt
		}
	}
	if hasDirect {
		consider(to, direct)
	}
	for id, rtt := range through {
		consider(id, rtt)
	}
	return best
}

// published is one node's measured link RTTs, as of its record's last heartbeat.
type published struct {
	at  time.Time
	rtt map[cluster.NodeID]time.Duration
}

// rttSources is what one path decision knows of the RTT between nodes.
type rttSources struct {
	self cluster.NodeID
	// own is this node's open links, measured now.
	own map[cluster.NodeID]time.Duration
	// others is the other nodes' published measurements (never this node's own record).
	others map[cluster.NodeID]published
	// estimate is the Serf coordinate estimate; nil without gossip.
	estimate func(a, b cluster.NodeID) (time.Duration, bool)
}

// leg returns the RTT between a and b, and whether it is known.
func (s rttSources) leg(a, b cluster.NodeID) (time.Duration, bool) {
	if b == s.self {
		a, b = b, a
	}
	if a == s.self {
		if rtt := s.own[b]; rtt > 0 {
			return rtt, true
		}
	}
	if rtt, ok := s.measured(a, b); ok {
		return rtt, true
	}
	if s.estimate != nil {
		return s.estimate(a, b)
	}
	return 0, false
}

// measured returns what a or b published for their link, the fresher when both did.
func (s rttSources) measured(a, b cluster.NodeID) (time.Duration, bool) {
	pa, pb := s.others[a], s.others[b]
	ra, rb := pa.rtt[b], pb.rtt[a]
	switch {
	case ra > 0 && (rb <= 0 || !pb.at.After(pa.at)):
		return ra, true
	case rb > 0:
		return rb, true
	}
	return 0, false
}

// paths returns the RTT of the direct path to to and of the path through each candidate via
// whose legs are both known.
func (s rttSources) paths(to cluster.NodeID, vias []cluster.NodeID) (time.Duration, bool, map[cluster.NodeID]time.Duration) {
	direct, hasDirect := s.leg(s.self, to)
	through := map[cluster.NodeID]time.Duration{}
	for _, via := range vias {
		if via == s.self || via == to {
			continue
		}
		first, ok1 := s.leg(s.self, via)
		second, ok2 := s.leg(via, to)
		if ok1 && ok2 {
			through[via] = first + second
		}
	}
	return direct, hasDirect, through
}

// autoPath is the auto relay path policy of one node; Next is the coordinator's Via. It keeps
// the current choice per destination. Safe for concurrent use.
type autoPath struct {
	self  cluster.NodeID
	nodes *nodeCache                              // the registry's records, refreshed in the background
	own   func() map[cluster.NodeID]time.Duration // this node's open links, measured now
	serf  atomic.Pointer[cluster.Membership]      // set once gossip runs; nil without it
	log   *slog.Logger

	mu     sync.Mutex // guards chosen
	chosen map[cluster.NodeID]cluster.NodeID
}

func newAutoPath(self cluster.NodeID, nodes *nodeCache, own func() map[cluster.NodeID]time.Duration, log *slog.Logger) *autoPath {
	return &autoPath{self: self, nodes: nodes, own: own, log: log, chosen: map[cluster.NodeID]cluster.NodeID{}}
}

// Next returns the next hop toward to.
func (p *autoPath) Next(to cluster.NodeID) cluster.NodeID {
	src, vias := p.sources()
	direct, hasDirect, through := src.paths(to, vias)
	p.mu.Lock()
	current := p.chosen[to]
	p.mu.Unlock()
	hop := choosePath(to, current, direct, hasDirect, through)
	if hop == current {
		return hop
	}
	p.mu.Lock()
	p.chosen[to] = hop
	p.mu.Unlock()
	if current != "" || hop != to {
		p.log.Info("relay path chosen", "to", to, "hop", hop, "was", current,
			"direct_rtt", direct, "direct_known", hasDirect, "via_rtt", through[hop])
	}
	return hop
}

// sources gathers the RTT sources and the active nodes that may relay (no I/O: the registry is
// read from the cache).
func (p *autoPath) sources() (rttSources, []cluster.NodeID) {
	src := rttSources{self: p.self, others: map[cluster.NodeID]published{}}
	if p.own != nil {
		src.own = p.own()
	}
	active := map[cluster.NodeID]bool{} // false: draining somewhere
	mark := func(id cluster.NodeID, state cluster.NodeState) {
		if ok, seen := active[id]; !seen || ok {
			active[id] = state == cluster.StateActive
		}
	}
	for _, n := range p.nodes.Nodes() {
		mark(n.ID, n.State)
		if n.ID != p.self {
			src.others[n.ID] = published{at: n.LastSeen, rtt: n.LinkRTT}
		}
	}
	if m := p.serf.Load(); m != nil {
		src.estimate = m.RTTBetween
		for _, mem := range m.Members() {
			mark(mem.ID, mem.State)
		}
	}
	vias := make([]cluster.NodeID, 0, len(active))
	for id, ok := range active {
		if ok {
			vias = append(vias, id)
		}
	}
	return src, vias
}

// nodeLister lists the alive nodes (cluster.Registry does).
type nodeLister interface {
	Nodes(ctx context.Context) ([]cluster.Node, error)
}

// nodeCache holds the registry's node records, read by its own goroutine at most every
// interval, so that path decisions (every coordinator tick, for every room) never wait on
// Redis.
type nodeCache struct {
	registry nodeLister
	every    time.Duration
	log      *slog.Logger

	mu    sync.Mutex // guards the fields below
	nodes []cluster.Node
	at    time.Time               // of the last successful read
	gone  map[cluster.NodeID]bool // in an earlier read, not in the last one

	stop context.CancelFunc
	done chan struct{}
}

// startNodeCache reads the registry now and then every interval until Close.
func startNodeCache(reg nodeLister, every time.Duration, log *slog.Logger) *nodeCache {
	ctx, stop := context.WithCancel(context.Background())
	c := &nodeCache{registry: reg, every: every, log: log, stop: stop, done: make(chan struct{})}
	go c.run(ctx)
	return c
}

func (c *nodeCache) run(ctx context.Context) {
	defer close(c.done)
	tick := time.NewTicker(c.every)
	defer tick.Stop()
	failing := false
	for {
		err := c.refresh(ctx)
		switch {
		case err != nil && !failing && ctx.Err() == nil:
			c.log.Warn("cannot read the node registry for relay paths; using what it said last", "err", err)
		case err == nil && failing:
			c.log.Info("node registry readable again for relay paths")
		}
		failing = err != nil
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

func (c *nodeCache) refresh(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, c.every)
	defer cancel()
	nodes, err := c.registry.Nodes(ctx)
	if err != nil {
		return err
	}
	c.mu.Lock()
	if c.gone == nil {
		c.gone = map[cluster.NodeID]bool{}
	}
	for _, n := range c.nodes {
		c.gone[n.ID] = true
	}
	for _, n := range nodes {
		delete(c.gone, n.ID)
	}
	c.nodes, c.at = nodes, time.Now()
	c.mu.Unlock()
	return nil
}

// Gone reports whether a node was in the registry and no longer is (its health record expired
// or it deregistered), as of a read that is not stale. A node never seen is not gone, so a node
// that just started is not refused while the cache catches up.
func (c *nodeCache) Gone(id cluster.NodeID) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Since(c.at) <= 5*c.every && c.gone[id]
}

// Nodes returns the records read last, or none when the last successful read is older than
// five intervals. The slice is shared: callers must not modify it.
func (c *nodeCache) Nodes() []cluster.Node {
	c.mu.Lock()
	defer c.mu.Unlock()
	if time.Since(c.at) > 5*c.every {
		return nil
	}
	return c.nodes
}

// Close stops the refresh goroutine and waits for it. Safe to call twice.
func (c *nodeCache) Close() {
	c.stop()
	<-c.done
}
