package geo

import (
	"fmt"
	"net/netip"
	"testing"
)

// benchNodes returns n nodes spread over the region table, with varied load
// and a few draining, full and room-hosting nodes.
func benchNodes(n int) []Node {
	regions := Regions()
	nodes := make([]Node, n)
	for i := range nodes {
		r := regions[i%len(regions)]
		nodes[i] = Node{
			ID:        fmt.Sprintf("%s-%d", r.Name, i),
			Region:    r.Name,
			Location:  Point{r.Lat + float64(i%5)*0.01, r.Lon},
			Load:      float64(i%10) / 10,
			Draining:  i%17 == 0,
			Full:      i%19 == 0,
			HostsRoom: i%7 == 0,
		}
	}
	return nodes
}

func BenchmarkPick(b *testing.B) {
	for _, n := range []int{50, 500} {
		b.Run(fmt.Sprintf("nodes=%d", n), func(b *testing.B) {
			nodes := benchNodes(n)
			client := Point{21.03, 105.85}
			opt := DefaultOptions()
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Pick(client, nodes, opt); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkDistance(b *testing.B) {
	a, c := Point{52.37, 4.90}, Point{1.35, 103.82}
	b.ReportAllocs()
	var sink float64
	for b.Loop() {
		sink += DistanceKm(a, c)
	}
	_ = sink
}

func BenchmarkLookupRegion(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := LookupRegion("JNB"); !ok {
			b.Fatal("jnb not found")
		}
	}
}

func BenchmarkLocateGeoIP(b *testing.B) {
	l := openTestLocator(b)
	hint := Hint{IP: netip.MustParseAddr("203.0.113.7")}
	b.ReportAllocs()
	for b.Loop() {
		if _, src := l.Locate(hint, Point{}); src != SourceGeoIP {
			b.Fatalf("source %q", src)
		}
	}
}
