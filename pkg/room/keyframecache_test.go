package room

import (
	"sync"
	"testing"
	"time"

	"github.com/pion/rtp"
)

// gatedRecorder is a recorder that, like pion before the subscriber's SRTP keys exist, accepts
// and discards packets (0 bytes) until it is opened.
type gatedRecorder struct {
	recorder
	mu   sync.Mutex
	open bool
}

func (w *gatedRecorder) setOpen() {
	w.mu.Lock()
	w.open = true
	w.mu.Unlock()
}

func (w *gatedRecorder) WriteRTP(h *rtp.Header, payload []byte) (int, error) {
	w.mu.Lock()
	open := w.open
	w.mu.Unlock()
	if !open {
		return 0, nil
	}
	return w.recorder.WriteRTP(h, payload)
}

// gatedTransport binds every down track to one gatedRecorder.
type gatedTransport struct {
	transport
	w *gatedRecorder
}

func (g *gatedTransport) AddTrack(d *DownTrack) error {
	g.mu.Lock()
	g.tracks[d.TrackID()] = d
	g.mu.Unlock()
	d.Bind(Binding{Writer: g.w, SSRC: 4242, PayloadType: 96})
	return nil
}

// publishVP8 joins a publisher with one single-layer VP8 track fed by the returned source.
func publishVP8(t *testing.T, m *Manager) (*UpTrack, *fakeSource) {
	t.Helper()
	pub, _, _ := join(t, m, "r", "pub")
	track, err := pub.Publish(vp8Info())
	if err != nil {
		t.Fatal(err)
	}
	src := newFakeSource()
	if err := track.AddLayer("", src); err != nil {
		t.Fatal(err)
	}
	return track, src
}

// joinGated joins a subscriber whose transport is negotiated but not writable yet.
func joinGated(t *testing.T, m *Manager, identity string) *gatedTransport {
	t.Helper()
	g := &gatedTransport{transport: *newTransport(), w: &gatedRecorder{}}
	if _, err := m.Join("r", JoinParams{Identity: Identity(identity), Session: SessionID(NewID("SE")), Permissions: allGrants, Sink: &sink{}, Transport: g}); err != nil {
		t.Fatal(err)
	}
	return g
}

// replayScene is a manager whose publisher asks for one keyframe only (KeyframeInterval is
// long: a further request would show), a VP8 track on it, and a subscriber whose transport
// is gated, with its down track of the track. The manager is closed at the test's end.
func replayScene(t *testing.T) (*Manager, *UpTrack, *fakeSource, *gatedTransport, *DownTrack) {
	t.Helper()
	cfg := testConfig()
	cfg.KeyframeInterval = time.Hour
	m := NewManager(cfg)
	t.Cleanup(m.Close)
	track, src := publishVP8(t, m)
	g := joinGated(t, m, "sub")
	d := g.track(track.ID())
	if d == nil {
		t.Fatal("no down track")
	}
	return m, track, src, g, d
}

// sendBeforeReady sends a keyframe and two deltas (timestamps 3000 apart) while the
// subscriber's transport is not up, waits until they were dropped for it, and returns the
// keyframe requests the publisher has had so far.
func sendBeforeReady(t *testing.T, m *Manager, src *fakeSource) int {
	t.Helper()
	src.ch <- vp8Packet(7, 100, 9000, true, 50)
	src.ch <- vp8Packet(7, 101, 12000, false, 20)
	src.ch <- vp8Packet(7, 102, 15000, false, 20)
	eventually(t, "the early packets to be dropped", func() bool { return m.Stats().Drops(DropNotReady)+m.Stats().Drops(DropWaitKeyframe) >= 3 })
	return src.keyframeRequests()
}

// checkReplayed checks that got, what a subscriber received, runs on without a gap in
// sequence numbers and with the source's timestamp steps, and that it came from one replay
// of the cache, not from a new keyframe request (the publisher had requests before).
func checkReplayed(t *testing.T, m *Manager, src *fakeSource, requests int, got []rtp.Packet) {
	t.Helper()
	for i := 1; i < len(got); i++ {
		if got[i].SequenceNumber != got[0].SequenceNumber+uint16(i) {
			t.Fatalf("packet %d: seq %d after %d, want consecutive", i, got[i].SequenceNumber, got[0].SequenceNumber)
		}
		if dts := got[i].Timestamp - got[i-1].Timestamp; dts != 3000 {
			t.Fatalf("packet %d: timestamp step %d, want the source's 3000", i, dts)
		}
	}
	if r := src.keyframeRequests(); r != requests {
		t.Fatalf("keyframe requests to the publisher went from %d to %d, want none for a replay", requests, r)
	}
	if n := m.Stats().KeyframeReplays.Load(); n != 1 {
		t.Fatalf("KeyframeReplays = %d, want 1", n)
	}
}

