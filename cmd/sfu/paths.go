package main

import (
	"context"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cascade-sfu/cascade/pkg/cluster"
)

// The auto relay path policy (--relay-via auto).
//
// Every leg X→Y has a cost: the delay a call sees on it, in round-trip units. Its RTT is, in
// order of preference:
//   - for a leg from this node, what its own open link to Y measures now: the smoothed RTT of
//     the link's probes (relay/probe.go); before they have figures, what Y's probes published
//     for the link; else the link's ICE RTT;
//   - what X or Y published for their link in its registry record (Node.LinkQuality, else
//     Node.LinkRTT), the fresher record when both did;
//   - the Serf network-coordinate estimate.
//
// Where the link's probes measured jitter and loss, the cost adds what they cost a call:
//
//	cost = RTT + 2.5 × jitter + 6 × loss × RTT
//
// jitter being the mean deviation of consecutive probe round trips and loss their round-trip
// loss. A receiver's jitter buffer holds media for about two standard deviations of the one-way
// delay: 1.25 × the round-trip mean deviation, or 2.5 × in round-trip units. A lost packet is
// repaired by a NACK and its retransmission, one more round trip for its frame; a 1.5 Mb/s,
// 30 fps video frame is about six packets, so a frame is hit with probability about
// 6 × (loss one way, about half the round-trip figure), which costs 6 × loss × RTT in
// round-trip units. So a jittery, lossy public route with a lower RTT can cost more than two
// clean backbone legs, which is what overlay routing is for.
//
// A path through a via node costs both its legs. With no current choice for a destination, a
// via is taken only when it costs at least 10% less than the direct path: a hop costs CPU and
// is one more thing that can fail. Once a path is chosen, another replaces it only when it
// costs at least 20% less than the current one (stickiness): two similar vias, or a via and a
// direct path whose figures come from different sources, do not make the path flap.

// muchFaster reports whether a path of cost alt is at least 20% cheaper than one of cost than.
func muchFaster(alt, than time.Duration) bool { return alt*5 <= than*4 }

// fasterEnough reports whether a via of cost alt is at least 10% cheaper than the direct path.
func fasterEnough(alt, direct time.Duration) bool { return alt*10 <= direct*9 }

// legCost is the cost of a leg of round trip rtt whose probes measured q (zero: not measured).
func legCost(rtt time.Duration, q cluster.LinkQuality) time.Duration {
	return rtt + q.Jitter*5/2 + time.Duration(6*min(1, q.Loss)*float64(rtt))
}

