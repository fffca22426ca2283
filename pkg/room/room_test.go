package room

import (
	"testing"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"

	"github.com/cascade-sfu/cascade/pkg/rtputil"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestFanOutToTenSubscribersWithRewrittenStreams(t *testing.T) {
	m := NewManager(testConfig())
	defer m.Close()
	pub, _, _ := join(t, m, "r", "pub")
	var subs []*transport
	for i := range 10 {
		_, _, tr := join(t, m, "r", "sub"+string(rune('a'+i)))
		subs = append(subs, tr)
	}
	track, err := pub.Publish(vp8Info())
	if err != nil {
		t.Fatal(err)
	}
	src := newFakeSource()
	if err := track.AddLayer("", src); err != nil {
		t.Fatal(err)
	}
	// Delta frames before the first keyframe are not decodable and must not be sent.
	src.ch <- vp8Packet(42, 100, 9000, false, 100)
	for i := range 20 {
		src.ch <- vp8Packet(42, uint16(101+i), uint32(9000+3000*(i+1)), i == 0, 100)
	}
	for n, tr := range subs {
		w := tr.writer(track.ID())
		got := w.waitN(t, 20)
		if len(got) != 20 {
			t.Fatalf("subscriber %d: %d packets, want 20 (the delta frame before the keyframe is dropped)", n, len(got))
		}
		ssrc := got[0].SSRC
		for i := 1; i < len(got); i++ {
			if got[i].SSRC != ssrc || got[i].SequenceNumber != got[i-1].SequenceNumber+1 {
				t.Fatalf("subscriber %d packet %d: ssrc %d seq %d after %d", n, i, got[i].SSRC, got[i].SequenceNumber, got[i-1].SequenceNumber)
			}
			if got[i].Timestamp-got[i-1].Timestamp != 3000 {
				t.Fatalf("timestamp step %d, want 3000", got[i].Timestamp-got[i-1].Timestamp)
			}
		}
		if ssrc == 42 {
			t.Fatalf("subscriber sees the publisher's SSRC")
		}
	}
	if src.keyframeRequests() == 0 {
		t.Fatal("no keyframe was requested for subscribers waiting to start")
	}
}

func TestSimulcastSwitchKeepsSequenceContinuous(t *testing.T) {
	m := NewManager(testConfig())
	defer m.Close()
	pub, _, _ := join(t, m, "r", "pub")
	_, _, tr := join(t, m, "r", "sub")
	info := vp8Info()
	info.RIDs = []string{"q", "h", "f"}
	track, err := pub.Publish(info)
	if err != nil {
		t.Fatal(err)
	}
	low, high := newFakeSource(), newFakeSource()
	if err := track.AddLayer("q", low); err != nil {
		t.Fatal(err)
	}
	if err := track.AddLayer("f", high); err != nil {
		t.Fatal(err)
	}
	d := tr.track(track.ID())
	d.SetTargetLayer(0)
	for i := range 5 {
		low.ch <- vp8Packet(1, uint16(500+i), uint32(1000+3000*i), i == 0, 50)
	}
	w := tr.writer(track.ID())
	w.waitN(t, 5)
	d.SetTargetLayer(2)
	// The high layer's delta frames do not switch; the low layer goes on meanwhile.
	high.ch <- vp8Packet(2, 7000, 50000, false, 500)
	eventually(t, "high layer packet seen", func() bool { return len(high.ch) == 0 })
	low.ch <- vp8Packet(1, 505, 16000, false, 50)
	w.waitN(t, 6)
	high.ch <- vp8Packet(2, 7001, 53000, true, 500)
	high.ch <- vp8Packet(2, 7002, 56000, false, 500)
	got := w.waitN(t, 8)
	for i := 1; i < len(got); i++ {
		if got[i].SequenceNumber != got[i-1].SequenceNumber+1 {
			t.Fatalf("sequence broken at %d: %d after %d", i, got[i].SequenceNumber, got[i-1].SequenceNumber)
		}
		if int32(got[i].Timestamp-got[i-1].Timestamp) <= 0 {
			t.Fatalf("timestamp went backwards at %d", i)
		}
	}
	if len(got[6].Payload) != 500 {
		t.Fatalf("packet after the switch is not from the high layer")
	}
	// Late low-layer packets after the switch are not forwarded.
	low.ch <- vp8Packet(1, 506, 19000, false, 50)
	high.ch <- vp8Packet(2, 7003, 59000, false, 500)
	got = w.waitN(t, 9)
	if len(got) != 9 || len(got[8].Payload) != 500 {
		t.Fatalf("old layer leaked after switch: %d packets", len(got))
	}
	if m.Stats().LayerSwitches.Load() != 1 {
		t.Fatalf("layer switches = %d", m.Stats().LayerSwitches.Load())
	}
}

func TestNACKAnsweredFromCache(t *testing.T) {
	m := NewManager(testConfig())
	defer m.Close()
	pub, _, _ := join(t, m, "r", "pub")
	_, _, tr := join(t, m, "r", "sub")
	track, _ := pub.Publish(vp8Info())
	src := newFakeSource()
	_ = track.AddLayer("", src)
	for i := range 10 {
		src.ch <- vp8Packet(9, uint16(65530+i), uint32(3000*i), i == 0, 60+i)
	}
	w := tr.writer(track.ID())
	got := w.waitN(t, 10)
	lost := got[7] // across the source's sequence wrap
	d := tr.track(track.ID())
	d.HandleRTCP([]rtcp.Packet{&rtcp.TransportLayerNack{
		MediaSSRC: lost.SSRC,
		Nacks:     []rtcp.NackPair{{PacketID: lost.SequenceNumber}},
	}})
	got = w.waitN(t, 11)
	re := got[10]
	if re.SequenceNumber != lost.SequenceNumber || re.Timestamp != lost.Timestamp || len(re.Payload) != len(lost.Payload) {
		t.Fatalf("retransmission %+v does not match the original %+v", re.Header, lost.Header)
	}
	if m.Stats().Retransmits.Load() != 1 {
		t.Fatalf("retransmits = %d", m.Stats().Retransmits.Load())
	}
}

func TestPLIsFromManySubscribersAreThrottled(t *testing.T) {
	cfg := testConfig()
	cfg.KeyframeInterval = time.Hour
	m := NewManager(cfg)
	defer m.Close()
	pub, _, _ := join(t, m, "r", "pub")
	var trs []*transport
	for i := range 5 {
		_, _, tr := join(t, m, "r", "s"+string(rune('a'+i)))
		trs = append(trs, tr)
	}
	track, _ := pub.Publish(vp8Info())
	src := newFakeSource()
	_ = track.AddLayer("", src)
	src.ch <- vp8Packet(1, 1, 1, true, 10)
	for _, tr := range trs {
		tr.writer(track.ID()).waitN(t, 1)
	}
	before := src.keyframeRequests()
	for _, tr := range trs {
		tr.track(track.ID()).HandleRTCP([]rtcp.Packet{&rtcp.PictureLossIndication{}})
	}
	if got := src.keyframeRequests() - before; got != 1 {
		t.Fatalf("%d PLIs reached the publisher within one interval, want 1", got)
	}
	if m.Stats().PLIsReceived.Load() != 5 {
		t.Fatalf("PLIs received = %d", m.Stats().PLIsReceived.Load())
	}
}

func TestRefreshReplacesOldSessionAndOldCleanupIsHarmless(t *testing.T) {
	m := NewManager(testConfig())
	defer m.Close()
	other, otherSink, _ := join(t, m, "r", "other")
	_ = other
	old, oldSink, _ := join(t, m, "r", "alice")
	track, _ := old.Publish(vp8Info())
	src := newFakeSource()
	_ = track.AddLayer("", src)
	neu, _, _ := join(t, m, "r", "alice")
	ended := false
	for _, ev := range oldSink.all() {
		if e, ok := ev.(SessionEnded); ok && e.Reason == ReasonReplaced {
			ended = true
		}
	}
	if !ended {
		t.Fatal("old session was not told it was replaced")
	}
	old.Leave(ReasonDisconnected) // the old socket's late cleanup
	r := m.Room("r")
	if r == nil || r.participantByIdentity("alice") != neu {
		t.Fatal("the old session's cleanup removed the new session")
	}
	if len(r.Participants()) != 2 {
		t.Fatalf("participants = %d, want 2", len(r.Participants()))
	}
	var unpublished bool
	for _, ev := range otherSink.all() {
		if e, ok := ev.(TrackUnpublished); ok && e.Track == track.ID() {
			unpublished = true
		}
	}
	if !unpublished {
		t.Fatal("the replaced session's track was not unpublished")
	}
}

func TestCapacityCountsIdentitiesNotSessions(t *testing.T) {
	cfg := testConfig()
	cfg.MaxParticipants = 2
	m := NewManager(cfg)
	defer m.Close()
	join(t, m, "r", "a")
	join(t, m, "r", "b")
	join(t, m, "r", "b") // a refresh needs no free place
	_, err := m.Join("r", JoinParams{Identity: "c", Sink: &sink{}})
	if err != ErrRoomFull {
		t.Fatalf("third identity: err = %v, want ErrRoomFull", err)
	}
}

func TestDataMessagesHaveOneOrderForEveryone(t *testing.T) {
	m := NewManager(testConfig())
	defer m.Close()
	a, as, _ := join(t, m, "r", "a")
	b, bs, _ := join(t, m, "r", "b")
	done := make(chan struct{})
	go func() {
		for i := range 50 {
			_ = a.SendState("x", []byte(`{"i":`+string(rune('0'+i%10))+`}`), "")
		}
		close(done)
	}()
	for range 50 {
		_ = b.SendChat("hi", "")
	}
	<-done
	seqs := func(s *sink) []uint64 {
		var out []uint64
		for _, ev := range s.all() {
			if d, ok := ev.(DataMessage); ok {
				out = append(out, d.Seq)
			}
		}
		return out
	}
	sa, sb := seqs(as), seqs(bs)
	if len(sa) != 100 || len(sb) != 100 {
		t.Fatalf("got %d and %d messages, want 100 each (sender included)", len(sa), len(sb))
	}
	for i := range sa {
		if sa[i] != uint64(i+1) || sb[i] != uint64(i+1) {
			t.Fatalf("message %d: seq %d / %d, want %d", i, sa[i], sb[i], i+1)
		}
	}
}

func TestNoDataWithoutGrant(t *testing.T) {
	m := NewManager(testConfig())
	defer m.Close()
	p, err := m.Join("r", JoinParams{Identity: "viewer", Sink: &sink{}, Permissions: Permissions{Subscribe: true}})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.SendChat("x", ""); err != ErrNotAllowed {
		t.Fatalf("chat without grant: %v", err)
	}
	if _, err := p.Publish(vp8Info()); err != ErrNotAllowed {
		t.Fatalf("publish without grant: %v", err)
	}
}

func TestLateJoinerAndLeaveRemoveTracks(t *testing.T) {
	m := NewManager(testConfig())
	defer m.Close()
	pub, _, _ := join(t, m, "r", "pub")
	track, _ := pub.Publish(vp8Info())
	src := newFakeSource()
	_ = track.AddLayer("", src)
	src.ch <- vp8Packet(1, 1, 1, true, 10)
	_, lateSink, late := join(t, m, "r", "late")
	src.ch <- vp8Packet(1, 2, 2, true, 10)
	late.writer(track.ID()).waitN(t, 1)
	if j, ok := lateSink.all()[0].(Joined); !ok || len(j.Others) != 1 || len(j.Others[0].Tracks) != 1 {
		t.Fatalf("late joiner's first event = %#v", lateSink.all()[0])
	}
	pub.Leave(ReasonLeft)
	eventually(t, "track removed from late joiner", func() bool { return late.track(track.ID()) == nil })
	// The source ended with the publisher.
	select {
	case <-src.done:
	default:
		t.Fatal("publisher's source not closed")
	}
}

func TestSourceEndUnpublishes(t *testing.T) {
	m := NewManager(testConfig())
	defer m.Close()
	pub, _, _ := join(t, m, "r", "pub")
	_, s, sub := join(t, m, "r", "sub")
	track, _ := pub.Publish(vp8Info())
	src := newFakeSource()
	_ = track.AddLayer("", src)
	_ = src.Close()
	eventually(t, "unpublish after the source ended", func() bool {
		for _, ev := range s.all() {
			if e, ok := ev.(TrackUnpublished); ok && e.Track == track.ID() {
				return sub.track(track.ID()) == nil
			}
		}
		return false
	})
	if pub.Track(track.ID()) != nil {
		t.Fatal("publisher still lists the ended track")
	}
}

func TestRoomClosesWhenEmpty(t *testing.T) {
	m := NewManager(testConfig())
	defer m.Close()
	p, _, _ := join(t, m, "r", "a")
	p.Leave(ReasonLeft)
	p.Leave(ReasonLeft) // idempotent
	if m.Room("r") != nil {
		t.Fatal("empty room still open")
	}
	join(t, m, "r", "b")
	if m.Room("r") == nil {
		t.Fatal("room not recreated")
	}
}

func TestLongStreamIsNeverMistakenForStale(t *testing.T) {
	stats := &Stats{}
	cfg := testConfig()
	track := newUpTrack(vp8Info(), stats, cfg.Logger, cfg.KeyframeInterval, nil, nil)
	d := newDownTrack(track, "s", stats)
	w := &countingWriter{}
	d.Bind(Binding{Writer: w, SSRC: 5, PayloadType: 96})
	_ = track.addDownTrack(d)
	l := &upLayer{cache: newTestCache()}
	const n = 140000 // more than twice the sequence number space
	for i := range n {
		track.forwardNow(l, vp8Packet(1, uint16(i), uint32(i*3000), i == 0, 20))
	}
	if w.n != n {
		t.Fatalf("forwarded %d of %d packets (stale drops: %d)", w.n, n, stats.Drops(DropStale))
	}
	// A packet far older than the newest is stale.
	old := n - 5000
	track.forwardNow(l, vp8Packet(1, uint16(old), 0, false, 20))
	if stats.Drops(DropStale) != 1 || w.n != n {
		t.Fatalf("old packet forwarded")
	}
}

type countingWriter struct{ n int }

func (w *countingWriter) WriteRTP(h *rtp.Header, p []byte) (int, error) {
	w.n++
	return 12 + len(p), nil
}

func newTestCache() *rtputil.PacketCache { return rtputil.NewPacketCache(64, maxPacketSize) }

func audioPacket(seq uint16, level uint8) []byte {
	p := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 111, SequenceNumber: seq, Timestamp: uint32(seq) * 960, SSRC: 7}, Payload: []byte{1, 2, 3}}
	_ = p.Header.SetExtension(1, []byte{0x80 | level})
	b, _ := p.Marshal()
	return b
}

