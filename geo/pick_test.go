package geo

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"
)

// kmPerDeg is the length of one degree of a great circle.
const kmPerDeg = EarthRadiusKm * math.Pi / 180

// eq returns the point on the equator at distance km east of 0°E, so tests
// can place nodes at exact distances from a client at the origin.
func eq(km float64) Point { return Point{0, km / kmPerDeg} }

// regionNode returns a node located at region name, with ID name.
func regionNode(t testing.TB, name string) Node {
	t.Helper()
	r, ok := LookupRegion(name)
	if !ok {
		t.Fatalf("unknown region %q", name)
	}
	return Node{ID: name, Region: name, URL: "https://" + name + ".example", Location: r.Point()}
}

// with applies changes to a copy of n.
func with(n Node, changes ...func(*Node)) Node {
	for _, f := range changes {
		f(&n)
	}
	return n
}

func draining(n *Node) { n.Draining = true }
func full(n *Node)     { n.Full = true }
func room(n *Node)     { n.HostsRoom = true }
func load(l float64) func(*Node) {
	return func(n *Node) { n.Load = l }
}

func TestPick(t *testing.T) {
	t.Parallel()
	var (
		eu  = regionNode(t, "eu")
		fra = regionNode(t, "fra")
		sgp = regionNode(t, "sgp")
		hcm = regionNode(t, "hcm")
		hkg = regionNode(t, "hkg")
		han = regionNode(t, "han")

		vietnam  = Point{10.8, 106.7}
		paris    = Point{48.8, 2.3}
		hanoi    = Point{21.03, 105.85}
		brunei   = Point{4.89, 114.94} // hcm 1128 km, sgp 1296 km (+15 %)
		kuching  = Point{1.55, 110.34} // sgp 725 km, hcm 1109 km (+53 %)
		phuket   = Point{7.88, 98.39}  // sgp 943 km, hcm 961 km (18 km apart: tied)
		daNang   = Point{16.05, 108.2} // hcm 606 km, han 607 km
		dubai    = Point{25.2, 55.27}  // fra 4836 km, eu 5160 km (+6.7 %)
		origin   = Point{0, 0}
		affinity = DefaultOptions()
	)
	n := func(id string, km float64, opts ...func(*Node)) Node {
		nd := Node{ID: id, Location: eq(km)}
		for _, o := range opts {
			o(&nd)
		}
		return nd
	}

	tests := []struct {
		name   string
		client Point
		nodes  []Node
		opt    Options
		want   string // node ID, or "" when an error is expected
		err    error
	}{
		// The cases.
		{"issue: vietnamese client goes to hcm", vietnam, []Node{eu, sgp, hcm}, affinity, "hcm", nil},
		{"issue: paris client goes to eu", paris, []Node{eu, sgp, hcm}, affinity, "eu", nil},
		{"issue: draining hcm sends vietnam to sgp", vietnam, []Node{eu, sgp, with(hcm, draining)}, affinity, "sgp", nil},
		{"issue: hanoi, room on sgp 93 % farther than hcm: no affinity", hanoi, []Node{eu, with(sgp, room), hcm}, affinity, "hcm", nil},

		// Eligibility.
		{"full node is skipped", vietnam, []Node{eu, sgp, with(hcm, full)}, affinity, "sgp", nil},
		{"full and draining skipped even when hosting the room", vietnam, []Node{eu, with(sgp, full, room), with(hcm, draining, room)}, affinity, "eu", nil},
		{"no nodes", vietnam, nil, affinity, "", ErrNoNode},
		{"all draining or full", vietnam, []Node{with(eu, draining), with(hcm, full)}, affinity, "", ErrNoNode},
		{"invalid client", Point{math.NaN(), 0}, []Node{eu}, affinity, "", ErrInvalidPoint},
		{"client out of range", Point{0, 200}, []Node{eu}, affinity, "", ErrInvalidPoint},
		{"node with invalid location only as last resort", paris, []Node{with(eu, func(n *Node) { n.Location = Point{999, 0} }), sgp}, affinity, "sgp", nil},
		{"node with invalid location when nothing else", paris, []Node{with(eu, func(n *Node) { n.Location = Point{math.NaN(), 0} }), with(sgp, draining)}, affinity, "eu", nil},

		// Distance and ties.
		{"closest wins over less loaded", origin, []Node{n("a", 100, load(0.9)), n("b", 200, load(0))}, Options{}, "a", nil},
		{"within 25 km: lower load wins", origin, []Node{n("a", 100, load(0.9)), n("b", 124, load(0.1))}, Options{}, "b", nil},
		{"beyond 25 km: closest wins", origin, []Node{n("a", 100, load(0.9)), n("b", 126, load(0.1))}, Options{}, "a", nil},
		{"within 1 % of 5000 km: lower load wins", origin, []Node{n("a", 5000, load(0.9)), n("b", 5049, load(0.1))}, Options{}, "b", nil},
		{"beyond 1 % of 5000 km: closest wins", origin, []Node{n("a", 5000, load(0.9)), n("b", 5051, load(0.1))}, Options{}, "a", nil},
		{"same load: lowest ID", origin, []Node{n("b", 10, load(0.5)), n("a", 20, load(0.5)), n("c", 0, load(0.5))}, Options{}, "a", nil},
		{"NaN load never wins a tie", origin, []Node{n("a", 0, load(math.NaN())), n("b", 10, load(1))}, Options{}, "b", nil},
		{"ties are measured from the best, not chained", origin, []Node{n("a", 0, load(0.9)), n("b", 20, load(0.5)), n("c", 40, load(0))}, Options{}, "b", nil},
		{"real tie: phuket between sgp and hcm goes to less loaded hcm", phuket, []Node{with(sgp, load(0.6)), with(hcm, load(0.2))}, Options{}, "hcm", nil},
		{"real tie: phuket, equal load, lowest ID", phuket, []Node{hcm, sgp}, Options{}, "hcm", nil},
		{"real tie: da nang goes to less loaded han", daNang, []Node{with(hcm, load(0.5)), with(han, load(0.4))}, Options{}, "han", nil},

		// Room affinity.
		{"affinity: room host 15 % farther wins", origin, []Node{n("a", 1000), n("b", 1150, room)}, affinity, "b", nil},
		{"affinity: room host 30 % farther loses", origin, []Node{n("a", 1000), n("b", 1300, room)}, affinity, "a", nil},
		{"affinity: bound is 20 % plus 50 km", origin, []Node{n("a", 1000), n("b", 1249, room)}, affinity, "b", nil},
		{"affinity: just past the bound", origin, []Node{n("a", 1000), n("b", 1251, room)}, affinity, "a", nil},
		{"affinity: co-located room host within 50 km slack", origin, []Node{n("a", 0), n("b", 45, room)}, affinity, "b", nil},
		{"affinity: room host beyond 50 km slack at distance 0", origin, []Node{n("a", 0), n("b", 55, room)}, affinity, "a", nil},
		{"affinity disabled by zero options", origin, []Node{n("a", 1000), n("b", 1150, room)}, Options{}, "a", nil},
		{"affinity disabled by negative", origin, []Node{n("a", 1000), n("b", 1150, room)}, Options{RoomAffinity: -1}, "a", nil},
		{"affinity disabled by NaN", origin, []Node{n("a", 1000), n("b", 1150, room)}, Options{RoomAffinity: math.NaN()}, "a", nil},
		{"affinity +Inf always prefers the room", origin, []Node{n("a", 0), n("b", 15000, room)}, Options{RoomAffinity: math.Inf(1)}, "b", nil},
		{"affinity beats lower load", origin, []Node{n("a", 1000, load(0)), n("b", 1100, room, load(0.9))}, affinity, "b", nil},
		{"affinity: closest room host, not least loaded room host", origin, []Node{n("a", 1000), n("b", 1100, room, load(0.9)), n("c", 1180, room, load(0.1))}, affinity, "b", nil},
		{"affinity: tied room hosts by load", origin, []Node{n("a", 1000), n("b", 1100, room, load(0.9)), n("c", 1110, room, load(0.1))}, affinity, "c", nil},
		{"affinity: closest node hosts the room", origin, []Node{n("a", 1000, room, load(0.9)), n("b", 1010, load(0.1))}, affinity, "a", nil},
		{"affinity: draining room host ignored", origin, []Node{n("a", 1000), n("b", 1100, room, draining)}, affinity, "a", nil},
		{"affinity: brunei, room on sgp 15 % farther than hcm", brunei, []Node{eu, with(sgp, room), hcm}, affinity, "sgp", nil},
		{"affinity: brunei without room goes to hcm", brunei, []Node{eu, sgp, hcm}, affinity, "hcm", nil},
		{"affinity: kuching, room on hcm 53 % farther than sgp", kuching, []Node{with(hcm, room), sgp}, affinity, "sgp", nil},
		{"affinity: dubai, room on eu 6.7 % farther than fra", dubai, []Node{with(eu, room), fra, sgp}, affinity, "eu", nil},
		{"affinity: hanoi, room on hcm 31 % farther than hkg, 0.2", hanoi, []Node{hkg, with(hcm, room), sgp}, affinity, "hkg", nil},
		{"affinity: hanoi, room on hcm 31 % farther than hkg, 0.3", hanoi, []Node{hkg, with(hcm, room), sgp}, Options{RoomAffinity: 0.3}, "hcm", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			// Pick must not depend on the order of nodes.
			for _, nodes := range [][]Node{tt.nodes, reversed(tt.nodes)} {
				before := slices.Clone(nodes)
				got, err := Pick(tt.client, nodes, tt.opt)
				if !slices.Equal(before, nodes) && !hasNaN(nodes) {
					t.Errorf("Pick modified its input")
				}
				if tt.err != nil {
					if !errors.Is(err, tt.err) {
						t.Fatalf("Pick() error = %v, want %v", err, tt.err)
					}
					continue
				}
				if err != nil {
					t.Fatalf("Pick() error = %v", err)
				}
				if got.ID != tt.want {
					t.Errorf("Pick() = %s, want %s; distances: %s", got.ID, tt.want, describe(tt.client, nodes))
				}
			}
		})
	}
}