// choosePath returns the next hop toward to: to itself (the direct path) or a via node.
// direct is the cost of the direct path (hasDirect false when unknown); through holds the cost
// of the path through each via whose two legs are known; current is the hop chosen last
// ("" for none). A path replaces current only when it costs at least 20% less; when current
// is unknown or no longer measurable the direct path is the reference and a via must cost at
// least 10% less. Among several such paths the cheapest wins; ties go to the direct path,
// then to the smaller id.
func choosePath(to, current cluster.NodeID, direct time.Duration, hasDirect bool, through map[cluster.NodeID]time.Duration) cluster.NodeID {
	cur, ok := through[current]
	if current == to {
		cur, ok = direct, hasDirect
	}
	better := muchFaster
	if !ok {
		if !hasDirect {
			return to // nothing to compare with: the direct link will measure itself
		}
		current, cur, better = to, direct, fasterEnough
	}
	best, bestRTT := current, cur
	consider := func(id cluster.NodeID, rtt time.Duration) {
		if id == current || !better(rtt, cur) {
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
	at      time.Time
	rtt     map[cluster.NodeID]time.Duration
	quality map[cluster.NodeID]cluster.LinkQuality
}

// rttSources is what one path decision knows of the RTT between nodes.
type rttSources struct {
	self cluster.NodeID
	// own is this node's open links, measured now: ICE RTTs and probe figures.
	own        map[cluster.NodeID]time.Duration
	ownQuality map[cluster.NodeID]cluster.LinkQuality
	// others is the other nodes' published measurements (never this node's own record).
	others map[cluster.NodeID]published
	// estimate is the Serf coordinate estimate; nil without gossip.
	estimate func(a, b cluster.NodeID) (time.Duration, bool)
}

// leg returns the cost of the leg between a and b, and whether it is known.
func (s rttSources) leg(a, b cluster.NodeID) (time.Duration, bool) {
	if b == s.self {
		a, b = b, a
	}
	if a == s.self {
		if q, ok := s.ownQuality[b]; ok && q.Down {
			return 0, false // cut: no path, whatever else says
		}
		if q, ok := s.ownQuality[b]; ok && q.RTT > 0 {
			return legCost(q.RTT, q), true
		}
		// Our probes have no figures yet (a link that just opened): the peer's figures for
		// the same link weigh jitter and loss, which our single ICE RTT sample cannot.
		if rtt, q, ok := s.measured(a, b); ok && q.RTT > 0 && !q.Down {
			return legCost(rtt, q), true
		}
		if rtt := s.own[b]; rtt > 0 {
			return rtt, true
		}
	}
	if rtt, q, ok := s.measured(a, b); ok {
		if q.Down {
			return 0, false
		}
		return legCost(rtt, q), true
	}
	if s.estimate != nil {
		return s.estimate(a, b)
	}
	return 0, false
}

// measured returns what a or b published for their link (the fresher when both did): the
// probes' figures, or the ICE RTT alone.
func (s rttSources) measured(a, b cluster.NodeID) (time.Duration, cluster.LinkQuality, bool) {
	type view struct {
		p    published
		peer cluster.NodeID // the other end, as the record names it
	}
	views := [2]view{{s.others[a], b}, {s.others[b], a}}
	if views[1].p.at.After(views[0].p.at) {
		views[0], views[1] = views[1], views[0]
	}
	for _, v := range views {
		if q, ok := v.p.quality[v.peer]; ok && (q.RTT > 0 || q.Down) {
			return q.RTT, q, true
		}
		if rtt := v.p.rtt[v.peer]; rtt > 0 {
			return rtt, cluster.LinkQuality{}, true
		}
	}
	return 0, cluster.LinkQuality{}, false
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
	nodes *nodeCache                         // the registry's records, refreshed in the background
	own   ownLinks                           // this node's open links, measured now
	serf  atomic.Pointer[cluster.Membership] // set once gossip runs; nil without it
	log   *slog.Logger

	// failoverOnly: the default policy (no --relay-via): direct, except around a cut link.
	failoverOnly bool
	recoverAfter time.Duration // see the constant

	mu     sync.Mutex // guards the fields below
	chosen map[cluster.NodeID]cluster.NodeID
	downAt map[cluster.NodeID]time.Time // when each cut destination's direct link was last down
}

// ownLinks returns this node's open links' ICE RTTs and probe figures, by peer.
type ownLinks func() (map[cluster.NodeID]time.Duration, map[cluster.NodeID]cluster.LinkQuality)

func newAutoPath(self cluster.NodeID, nodes *nodeCache, own ownLinks, log *slog.Logger) *autoPath {
	return &autoPath{self: self, nodes: nodes, own: own, log: log, chosen: map[cluster.NodeID]cluster.NodeID{}, downAt: map[cluster.NodeID]time.Time{}, recoverAfter: recoverAfter}
}

// Next returns the next hop toward to. Whatever the policy, a direct link that is cut (its
// probes unanswered, relay/probe.go) is routed around through the cheapest via whose legs are
// both up, and the path goes back to direct only once a direct link has answered for
// recoverAfter (Warm keeps one open meanwhile).
func (p *autoPath) Next(to cluster.NodeID) cluster.NodeID {
	src, vias := p.sources()
	direct, hasDirect, through := src.paths(to, vias)
	q, measured := src.ownQuality[to]
	now := time.Now()
	p.mu.Lock()
	current := p.chosen[to]
	failedOver := current != "" && current != to && !p.downAt[to].IsZero()
	if (measured && q.Down) || (failedOver && (!measured || q.Down)) {
		p.downAt[to] = now // cut, or failed over and no direct link answers yet
	}
	recovering := !p.downAt[to].IsZero() && now.Sub(p.downAt[to]) < p.recoverAfter
	if !recovering {
		delete(p.downAt, to)
	}
	p.mu.Unlock()
	var hop cluster.NodeID
	switch {
	case recovering:
		hop = cheapest(to, current, through)
	case p.failoverOnly:
		hop = to
	default:
		hop = choosePath(to, current, direct, hasDirect, through)
	}
	if hop == current {
		return hop
	}
	p.mu.Lock()
	p.chosen[to] = hop
	p.mu.Unlock()
	if current != "" || hop != to {
		p.log.Info("relay path chosen", "to", to, "hop", hop, "was", current, "direct_cut", recovering,
			"direct_rtt", direct, "direct_known", hasDirect, "via_rtt", through[hop])
	}
	return hop
}

// recoverAfter is how long a cut direct link must have answered again before the path goes
// back to it.
const recoverAfter = 5 * time.Second

// cheapest returns the via of least cost in through, current when it is still among the
// cheapest within 20% (no flapping between vias), or to when there is none.
func cheapest(to, current cluster.NodeID, through map[cluster.NodeID]time.Duration) cluster.NodeID {
	best, bestCost := to, time.Duration(0)
	for id, cost := range through {
		if best == to || cost < bestCost || (cost == bestCost && id < best) {
			best, bestCost = id, cost
		}
	}
	if cur, ok := through[current]; ok && !muchFaster(bestCost, cur) {
		return current
	}
	return best
}

// Warm lists the destinations whose direct path is cut or routed around: the coordinator keeps
// a link to them, so that its probes tell when the direct path is back.
func (p *autoPath) Warm() []cluster.NodeID {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]cluster.NodeID, 0, len(p.downAt))
	for id := range p.downAt {
		out = append(out, id)
	}
	return out
}

