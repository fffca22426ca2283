package geo

import (
	"math"
	"testing"
)

func TestRegionsTable(t *testing.T) {
	t.Parallel()
	want := []Region{
		{"eu", "Amsterdam", 52.37, 4.90},
		{"fra", "Frankfurt", 50.11, 8.68},
		{"lon", "London", 51.51, -0.13},
		{"sgp", "Singapore", 1.35, 103.82},
		{"hcm", "Ho Chi Minh City", 10.82, 106.63},
		{"han", "Hanoi", 21.03, 105.85},
		{"hkg", "Hong Kong", 22.32, 114.17},
		{"tyo", "Tokyo", 35.68, 139.69},
		{"syd", "Sydney", -33.87, 151.21},
		{"use", "Ashburn", 39.04, -77.49},
		{"usw", "San Francisco", 37.77, -122.42},
		{"sao", "São Paulo", -23.55, -46.63},
		{"bom", "Mumbai", 19.08, 72.88},
		{"jnb", "Johannesburg", -26.20, 28.05},
	}
	got := make(map[string]Region)
	for _, r := range Regions() {
		if _, dup := got[r.Name]; dup {
			t.Errorf("duplicate region %q", r.Name)
		}
		if !r.Point().Valid() {
			t.Errorf("region %q has invalid location %v", r.Name, r.Point())
		}
		got[r.Name] = r
	}
	for _, w := range want {
		if g, ok := got[w.Name]; !ok {
			t.Errorf("missing region %q", w.Name)
		} else if g != w {
			t.Errorf("region %q = %+v, want %+v", w.Name, g, w)
		}
	}
}

func TestRegionsFreshSlice(t *testing.T) {
	t.Parallel()
	a := Regions()
	a[0].Name, a[0].Lat = "mutated", math.NaN()
	b := Regions()
	if b[0].Name == "mutated" || math.IsNaN(b[0].Lat) {
		t.Fatal("Regions returned shared backing storage")
	}
	if _, ok := LookupRegion("mutated"); ok {
		t.Fatal("mutating Regions' result changed LookupRegion")
	}
}

func TestLookupRegion(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in       string
		wantName string
		wantCity string
		ok       bool
	}{
		{"eu", "eu", "Amsterdam", true},
		{"SGP", "sgp", "Singapore", true},
		{"Hcm", "hcm", "Ho Chi Minh City", true},
		{"  han\t", "han", "Hanoi", true},
		{"sao", "sao", "São Paulo", true},
		{"", "", "", false},
		{"mars", "", "", false},
		{"sg", "", "", false},
		{"sgpp", "", "", false},
		{"Singapore", "", "", false}, // city names are not codes
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			t.Parallel()
			r, ok := LookupRegion(tt.in)
			if ok != tt.ok || r.Name != tt.wantName || r.City != tt.wantCity {
				t.Errorf("LookupRegion(%q) = %+v, %v; want %q/%q, %v", tt.in, r, ok, tt.wantName, tt.wantCity, tt.ok)
			}
		})
	}
}

func TestLookupRegionEveryRegion(t *testing.T) {
	t.Parallel()
	for _, want := range Regions() {
		if got, ok := LookupRegion(want.Name); !ok || got != want {
			t.Errorf("LookupRegion(%q) = %+v, %v", want.Name, got, ok)
		}
	}
}
