package geo

import (
	"fmt"
	"math"
)

// EarthRadiusKm is the mean Earth radius (IUGG R1) used by DistanceKm.
const EarthRadiusKm = 6371.0088

// MaxDistanceKm is the largest distance DistanceKm returns: half the
// circumference of the sphere it models (antipodal points).
const MaxDistanceKm = math.Pi * EarthRadiusKm

// Point is a position in decimal degrees (WGS 84). The zero value is the
// point 0°N 0°E, which is valid; use a pointer or a flag to mean "unknown".
type Point struct {
	Lat, Lon float64
}

// Valid reports whether p is a finite position with latitude in [-90, 90]
// and longitude in [-180, 180].
func (p Point) Valid() bool {
	// NaN fails every comparison and ±Inf falls outside the ranges, so the
	// range checks alone reject non-finite values.
	return p.Lat >= -90 && p.Lat <= 90 && p.Lon >= -180 && p.Lon <= 180
}

// String formats p as "lat,lon" with 4 decimals (about 11 m).
func (p Point) String() string {
	return fmt.Sprintf("%.4f,%.4f", p.Lat, p.Lon)
}

// DistanceKm returns the great-circle distance between a and b in kilometres,
// using the haversine formula on a sphere of radius EarthRadiusKm. The error
// against the WGS 84 ellipsoid is below 0.5 %, far smaller than what network
// latency can resolve. For valid points the result is in [0, MaxDistanceKm];
// for invalid points it is unspecified (possibly NaN).
func DistanceKm(a, b Point) float64 {
	const rad = math.Pi / 180
	sinLat := math.Sin((b.Lat - a.Lat) * rad / 2)
	sinLon := math.Sin((b.Lon - a.Lon) * rad / 2)
	h := sinLat*sinLat + math.Cos(a.Lat*rad)*math.Cos(b.Lat*rad)*sinLon*sinLon
	// Rounding can push h a hair outside [0, 1] near antipodes; asin of a
	// value above 1 would be NaN.
	h = min(max(h, 0), 1)
	return 2 * EarthRadiusKm * math.Asin(math.Sqrt(h))
}
