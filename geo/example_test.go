package geo_test

import (
	"fmt"
	"net/netip"

	"github.com/cascade-sfu/cascade/geo"
)

func ExamplePick() {
	node := func(region string, load float64) geo.Node {
		r, _ := geo.LookupRegion(region)
		return geo.Node{ID: region + "-1", Region: region, Location: r.Point(), Load: load}
	}
	nodes := []geo.Node{node("eu", 0.1), node("sgp", 0.3), node("hcm", 0.8)}

	saigon := geo.Point{Lat: 10.8, Lon: 106.7}
	n, _ := geo.Pick(saigon, nodes, geo.DefaultOptions())
	fmt.Println(n.ID)

	nodes[2].Draining = true
	n, _ = geo.Pick(saigon, nodes, geo.DefaultOptions())
	fmt.Println(n.ID)
	// Output:
	// hcm-1
	// sgp-1
}

func ExampleLocator_Locate() {
	l, err := geo.NewLocator("") // no GeoIP database
	if err != nil {
		panic(err)
	}
	defer l.Close()

	receivedBy := geo.Point{Lat: 52.37, Lon: 4.90} // this node, in Amsterdam
	ip := netip.MustParseAddr("203.0.113.7")

	p, src := l.Locate(geo.Hint{Region: "hcm", IP: ip}, receivedBy)
	fmt.Println(p, src)

	p, src = l.Locate(geo.Hint{IP: ip}, receivedBy)
	fmt.Println(p, src)
	// Output:
	// 10.8200,106.6300 region
	// 52.3700,4.9000 node
}
