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
	"encoding/binary"
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
	fbMu   sync.Mutex // guards everything below but target and loss; held by FeedbackRaw only
	est    estimator
	lastFb int // feedback packet count of the last feedback, -1 before the first
	// Loss is measured over windows of at least lossWindowPackets packets or lossWindow.
	winLost, winTotal int
	winStart          int64
	lastLoss          float64
	target            atomic.Int64
	loss              atomic.Uint32 // fraction lost in the last loss window × 2^16
	// A feedback's scratch space: its packet status symbols in sequence order, its receive
	// deltas (µs), and the packets it reports on.
	statuses []uint8
	deltas   []int64
	packets  []result
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

// FeedbackRaw processes one transport-wide feedback packet (RTCP PT 205, FMT 15) received at
// now, straight from its bytes, without allocating. Malformed packets are ignored. A feedback
// seen twice counts once.
func (s *Sender) FeedbackRaw(b []byte, now time.Time) {
	if len(b) < 20 || b[1] != 205 || b[0]&0x1f != 15 {
		return
	}
	n := (int(binary.BigEndian.Uint16(b[2:4])) + 1) * 4
	if n < 20 || n > len(b) {
		return // its length says less than a header, or more than there is
	}
	b = b[:n]
	if b[0]&0x20 != 0 { // padding: its count is the last byte
		pad := int(b[len(b)-1])
		if pad == 0 || pad > len(b)-20 {
			return
		}
		b = b[:len(b)-pad]
	}
	base := binary.BigEndian.Uint16(b[12:14])
	count := int(binary.BigEndian.Uint16(b[14:16]))
	ref := uint32(b[16])<<16 | uint32(b[17])<<8 | uint32(b[18])
	fbCount := b[19]
	s.fbMu.Lock()
	defer s.fbMu.Unlock()
	if int(fbCount) == s.lastFb {
		return
	}
	s.statuses, s.deltas = s.statuses[:0], s.deltas[:0]
	i := 20
	for len(s.statuses) < count {
		if i+2 > len(b) {
			return // truncated
		}
		c := binary.BigEndian.Uint16(b[i : i+2])
		i += 2
		switch {
		case c&0x8000 == 0: // run length: symbol (2 bits), length (13 bits)
			sym := uint8(c >> 13 & 0x3)
			for n := int(c & 0x1fff); n > 0 && len(s.statuses) < count; n-- {
				s.statuses = append(s.statuses, sym)
			}
		case c&0x4000 == 0: // status vector of 14 one-bit symbols
			for k := 13; k >= 0 && len(s.statuses) < count; k-- {
				s.statuses = append(s.statuses, uint8(c>>k&0x1))
			}
		default: // status vector of 7 two-bit symbols
			for k := 6; k >= 0 && len(s.statuses) < count; k-- {
				s.statuses = append(s.statuses, uint8(c>>(2*k)&0x3))
			}
		}
	}
	for _, sym := range s.statuses {
		switch uint16(sym) {
		case rtcp.TypeTCCPacketReceivedSmallDelta:
			if i+1 > len(b) {
				return
			}
			s.deltas = append(s.deltas, int64(b[i])*rtcp.TypeTCCDeltaScaleFactor)
			i++
		case rtcp.TypeTCCPacketReceivedLargeDelta:
			if i+2 > len(b) {
				return
			}
			s.deltas = append(s.deltas, int64(int16(binary.BigEndian.Uint16(b[i:i+2])))*rtcp.TypeTCCDeltaScaleFactor)
			i += 2
		}
	}
	s.process(base, ref, fbCount, now)
}

// process folds the statuses and deltas (µs) of one feedback into the estimate. s.fbMu held.
func (s *Sender) process(base uint16, ref uint32, fbCount uint8, now time.Time) {
	s.lastFb = int(fbCount)
	s.packets = s.collect(base, ref, now, s.packets[:0])
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
func (s *Sender) collect(seq uint16, ref uint32, now time.Time, out []result) []result {
	// The receiver's clock: reference time in 64 ms units, then each received packet's delta
	// from the previous one. It is unrelated to ours; only differences matter.
	arrive := int64(ref) * int64(64*time.Millisecond)
	oldest := now.Add(-maxFeedbackAge).UnixNano()
	deltas := s.deltas
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, sym := range s.statuses {
		received := uint16(sym) == rtcp.TypeTCCPacketReceivedSmallDelta || uint16(sym) == rtcp.TypeTCCPacketReceivedLargeDelta
		r := result{}
		if received {
			if len(deltas) == 0 {
				break // malformed: more received statuses than deltas
			}
			arrive += deltas[0] * int64(time.Microsecond)
			deltas = deltas[1:]
			r.arriveAt = max(arrive, 1)
		} else if uint16(sym) != rtcp.TypeTCCPacketNotReceived {
			seq++
			continue // reserved symbol: neither received nor lost
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
	}
	return out
}

// clamp keeps v within [lo, hi].
func clamp(v, lo, hi float64) float64 { return math.Min(math.Max(v, lo), hi) }
