package geo

import (
	"fmt"
	"net/netip"
	"sync"

	"github.com/oschwald/maxminddb-golang/v2"
)

// Source says which method produced a client location.
type Source string

// Sources, in Locate's order of preference.
const (
	SourceExplicit Source = "explicit" // Hint.Lat and Hint.Lon sent by the client
	SourceRegion   Source = "region"   // Hint.Region, a code known to LookupRegion
	SourceGeoIP    Source = "geoip"    // Hint.IP found in the GeoIP database
	SourceNode     Source = "node"     // the fallback: the receiving node's location
)

// Hint is what a join request tells about where the client is. Every field is
// optional.
type Hint struct {
	Lat, Lon *float64   // both must be set and form a valid Point to be used
	Region   string     // region code, see LookupRegion
	IP       netip.Addr // client address as seen by the signalling server
}

// Locator turns a Hint into a Point. It optionally holds a GeoIP database.
// A Locator is safe for concurrent use, and Close may race with Locate: after
// Close, lookups simply skip GeoIP. A nil *Locator works like one without a
// database.
type Locator struct {
	mu sync.RWMutex      // guards db: Close must not unmap it under a lookup
	db *maxminddb.Reader // nil without a database or after Close
}

// NewLocator returns a Locator. An empty geoipPath means no GeoIP database;
// otherwise the file is opened as a MaxMind DB in the GeoIP2/GeoLite2-City
// layout (records with location.latitude and location.longitude). Errors wrap
// ErrGeoIP.
func NewLocator(geoipPath string) (*Locator, error) {
	if geoipPath == "" {
		return &Locator{}, nil
	}
	db, err := maxminddb.Open(geoipPath)
	if err != nil {
		return nil, fmt.Errorf("%w: open %s: %w", ErrGeoIP, geoipPath, err)
	}
	return &Locator{db: db}, nil
}

// HasGeoIP reports whether l has an open GeoIP database.
func (l *Locator) HasGeoIP() bool {
	if l == nil {
		return false
	}
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.db != nil
}

// Locate returns the best-known location of a client and how it was found,
// trying in order: explicit coordinates, region hint, GeoIP, and finally
// fallback (the location of the node that received the request). Each step
// that is absent or unusable (invalid coordinates, unknown region, IP not in
// the database or without a location) falls through to the next. Locate
// never fails: fallback is returned as is, valid or not.
func (l *Locator) Locate(h Hint, fallback Point) (Point, Source) {
	if h.Lat != nil && h.Lon != nil {
		if p := (Point{Lat: *h.Lat, Lon: *h.Lon}); p.Valid() {
			return p, SourceExplicit
		}
	}
	if h.Region != "" {
		if r, ok := LookupRegion(h.Region); ok {
			return r.Point(), SourceRegion
		}
	}
	if p, ok := l.lookupIP(h.IP); ok {
		return p, SourceGeoIP
	}
	return fallback, SourceNode
}

// cityRecord is the part of a GeoIP2/GeoLite2-City record Locate needs.
// Pointers tell a missing location from one at 0°N 0°E.
type cityRecord struct {
	Location struct {
		Latitude  *float64 `maxminddb:"latitude"`
		Longitude *float64 `maxminddb:"longitude"`
	} `maxminddb:"location"`
}

// lookupIP returns the location of ip in the GeoIP database, if any. Lookup
// errors (corrupt records, an IPv6 address in an IPv4 database) count as not
// found: the caller has better sources to fall back on.
func (l *Locator) lookupIP(ip netip.Addr) (Point, bool) {
	if l == nil || !ip.IsValid() {
		return Point{}, false
	}
	ip = ip.Unmap().WithZone("")

	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.db == nil {
		return Point{}, false
	}
	res := l.db.Lookup(ip)
	if !res.Found() {
		return Point{}, false
	}
	var rec cityRecord
	if err := res.Decode(&rec); err != nil {
		return Point{}, false
	}
	loc := rec.Location
	if loc.Latitude == nil || loc.Longitude == nil {
		return Point{}, false
	}
	p := Point{Lat: *loc.Latitude, Lon: *loc.Longitude}
	return p, p.Valid()
}

// Close releases the GeoIP database. It is safe to call more than once and
// on a nil Locator; later Locate calls skip GeoIP.
func (l *Locator) Close() error {
	if l == nil {
		return nil
	}
	l.mu.Lock()
	db := l.db
	l.db = nil
	l.mu.Unlock()
	if db == nil {
		return nil
	}
	if err := db.Close(); err != nil {
		return fmt.Errorf("%w: close: %w", ErrGeoIP, err)
	}
	return nil
}
