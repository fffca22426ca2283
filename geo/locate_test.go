package geo

import (
	"errors"
	"io/fs"
	"math"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/maxmind/mmdbwriter"
	"github.com/maxmind/mmdbwriter/mmdbtype"
)

// cityLocation returns a GeoLite2-City style record located at lat, lon.
func cityLocation(city string, lat, lon float64) mmdbtype.Map {
	return mmdbtype.Map{
		"city": mmdbtype.Map{"names": mmdbtype.Map{"en": mmdbtype.String(city)}},
		"location": mmdbtype.Map{
			"accuracy_radius": mmdbtype.Uint16(20),
			"latitude":        mmdbtype.Float64(lat),
			"longitude":       mmdbtype.Float64(lon),
		},
	}
}

// writeCityDB builds a small GeoLite2-City layout database in a temporary
// directory and returns its path. The networks are documentation ranges, so
// nothing here resolves to a real place.
func writeCityDB(t testing.TB) string {
	t.Helper()
	tree, err := mmdbwriter.New(mmdbwriter.Options{
		DatabaseType:            "GeoLite2-City",
		IncludeReservedNetworks: true, // the test networks are reserved
		RecordSize:              24,
	})
	if err != nil {
		t.Fatal(err)
	}
	records := map[string]mmdbtype.Map{
		"203.0.113.0/24":  cityLocation("Ho Chi Minh City", 10.82, 106.63),
		"198.51.100.0/24": cityLocation("Amsterdam", 52.37, 4.90),
		"2001:db8:1::/48": cityLocation("Sydney", -33.87, 151.21),
		// A record without a location, as for some anonymous ranges.
		"192.0.2.0/24": {"country": mmdbtype.Map{"iso_code": mmdbtype.String("VN")}},
		// A broken location, which must not be trusted.
		"100.64.0.0/24": cityLocation("Nowhere", 123, 456),
	}
	for cidr, rec := range records {
		_, network, err := net.ParseCIDR(cidr)
		if err != nil {
			t.Fatal(err)
		}
		if err := tree.Insert(network, rec); err != nil {
			t.Fatalf("insert %s: %v", cidr, err)
		}
	}
	path := filepath.Join(t.TempDir(), "city.mmdb")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tree.WriteTo(f); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

func openTestLocator(t testing.TB) *Locator {
	t.Helper()
	l, err := NewLocator(writeCityDB(t))
	if err != nil {
		t.Fatalf("NewLocator: %v", err)
	}
	t.Cleanup(func() {
		if err := l.Close(); err != nil {
			t.Error(err)
		}
	})
	return l
}

func ptr(f float64) *float64 { return &f }

func TestLocate(t *testing.T) {
	t.Parallel()
	withDB := openTestLocator(t)
	noDB, err := NewLocator("")
	if err != nil {
		t.Fatal(err)
	}
	var nilLocator *Locator

	var (
		node      = Point{50.11, 8.68} // the receiving node, in Frankfurt
		hcm       = Point{10.82, 106.63}
		ams       = Point{52.37, 4.90}
		syd       = Point{-33.87, 151.21}
		sgp       = Point{1.35, 103.82}
		hanoi     = Point{21.03, 105.85}
		vietnamIP = netip.MustParseAddr("203.0.113.7")
		dutchIP   = netip.MustParseAddr("198.51.100.1")
	)
	tests := []struct {
		name    string
		l       *Locator
		hint    Hint
		want    Point
		wantSrc Source
	}{
		{"explicit beats everything", withDB, Hint{Lat: ptr(21.03), Lon: ptr(105.85), Region: "sgp", IP: vietnamIP}, hanoi, SourceExplicit},
		{"explicit null island is valid", withDB, Hint{Lat: ptr(0), Lon: ptr(0), IP: vietnamIP}, Point{}, SourceExplicit},
		{"explicit out of range falls to region", withDB, Hint{Lat: ptr(91), Lon: ptr(0), Region: "sgp", IP: vietnamIP}, sgp, SourceRegion},
		{"explicit NaN falls to geoip", withDB, Hint{Lat: ptr(math.NaN()), Lon: ptr(1), IP: vietnamIP}, hcm, SourceGeoIP},
		{"explicit Inf falls to node", withDB, Hint{Lat: ptr(1), Lon: ptr(math.Inf(1))}, node, SourceNode},
		{"only latitude falls to region", withDB, Hint{Lat: ptr(21.03), Region: "SGP"}, sgp, SourceRegion},
		{"only longitude falls to geoip", withDB, Hint{Lon: ptr(105.85), IP: dutchIP}, ams, SourceGeoIP},
		{"region beats geoip", withDB, Hint{Region: "sgp", IP: vietnamIP}, sgp, SourceRegion},
		{"region is case-insensitive and trimmed", withDB, Hint{Region: " SgP "}, sgp, SourceRegion},
		{"unknown region falls to geoip", withDB, Hint{Region: "mars", IP: vietnamIP}, hcm, SourceGeoIP},
		{"unknown region falls to node", withDB, Hint{Region: "mars"}, node, SourceNode},
		{"geoip ipv4", withDB, Hint{IP: vietnamIP}, hcm, SourceGeoIP},
		{"geoip other network", withDB, Hint{IP: dutchIP}, ams, SourceGeoIP},
		{"geoip ipv4-mapped ipv6", withDB, Hint{IP: netip.MustParseAddr("::ffff:203.0.113.200")}, hcm, SourceGeoIP},
		{"geoip ipv6", withDB, Hint{IP: netip.MustParseAddr("2001:db8:1::42")}, syd, SourceGeoIP},
		{"geoip ipv6 with zone", withDB, Hint{IP: netip.MustParseAddr("2001:db8:1::42%eth0")}, syd, SourceGeoIP},
		{"ip not in database", withDB, Hint{IP: netip.MustParseAddr("8.8.8.8")}, node, SourceNode},
		{"ipv6 not in database", withDB, Hint{IP: netip.MustParseAddr("2001:db8:2::1")}, node, SourceNode},
		{"record without location", withDB, Hint{IP: netip.MustParseAddr("192.0.2.1")}, node, SourceNode},
		{"record with invalid location", withDB, Hint{IP: netip.MustParseAddr("100.64.0.1")}, node, SourceNode},
		{"zero ip", withDB, Hint{}, node, SourceNode},
		{"no database: geoip skipped", noDB, Hint{IP: vietnamIP}, node, SourceNode},
		{"no database: region still works", noDB, Hint{Region: "hcm", IP: vietnamIP}, hcm, SourceRegion},
		{"nil locator: explicit works", nilLocator, Hint{Lat: ptr(21.03), Lon: ptr(105.85)}, hanoi, SourceExplicit},
		{"nil locator: geoip skipped", nilLocator, Hint{IP: vietnamIP}, node, SourceNode},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, src := tt.l.Locate(tt.hint, node)
			if src != tt.wantSrc || got != tt.want {
				t.Errorf("Locate() = %v, %q; want %v, %q", got, src, tt.want, tt.wantSrc)
			}
		})
	}
}

