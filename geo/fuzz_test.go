package geo

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"testing"
)

func FuzzDistanceKm(f *testing.F) {
	f.Add(52.37, 4.90, 1.35, 103.82)
	f.Add(0.0, 0.0, 0.0, 180.0)
	f.Add(90.0, 0.0, -90.0, 0.0)
	f.Add(0.0, 179.9999, 0.0, -179.9999)
	f.Add(52.37, 4.90, -52.37, -175.10)
	f.Add(-33.87, 151.21, -33.87, 151.21)
	f.Add(1e-300, -1e-300, -5e-324, 5e-324)
	f.Fuzz(func(t *testing.T, lat1, lon1, lat2, lon2 float64) {
		a, b := Point{lat1, lon1}, Point{lat2, lon2}
		if !a.Valid() || !b.Valid() {
			return
		}
		d := DistanceKm(a, b)
		if math.IsNaN(d) || d < 0 || d > 20016 || d > MaxDistanceKm {
			t.Fatalf("DistanceKm(%v, %v) = %v, out of [0, %v]", a, b, d, MaxDistanceKm)
		}
		if back := DistanceKm(b, a); math.Abs(back-d) > 1e-9*max(1, d) {
			t.Fatalf("not symmetric: %v vs %v", d, back)
		}
		if self := DistanceKm(a, a); self != 0 {
			t.Fatalf("DistanceKm(a, a) = %v", self)
		}
		// Triangle inequality through a third point; haversine loses
		// precision near antipodes (asin near 1), hence the slack.
		c := Point{lat1, lon2}
		if ac, cb := DistanceKm(a, c), DistanceKm(c, b); d > ac+cb+1e-3 {
			t.Fatalf("triangle inequality: d(a,b)=%v > d(a,c)+d(c,b)=%v", d, ac+cb)
		}
	})
}

// fuzzNodes decodes up to 64 nodes, 6 bytes each: latitude and longitude as
// big-endian uint16 scaled to their range, load, and flags (draining, full,
// hosts room, invalid location, duplicate position of the previous node).
func fuzzNodes(data []byte) []Node {
	const size = 6
	var nodes []Node
	for i := 0; len(data) >= size && i < 64; i, data = i+1, data[size:] {
		flags := data[5]
		n := Node{
			ID: fmt.Sprintf("n%02d", i),
			Location: Point{
				Lat: float64(binary.BigEndian.Uint16(data[0:]))/math.MaxUint16*180 - 90,
				Lon: float64(binary.BigEndian.Uint16(data[2:]))/math.MaxUint16*360 - 180,
			},
			Load:      float64(data[4]) / 255,
			Draining:  flags&1 != 0,
			Full:      flags&2 != 0,
			HostsRoom: flags&4 != 0,
		}
		if flags&8 != 0 {
			n.Location.Lat = math.NaN()
		}
		if flags&16 != 0 && i > 0 {
			n.Location = nodes[i-1].Location // exercise exact ties
		}
		nodes = append(nodes, n)
	}
	return nodes
}

// pickReference is a deliberately naive restatement of Pick's rules.
func pickReference(client Point, nodes []Node, opt Options) (Node, bool) {
	type cand struct {
		n Node
		d float64
	}
	var all []cand
	for _, n := range nodes {
		if n.Draining || n.Full {
			continue
		}
		d := math.Inf(1)
		if n.Location.Valid() {
			d = DistanceKm(client, n.Location)
		}
		all = append(all, cand{n, d})
	}
	if len(all) == 0 {
		return Node{}, false
	}
	byDist := func(a, b cand) int { return cmp.Compare(a.d, b.d) }
	best := slices.MinFunc(all, byDist).d
	pool := all
	if opt.RoomAffinity > 0 {
		var rooms []cand
		for _, c := range all {
			if c.n.HostsRoom {
				rooms = append(rooms, c)
			}
		}
		if len(rooms) > 0 {
			bound := math.Inf(1)
			if !math.IsInf(opt.RoomAffinity, 1) {
				bound = best*(1+opt.RoomAffinity) + 50
			}
			if slices.MinFunc(rooms, byDist).d <= bound {
				pool = rooms
			}
		}
	}
	anchor := slices.MinFunc(pool, byDist).d
	var tied []Node
	for _, c := range pool {
		if c.d <= anchor+max(anchor/100, 25) {
			tied = append(tied, c.n)
		}
	}
	return slices.MinFunc(tied, func(a, b Node) int {
		la, lb := a.Load, b.Load
		if math.IsNaN(la) {
			la = math.Inf(1)
		}
		if math.IsNaN(lb) {
			lb = math.Inf(1)
		}
		return cmp.Or(cmp.Compare(la, lb), cmp.Compare(a.ID, b.ID))
	}), true
}

func FuzzPick(f *testing.F) {
	f.Add(10.8, 106.7, 0.2, []byte{
		0xcb, 0xe5, 0x83, 0x7c, 10, 0, // ~eu
		0x82, 0x0e, 0xc9, 0xd3, 50, 4, // ~sgp, hosts room
		0x8f, 0x63, 0xcb, 0xd0, 90, 0, // ~hcm
	})
	f.Add(0.0, 0.0, 0.0, []byte{0x80, 0, 0x80, 0, 0, 0, 0x80, 0, 0x80, 0, 0, 16})
	f.Add(0.0, 0.0, math.Inf(1), []byte{0x80, 0, 0x80, 0, 0, 4, 0, 0, 0, 0, 0, 0})
	f.Add(-90.0, 180.0, math.NaN(), []byte{1, 2, 3, 4, 5, 8, 6, 7, 8, 9, 10, 3})
	f.Add(math.NaN(), 0.0, 0.2, []byte{0, 0, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, lat, lon, affinity float64, data []byte) {
		client := Point{lat, lon}
		nodes := fuzzNodes(data)
		opt := Options{RoomAffinity: affinity}
		got, err := Pick(client, nodes, opt)
		if !client.Valid() {
			if !errors.Is(err, ErrInvalidPoint) {
				t.Fatalf("invalid client %v: error %v", client, err)
			}
			return
		}
		want, ok := pickReference(client, nodes, opt)
		if !ok {
			if !errors.Is(err, ErrNoNode) {
				t.Fatalf("no eligible node: got %+v, %v", got, err)
			}
			return
		}
		if err != nil {
			t.Fatalf("Pick() error = %v", err)
		}
		if got.Draining || got.Full {
			t.Fatalf("Pick() chose ineligible node %+v", got)
		}
		if got.ID != want.ID {
			t.Fatalf("Pick() = %s, reference = %s; %s", got.ID, want.ID, describe(client, nodes))
		}
		if again, _ := Pick(client, reversed(nodes), opt); again.ID != got.ID {
			t.Fatalf("order-dependent: %s vs %s", got.ID, again.ID)
		}
	})
}