// TestPickReturnsWholeNode checks that Pick returns the node as given.
func TestPickReturnsWholeNode(t *testing.T) {
	t.Parallel()
	want := with(regionNode(t, "hcm"), load(0.25))
	got, err := Pick(Point{10.8, 106.7}, []Node{regionNode(t, "sgp"), want}, DefaultOptions())
	if err != nil || got != want {
		t.Fatalf("Pick() = %+v, %v; want %+v", got, err, want)
	}
}

// TestPickManyNodes covers the path that does not fit the stack buffer.
func TestPickManyNodes(t *testing.T) {
	t.Parallel()
	nodes := make([]Node, 3*stackNodes)
	for i := range nodes {
		nodes[i] = Node{ID: string(rune('A' + i%26)), Location: eq(float64(1000 + i*10))}
	}
	nodes[len(nodes)-1] = Node{ID: "last", Location: eq(1)}
	got, err := Pick(Point{}, nodes, DefaultOptions())
	if err != nil || got.ID != "last" {
		t.Fatalf("Pick() = %q, %v; want last", got.ID, err)
	}
}

func reversed(nodes []Node) []Node {
	r := slices.Clone(nodes)
	slices.Reverse(r)
	return r
}

// hasNaN reports whether any node holds a NaN, which slices.Equal never
// considers equal to itself.
func hasNaN(nodes []Node) bool {
	return slices.ContainsFunc(nodes, func(n Node) bool {
		return math.IsNaN(n.Load) || !n.Location.Valid()
	})
}

func describe(client Point, nodes []Node) string {
	var b strings.Builder
	for _, n := range nodes {
		fmt.Fprintf(&b, "%s=%.1fkm ", n.ID, DistanceKm(client, n.Location))
	}
	return b.String()
}
