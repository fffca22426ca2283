package bwe

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/pion/rtcp"
)

// link is a simulated bottleneck: a FIFO queue drained at capacity, a base one-way delay,
// random loss, and a queue that drops what would wait longer than maxQueue.
type link struct {
	capacity   float64 // bits per second
	base       time.Duration
	loss       float64
	maxQueue   time.Duration
	lastArrive time.Duration
	rng        *rand.Rand
}

// send returns when a packet of size bytes sent at t arrives, or false if it is lost.
func (l *link) send(t time.Duration, size int) (time.Duration, bool) {
	if l.rng.Float64() < l.loss {
		return 0, false
	}
	start := max(t+l.base, l.lastArrive)
	if start-(t+l.base) > l.maxQueue {
		return 0, false
	}
	l.lastArrive = start + time.Duration(float64(size*8)/l.capacity*float64(time.Second))
	return l.lastArrive, true
}

type inflight struct {
	seq    uint16
	arrive time.Duration
	ok     bool
}

// sim drives a Sender over a link: every 5 ms it sends what its estimate allows (1200-byte
// packets, never above appLimit), every 50 ms the receiver sends feedback on what has arrived.
type sim struct {
	tb       testing.TB
	s        *Sender
	l        *link
	epoch    time.Time
	t        time.Duration
	credit   float64
	pending  []inflight
	fbCount  uint8
	appLimit float64
}

func newSim(tb testing.TB, cfg Config, l *link) *sim {
	l.rng = rand.New(rand.NewPCG(1, 2))
	if l.maxQueue == 0 {
		l.maxQueue = 300 * time.Millisecond
	}
	return &sim{tb: tb, s: New(cfg), l: l, epoch: time.Unix(1_700_000_000, 0), appLimit: 1e9}
}

// run simulates d and returns the estimates seen at each feedback.
func (m *sim) run(d time.Duration) []int {
	var seen []int
	end := m.t + d
	for ; m.t < end; m.t += 5 * time.Millisecond {
		rate := min(float64(m.s.TargetBitrate()), m.appLimit)
		m.credit += rate * 0.005 / 8
		for m.credit >= 1200 {
			m.credit -= 1200
			seq := m.s.Stamp(1200, m.epoch.Add(m.t))
			arrive, ok := m.l.send(m.t, 1200)
			m.pending = append(m.pending, inflight{seq, arrive, ok})
		}
		if m.t%(50*time.Millisecond) == 0 {
			m.feedback()
			seen = append(seen, m.s.TargetBitrate())
		}
	}
	return seen
}

// feedback reports every pending packet up to the last one that has arrived.
func (m *sim) feedback() {
	last := -1
	for i, p := range m.pending {
		if p.ok && p.arrive <= m.t {
			last = i
		}
	}
	if last < 0 {
		return
	}
	report := m.pending[:last+1]
	m.pending = append([]inflight(nil), m.pending[last+1:]...)
	fb := &rtcp.TransportLayerCC{BaseSequenceNumber: report[0].seq, PacketStatusCount: uint16(len(report)), FbPktCount: m.fbCount}
	m.fbCount++
	// Arrival times on the wire's 250 µs grid; deltas over 63.75 ms need the large symbol.
	var prev time.Duration
	for _, p := range report {
		sym := uint16(rtcp.TypeTCCPacketNotReceived)
		if p.ok {
			at := p.arrive / 250 / time.Microsecond * 250 * time.Microsecond
			if prev == 0 {
				ref := at / (64 * time.Millisecond)
				fb.ReferenceTime = uint32(ref)
				prev = ref * 64 * time.Millisecond
			}
			sym = rtcp.TypeTCCPacketReceivedSmallDelta
			if at-prev > 63750*time.Microsecond {
				sym = rtcp.TypeTCCPacketReceivedLargeDelta
			}
			fb.RecvDeltas = append(fb.RecvDeltas, &rtcp.RecvDelta{Type: sym, Delta: int64((at - prev) / time.Microsecond)})
			prev = at
		}
		fb.PacketChunks = append(fb.PacketChunks, &rtcp.RunLengthChunk{PacketStatusSymbol: sym, RunLength: 1})
	}
	m.s.FeedbackRaw(marshal(m.tb, fb), m.epoch.Add(m.t))
}

