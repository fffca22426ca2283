package rtputil

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestKeyframeThrottle(t *testing.T) {
	base := time.Unix(0, 0) // the Unix epoch must not look like "never"
	at := func(ms int) time.Time { return base.Add(time.Duration(ms) * time.Millisecond) }
	tests := []struct {
		name     string
		interval time.Duration
		calls    []int // ms
		want     []bool
	}{
		{"first request passes", time.Second, []int{0}, []bool{true}},
		{"burst collapses", time.Second, []int{0, 0, 1, 500, 999}, []bool{true, false, false, false, false}},
		{"one per interval", time.Second, []int{0, 1000, 1500, 2000, 2999, 3000}, []bool{true, true, false, true, false, true}},
		{"interval counts from the last allowed", time.Second, []int{0, 900, 1100, 1900, 2100}, []bool{true, false, true, false, true}},
		{"slightly older caller refused", time.Second, []int{1000, 990}, []bool{true, false}},
		{"older requests refused", time.Second, []int{10_000, 5_000, 9_500, 11_000}, []bool{true, false, false, true}},
		{"zero interval allows all", 0, []int{0, 0, 0}, []bool{true, true, true}},
		{"negative interval allows all", -time.Second, []int{5, 0, 3}, []bool{true, true, true}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			th := NewKeyframeThrottle(tc.interval)
			refused := 0
			for i, ms := range tc.calls {
				got := th.Allow(at(ms))
				if got != tc.want[i] {
					t.Errorf("call %d at %d ms: Allow = %v, want %v", i, ms, got, tc.want[i])
				}
				if !got {
					refused++
				}
			}
			if th.Suppressed() != uint64(refused) {
				t.Errorf("Suppressed = %d, want %d", th.Suppressed(), refused)
			}
		})
	}
}

func TestKeyframeThrottleReset(t *testing.T) {
	th := NewKeyframeThrottle(time.Second)
	now := time.Unix(100, 0)
	if !th.Allow(now) || th.Allow(now) {
		t.Fatal("first Allow must pass and second must not")
	}
	th.Reset()
	if !th.Allow(now) {
		t.Error("Allow after Reset refused")
	}
	if th.Interval() != time.Second {
		t.Errorf("Interval = %v", th.Interval())
	}
}

// TestKeyframeThrottleConcurrent: many subscribers asking at once produce
// exactly one upstream request per interval.
func TestKeyframeThrottleConcurrent(t *testing.T) {
	th := NewKeyframeThrottle(time.Second)
	start := time.Unix(1_700_000_000, 0)
	const rounds = 5
	var allowed [rounds]atomic.Int32
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for r := range rounds {
				now := start.Add(time.Duration(r) * 1500 * time.Millisecond)
				for range 200 {
					if th.Allow(now) {
						allowed[r].Add(1)
					}
				}
			}
		})
	}
	wg.Wait()
	// Every round is an interval after the previous one, and its first
	// request is newer than any earlier round's, so each round allows
	// exactly one.
	for r := range rounds {
		if n := allowed[r].Load(); n != 1 {
			t.Errorf("round %d allowed %d requests, want 1", r, n)
		}
	}
	if got, want := th.Suppressed(), uint64(8*200*rounds-rounds); got != want {
		t.Errorf("Suppressed = %d, want %d", got, want)
	}
}

// AllowEvery lets one request through a shorter interval, and counts as the last allowed
// request for Allow.
func TestKeyframeThrottleAllowEvery(t *testing.T) {
	base := time.Unix(0, 0)
	at := func(ms int) time.Time { return base.Add(time.Duration(ms) * time.Millisecond) }
	th := NewKeyframeThrottle(time.Second)
	steps := []struct {
		ms    int
		every time.Duration // 0: Allow
		want  bool
	}{
		{0, 0, true},
		{50, 100 * time.Millisecond, false},
		{150, 100 * time.Millisecond, true},
		{200, 100 * time.Millisecond, false},
		{1000, 0, false}, // 850 ms after the last allowed one
		{1150, 0, true},
	}
	for _, s := range steps {
		var got bool
		if s.every == 0 {
			got = th.Allow(at(s.ms))
		} else {
			got = th.AllowEvery(at(s.ms), s.every)
		}
		if got != s.want {
			t.Errorf("at %d ms (every %v): %v, want %v", s.ms, s.every, got, s.want)
		}
	}
}
