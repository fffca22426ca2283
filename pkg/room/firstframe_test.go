package room

import (
	"slices"
	"sync"
	"testing"
	"time"
)

// A subscriber's transport comes up after Bind, whose keyframe request it could not use: once
// it is ready, a new request goes to the publisher without waiting the throttle's interval, but
// not within readyKeyframeInterval of the last one, and not once media has been sent.
func TestTransportReadyAsksAgainForTheKeyframe(t *testing.T) {
	cfg := testConfig()
	cfg.KeyframeInterval = time.Hour
	m := NewManager(cfg)
	defer m.Close()
	pub, _, _ := join(t, m, "r", "pub")
	track, err := pub.Publish(vp8Info())
	if err != nil {
		t.Fatal(err)
	}
	src := newFakeSource()
	if err := track.AddLayer("", src); err != nil {
		t.Fatal(err)
	}
	_, _, tr := join(t, m, "r", "sub") // Bind asks for a keyframe
	if got := src.keyframeRequests(); got != 1 {
		t.Fatalf("keyframe requests after Bind = %d, want 1", got)
	}
	d := tr.track(track.ID())
	d.TransportReady()
	if got := src.keyframeRequests(); got != 1 {
		t.Fatalf("keyframe requests right after Bind = %d, want still 1", got)
	}
	time.Sleep(readyKeyframeInterval + 20*time.Millisecond)
	d.TransportReady()
	if got := src.keyframeRequests(); got != 2 {
		t.Fatalf("keyframe requests once the transport is ready = %d, want 2", got)
	}
	src.ch <- vp8Packet(1, 1, 1, true, 10)
	tr.writer(track.ID()).waitN(t, 1)
	time.Sleep(readyKeyframeInterval + 20*time.Millisecond)
	d.TransportReady()
	if got := src.keyframeRequests(); got != 2 {
		t.Fatalf("keyframe requests after media flowed = %d, want still 2", got)
	}
}

// batchingTransport records the order of HoldNegotiation, AddTrack and the release.
type batchingTransport struct {
	*transport
	mu    sync.Mutex
	calls []string
}

func (b *batchingTransport) record(s string) {
	b.mu.Lock()
	b.calls = append(b.calls, s)
	b.mu.Unlock()
}

func (b *batchingTransport) AddTrack(d *DownTrack) error {
	b.record("add " + string(d.Kind()))
	return b.transport.AddTrack(d)
}

func (b *batchingTransport) HoldNegotiation() func() {
	b.record("hold")
	return func() { b.record("release") }
}

// A joining participant gets the room's tracks within one held negotiation: one offer, not
// one round per track.
func TestJoinSubscribesWithinOneNegotiation(t *testing.T) {
	m := NewManager(testConfig())
	defer m.Close()
	pub, _, _ := join(t, m, "r", "pub")
	if _, err := pub.Publish(vp8Info()); err != nil {
		t.Fatal(err)
	}
	audio := vp8Info()
	audio.Kind = KindAudio
	audio.Source = SourceMicrophone
	audio.Codec = CodecParams{MimeType: "audio/opus", ClockRate: 48000}
	if _, err := pub.Publish(audio); err != nil {
		t.Fatal(err)
	}
	bt := &batchingTransport{transport: newTransport()}
	if _, err := m.Join("r", JoinParams{Identity: "sub", Session: SessionID(NewID("SE")), Permissions: allGrants, Sink: &sink{}, Transport: bt}); err != nil {
		t.Fatal(err)
	}
	bt.mu.Lock()
	defer bt.mu.Unlock()
	if want := []string{"hold", "add video", "add audio", "release"}; !slices.Equal(bt.calls, want) {
		t.Fatalf("calls = %q, want %q", bt.calls, want)
	}
}
