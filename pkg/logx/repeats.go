// Package logx holds small helpers for log/slog shared by the packages that route a
// library's own logging into the node's log.
package logx

import (
	"sync"
	"time"
)

// MaxPatterns bounds the patterns a Repeats remembers; the others share one entry.
const MaxPatterns = 64

// Repeats rate-limits log lines by pattern (a format string, a library scope and message):
// the first line of a pattern goes through at once; repeats within Every are counted, and the
// next one after that goes through with the count. It keeps a library that logs the same
// complaint many times a second (a dial failing while Redis is down, a peer sending oversized
// datagrams) from flooding the node's log. Safe for concurrent use.
type Repeats struct {
	every time.Duration
	now   func() time.Time

	mu       sync.Mutex // guards patterns
	patterns map[string]*repeat
}

type repeat struct {
	logged     time.Time // when a line was last let through
	suppressed int       // occurrences since then held back
}

// NewRepeats returns a limiter letting one line per pattern through per every (10 s if
// every <= 0). now is the clock (time.Now if nil).
func NewRepeats(every time.Duration, now func() time.Time) *Repeats {
	if every <= 0 {
		every = 10 * time.Second
	}
	if now == nil {
		now = time.Now
	}
	return &Repeats{every: every, now: now, patterns: map[string]*repeat{}}
}

// Every returns the interval.
func (r *Repeats) Every() time.Duration { return r.every }

// Allow reports whether a line of pattern may be written now and, if so, how many lines of it
// were held back since the last one written.
func (r *Repeats) Allow(pattern string) (ok bool, suppressed int) {
	now := r.now()
	r.mu.Lock()
	defer r.mu.Unlock()
	p := r.patterns[pattern]
	if p == nil && len(r.patterns) >= MaxPatterns {
		pattern = ""
		p = r.patterns[pattern]
	}
	if p == nil {
		p = &repeat{}
		r.patterns[pattern] = p
	}
	if !p.logged.IsZero() && now.Sub(p.logged) < r.every {
		p.suppressed++
		return false, 0
	}
	suppressed = p.suppressed
	p.logged, p.suppressed = now, 0
	return true, suppressed
}

// Len returns how many patterns are remembered (at most MaxPatterns + 1).
func (r *Repeats) Len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.patterns)
}