// A subscriber whose transport comes up after the publisher's keyframe went by starts from that
// keyframe, replayed from the cache with the frames after it, without a new keyframe request
// to the publisher; its sequence numbers and timestamps run on without a gap into the live
// packets.
func TestTransportReadyReplaysTheCachedKeyframe(t *testing.T) {
	m, track, src, g, d := replayScene(t)
	// The keyframe asked for at Bind and two deltas arrive while the transport is not up.
	requests := sendBeforeReady(t, m, src)

	g.w.setOpen()
	d.TransportReady()
	src.ch <- vp8Packet(7, 103, 18000, false, 20)
	got := g.w.waitN(t, 4)
	if len(got) != 4 {
		t.Fatalf("got %d packets, want 4 (keyframe, 2 replayed deltas, live delta)", len(got))
	}
	if !track.codec.IsKeyframe(got[0].Payload) {
		t.Fatal("the first packet the subscriber got is not the keyframe")
	}
	checkReplayed(t, m, src, requests, got)
}

// A cached keyframe older than maxReplayAge is not replayed: the subscriber would start too far
// behind live. The publisher is asked for a new one instead.
func TestTransportReadyAsksForAKeyframeWhenTheCachedOneIsOld(t *testing.T) {
	m, track, src, g, d := replayScene(t)
	src.ch <- vp8Packet(7, 100, 9000, true, 50)
	eventually(t, "the keyframe to be dropped", func() bool { return m.Stats().Drops(DropNotReady) >= 1 })
	// Age the cached keyframe instead of sleeping for maxReplayAge.
	l := track.layer(0)
	l.kf.at.Store(time.Now().Add(-2 * maxReplayAge).UnixNano())
	requests := src.keyframeRequests()
	time.Sleep(readyKeyframeInterval + 20*time.Millisecond)

	g.w.setOpen()
	d.TransportReady()
	if r := src.keyframeRequests(); r != requests+1 {
		t.Fatalf("keyframe requests went from %d to %d, want one more", requests, r)
	}
	src.ch <- vp8Packet(7, 101, 12000, false, 20)
	src.ch <- vp8Packet(7, 102, 15000, true, 50) // the requested keyframe
	got := g.w.waitN(t, 1)
	if !track.codec.IsKeyframe(got[0].Payload) {
		t.Fatal("the first packet the subscriber got is not the new keyframe")
	}
	if n := m.Stats().KeyframeReplays.Load(); n != 0 {
		t.Fatalf("KeyframeReplays = %d, want 0", n)
	}
	if len(g.w.packets()) != 1 {
		t.Fatalf("subscriber got %d packets, want only the new keyframe", len(g.w.packets()))
	}
}

// A replay whose packets all come back unsent (the transport reported up a moment before it
// could encrypt) is tried again before the next packet, and then delivers.
func TestKeyframeReplayIsRetriedUntilTheTransportWrites(t *testing.T) {
	m, track, src, g, d := replayScene(t)
	src.ch <- vp8Packet(7, 100, 9000, true, 50)
	src.ch <- vp8Packet(7, 101, 12000, false, 20)
	eventually(t, "the early packets to be dropped", func() bool { return m.Stats().Drops(DropNotReady) >= 1 })

	d.TransportReady() // not writable yet
	src.ch <- vp8Packet(7, 102, 15000, false, 20)
	eventually(t, "the first replay to find the transport not writable", func() bool { return m.Stats().Drops(DropNotReady) >= 2 })
	g.w.setOpen()
	src.ch <- vp8Packet(7, 103, 18000, false, 20)
	got := g.w.waitN(t, 4)
	if !track.codec.IsKeyframe(got[0].Payload) {
		t.Fatal("the first packet the subscriber got is not the keyframe")
	}
	for i := 1; i < len(got); i++ {
		if got[i].SequenceNumber != got[0].SequenceNumber+uint16(i) {
			t.Fatalf("packet %d: seq %d after %d, want consecutive", i, got[i].SequenceNumber, got[0].SequenceNumber)
		}
	}
}