// marshal returns the wire form of a feedback packet; pion marshals the header it is given, so
// it is filled in here as pion's own recorder does.
func marshal(t testing.TB, fb *rtcp.TransportLayerCC) []byte {
	t.Helper()
	size := fb.MarshalSize()
	fb.Header = rtcp.Header{Count: rtcp.FormatTCC, Type: rtcp.TypeTransportSpecificFeedback,
		Padding: size != 20+2*len(fb.PacketChunks)+deltaBytes(fb), Length: uint16(size/4 - 1)}
	raw, err := fb.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func deltaBytes(fb *rtcp.TransportLayerCC) int {
	n := 0
	for _, d := range fb.RecvDeltas {
		n++
		if d.Type == rtcp.TypeTCCPacketReceivedLargeDelta {
			n++
		}
	}
	return n
}

func mean(v []int) float64 {
	sum := 0.0
	for _, x := range v {
		sum += float64(x)
	}
	return sum / float64(len(v))
}

// Over a 2 Mb/s bottleneck the estimate settles near its capacity: not above it (the queue
// would grow without end), not far below (video quality thrown away).
func TestEstimateSettlesAtTheBottleneck(t *testing.T) {
	m := newSim(t, Config{Initial: 1_000_000}, &link{capacity: 2e6, base: 20 * time.Millisecond})
	seen := m.run(40 * time.Second)
	last := mean(seen[len(seen)-200:]) // the last 10 s
	t.Logf("2 Mb/s bottleneck: estimate averages %.0f b/s over the last 10 s", last)
	if last < 0.6*2e6 || last > 1.25*2e6 {
		t.Fatalf("estimate over the last 10 s averages %.0f b/s on a 2 Mb/s link", last)
	}
}

// When the bottleneck's capacity falls, the estimate follows within a few seconds.
func TestEstimateFollowsACapacityDrop(t *testing.T) {
	l := &link{capacity: 4e6, base: 30 * time.Millisecond}
	m := newSim(t, Config{Initial: 3_000_000}, l)
	m.run(20 * time.Second)
	before := m.s.TargetBitrate()
	l.capacity = 1e6
	seen := m.run(4 * time.Second)
	after := mean(seen[len(seen)-20:]) // the last second
	t.Logf("4 -> 1 Mb/s: estimate %d b/s before, %.0f b/s 3-4 s after", before, after)
	if before < 2_400_000 {
		t.Fatalf("estimate %d b/s on a 4 Mb/s link before the drop", before)
	}
	if after > 1.3e6 {
		t.Fatalf("estimate still %.0f b/s 3-4 s after the link fell to 1 Mb/s (it was %d)", after, before)
	}
}

// Heavy random loss without queueing lowers the estimate; light loss does not.
func TestEstimateReactsToLoss(t *testing.T) {
	heavy := newSim(t, Config{Initial: 2_000_000}, &link{capacity: 50e6, base: 20 * time.Millisecond, loss: 0.2})
	heavy.run(5 * time.Second)
	if got := heavy.s.TargetBitrate(); got > 1_000_000 {
		t.Fatalf("estimate %d b/s after 5 s of 20%% loss, started at 2 Mb/s", got)
	}
	if l := heavy.s.Loss(); l < 0.1 || l > 0.3 {
		t.Fatalf("loss %.2f reported for 20%% loss", l)
	}
	light := newSim(t, Config{Initial: 2_000_000}, &link{capacity: 50e6, base: 20 * time.Millisecond, loss: 0.005})
	light.run(5 * time.Second)
	if got := light.s.TargetBitrate(); got < 2_000_000 {
		t.Fatalf("estimate fell to %d b/s with 0.5%% loss", got)
	}
}

// On a path with room to spare the estimate grows (a higher simulcast layer becomes possible)
// up to the configured ceiling, and never past it.
func TestEstimateGrowsToItsCeiling(t *testing.T) {
	m := newSim(t, Config{Initial: 500_000, Max: 3_000_000}, &link{capacity: 100e6, base: 10 * time.Millisecond})
	seen := m.run(30 * time.Second)
	for _, v := range seen {
		if v > 3_000_000 {
			t.Fatalf("estimate %d b/s above its 3 Mb/s ceiling", v)
		}
	}
	if got := m.s.TargetBitrate(); got < 2_900_000 {
		t.Fatalf("estimate %d b/s after 30 s on an idle 100 Mb/s path, want the 3 Mb/s ceiling", got)
	}
}

// RTCP routed to several senders can hand the same feedback over twice: it counts once.
func TestRepeatedFeedbackCountsOnce(t *testing.T) {
	s := New(Config{Initial: 1_000_000})
	now := time.Unix(1_700_000_000, 0)
	for i := range 60 {
		s.Stamp(1000, now.Add(time.Duration(i)*time.Millisecond))
	}
	fb := &rtcp.TransportLayerCC{BaseSequenceNumber: 0, PacketStatusCount: 60, FbPktCount: 7,
		PacketChunks: []rtcp.PacketStatusChunk{&rtcp.RunLengthChunk{PacketStatusSymbol: rtcp.TypeTCCPacketNotReceived, RunLength: 60}}}
	raw := marshal(t, fb)
	s.FeedbackRaw(raw, now.Add(time.Second))
	first := s.TargetBitrate()
	if s.Loss() != 1 {
		t.Fatalf("loss %.2f, want 1", s.Loss())
	}
	s.FeedbackRaw(raw, now.Add(time.Second+300*time.Millisecond))
	if got := s.TargetBitrate(); got != first {
		t.Fatalf("the same feedback again moved the estimate from %d to %d", first, got)
	}
}

// Malformed feedback (a status count beyond its chunks, deltas cut short) is survived: the
// estimate stays.
func TestMalformedFeedbackIsHarmless(t *testing.T) {
	s := New(Config{})
	now := time.Now()
	for range 5 {
		s.Stamp(1000, now)
	}
	raw := marshal(t, &rtcp.TransportLayerCC{PacketStatusCount: 5, PacketChunks: []rtcp.PacketStatusChunk{
		&rtcp.RunLengthChunk{PacketStatusSymbol: rtcp.TypeTCCPacketReceivedSmallDelta, RunLength: 5},
	}, RecvDeltas: []*rtcp.RecvDelta{
		{Type: rtcp.TypeTCCPacketReceivedSmallDelta, Delta: 250}, {Type: rtcp.TypeTCCPacketReceivedSmallDelta, Delta: 250},
		{Type: rtcp.TypeTCCPacketReceivedSmallDelta, Delta: 250}, {Type: rtcp.TypeTCCPacketReceivedSmallDelta, Delta: 250},
		{Type: rtcp.TypeTCCPacketReceivedSmallDelta, Delta: 250},
	}})
	raw[15] = 200 // status count 200: more than the chunk says
	s.FeedbackRaw(raw, now)
	raw[15], raw[19] = 5, raw[19]+1
	s.FeedbackRaw(raw[:len(raw)-4], now) // the last word (deltas) missing
	if s.TargetBitrate() != 1_500_000 {
		t.Fatalf("estimate %d after malformed feedback, want the initial 1.5 Mb/s", s.TargetBitrate())
	}
}

func TestStampDoesNotAllocate(t *testing.T) {
	s := New(Config{})
	now := time.Now()
	if a := testing.AllocsPerRun(1000, func() { s.Stamp(1200, now) }); a != 0 {
		t.Fatalf("Stamp allocates %.1f times per packet", a)
	}
}

func BenchmarkStamp(b *testing.B) {
	s := New(Config{})
	now := time.Now()
	b.ReportAllocs()
	for range b.N {
		s.Stamp(1200, now)
	}
}

// A sender that sends less than its estimate allows (a low simulcast layer) does not see the
// estimate run away to the ceiling: it stays within 1.5 times what gets through.
func TestEstimateOfAnAppLimitedSenderStaysNearItsRate(t *testing.T) {
	m := newSim(t, Config{Initial: 300_000, Max: 10_000_000}, &link{capacity: 100e6, base: 10 * time.Millisecond})
	m.appLimit = 500_000
	m.run(30 * time.Second)
	if got := m.s.TargetBitrate(); got > 800_000 || got < 500_000 {
		t.Fatalf("estimate %d b/s for a sender held at 500 kb/s, want about 1.5x that", got)
	}
}