func TestActiveSpeakerFollowsAudioLevel(t *testing.T) {
	m := NewManager(testConfig())
	defer m.Close()
	alice, _, _ := join(t, m, "r", "alice")
	_, bobSink, bob := join(t, m, "r", "bob")
	track, _ := alice.Publish(TrackInfo{Kind: KindAudio, Codec: CodecParams{MimeType: "audio/opus", ClockRate: 48000}, AudioLevelExtID: 1})
	src := newFakeSource()
	_ = track.AddLayer("", src)
	speakers := func() [][]Speaker {
		var out [][]Speaker
		for _, ev := range bobSink.all() {
			if e, ok := ev.(ActiveSpeakers); ok {
				out = append(out, e.Speakers)
			}
		}
		return out
	}
	seq := uint16(0)
	send := func(level uint8, n int) {
		for range n {
			seq++
			src.ch <- audioPacket(seq, level)
		}
	}
	send(20, 30) // -20 dBov: speaking
	eventually(t, "alice announced as speaker", func() bool {
		s := speakers()
		return len(s) > 0 && len(s[len(s)-1]) == 1 && s[len(s)-1][0].Identity == "alice"
	})
	// Subscribers receive the level too, with their own extension id (none negotiated here).
	if got := bob.writer(track.ID()).packets(); len(got) == 0 {
		t.Fatal("audio not forwarded")
	}
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		send(127, 5) // silence
		time.Sleep(20 * time.Millisecond)
		s := speakers()
		if len(s) > 1 && len(s[len(s)-1]) == 0 {
			return
		}
	}
	t.Fatal("silence did not clear the active speakers")
}

