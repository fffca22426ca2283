package geo

import (
	"fmt"
	"math"
)

// Tuning of the selection rules. A node is "tied" with the closest one when it
// is at most max(tieFraction×best, tieSlackKm) farther; such ties go to the
// least-loaded node. The room-affinity bound gets affinitySlackKm on top of
// the relative bound so nodes in the same metro area always qualify.
const (
	tieFraction     = 0.01
	tieSlackKm      = 25.0
	affinitySlackKm = 50.0
)

// stackNodes is how many per-node distances Pick keeps on the stack; larger
// node lists cost one allocation.
const stackNodes = 128

// Node is a media node as seen by the router.
type Node struct {
	ID, Region, URL string
	Location        Point
	Draining        bool    // refuses new clients
	Load            float64 // 0..1, lower is better
	Full            bool    // at capacity
	HostsRoom       bool    // already has participants of the requested room
}

// eligible reports whether n may receive a new client.
func (n *Node) eligible() bool {
	return !n.Draining && !n.Full
}

// Options tunes Pick.
type Options struct {
	// RoomAffinity lets a node that already hosts the room win over a closer
	// node: the closest room host is chosen when its distance is at most
	// best×(1+RoomAffinity)+50 km, where best is the distance of the closest
	// eligible node. Keeping a room on one node saves a relay hop, which is
	// usually worth a little extra client distance. 0, negative or NaN
	// disables affinity; +Inf always prefers a room host.
	RoomAffinity float64
}

// DefaultOptions returns the recommended options: RoomAffinity 0.2.
func DefaultOptions() Options {
	return Options{RoomAffinity: 0.2}
}

// Pick chooses the node a client at client should join:
//
//  1. Draining and Full nodes are ignored; ErrNoNode if none remain.
//  2. If RoomAffinity is enabled and the closest node with HostsRoom is
//     within the affinity bound (see Options), only room hosts compete.
//  3. Otherwise the closest node wins.
//  4. Nodes within max(1 %, 25 km) of the winning distance are tied; the tie
//     goes to the lowest Load, then to the lowest ID, so the result does not
//     depend on the order of nodes.
//
// A node whose Location is invalid is treated as infinitely far: it is only
// chosen when no eligible node has a valid location. Pick does not allocate
// for up to 128 nodes and is safe for concurrent use; it does not modify
// nodes.
func Pick(client Point, nodes []Node, opt Options) (Node, error) {
	if !client.Valid() {
		return Node{}, fmt.Errorf("%w: client %v", ErrInvalidPoint, client)
	}
	var buf [stackNodes]float64
	var dist []float64
	if len(nodes) <= len(buf) {
		dist = buf[:len(nodes)]
	} else {
		dist = make([]float64, len(nodes))
	}

	best, bestRoom := math.Inf(1), math.Inf(1)
	eligible, room := false, false
	for i := range nodes {
		n := &nodes[i]
		if !n.eligible() {
			continue
		}
		d := nodeDistance(client, n.Location)
		dist[i] = d
		eligible = true
		best = min(best, d)
		if n.HostsRoom {
			room = true
			bestRoom = min(bestRoom, d)
		}
	}
	if !eligible {
		return Node{}, fmt.Errorf("%w: %d nodes, all draining or full", ErrNoNode, len(nodes))
	}

	roomOnly := room && bestRoom <= affinityBound(best, opt.RoomAffinity)
	anchor := best
	if roomOnly {
		anchor = bestRoom
	}
	limit := tieBound(anchor)

	chosen := -1
	for i := range nodes {
		n := &nodes[i]
		if !n.eligible() || (roomOnly && !n.HostsRoom) || dist[i] > limit {
			continue
		}
		if chosen < 0 || lessLoaded(n, &nodes[chosen]) {
			chosen = i
		}
	}
	return nodes[chosen], nil
}

// nodeDistance is DistanceKm, with +Inf for a node whose location is invalid.
func nodeDistance(client, loc Point) float64 {
	if !loc.Valid() {
		return math.Inf(1)
	}
	return DistanceKm(client, loc)
}

// tieBound returns the largest distance that ties with best.
func tieBound(best float64) float64 {
	return best + max(best*tieFraction, tieSlackKm)
}

// affinityBound returns the largest distance at which a room host beats the
// closest node at distance best. It is -Inf when affinity is disabled.
func affinityBound(best, affinity float64) float64 {
	switch {
	case !(affinity > 0): // also catches NaN
		return math.Inf(-1)
	case math.IsInf(affinity, 1):
		return math.Inf(1) // avoids 0×Inf = NaN when best is 0
	}
	return best*(1+affinity) + affinitySlackKm
}

// lessLoaded orders tied nodes: lower Load first (NaN counts as worst), then
// lower ID.
func lessLoaded(a, b *Node) bool {
	la, lb := loadKey(a.Load), loadKey(b.Load)
	if la != lb {
		return la < lb
	}
	return a.ID < b.ID
}

// loadKey maps NaN to +Inf so that a broken load report never wins a tie and
// comparisons stay a total order.
func loadKey(l float64) float64 {
	if math.IsNaN(l) {
		return math.Inf(1)
	}
	return l
}
