package room

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtp"
)

// fakeSource feeds a layer from a channel of raw packets.
type fakeSource struct {
	ch        chan []byte
	closeOnce sync.Once
	done      chan struct{}
	mu        sync.Mutex
	keyframes int
}

func newFakeSource() *fakeSource {
	return &fakeSource{ch: make(chan []byte, 1024), done: make(chan struct{})}
}

func (s *fakeSource) ReadRTP(buf []byte) (int, error) {
	select {
	case b := <-s.ch:
		return copy(buf, b), nil
	case <-s.done:
		return 0, errors.New("source closed")
	}
}

func (s *fakeSource) RequestKeyframe() error {
	s.mu.Lock()
	s.keyframes++
	s.mu.Unlock()
	return nil
}

func (s *fakeSource) keyframeRequests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.keyframes
}

func (s *fakeSource) Close() error {
	s.closeOnce.Do(func() { close(s.done) })
	return nil
}

// recorder is a PacketWriter that keeps copies of what it was given.
type recorder struct {
	mu   sync.Mutex
	pkts []rtp.Packet
}

func (w *recorder) WriteRTP(h *rtp.Header, payload []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	hc := *h
	hc.Extensions, hc.Extension, hc.ExtensionProfile = nil, false, 0
	for _, id := range h.GetExtensionIDs() { // the writer's buffers are reused after WriteRTP returns
		_ = hc.SetExtension(id, append([]byte(nil), h.GetExtension(id)...))
	}
	w.pkts = append(w.pkts, rtp.Packet{Header: hc, Payload: append([]byte(nil), payload...)})
	return h.MarshalSize() + len(payload), nil
}

func (w *recorder) packets() []rtp.Packet {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]rtp.Packet(nil), w.pkts...)
}

func (w *recorder) waitN(t *testing.T, n int) []rtp.Packet {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if p := w.packets(); len(p) >= n {
			return p
		}
		time.Sleep(2 * time.Millisecond)
	}
	t.Fatalf("got %d packets, want %d", len(w.packets()), n)
	return nil
}

// sink records events.
type sink struct {
	mu     sync.Mutex
	events []Event
}

func (s *sink) Deliver(ev Event) {
	s.mu.Lock()
	s.events = append(s.events, ev)
	s.mu.Unlock()
}

func (s *sink) all() []Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Event(nil), s.events...)
}

// transport binds every added down track at once to its own recorder.
type transport struct {
	mu       sync.Mutex
	ssrc     uint32
	writers  map[TrackID]*recorder
	tracks   map[TrackID]*DownTrack
	removed  []TrackID
	estimate int
	absID    uint8 // abs-capture-time id bound to every down track (0: not negotiated)
}

func newTransport() *transport {
	return &transport{ssrc: 1000, writers: map[TrackID]*recorder{}, tracks: map[TrackID]*DownTrack{}}
}

func (tr *transport) AddTrack(d *DownTrack) error {
	tr.mu.Lock()
	tr.ssrc++
	w := &recorder{}
	tr.writers[d.TrackID()] = w
	tr.tracks[d.TrackID()] = d
	ssrc, absID := tr.ssrc, tr.absID
	tr.mu.Unlock()
	d.Bind(Binding{Writer: w, SSRC: ssrc, PayloadType: 96, AbsCaptureTimeExtID: absID})
	return nil
}

func (tr *transport) RemoveTrack(d *DownTrack) error {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	delete(tr.tracks, d.TrackID())
	tr.removed = append(tr.removed, d.TrackID())
	return nil
}

func (tr *transport) BandwidthEstimate() int {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return tr.estimate
}

func (tr *transport) writer(id TrackID) *recorder {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return tr.writers[id]
}

func (tr *transport) track(id TrackID) *DownTrack {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	return tr.tracks[id]
}

// vp8Packet builds a VP8 RTP packet; keyframe sets the start-of-partition and key bits.
func vp8Packet(ssrc uint32, seq uint16, ts uint32, keyframe bool, size int) []byte {
	payload := make([]byte, size)
	payload[0] = 0x10 // S=1, PID=0
	if keyframe {
		payload[1] = 0x00 // P=0: key frame
	} else {
		payload[1] = 0x01
	}
	p := rtp.Packet{
		Header:  rtp.Header{Version: 2, PayloadType: 96, SequenceNumber: seq, Timestamp: ts, SSRC: ssrc, Marker: true},
		Payload: payload,
	}
	b, err := p.Marshal()
	if err != nil {
		panic(err)
	}
	return b
}

func testConfig() Config {
	cfg := DefaultConfig()
	cfg.KeyframeInterval = time.Millisecond
	cfg.SpeakerInterval = 20 * time.Millisecond
	cfg.AllocateInterval = 50 * time.Millisecond
	return cfg
}

var allGrants = Permissions{Publish: true, Subscribe: true, PublishData: true}

func join(t *testing.T, m *Manager, room Name, identity string) (*Participant, *sink, *transport) {
	t.Helper()
	s, tr := &sink{}, newTransport()
	p, err := m.Join(room, JoinParams{
		Identity: Identity(identity), Session: SessionID(NewID("SE")), Permissions: allGrants, Sink: s, Transport: tr,
	})
	if err != nil {
		t.Fatalf("join %s: %v", identity, err)
	}
	return p, s, tr
}

func vp8Info() TrackInfo {
	return TrackInfo{Kind: KindVideo, Source: SourceCamera, Codec: CodecParams{MimeType: "video/VP8", ClockRate: 90000}}
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if cond() {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s", what)
}

// forwardNow receives raw on layer l and forwards it at once, as a reader does with a packet
// it does not hold.
func (t *UpTrack) forwardNow(l *upLayer, raw []byte) {
	rb := &readBatch{}
	n := copy(rb.bufs[0][:], raw)
	if t.receive(l, rb.bufs[0][:n], &rb.hdrs[0], &rb.pkts[0]) {
		rb.n = 1
		t.forwardBatch(l, rb)
	}
}
