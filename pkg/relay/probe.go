package relay

import (
	"encoding/binary"
	"sync"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/cascade-sfu/cascade/pkg/cluster"
)

// Link quality probes.
//
// Each end of an open link sends a small probe every probeInterval on its own unordered data
// channel; the peer echoes each probe at once. From the echoes the sender keeps:
//   - a smoothed RTT (RFC 6298's 1/8 gain);
//   - jitter: the mean deviation of consecutive RTT samples, with RFC 3550's 1/16 gain;
//   - loss: the share of the probes of the last probeWindow that were lost — a round-trip
//     figure, about twice the loss one way.
//
// SCTP hides a loss by retransmitting: pion neither honours MaxRetransmits 0 (a partially
// reliable channel stalled under loss when tried) nor delivers unordered messages ahead of a
// gap, so a lost probe arrives after its retransmission timeout together with the probes
// queued behind it. A loss therefore shows as a burst of late echoes (RTT above the smoothed
// RTT by more than max(4 × jitter, lateMargin)), arriving at once: the first late echo after
// an on-time one counts as one loss, the rest of the burst as neither loss nor sample. A probe
// with no echo within probeTimeout is lost too. Losses during a retransmission wait (pion's
// minimum retransmission timeout is long) count once with it, so the probes' loss reads low:
// 10% loss one way reads as 2–5%. Where media flows, the link's own figure is better: the
// sequence numbers the peer NACKed per video packet sent over the last ten seconds (one way,
// doubled as a round-trip figure); Quality.Loss is the larger of the two.
//
// The ICE RTT (STUN consent checks, every few seconds) stays the link's RTT figure; the probes
// add jitter and loss, which relay path choice needs: a direct path with a lower RTT but a
// jittery, lossy public route can be worse for a call than two clean backbone legs.
const (
	probeLabel    = "cascade-probe"
	probeID       = uint16(1)
	probeInterval = 200 * time.Millisecond
	probeWindow   = 10 * time.Second
	probeTimeout  = 2 * time.Second // a probe unanswered after this is lost
	lateMargin    = 50 * time.Millisecond
	// downAfter without any echo, on a link that has been probing at least that long, the
	// link is down: its path is cut though ICE has not noticed yet (consent checks take
	// seconds to fail).
	downAfter = 1500 * time.Millisecond
	// maxLateRun late echoes in a row are no retransmission burst (that lasts one
	// retransmission timeout) but a slower path: the figures restart from it.
	maxLateRun = 30
	probeSize  = 16 // type, 3 reserved, seq (4), send time (8)
	// probeRing holds the probes of probeWindow plus those still in flight.
	probeRing = 64
	// minProbeSamples echoes are needed before the figures are reported.
	minProbeSamples = 10

	probeRequest = 'q'
	probeReply   = 'r'
)

// Quality is a link's quality as its probes measure it.
type Quality struct {
	RTT    time.Duration // smoothed round trip of the probes
	Jitter time.Duration // mean deviation of consecutive round trips
	Loss   float64       // share of recent probes that got no echo (round trip), 0..1
	Down   bool          // no echo for downAfter: the path is cut
}

// probeSent is one probe in the ring.
type probeSent struct {
	seq      uint32
	at       time.Duration // since the prober's epoch
	answered bool
	lost     bool // its echo came late, after an SCTP retransmission
}

// prober sends and answers one link's probes. send is called with no lock held.
type prober struct {
	clock func() time.Duration // time since the prober started
	send  func([]byte) error

	mu      sync.Mutex // guards the fields below
	seq     uint32
	ring    [probeRing]probeSent
	srtt    time.Duration
	jitter  time.Duration
	lastRTT time.Duration
	samples int
	late    int           // echoes late in a row
	first   time.Duration // when the first probe was sent (0: none yet)
	heard   time.Duration // when the last echo came
	media   [mediaSamples]mediaSample
	mediaN  int // samples taken
}

// mediaSample is the link's media counters at one moment: video packets sent to the peer and
// sequence numbers the peer NACKed.
type mediaSample struct{ packets, nacks uint64 }

// mediaSamples: one a second, so the media loss covers the last ten seconds.
const mediaSamples = 11

// sampleMedia records the link's media counters (once a second).
func (p *prober) sampleMedia(packets, nacks uint64) {
	p.mu.Lock()
	p.media[p.mediaN%mediaSamples] = mediaSample{packets, nacks}
	p.mediaN++
	p.mu.Unlock()
}

// mediaLossLocked is the share of the video packets sent over the samples' span that the peer
// NACKed, ok false with too few packets to tell. p.mu held.
func (p *prober) mediaLossLocked() (float64, bool) {
	if p.mediaN < 2 {
		return 0, false
	}
	newest := p.media[(p.mediaN-1)%mediaSamples]
	oldest := p.media[max(0, p.mediaN-mediaSamples)%mediaSamples]
	sent := newest.packets - oldest.packets
	if newest.packets < oldest.packets || newest.nacks < oldest.nacks || sent < 100 {
		return 0, false
	}
	return min(1, float64(newest.nacks-oldest.nacks)/float64(sent)), true
}

func newProber(send func([]byte) error) *prober {
	epoch := time.Now()
	return &prober{clock: func() time.Duration { return time.Since(epoch) }, send: send}
}