// notReady drops everything (as pion does before SRTP keys exist) until ready is set.
type notReady struct {
	recorder
	ready bool
}

func (w *notReady) WriteRTP(h *rtp.Header, payload []byte) (int, error) {
	if !w.ready {
		return 0, nil
	}
	return w.recorder.WriteRTP(h, payload)
}

// A keyframe swallowed by a transport that is not ready yet must not start the stream: the
// subscriber's first packet is always a keyframe.
func TestStreamStartsOverWhenTheFirstKeyframeIsLost(t *testing.T) {
	stats := &Stats{}
	cfg := testConfig()
	track := newUpTrack(vp8Info(), stats, cfg.Logger, cfg.KeyframeInterval, nil, nil)
	d := newDownTrack(track, "s", stats)
	w := &notReady{}
	d.Bind(Binding{Writer: w, SSRC: 5, PayloadType: 96})
	_ = track.addDownTrack(d)
	l := &upLayer{cache: newTestCache()}
	track.forwardNow(l, vp8Packet(1, 1, 0, true, 20)) // lost: not ready
	w.ready = true
	track.forwardNow(l, vp8Packet(1, 2, 3000, false, 21)) // a delta must not be first
	track.forwardNow(l, vp8Packet(1, 3, 6000, true, 22))
	got := w.packets()
	if len(got) != 1 || len(got[0].Payload) != 22 {
		t.Fatalf("subscriber got %d packets; want exactly the second keyframe", len(got))
	}
	if stats.Drops(DropNotReady) != 1 {
		t.Fatalf("not_ready drops = %d", stats.Drops(DropNotReady))
	}
}

