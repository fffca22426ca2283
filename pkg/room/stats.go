package room

import "sync/atomic"

// DropReason says why a packet was not forwarded. Every drop is counted by reason.
type DropReason uint8

const (
	DropUnbound      DropReason = iota // the subscriber's transport is not negotiated yet
	DropWaitKeyframe                   // waiting for a keyframe to start or switch layers
	DropStale                          // older than the last layer switch
	DropPadding                        // padding-only packet (bandwidth probe), not forwarded
	DropPaused                         // the subscriber paused the track
	DropWriteError                     // the transport refused the packet
	DropMalformed                      // not a parsable RTP packet
	DropTooLarge                       // larger than the forwarding buffer
	DropNotReady                       // the transport is negotiated but not yet connected (no SRTP keys)
	numDropReasons
)

var dropReasonNames = [numDropReasons]string{
	"unbound", "wait_keyframe", "stale", "padding", "paused", "write_error", "malformed", "too_large",
	"not_ready",
}

func (r DropReason) String() string {
	if r < numDropReasons {
		return dropReasonNames[r]
	}
	return "unknown"
}

// DropReasons lists every reason, for exporting counters.
func DropReasons() []DropReason {
	out := make([]DropReason, numDropReasons)
	for i := range out {
		out[i] = DropReason(i)
	}
	return out
}

// Stats are node-wide forwarding counters. They are updated with atomics on the hot path and
// read by the metrics exporter; one Stats is shared by every room of a Manager.
type Stats struct {
	PacketsIn, BytesIn   atomic.Uint64 // RTP received from sources
	PacketsOut, BytesOut atomic.Uint64 // RTP written to subscribers (retransmissions included)
	NACKsReceived        atomic.Uint64 // sequence numbers NACKed by subscribers
	Retransmits          atomic.Uint64 // packets resent from the cache
	RetransmitMisses     atomic.Uint64 // NACKed packets no longer in the cache
	// RetransmitsSuppressed counts NACKs not answered: the packet was resent too recently or
	// too often (maxRetransmits, rtxInterval).
	RetransmitsSuppressed atomic.Uint64
	PLIsReceived          atomic.Uint64 // PLI/FIR from subscribers
	KeyframeRequests      atomic.Uint64 // PLIs sent to publishers after throttling
	LayerSwitches         atomic.Uint64 // simulcast layer changes done by subscribers
	KeyframeReplays       atomic.Uint64 // new subscribers started from a layer's cached keyframe
	drops                 [numDropReasons]atomic.Uint64
}

// Drop counts one dropped packet.
func (s *Stats) Drop(r DropReason) {
	if r < numDropReasons {
		s.drops[r].Add(1)
	}
}

// Drops returns the number of packets dropped for reason r.
func (s *Stats) Drops(r DropReason) uint64 {
	if r < numDropReasons {
		return s.drops[r].Load()
	}
	return 0
}
