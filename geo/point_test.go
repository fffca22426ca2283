package geo

import (
	"math"
	"testing"
)

func TestPointValid(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		p    Point
		want bool
	}{
		{"null island", Point{0, 0}, true},
		{"north pole", Point{90, 0}, true},
		{"south pole", Point{-90, 0}, true},
		{"antimeridian east", Point{0, 180}, true},
		{"antimeridian west", Point{0, -180}, true},
		{"amsterdam", Point{52.37, 4.90}, true},
		{"lat too high", Point{90.0001, 0}, false},
		{"lat too low", Point{-90.0001, 0}, false},
		{"lon too high", Point{0, 180.0001}, false},
		{"lon too low", Point{0, -180.0001}, false},
		{"lat NaN", Point{math.NaN(), 0}, false},
		{"lon NaN", Point{0, math.NaN()}, false},
		{"lat +Inf", Point{math.Inf(1), 0}, false},
		{"lon -Inf", Point{0, math.Inf(-1)}, false},
		{"swapped lat/lon", Point{106.63, 10.82}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := tt.p.Valid(); got != tt.want {
				t.Errorf("%v.Valid() = %v, want %v", tt.p, got, tt.want)
			}
		})
	}
}

func TestDistanceKmKnown(t *testing.T) {
	t.Parallel()
	// Reference values are published great-circle distances; 1 % covers the
	// spherical model and rounding of the city coordinates.
	tests := []struct {
		name string
		a, b Point
		want float64 // km
		tol  float64 // relative
	}{
		{"amsterdam-singapore", Point{52.37, 4.90}, Point{1.35, 103.82}, 10500, 0.01},
		{"london-new york", Point{51.5074, -0.1278}, Point{40.7128, -74.0060}, 5570, 0.01},
		{"london-paris", Point{51.5074, -0.1278}, Point{48.8566, 2.3522}, 344, 0.01},
		{"hanoi-ho chi minh city", Point{21.03, 105.85}, Point{10.82, 106.63}, 1137, 0.01},
		{"sydney-london", Point{-33.87, 151.21}, Point{51.51, -0.13}, 16990, 0.01},
		{"tokyo-san francisco (antimeridian)", Point{35.68, 139.69}, Point{37.77, -122.42}, 8270, 0.01},
		{"johannesburg-sao paulo", Point{-26.20, 28.05}, Point{-23.55, -46.63}, 7450, 0.01},
		// Exact spherical values.
		{"one degree on the equator", Point{0, 0}, Point{0, 1}, EarthRadiusKm * math.Pi / 180, 1e-12},
		{"one degree across antimeridian", Point{0, 179.5}, Point{0, -179.5}, EarthRadiusKm * math.Pi / 180, 1e-9},
		{"equator to pole", Point{0, 42}, Point{90, 0}, MaxDistanceKm / 2, 1e-12},
		{"antipodes on equator", Point{0, 0}, Point{0, 180}, MaxDistanceKm, 1e-12},
		{"antipodes pole to pole", Point{90, 0}, Point{-90, 0}, MaxDistanceKm, 1e-12},
		{"antipodes amsterdam", Point{52.37, 4.90}, Point{-52.37, -175.10}, MaxDistanceKm, 1e-9},
		{"longitude irrelevant at the pole", Point{90, 0}, Point{90, 123}, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := DistanceKm(tt.a, tt.b)
			if math.Abs(got-tt.want) > tt.tol*tt.want+1e-9 {
				t.Errorf("DistanceKm(%v, %v) = %.3f km, want %.3f ±%g%%", tt.a, tt.b, got, tt.want, tt.tol*100)
			}
			if back := DistanceKm(tt.b, tt.a); back != got {
				t.Errorf("not symmetric: %.12f vs %.12f", got, back)
			}
		})
	}
}

func TestDistanceKmZero(t *testing.T) {
	t.Parallel()
	for _, r := range Regions() {
		if d := DistanceKm(r.Point(), r.Point()); d != 0 {
			t.Errorf("DistanceKm(%s, %s) = %g, want 0", r.Name, r.Name, d)
		}
	}
}

func TestDistanceKmRegionsSymmetricAndBounded(t *testing.T) {
	t.Parallel()
	regions := Regions()
	for _, a := range regions {
		for _, b := range regions {
			ab, ba := DistanceKm(a.Point(), b.Point()), DistanceKm(b.Point(), a.Point())
			if ab != ba {
				t.Errorf("%s-%s: %g != %g", a.Name, b.Name, ab, ba)
			}
			if ab < 0 || ab > MaxDistanceKm || (a.Name != b.Name && ab == 0) {
				t.Errorf("%s-%s: %g out of range", a.Name, b.Name, ab)
			}
		}
	}
}

func TestPointString(t *testing.T) {
	t.Parallel()
	if got, want := (Point{10.82, -106.63}).String(), "10.8200,-106.6300"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
}