// Remote participants shown by a relay do not take this node's places.
func TestRemoteParticipantsDoNotCountLocally(t *testing.T) {
	cfg := testConfig()
	cfg.MaxParticipants = 1
	m := NewManager(cfg)
	defer m.Close()
	join(t, m, "r", "local")
	if _, err := m.Join("r", JoinParams{Identity: "remote", Origin: "other-node", Sink: &sink{}}); err != nil {
		t.Fatalf("a remote participant was refused: %v", err)
	}
	if _, err := m.Join("r", JoinParams{Identity: "second-local", Sink: &sink{}}); err != ErrRoomFull {
		t.Fatalf("second local participant: %v, want ErrRoomFull", err)
	}
}

// A layer suspended upstream (paused by the node relaying it) is left at once: allocation
// moves the subscriber to the next layer down, and back when the layer resumes.
func TestAllocationSkipsSuspendedLayer(t *testing.T) {
	m := NewManager(testConfig())
	defer m.Close()
	track, d := twoLayers(t, m, 500)
	allocate := func() int {
		allocateLayers([]*DownTrack{d}, 0, time.Now())
		return d.Stats().TargetLayer
	}
	if got := allocate(); got != 1 {
		t.Fatalf("target %d with both layers live and no limit, want 1", got)
	}
	track.SetLayerSuspended(1, true)
	if got := allocate(); got != 0 {
		t.Fatalf("target %d with the top layer suspended, want 0", got)
	}
	track.SetLayerSuspended(1, false)
	if got := allocate(); got != 1 {
		t.Fatalf("target %d after the top layer resumed, want 1", got)
	}
}

