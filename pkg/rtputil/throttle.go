package rtputil

import (
	"math"
	"sync/atomic"
	"time"
)

// never marks a KeyframeThrottle that has not allowed anything yet.
const never = math.MinInt64

// KeyframeThrottle collapses keyframe requests (PLI/FIR) from many
// subscribers into at most one upstream request per interval. It is
// lock-free and safe for any number of concurrent callers. Create it with
// NewKeyframeThrottle.
type KeyframeThrottle struct {
	// origin is what times are measured from. It carries a monotonic clock
	// reading, so wall clock steps do not disturb times from time.Now; times
	// without one (a fake clock) are compared by wall time.
	origin     time.Time
	interval   int64        // ns
	last       atomic.Int64 // offset from origin of the last allowed request, or never
	suppressed atomic.Uint64
}

// NewKeyframeThrottle returns a throttle that allows one request per
// minInterval; a minInterval of 0 or less allows every request.
func NewKeyframeThrottle(minInterval time.Duration) *KeyframeThrottle {
	t := &KeyframeThrottle{origin: time.Now(), interval: int64(minInterval)}
	t.last.Store(never)
	return t
}

// Allow reports whether a keyframe request at now should go upstream: true
// for the first request, then for the first request at least an interval
// after the last one allowed. Requests at or before the last allowed one are
// refused. Concurrent callers race with one compare-and-swap and at most one
// wins per interval.
func (t *KeyframeThrottle) Allow(now time.Time) bool { return t.allow(now, t.interval) }

// AllowEvery is Allow with another least interval, for a request that must not wait the
// throttle's whole interval (a subscriber whose transport just came up and has had no
// keyframe yet); it shares the throttle's record of the last allowed request.
func (t *KeyframeThrottle) AllowEvery(now time.Time, minInterval time.Duration) bool {
	return t.allow(now, int64(minInterval))
}

func (t *KeyframeThrottle) allow(now time.Time, interval int64) bool {
	n := max(int64(now.Sub(t.origin)), never+1)
	for {
		last := t.last.Load()
		if last != never && n-last < interval {
			t.suppressed.Add(1)
			return false
		}
		if t.last.CompareAndSwap(last, n) {
			return true
		}
	}
}

// Reset makes the next Allow return true, e.g. after the upstream track
// changed.
func (t *KeyframeThrottle) Reset() { t.last.Store(never) }

// Suppressed returns how many requests Allow has refused.
func (t *KeyframeThrottle) Suppressed() uint64 { return t.suppressed.Load() }

// Interval returns the minimum interval between allowed requests.
func (t *KeyframeThrottle) Interval() time.Duration { return time.Duration(t.interval) }