func TestLocateFallbackReturnedAsIs(t *testing.T) {
	t.Parallel()
	var l *Locator
	bad := Point{Lat: 1000}
	if got, src := l.Locate(Hint{}, bad); got != bad || src != SourceNode {
		t.Errorf("Locate() = %v, %q; want %v, node", got, src, bad)
	}
}

func TestNewLocatorErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	good, err := os.ReadFile(writeCityDB(t))
	if err != nil {
		t.Fatal(err)
	}
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	tests := []struct {
		name   string
		path   string
		alsoIs error
	}{
		{"missing file", filepath.Join(dir, "missing.mmdb"), fs.ErrNotExist},
		{"garbage", write("garbage.mmdb", []byte("this is not a MaxMind database\n")), nil},
		{"empty", write("empty.mmdb", nil), nil},
		{"truncated", write("truncated.mmdb", good[:len(good)/2]), nil},
		{"directory", dir, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			l, err := NewLocator(tt.path)
			if !errors.Is(err, ErrGeoIP) {
				t.Fatalf("NewLocator(%s) error = %v, want ErrGeoIP", tt.name, err)
			}
			if tt.alsoIs != nil && !errors.Is(err, tt.alsoIs) {
				t.Errorf("error %v does not wrap %v", err, tt.alsoIs)
			}
			if l != nil {
				t.Errorf("NewLocator returned a Locator with an error")
			}
		})
	}
}

func TestLocatorClose(t *testing.T) {
	t.Parallel()
	l, err := NewLocator(writeCityDB(t))
	if err != nil {
		t.Fatal(err)
	}
	hint := Hint{IP: netip.MustParseAddr("203.0.113.7")}
	if _, src := l.Locate(hint, Point{}); src != SourceGeoIP || !l.HasGeoIP() {
		t.Fatalf("before Close: source %q, HasGeoIP %v", src, l.HasGeoIP())
	}
	for i := range 2 {
		if err := l.Close(); err != nil {
			t.Fatalf("Close #%d: %v", i+1, err)
		}
	}
	if _, src := l.Locate(hint, Point{}); src != SourceNode || l.HasGeoIP() {
		t.Fatalf("after Close: source %q, HasGeoIP %v", src, l.HasGeoIP())
	}
	var nilLocator *Locator
	if err := nilLocator.Close(); err != nil || nilLocator.HasGeoIP() {
		t.Fatalf("nil Locator: Close %v, HasGeoIP %v", err, nilLocator.HasGeoIP())
	}
	noDB, _ := NewLocator("")
	if err := noDB.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestLocatorConcurrentClose runs lookups while the database is closed; with
// -race it checks that Close waits for in-flight lookups.
func TestLocatorConcurrentClose(t *testing.T) {
	t.Parallel()
	l, err := NewLocator(writeCityDB(t))
	if err != nil {
		t.Fatal(err)
	}
	hint := Hint{IP: netip.MustParseAddr("203.0.113.7")}
	want := Point{10.82, 106.63}
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 500 {
				p, src := l.Locate(hint, Point{})
				if src == SourceGeoIP && p != want {
					t.Errorf("Locate() = %v during Close", p)
					return
				}
			}
		})
	}
	wg.Go(func() {
		if err := l.Close(); err != nil {
			t.Error(err)
		}
	})
	wg.Wait()
}