// A packet NACKed again before rtxInterval has passed is not resent again, nor more than
// maxRetransmits times in all: on a congested path the repeats would add to the congestion.
func TestRepeatedNACKsAreNotAllAnswered(t *testing.T) {
	m := NewManager(testConfig())
	defer m.Close()
	pub, _, _ := join(t, m, "r", "pub")
	_, _, tr := join(t, m, "r", "sub")
	track, _ := pub.Publish(vp8Info())
	src := newFakeSource()
	_ = track.AddLayer("", src)
	for i := range 5 {
		src.ch <- vp8Packet(9, uint16(100+i), uint32(3000*i), i == 0, 60)
	}
	w := tr.writer(track.ID())
	lost := w.waitN(t, 5)[2]
	d := tr.track(track.ID())
	nack := []rtcp.Packet{&rtcp.TransportLayerNack{MediaSSRC: lost.SSRC, Nacks: []rtcp.NackPair{{PacketID: lost.SequenceNumber}}}}
	d.HandleRTCP(nack)
	d.HandleRTCP(nack) // the receiver's next NACK, 100 ms later, before the resend could arrive
	w.waitN(t, 6)
	if got := m.Stats().Retransmits.Load(); got != 1 {
		t.Fatalf("retransmits = %d after two NACKs in quick succession, want 1", got)
	}
	for i := 0; i < maxRetransmits+2; i++ {
		time.Sleep(rtxInterval + 20*time.Millisecond)
		d.HandleRTCP(nack)
	}
	eventually(t, "the allowed retransmissions", func() bool { return m.Stats().Retransmits.Load() == maxRetransmits })
	time.Sleep(50 * time.Millisecond)
	if got, suppressed := m.Stats().Retransmits.Load(), m.Stats().RetransmitsSuppressed.Load(); got != maxRetransmits || suppressed != 4 {
		t.Fatalf("retransmits = %d, suppressed = %d; want %d and 4 (one early repeat, three past the limit)", got, suppressed, maxRetransmits)
	}
}