// tick sends the next probe.
func (p *prober) tick() {
	now := p.clock()
	p.mu.Lock()
	if p.seq == 0 {
		p.first = now
	}
	p.seq++
	seq := p.seq
	p.ring[seq%probeRing] = probeSent{seq: seq, at: now}
	p.mu.Unlock()
	var b [probeSize]byte
	b[0] = probeRequest
	binary.BigEndian.PutUint32(b[4:], seq)
	binary.BigEndian.PutUint64(b[8:], uint64(now))
	_ = p.send(b[:]) // a probe that cannot be sent counts as lost
}

// receive handles a probe or an echo from the peer; anything else is ignored.
func (p *prober) receive(b []byte) {
	if len(b) != probeSize {
		return
	}
	switch b[0] {
	case probeRequest:
		reply := make([]byte, probeSize)
		copy(reply, b)
		reply[0] = probeReply
		_ = p.send(reply)
	case probeReply:
		p.echo(binary.BigEndian.Uint32(b[4:]), time.Duration(binary.BigEndian.Uint64(b[8:])), p.clock())
	}
}

// echo records the echo of probe seq, sent at sentAt, received at now.
func (p *prober) echo(seq uint32, sentAt, now time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	e := &p.ring[seq%probeRing]
	if e.seq != seq || e.at != sentAt || e.answered || now-sentAt > probeTimeout {
		return // forged, duplicated, or so late it was already counted lost
	}
	e.answered = true
	p.heard = now
	rtt := now - sentAt
	if p.samples >= minProbeSamples && rtt > p.srtt+max(4*p.jitter, lateMargin) && p.late < maxLateRun {
		e.lost = p.late == 0 // the first of a burst held back by a retransmission
		p.late++
		return
	}
	if p.late >= maxLateRun { // not a burst: the path got slower; start again from here
		p.samples, p.jitter = 0, 0
	}
	p.late = 0
	if p.samples == 0 {
		p.srtt = rtt
	} else {
		p.srtt += (rtt - p.srtt) / 8
		d := rtt - p.lastRTT
		if d < 0 {
			d = -d
		}
		p.jitter += (d - p.jitter) / 16
	}
	p.lastRTT = rtt
	p.samples++
}

// quality returns the figures, ok false before minProbeSamples echoes unless the link is down.
func (p *prober) quality() (Quality, bool) {
	now := p.clock()
	p.mu.Lock()
	defer p.mu.Unlock()
	down := p.seq > 0 && now-max(p.heard, p.first) >= downAfter
	if p.samples < minProbeSamples && !down {
		return Quality{}, false
	}
	var sent, lost int
	for _, e := range p.ring {
		age := now - e.at
		if e.seq == 0 || age < probeTimeout || age > probeWindow+probeTimeout {
			continue // empty, still in flight, or out of the window
		}
		sent++
		if !e.answered || e.lost {
			lost++
		}
	}
	q := Quality{RTT: p.srtt, Jitter: p.jitter, Down: down}
	if sent > 0 {
		q.Loss = float64(lost) / float64(sent)
	}
	if m, ok := p.mediaLossLocked(); ok {
		q.Loss = max(q.Loss, min(1, 2*m)) // one way, as a round-trip figure
	}
	return q, true
}

// newProbeChannel creates the link's negotiated probe channel: unordered, no retransmissions.
func newProbeChannel(pc *webrtc.PeerConnection) (*webrtc.DataChannel, error) {
	negotiated, ordered, id := true, false, probeID
	return pc.CreateDataChannel(probeLabel, &webrtc.DataChannelInit{
		Negotiated: &negotiated, Ordered: &ordered, ID: &id,
	})
}

// runProbes sends the link's probes until it closes. It is started when the link opens and
// waited for by teardown.
func (l *Link) runProbes(p *prober) {
	defer l.probeWG.Done()
	tick := time.NewTicker(probeInterval)
	defer tick.Stop()
	for n := 0; ; n++ {
		select {
		case <-l.done:
			return
		case <-tick.C:
			p.tick()
			if n%int(time.Second/probeInterval) == 0 {
				p.sampleMedia(l.packetsSent(), l.nacksIn.Load())
			}
		}
	}
}

// Quality returns the link's probe figures; ok is false until enough probes were answered or
// when the link is not open.
func (l *Link) Quality() (Quality, bool) {
	l.mu.Lock()
	p, open := l.probe, l.state == StateOpen
	l.mu.Unlock()
	if p == nil || !open {
		return Quality{}, false
	}
	return p.quality()
}

// Qualities returns the probe figures of every open link that has them, by peer. Cluster nodes
// publish them with their link RTTs, for relay path choice.
func (m *Manager) Qualities() map[cluster.NodeID]cluster.LinkQuality {
	m.mu.Lock()
	links := make([]*Link, 0, len(m.links))
	for _, l := range m.links {
		links = append(links, l)
	}
	m.mu.Unlock()
	out := make(map[cluster.NodeID]cluster.LinkQuality, len(links))
	for _, l := range links {
		if q, ok := l.Quality(); ok {
			out[l.peer] = cluster.LinkQuality{RTT: q.RTT, Jitter: q.Jitter, Loss: q.Loss, Down: q.Down}
		}
	}
	return out
}
