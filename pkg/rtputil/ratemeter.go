package rtputil

import (
	"sync"
	"time"
)

// Rate meter defaults, used when NewRateMeter is given values below 1.
const (
	DefaultRateWindow  = time.Second
	DefaultRateBuckets = 10
)

// RateMeter measures a bit rate over a sliding window split into buckets.
// Time comes only from the callers (now), so tests can drive it with a fake
// clock; only differences between the times passed are used, and the
// monotonic clock reading of time.Now values is honoured.
//
// The rate covers the window up to now: the full buckets before the current
// one plus the elapsed part of the current one (less if the first Add was
// more recent). Add and Rate never allocate.
//
// A RateMeter is safe for one writer (Add) and any number of concurrent
// readers (Rate).
type RateMeter struct {
	width int64 // bucket width, ns

	mu      sync.Mutex // guards the fields below
	start   time.Time  // time of the first Add
	started bool
	newest  int64    // highest bucket number written
	number  []int64  // bucket number held by each slot
	bytes   []uint64 // bytes counted in each slot
}

// NewRateMeter returns a meter over window split into buckets buckets. A
// window or buckets below 1 selects DefaultRateWindow or DefaultRateBuckets;
// otherwise buckets is raised to at least 2 (one bucket would be a tumbling
// window, not a sliding one) and capped so that each is at least 1 ns.
func NewRateMeter(window time.Duration, buckets int) *RateMeter {
	if window < 1 {
		window = DefaultRateWindow
	}
	if buckets < 1 {
		buckets = DefaultRateBuckets
	}
	buckets = int(min(max(int64(buckets), 2), int64(window)))
	return &RateMeter{
		width:  int64(window) / int64(buckets),
		number: make([]int64, buckets),
		bytes:  make([]uint64, buckets),
	}
}

// Window returns the span the meter averages over.
func (m *RateMeter) Window() time.Duration {
	return time.Duration(m.width * int64(len(m.number)))
}

// Add counts n bytes seen at now. Non-positive n and times more than a
// window older than the newest Add are ignored.
func (m *RateMeter) Add(now time.Time, n int) {
	if n <= 0 {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.started {
		m.start, m.started = now, true
	}
	b := m.offset(now) / m.width
	if b <= m.newest-int64(len(m.number)) {
		return
	}
	i := b % int64(len(m.number))
	if m.number[i] != b {
		m.number[i], m.bytes[i] = b, 0
	}
	m.bytes[i] += uint64(n)
	m.newest = max(m.newest, b)
}

// Rate returns the bit rate in bits per second over the window ending at
// now, or 0 before the first Add.
func (m *RateMeter) Rate(now time.Time) uint64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.started {
		return 0
	}
	off := m.offset(now)
	cur := max(off/m.width, m.newest)
	var sum uint64
	for i, b := range m.number {
		if b > cur-int64(len(m.number)) && b <= cur {
			sum += m.bytes[i]
		}
	}
	if sum == 0 {
		return 0
	}
	inCur := min(max(off-cur*m.width, 0), m.width)
	span := int64(len(m.number)-1)*m.width + inCur
	span = max(min(span, off), m.width)
	return uint64(float64(sum) * 8 * float64(time.Second) / float64(span))
}

// offset returns the time since the first Add in ns, never negative.
func (m *RateMeter) offset(now time.Time) int64 {
	return max(int64(now.Sub(m.start)), 0)
}
