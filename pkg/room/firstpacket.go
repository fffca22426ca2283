package room

import (
	"sync/atomic"
	"time"
)

// firstPacket reports, once, how long a down track waited for its first packet. Its sent
// method is on the forwarding path: after the first call it is one atomic load.
type firstPacket struct {
	observe func(kind Kind, after time.Duration) // nil: nothing to report
	created time.Time
	done    atomic.Bool
}

// watchFirstPacket starts the clock for the time to first packet; f is told once.
func (d *DownTrack) watchFirstPacket(f func(kind Kind, after time.Duration)) {
	if f == nil {
		return
	}
	d.first.observe = f
	d.first.created = time.Now()
}

// sent notes a packet that reached the subscriber.
func (f *firstPacket) sent(kind Kind) {
	if f.observe == nil || f.done.Load() || !f.done.CompareAndSwap(false, true) {
		return
	}
	f.observe(kind, time.Since(f.created))
}
