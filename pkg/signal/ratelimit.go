package signal

import (
	"net"
	"net/http"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// ipLimiter limits joins per client address. Its table is bounded: idle entries are swept when
// it grows, and when it is full of active addresses new addresses share one overflow limiter.
type ipLimiter struct {
	rate  rate.Limit
	burst int
	max   int

	mu       sync.Mutex // guards the fields below
	entries  map[string]*ipEntry
	overflow *rate.Limiter
}

type ipEntry struct {
	lim  *rate.Limiter
	seen time.Time
}

func newIPLimiter(perSecond float64, burst, maxEntries int) *ipLimiter {
	return &ipLimiter{
		rate: rate.Limit(perSecond), burst: burst, max: maxEntries,
		entries:  map[string]*ipEntry{},
		overflow: rate.NewLimiter(rate.Limit(perSecond), burst),
	}
}

// allow reports whether ip may start one more session now.
func (l *ipLimiter) allow(ip string, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	e := l.entries[ip]
	if e == nil {
		if len(l.entries) >= l.max {
			l.sweep(now)
		}
		if len(l.entries) >= l.max {
			return l.overflow.AllowN(now, 1)
		}
		e = &ipEntry{lim: rate.NewLimiter(l.rate, l.burst)}
		l.entries[ip] = e
	}
	e.seen = now
	return e.lim.AllowN(now, 1)
}

// has reports whether ip has at least one token left now, without taking it.
func (l *ipLimiter) has(ip string, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	e := l.entries[ip]
	if e == nil {
		if len(l.entries) >= l.max {
			return l.overflow.TokensAt(now) >= 1
		}
		return true // a new address has its whole burst
	}
	return e.lim.TokensAt(now) >= 1
}

// sweep drops entries whose bucket has refilled. l.mu held.
func (l *ipLimiter) sweep(now time.Time) {
	idle := time.Duration(float64(l.burst)/float64(l.rate)*float64(time.Second)) + time.Second
	for ip, e := range l.entries {
		if now.Sub(e.seen) > idle {
			delete(l.entries, ip)
		}
	}
}

// clientIP is the address of the TCP peer. X-Forwarded-For is not trusted: a proxy in front
// of the node must be configured to limit on its own side.
func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}
