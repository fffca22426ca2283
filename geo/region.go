package geo

import "strings"

// Region is a named deployment area and the city that stands for it.
type Region struct {
	Name string // short lowercase code, e.g. "sgp"
	City string
	Lat  float64
	Lon  float64
}

// Point returns the region's representative location.
func (r Region) Point() Point {
	return Point{Lat: r.Lat, Lon: r.Lon}
}

// regionTable is the fixed list of known regions. It is an array value built
// on each call, so there is no shared state to mutate and no allocation.
func regionTable() [14]Region {
	return [...]Region{
		{Name: "eu", City: "Amsterdam", Lat: 52.37, Lon: 4.90},
		{Name: "fra", City: "Frankfurt", Lat: 50.11, Lon: 8.68},
		{Name: "lon", City: "London", Lat: 51.51, Lon: -0.13},
		{Name: "sgp", City: "Singapore", Lat: 1.35, Lon: 103.82},
		{Name: "hcm", City: "Ho Chi Minh City", Lat: 10.82, Lon: 106.63},
		{Name: "han", City: "Hanoi", Lat: 21.03, Lon: 105.85},
		{Name: "hkg", City: "Hong Kong", Lat: 22.32, Lon: 114.17},
		{Name: "tyo", City: "Tokyo", Lat: 35.68, Lon: 139.69},
		{Name: "syd", City: "Sydney", Lat: -33.87, Lon: 151.21},
		{Name: "use", City: "Ashburn", Lat: 39.04, Lon: -77.49},
		{Name: "usw", City: "San Francisco", Lat: 37.77, Lon: -122.42},
		{Name: "sao", City: "São Paulo", Lat: -23.55, Lon: -46.63},
		{Name: "bom", City: "Mumbai", Lat: 19.08, Lon: 72.88},
		{Name: "jnb", City: "Johannesburg", Lat: -26.20, Lon: 28.05},
	}
}

// Regions returns every known region, in a fixed order. The slice is freshly
// allocated on each call; callers may modify it.
func Regions() []Region {
	t := regionTable()
	return append([]Region(nil), t[:]...)
}

// LookupRegion returns the region called name, ignoring case and surrounding
// white space. It reports false for an unknown or empty name.
func LookupRegion(name string) (Region, bool) {
	name = strings.TrimSpace(name)
	for _, r := range regionTable() {
		if strings.EqualFold(r.Name, name) {
			return r, true
		}
	}
	return Region{}, false
}