// sources gathers the RTT sources and the active nodes that may relay (no I/O: the registry is
// read from the cache).
func (p *autoPath) sources() (rttSources, []cluster.NodeID) {
	src := rttSources{self: p.self, others: map[cluster.NodeID]published{}}
	if p.own != nil {
		src.own, src.ownQuality = p.own()
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
			src.others[n.ID] = published{at: n.LastSeen, rtt: n.LinkRTT, quality: n.LinkQuality}
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
	self     cluster.NodeID // this node: a read without its record declares nothing gone
	every    time.Duration
	// grace: after Redis was unreachable or restarted empty, reads declare nobody gone for
	// this long (a heartbeat and more), while every node writes its record back.
	grace time.Duration
	log   *slog.Logger

	mu    sync.Mutex // guards the fields below
	nodes []cluster.Node
	at    time.Time               // of the last successful read
	seen  map[cluster.NodeID]bool // in the last read that had this node's own record
	gone  map[cluster.NodeID]bool // in an earlier such read, not in the last one
	// unsure: until then a missing node is not gone (see grace)
	unsure time.Time

	stop context.CancelFunc
	done chan struct{}
}

// startNodeCache reads the registry now and then every interval until Close.
func startNodeCache(reg nodeLister, self cluster.NodeID, every, grace time.Duration, log *slog.Logger) *nodeCache {
	ctx, stop := context.WithCancel(context.Background())
	c := &nodeCache{registry: reg, self: self, every: every, grace: grace, log: log, seen: map[cluster.NodeID]bool{}, stop: stop, done: make(chan struct{})}
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
	now := time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	if err != nil {
		c.unsure = now.Add(c.grace)
		return err
	}
	c.nodes, c.at = nodes, now
	if !slices.ContainsFunc(nodes, func(n cluster.Node) bool { return n.ID == c.self }) {
		// Our own record is missing too: Redis restarted empty (or expired us).
		c.unsure = now.Add(c.grace)
	}
	if now.Before(c.unsure) {
		// Redis was unreachable or restarted empty a moment ago, and every node writes its
		// record back within a heartbeat: a node missing now is not gone on this read's word.
		for _, n := range nodes {
			delete(c.gone, n.ID)
			c.seen[n.ID] = true
		}
		return nil
	}
	if c.gone == nil {
		c.gone = map[cluster.NodeID]bool{}
	}
	for id := range c.seen {
		c.gone[id] = true
	}
	clear(c.seen)
	for _, n := range nodes {
		delete(c.gone, n.ID)
		c.seen[n.ID] = true
	}
	return nil
}

// Suspect tells the cache that the registry lost records (this node's own record vanished:
// Redis restarted empty): for the grace, nobody missing is gone.
func (c *nodeCache) Suspect() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.unsure = time.Now().Add(c.grace)
	clear(c.gone)
}

// Gone reports whether a node was in the registry and no longer is (its health record expired
// or it deregistered), as of a read that is not stale, that has this node's own record, and
// that is at least the grace after Redis was last unreachable or restarted empty. A node never
// seen is not gone, so a node that just started is not refused while the cache catches up.
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