// A subscriber held on a low layer by its estimate is tried on the next layer up after the
// layer has held a while (GCC's estimate cannot grow past 1.5× what it sees received, so
// without a try it would stay low for good); a try that the estimate does not follow ends, and
// the next waits longer; one that it follows stays.
func TestAllocationProbesTheNextLayerUp(t *testing.T) {
	m := NewManager(testConfig())
	defer m.Close()
	track, d := twoLayers(t, m, 1000)
	now := time.Now()
	lowBPS, highBPS := int(track.LayerBitrate(0, now)), int(track.LayerBitrate(1, now))
	if lowBPS <= 0 || highBPS <= 2*lowBPS {
		t.Fatalf("layer bitrates %d and %d: the test needs the top layer well above the low one", lowBPS, highBPS)
	}
	tight := (lowBPS + highBPS) / 2 // the low layer fits, the high one does not
	allocate := func(budget int) int {
		allocateLayers([]*DownTrack{d}, budget, time.Now())
		return d.Stats().TargetLayer
	}
	due := func() {
		d.probeMu.Lock()
		d.probe.next = time.Now().Add(-time.Millisecond)
		d.probeMu.Unlock()
	}
	if got := allocate(tight); got != 0 {
		t.Fatalf("target %d on a budget that fits only the low layer, want 0", got)
	}
	if got := allocate(tight); got != 0 {
		t.Fatalf("target %d: tried before the low layer held %v", got, probeFirst)
	}
	due()
	if got := allocate(tight); got != 1 {
		t.Fatalf("target %d once a try was due, want 1 (the try)", got)
	}
	if got := allocate(tight); got != 1 {
		t.Fatalf("target %d during the try's window, want it held at 1", got)
	}
	d.probeMu.Lock()
	d.probe.until = time.Now().Add(-time.Millisecond) // the window ends, the estimate did not follow
	d.probeMu.Unlock()
	if got := allocate(tight); got != 0 {
		t.Fatalf("target %d after a try the estimate did not follow, want back to 0", got)
	}
	d.probeMu.Lock()
	wait := time.Until(d.probe.next)
	d.probeMu.Unlock()
	if wait < probeFirst-time.Second {
		t.Fatalf("next try in %v after a failed one, want about %v", wait, probeFirst)
	}
	if got := allocate(tight); got != 0 {
		t.Fatalf("target %d right after a failed try, want 0", got)
	}
	due()
	if got := allocate(tight); got != 1 {
		t.Fatalf("target %d at the second try, want 1", got)
	}
	if got := allocate(lowBPS / 2); got != 0 {
		t.Fatalf("target %d when the estimate fell below the low layer during the try, want 0", got)
	}
	due()
	if got := allocate(tight); got != 1 {
		t.Fatalf("target %d at the third try, want 1", got)
	}
	if got := allocate(2 * highBPS); got != 1 {
		t.Fatalf("target %d when the estimate followed, want 1", got)
	}
	d.probeMu.Lock()
	running := !d.probe.until.IsZero()
	d.probeMu.Unlock()
	if running || allocate(2*highBPS) != 1 {
		t.Fatal("a try the estimate followed did not end as a success")
	}
}