// TransportReady replays the cached keyframe and the packets after it at once, on its caller's
// goroutine: the subscriber has them when it returns, without waiting for the layer's next
// packet (up to a frame interval, more on a low layer). The next live packet follows them.
func TestTransportReadyReplaysWithoutALivePacket(t *testing.T) {
	m, track, src, g, d := replayScene(t)
	requests := sendBeforeReady(t, m, src)

	g.w.setOpen()
	d.TransportReady()
	got := g.w.packets() // no live packet has come since
	if len(got) != 3 {
		t.Fatalf("subscriber has %d packets when TransportReady returns, want 3 (keyframe, 2 deltas)", len(got))
	}
	if !track.codec.IsKeyframe(got[0].Payload) {
		t.Fatal("the first packet the subscriber got is not the keyframe")
	}
	src.ch <- vp8Packet(7, 103, 18000, false, 20)
	got = g.w.waitN(t, 4)
	checkReplayed(t, m, src, requests, got)
}

// taggedVP8 is vp8Packet with the source sequence number also in the payload, so that a
// subscriber's packets can be traced back to the source after rewriting.
func taggedVP8(seq uint16, keyframe bool) []byte {
	b := vp8Packet(7, seq, 9000+3000*uint32(seq), keyframe, 20)
	b[12+2], b[12+3] = byte(seq>>8), byte(seq)
	return b
}

// While live packets keep coming, a replay started by TransportReady and the reader's live
// forwarding never interleave: the subscriber gets the source's packets from the keyframe on,
// each exactly once and in order, with consecutive sequence numbers and the source's timestamp
// steps. Run with -race; several rounds make TransportReady land at different points.
func TestKeyframeReplayRacingLivePackets(t *testing.T) {
	const (
		before = 40  // packets read before the subscriber's transport comes up
		total  = 160 // packets in all
	)
	for round := range 10 {
		m, track, src, g, d := replayScene(t)
		for seq := range uint16(before) {
			src.ch <- taggedVP8(seq, seq == 0)
		}
		eventually(t, "the early packets to be dropped", func() bool {
			return m.Stats().Drops(DropNotReady)+m.Stats().Drops(DropWaitKeyframe) >= before
		})
		fed := make(chan struct{})
		go func() {
			defer close(fed)
			for seq := uint16(before); seq < total; seq++ {
				src.ch <- taggedVP8(seq, false)
				if seq%8 == 0 {
					time.Sleep(100 * time.Microsecond)
				}
			}
		}()
		time.Sleep(time.Duration(round) * 150 * time.Microsecond)
		g.w.setOpen()
		d.TransportReady()
		<-fed
		got := g.w.waitN(t, total)
		if len(got) != total {
			t.Fatalf("round %d: subscriber got %d packets, want the %d from the keyframe on", round, len(got), total)
		}
		if !track.codec.IsKeyframe(got[0].Payload) {
			t.Fatalf("round %d: the first packet is not the keyframe", round)
		}
		for i, p := range got {
			if srcSeq := uint16(p.Payload[2])<<8 | uint16(p.Payload[3]); srcSeq != uint16(i) {
				t.Fatalf("round %d: packet %d is the source's %d, want %d (order or duplicates)", round, i, srcSeq, i)
			}
			if p.SequenceNumber != got[0].SequenceNumber+uint16(i) {
				t.Fatalf("round %d: packet %d: seq %d, want %d", round, i, p.SequenceNumber, got[0].SequenceNumber+uint16(i))
			}
			if p.Timestamp-got[0].Timestamp != 3000*uint32(i) {
				t.Fatalf("round %d: packet %d: timestamp %d after the first, want %d", round, i, p.Timestamp-got[0].Timestamp, 3000*i)
			}
		}
		if n := m.Stats().KeyframeReplays.Load(); n != 1 {
			t.Fatalf("round %d: KeyframeReplays = %d, want 1", round, n)
		}
		m.Close() // the next round's manager starts alone; the cleanup's Close is a no-op
	}
}
