package rtputil

import (
	"sync"
	"testing"
	"time"
)

// fakeClock is a manually advanced clock; it has no monotonic reading, as
// the meter must not need one.
type fakeClock struct{ now time.Time }

func newFakeClock() *fakeClock { return &fakeClock{now: time.Unix(1_700_000_000, 0)} }

func (c *fakeClock) advance(d time.Duration) time.Time { c.now = c.now.Add(d); return c.now }

// feed adds size bytes every interval for d, starting one interval from now.
func feed(m *RateMeter, c *fakeClock, size int, every, d time.Duration) {
	for range int(d / every) {
		m.Add(c.advance(every), size)
	}
}

func within(got, want uint64, tolerance float64) bool {
	diff := float64(got) - float64(want)
	return diff <= tolerance*float64(want) && -diff <= tolerance*float64(want)
}

func TestRateMeterSteady(t *testing.T) {
	tests := []struct {
		name     string
		window   time.Duration
		buckets  int
		size     int
		every    time.Duration
		wantRate uint64
	}{
		{"1 Mbps, 1s/10", time.Second, 10, 1250, 10 * time.Millisecond, 1_000_000},
		{"2.5 Mbps, 500ms/5", 500 * time.Millisecond, 5, 1200, 3840 * time.Microsecond, 2_500_000},
		{"32 kbps audio, 1s/10", time.Second, 10, 80, 20 * time.Millisecond, 32_000},
		{"one bucket means two", time.Second, 1, 1000, time.Millisecond, 8_000_000},
		{"many buckets", time.Second, 100, 1000, time.Millisecond, 8_000_000},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := newFakeClock()
			m := NewRateMeter(tc.window, tc.buckets)
			m.Add(c.now, tc.size)
			feed(m, c, tc.size, tc.every, 3*time.Second)
			// Sample at various phases within a bucket.
			for _, step := range []time.Duration{0, tc.every / 3, tc.every / 2} {
				c.advance(step)
				got := m.Rate(c.now)
				if !within(got, tc.wantRate, 0.03) {
					t.Errorf("after +%v: Rate = %d, want about %d", step, got, tc.wantRate)
				}
				feed(m, c, tc.size, tc.every, tc.every)
			}
		})
	}
}

func TestRateMeterTransitions(t *testing.T) {
	c := newFakeClock()
	m := NewRateMeter(time.Second, 10)
	if r := m.Rate(c.now); r != 0 {
		t.Fatalf("Rate before any Add = %d, want 0", r)
	}

	// Startup: 100 ms of 1 Mbps reads as 1 Mbps, not a tenth of it.
	m.Add(c.now, 1250)
	feed(m, c, 1250, 10*time.Millisecond, 100*time.Millisecond)
	if r := m.Rate(c.now); !within(r, 1_000_000, 0.15) {
		t.Errorf("Rate after 100 ms = %d, want about 1 Mbps", r)
	}

	// Step up to 2 Mbps: after a full window only the new rate remains.
	feed(m, c, 1250, 10*time.Millisecond, 2*time.Second)
	feed(m, c, 2500, 10*time.Millisecond, 1100*time.Millisecond)
	if r := m.Rate(c.now); !within(r, 2_000_000, 0.03) {
		t.Errorf("Rate after step to 2 Mbps = %d", r)
	}

	// Half a window of silence halves the rate; a full window zeroes it.
	c.advance(500 * time.Millisecond)
	if r := m.Rate(c.now); !within(r, 1_000_000, 0.12) {
		t.Errorf("Rate after 500 ms of silence = %d, want about 1 Mbps", r)
	}
	c.advance(600 * time.Millisecond)
	if r := m.Rate(c.now); r != 0 {
		t.Errorf("Rate after a silent window = %d, want 0", r)
	}

	// A reader whose clock is slightly behind the writer still sees the
	// newest bytes.
	m.Add(c.now, 10_000)
	if r := m.Rate(c.now.Add(-50 * time.Millisecond)); r == 0 {
		t.Error("Rate with a slightly older clock lost the newest bucket")
	}

	// Adds more than a window in the past and non-positive sizes are ignored.
	before := m.Rate(c.now)
	m.Add(c.now.Add(-5*time.Second), 1_000_000)
	m.Add(c.now, 0)
	m.Add(c.now, -100)
	if r := m.Rate(c.now); r != before {
		t.Errorf("ignored Adds changed the rate from %d to %d", before, r)
	}
}

func TestRateMeterDefaults(t *testing.T) {
	for _, tc := range []struct {
		window  time.Duration
		buckets int
		want    time.Duration
	}{
		{0, 0, DefaultRateWindow},
		{-time.Second, 5, DefaultRateWindow},
		{2 * time.Second, 0, 2 * time.Second},
		{5, 10, 5}, // 5 buckets of 1 ns
	} {
		if got := NewRateMeter(tc.window, tc.buckets).Window(); got != tc.want {
			t.Errorf("NewRateMeter(%v, %d).Window() = %v, want %v", tc.window, tc.buckets, got, tc.want)
		}
	}
}

func TestRateMeterConcurrent(t *testing.T) {
	m := NewRateMeter(time.Second, 10)
	start := time.Unix(1_700_000_000, 0)
	var wg sync.WaitGroup
	for range 3 {
		wg.Go(func() {
			for i := range 5000 {
				_ = m.Rate(start.Add(time.Duration(i) * time.Millisecond))
			}
		})
	}
	for i := range 5000 {
		m.Add(start.Add(time.Duration(i)*time.Millisecond), 125)
	}
	wg.Wait()
	if r := m.Rate(start.Add(5 * time.Second)); !within(r, 1_000_000, 0.03) {
		t.Errorf("Rate = %d, want about 1 Mbps", r)
	}
}
