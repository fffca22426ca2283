// Package bwe estimates the bandwidth toward one receiver from transport-wide congestion
// control feedback (draft-holmer-rmcat-transport-wide-cc-extensions-01), the way Google
// Congestion Control does (draft-ietf-rmcat-gcc-02): a delay-based estimate from the trend of
// one-way delay variation, and a loss-based one, the lower of which is the target.
//
// A Sender belongs to one PeerConnection. Its hot path, Stamp, runs once per packet sent: it
// hands out the next transport-wide sequence number and remembers the send, without
// allocating. Feedback runs once per feedback packet (every 50–100 ms from a browser).
package bwe

import (
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtcp"
)

// Config bounds an estimate. Zero fields take defaults.
type Config struct {
	Initial int // bits per second where the estimate starts (default 1.5 Mb/s)
	Min     int // floor (default 50 kb/s)
	Max     int // ceiling (default 10 Mb/s)
}

const (
	historySize = 1 << 11 // sends remembered for feedback (2 s at 1,000 packets/s); a power of two
	// A feedback that reports a packet sent longer ago than this is stale for it.
	maxFeedbackAge = 2 * time.Second
	// Loss is the fraction over the last lossWindowPackets packets, or over lossWindow when
	// fewer were sent.
	lossWindowPackets = 50
	lossWindow        = time.Second
)

type sent struct {
	at    int64 // unix nanoseconds; 0: empty
	size  int32 // bytes on the wire (RTP)
	seq   uint16
	acked bool // feedback reported it received
}

// Sender numbers one PeerConnection's packets and estimates its bandwidth.
type Sender struct {
	mu     sync.Mutex // guards next and hist
	next   uint16
	hist   [historySize]sent
	fbMu   sync.Mutex // guards est; held by Feedback only
	est    estimator
	lastFb int // feedback packet count of the last feedback, -1 before the first
	// Loss is measured over windows of at least lossWindowPackets packets or lossWindow.
	winLost, winTotal int
	winStart          int64
	lastLoss          float64
	target            atomic.Int64
	loss              atomic.Uint32 // fraction lost in the last feedback × 2^16
	packets           []result      // Feedback's scratch space
}

// New returns a Sender whose estimate starts at cfg.Initial.
func New(cfg Config) *Sender {
	if cfg.Initial <= 0 {
		cfg.Initial = 1_500_000
	}
	if cfg.Min <= 0 {
		cfg.Min = 50_000
	}
	if cfg.Max <= 0 {
		cfg.Max = 10_000_000
	}
	cfg.Initial = min(max(cfg.Initial, cfg.Min), cfg.Max)
	s := &Sender{lastFb: -1}
	s.est.init(cfg)
	s.target.Store(int64(cfg.Initial))
	return s
}

// Stamp returns the transport-wide sequence number of a packet of size bytes sent now.
func (s *Sender) Stamp(size int, now time.Time) uint16 {
	at := now.UnixNano()
	s.mu.Lock()
	seq := s.next
	s.next++
	s.hist[seq&(historySize-1)] = sent{at: at, size: int32(size), seq: seq}
	s.mu.Unlock()
	return seq
}

// TargetBitrate returns the estimate in bits per second.
func (s *Sender) TargetBitrate() int { return int(s.target.Load()) }

// Loss returns the fraction of packets lost in the last loss window (about a second).
func (s *Sender) Loss() float64 { return float64(s.loss.Load()) / 65536 }

// result is one packet a feedback reports on.
type result struct {
	sendAt, arriveAt int64 // unix nanoseconds; arriveAt 0: lost
	size             int32
}

// Feedback processes one transport-wide feedback packet received at now. A feedback seen twice
// (RTCP routed to several senders) counts once.
func (s *Sender) Feedback(fb *rtcp.TransportLayerCC, now time.Time) {
	s.fbMu.Lock()
	defer s.fbMu.Unlock()
	if int(fb.FbPktCount) == s.lastFb {
		return
	}
	s.lastFb = int(fb.FbPktCount)
	s.packets = s.collect(fb, now, s.packets[:0])
	if len(s.packets) == 0 {
		return
	}
	for _, r := range s.packets {
		if r.arriveAt == 0 {
			s.winLost++
		}
	}
	s.winTotal += len(s.packets)
	at := now.UnixNano()
	if s.winStart == 0 {
		s.winStart = at
	}
	if s.winTotal >= lossWindowPackets || (at-s.winStart >= int64(lossWindow) && s.winTotal > 0) {
		s.lastLoss = float64(s.winLost) / float64(s.winTotal)
		s.loss.Store(uint32(s.lastLoss * 65536))
		s.winLost, s.winTotal, s.winStart = 0, 0, at
	}
	s.target.Store(int64(s.est.update(s.packets, s.lastLoss, at)))
}

// collect pairs the feedback's statuses with the sends they report on, in sequence order.
func (s *Sender) collect(fb *rtcp.TransportLayerCC, now time.Time, out []result) []result {
	// The receiver's clock: reference time in 64 ms units, then each received packet's delta
	// from the previous one. It is unrelated to ours; only differences matter.
	arrive := int64(fb.ReferenceTime) * int64(64*time.Millisecond)
	oldest := now.Add(-maxFeedbackAge).UnixNano()
	seq := fb.BaseSequenceNumber
	deltas := fb.RecvDeltas
	remaining := int(fb.PacketStatusCount)
	s.mu.Lock()
	defer s.mu.Unlock()
	add := func(received bool) {
		r := result{}
		if received {
			if len(deltas) == 0 {
				return // malformed: more received statuses than deltas
			}
			arrive += deltas[0].Delta * int64(time.Microsecond)
			deltas = deltas[1:]
			r.arriveAt = arrive
			if r.arriveAt == 0 {
				r.arriveAt = 1
			}
		}
		h := &s.hist[seq&(historySize-1)]
		if h.at != 0 && h.seq == seq && h.at >= oldest && !h.acked {
			r.sendAt, r.size = h.at, h.size
			if received {
				h.acked = true
			}
			out = append(out, r)
		}
		seq++
		remaining--
	}
	for _, chunk := range fb.PacketChunks {
		switch c := chunk.(type) {
		case *rtcp.RunLengthChunk:
			received := c.PacketStatusSymbol != rtcp.TypeTCCPacketNotReceived
			for i := uint16(0); i < c.RunLength && remaining > 0; i++ {
				add(received)
			}
		case *rtcp.StatusVectorChunk:
			for _, sym := range c.SymbolList {
				if remaining <= 0 {
					break
				}
				add(sym != rtcp.TypeTCCPacketNotReceived)
			}
		}
	}
	return out
}

// clamp keeps v within [lo, hi].
func clamp(v, lo, hi float64) float64 { return math.Min(math.Max(v, lo), hi) }