// A switch to another simulcast layer waits for that layer's keyframe and keeps asking for it
// while the layer's packets go by: a lone request that was throttled away (or lost) must not
// leave the subscriber on the old layer until the encoder happens to send a keyframe.
func TestLayerSwitchAsksAgainForItsKeyframe(t *testing.T) {
	m := NewManager(testConfig()) // keyframe requests spaced by 1 ms
	defer m.Close()
	pub, _, _ := join(t, m, "r", "pub")
	_, _, tr := join(t, m, "r", "sub")
	info := vp8Info()
	info.RIDs = []string{"q", "f"}
	track, err := pub.Publish(info)
	if err != nil {
		t.Fatal(err)
	}
	low, high := newFakeSource(), newFakeSource()
	_ = track.AddLayer("q", low)
	_ = track.AddLayer("f", high)
	d := tr.track(track.ID())
	d.SetTargetLayer(0)
	low.ch <- vp8Packet(1, 1, 1000, true, 50)
	w := tr.writer(track.ID())
	w.waitN(t, 1)

	d.SetTargetLayer(1)
	before := high.keyframeRequests()
	for i := range 5 { // deltas of the target layer, 5 ms apart
		high.ch <- vp8Packet(2, uint16(10+i), uint32(3000*i), false, 60)
		time.Sleep(5 * time.Millisecond)
	}
	eventually(t, "keyframe requests go on while the switch waits", func() bool { return high.keyframeRequests() >= before+3 })
	high.ch <- vp8Packet(2, 20, 30000, true, 70)
	eventually(t, "the switch completes at the keyframe", func() bool { return d.Stats().Layer == 1 })
}

// twoLayers publishes a two-layer simulcast track in room "r" of m, sends one keyframe on each
// layer (50 bytes on the low one, highSize on the high one) and returns the track and a
// subscriber's down track once both layers are active.
func twoLayers(t *testing.T, m *Manager, highSize int) (*UpTrack, *DownTrack) {
	t.Helper()
	pub, _, _ := join(t, m, "r", "pub")
	_, _, tr := join(t, m, "r", "sub")
	info := vp8Info()
	info.RIDs = []string{"q", "f"}
	track, err := pub.Publish(info)
	if err != nil {
		t.Fatal(err)
	}
	low, high := newFakeSource(), newFakeSource()
	if err := track.AddLayer("q", low); err != nil {
		t.Fatal(err)
	}
	if err := track.AddLayer("f", high); err != nil {
		t.Fatal(err)
	}
	low.ch <- vp8Packet(1, 1, 1000, true, 50)
	high.ch <- vp8Packet(2, 1, 1000, true, highSize)
	eventually(t, "both layers active", func() bool {
		now := time.Now()
		return track.layerActive(0, now) && track.layerActive(1, now)
	})
	return track, tr.track(track.ID())
}

// A participant of another node (a relay proxy) whose client failed over to this node joins
// here as the same identity: the others see one move, no join and no leave, and one copy.
func TestFailoverJoinIsAMove(t *testing.T) {
	m := NewManager(testConfig())
	defer m.Close()
	_, watcherSink, _ := join(t, m, "r", "watcher")
	proxy := joinRemote(t, m, "r", "alice", "dead-node")
	track, _ := proxy.Publish(vp8Info())
	neu, _, _ := join(t, m, "r", "alice")

	moves := eventsOf[ParticipantMoved](watcherSink)
	if len(moves) != 1 || moves[0].From != proxy.SID() || moves[0].Participant.SID != neu.SID() {
		t.Fatalf("moves seen by the watcher: %+v", moves)
	}
	for _, j := range eventsOf[ParticipantJoined](watcherSink) {
		if j.Participant.Identity == "alice" && j.Participant.SID == neu.SID() {
			t.Fatal("the watcher saw the moved alice join")
		}
	}
	if left := eventsOf[ParticipantLeft](watcherSink); len(left) != 0 {
		t.Fatalf("the watcher saw leaves: %+v", left)
	}
	unpublished := false
	for _, e := range eventsOf[TrackUnpublished](watcherSink) {
		unpublished = unpublished || e.Track == track.ID()
	}
	if !unpublished {
		t.Fatal("the old copy's track was not unpublished")
	}
	proxy.Leave(ReasonLeft) // the relay's late removal of the dead node's proxy
	r := m.Room("r")
	if n := len(r.Participants()); n != 2 || r.participantByIdentity("alice") != neu {
		t.Fatalf("room has %d participants (want watcher and one alice, the new one)", n)
	}
	if left := eventsOf[ParticipantLeft](watcherSink); len(left) != 0 {
		t.Fatalf("the proxy's late removal was shown as a leave: %+v", left)
	}
}
