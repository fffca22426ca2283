package integration

import (
	"sync"
	"testing"
	"time"

	"github.com/pion/interceptor"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"

	"github.com/cascade-sfu/cascade/pkg/client"
	"github.com/cascade-sfu/cascade/pkg/rtc"
)

// sendSideWatch records, at a subscriber, the transport-wide sequence numbers of the media it
// receives and the sender reports the node sends.
type sendSideWatch struct {
	mu      sync.Mutex
	twcc    map[uint32][]uint16 // SSRC -> transport-wide sequence numbers, in arrival order
	reports []rtcp.SenderReport
	last    map[uint32]uint32 // SSRC -> RTP timestamp of the newest packet
	packets map[uint32]int
	clock   map[uint32]uint32 // SSRC -> clock rate
}

func (w *sendSideWatch) NewInterceptor(string) (interceptor.Interceptor, error) {
	return &sendSideWatcher{w: w}, nil
}

type sendSideWatcher struct {
	interceptor.NoOp
	w *sendSideWatch
}

func (s *sendSideWatcher) BindRemoteStream(info *interceptor.StreamInfo, reader interceptor.RTPReader) interceptor.RTPReader {
	s.w.mu.Lock()
	s.w.clock[info.SSRC] = info.ClockRate
	s.w.mu.Unlock()
	var id uint8
	for _, e := range info.RTPHeaderExtensions {
		if e.URI == "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01" {
			id = uint8(e.ID)
		}
	}
	return interceptor.RTPReaderFunc(func(b []byte, a interceptor.Attributes) (int, interceptor.Attributes, error) {
		n, attrs, err := reader.Read(b, a)
		if err != nil {
			return n, attrs, err
		}
		var h rtp.Header
		if _, err := h.Unmarshal(b[:n]); err == nil {
			s.w.mu.Lock()
			if ext := h.GetExtension(id); id != 0 && len(ext) == 2 {
				s.w.twcc[h.SSRC] = append(s.w.twcc[h.SSRC], uint16(ext[0])<<8|uint16(ext[1]))
			}
			s.w.last[h.SSRC] = h.Timestamp
			s.w.packets[h.SSRC]++
			s.w.mu.Unlock()
		}
		return n, attrs, nil
	})
}

func (s *sendSideWatcher) BindRTCPReader(reader interceptor.RTCPReader) interceptor.RTCPReader {
	return interceptor.RTCPReaderFunc(func(b []byte, a interceptor.Attributes) (int, interceptor.Attributes, error) {
		n, attrs, err := reader.Read(b, a)
		if err != nil {
			return n, attrs, err
		}
		if pkts, err := rtcp.Unmarshal(b[:n]); err == nil {
			s.w.mu.Lock()
			for _, p := range pkts {
				if sr, ok := p.(*rtcp.SenderReport); ok {
					s.w.reports = append(s.w.reports, *sr)
				}
			}
			s.w.mu.Unlock()
		}
		return n, attrs, nil
	})
}

// The node sends a subscriber's media on its own SRTP write path (the subscriber can decrypt
// it), numbers every packet for transport-wide congestion control, one sequence across the
// subscriber's tracks, and sends sender reports that match what the subscriber received (A/V
// sync and receiver statistics depend on them).
func TestSubscriberGetsTransportSequenceNumbersAndSenderReports(t *testing.T) {
	n := startNode(t)
	pub := n.join("sendside", "alice")
	w := &sendSideWatch{last: map[uint32]uint32{}, packets: map[uint32]int{}, clock: map[uint32]uint32{}, twcc: map[uint32][]uint16{}}
	sub := n.join("sendside", "bob", w)
	src := startSource(t)
	video, audio := vp8Track(t, "cam", "s", ""), opusTrack(t, "mic", "s")
	if _, err := pub.Publish(ctx10(t), video, audio); err != nil {
		t.Fatal(err)
	}
	src.video([]*webrtc.TrackLocalStaticRTP{video}, []byte{'f'}, []int{1200})
	src.audio(audio)
	tracks := publishedTracks(t, sub, "video", "audio")
	eventually(t, 20*time.Second, "media and two rounds of sender reports for both tracks", func() bool {
		w.mu.Lock()
		defer w.mu.Unlock()
		seen := map[uint32]int{}
		for _, r := range w.reports {
			seen[r.SSRC]++
		}
		return sub.rx.packetsOf(tracks["video"].ID) > 60 && len(seen) == 2 && minValue(seen) >= 2
	}, n.statsString)

	// The packets took the node's own SRTP write path (keys derived from the handshake), and the
	// subscriber decrypted them: it goes on receiving.
	own := n.engine.MediaPortStats().OwnPathPackets
	if own < 50 {
		t.Fatalf("%d packets on the node's own write path", own)
	}
	before := sub.rx.packetsOf(tracks["video"].ID)
	eventually(t, 10*time.Second, "more video after the switch to the own write path", func() bool {
		return sub.rx.packetsOf(tracks["video"].ID) > before+30
	}, n.statsString)

	w.mu.Lock()
	defer w.mu.Unlock()
	// Transport-wide sequence numbers: on every packet, one sequence across the tracks, each
	// number used once, increasing within a track (loopback does not reorder; the tracks are
	// read on goroutines of their own, so their interleaving here means nothing).
	seen := map[uint16]bool{}
	lo, hi := uint16(0xffff), uint16(0)
	for ssrc, seqs := range w.twcc {
		if len(seqs) < 50 || len(seqs) < w.packets[ssrc]-1 {
			t.Fatalf("SSRC %d: %d of %d packets carried a transport-wide sequence number", ssrc, len(seqs), w.packets[ssrc])
		}
		for i, q := range seqs {
			if seen[q] {
				t.Fatalf("transport-wide sequence number %d used twice", q)
			}
			seen[q] = true
			lo, hi = min(lo, q), max(hi, q)
			if i > 0 && int16(q-seqs[i-1]) <= 0 {
				t.Fatalf("SSRC %d: transport-wide sequence went %d -> %d", ssrc, seqs[i-1], q)
			}
		}
	}
	if len(w.twcc) != 2 || int(hi-lo)+1-len(seen) > 5 {
		t.Fatalf("%d tracks, sequence numbers %d..%d with %d missing", len(w.twcc), lo, hi, int(hi-lo)+1-len(seen))
	}
	// Sender reports: for SSRCs the subscriber receives, counting about what it received, with
	// an RTP time near the newest packet's (≤ 1 s of the clock apart) and a current NTP time.
	for _, r := range w.reports[len(w.reports)-2:] {
		got, ok := w.packets[r.SSRC]
		if !ok {
			t.Fatalf("sender report for SSRC %d, which the subscriber does not receive", r.SSRC)
		}
		if int(r.PacketCount) > got+100 || int(r.PacketCount) < got/2 {
			t.Fatalf("sender report counts %d packets on SSRC %d, the subscriber got %d", r.PacketCount, r.SSRC, got)
		}
		clock := int64(w.clock[r.SSRC])
		if d := int64(int32(r.RTPTime - w.last[r.SSRC])); d > clock || d < -clock {
			t.Fatalf("sender report RTP time %d is %d ticks from the newest packet's %d", r.RTPTime, d, w.last[r.SSRC])
		}
		ntp := time.Unix(int64(r.NTPTime>>32)-2208988800, 0)
		if since := time.Since(ntp); since > time.Minute || since < -time.Minute {
			t.Fatalf("sender report NTP time %v", ntp)
		}
		if r.OctetCount == 0 {
			t.Fatal("sender report with no octets")
		}
	}
}

func minValue(m map[uint32]int) int {
	lo := 1 << 30
	for _, v := range m {
		lo = min(lo, v)
	}
	return lo
}

// A subscriber that insists on being the DTLS server (it answers passive) leaves the node
// without the keys of its own write path: media goes through pion's, as before.
func TestSubscriberAsDTLSServerStillReceives(t *testing.T) {
	n := startNode(t)
	pub := n.join("dtls-role", "alice")
	api := loopbackAPIWith(t, func(se *webrtc.SettingEngine) error { return se.SetAnsweringDTLSRole(webrtc.DTLSRoleServer) })
	rx := newReceiver()
	c, err := client.Dial(ctx10(t), client.Options{
		URL: n.wsURL(), Token: n.token("dtls-role", "bob", everything), API: api, OnTrack: rx.onTrack,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(); rx.wait() })
	src := startSource(t)
	video := vp8Track(t, "cam", "s", "")
	if _, err := pub.Publish(ctx10(t), video); err != nil {
		t.Fatal(err)
	}
	src.video([]*webrtc.TrackLocalStaticRTP{video}, []byte{'f'}, []int{1200})
	id := publishedTrack(t, &peer{Client: c, rx: rx}, "video").ID
	eventually(t, 20*time.Second, "video through pion's write path", func() bool { return rx.packetsOf(id) > 60 }, n.statsString)
	if own := n.engine.MediaPortStats().OwnPathPackets; own != 0 {
		t.Fatalf("%d packets on the own write path without its keys", own)
	}
}

// The subscriber's RTCP reaches the node's own read path once the own write path is on (the
// media port decrypts it, instead of pion's chain of goroutines), and everything it carries is
// acted on as before: NACKs are answered (no packet missing despite 10% first-transmission
// loss), PLIs reach the down track (each one counted once); transport-wide feedback reaching
// the estimator is what TestSimulcastDropsLayerWhenBandwidthIsShort sees. The PeerConnection
// stays up for several ICE disconnected timeouts while pion sees only a datagram a second of it.
func TestSubscriberRTCPTakesTheOwnReadPath(t *testing.T) {
	n := startNode(t, nodeOptions{rtc: func(c *rtc.Config) {
		c.ICEDisconnectedTimeout, c.ICEFailedTimeout = 2*time.Second, 3*time.Second
	}})
	lv := startLossyVideo(t, n, "rtcp-in", 1200)
	sub, vt := lv.sub, lv.track
	eventually(t, 20*time.Second, "media, and the subscriber's RTCP on the own read path", func() bool {
		return sub.rx.packetsOf(vt.ID) > 100 && n.engine.MediaPortStats().OwnPathRTCP > 20
	}, n.statsString)

	var ssrc uint32
	for _, r := range sub.Subscriber().GetReceivers() {
		if tr := r.Track(); tr != nil && tr.Kind() == webrtc.RTPCodecTypeVideo {
			ssrc = uint32(tr.SSRC())
		}
	}
	if ssrc == 0 {
		t.Fatal("the subscriber has no video receiver")
	}
	plis := n.rooms.Stats().PLIsReceived.Load()
	ownBefore := n.engine.MediaPortStats().OwnPathRTCP
	for range 5 {
		if err := sub.Subscriber().WriteRTCP([]rtcp.Packet{&rtcp.PictureLossIndication{MediaSSRC: ssrc}}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	eventually(t, 10*time.Second, "the subscriber's five PLIs at the down track", func() bool {
		return n.rooms.Stats().PLIsReceived.Load() == plis+5
	}, n.statsString)

	// Three ICE disconnected timeouts of media and RTCP; the session must stay up throughout.
	count := sub.rx.packetsOf(vt.ID)
	time.Sleep(6 * time.Second)
	if got := sub.rx.packetsOf(vt.ID); got < count+200 {
		t.Fatalf("the subscriber got %d packets in 6 s (%s)", got-count, n.statsString())
	}
	own := n.engine.MediaPortStats().OwnPathRTCP - ownBefore
	if own < 30 {
		t.Fatalf("%d RTCP datagrams on the own read path in over 6 s", own)
	}
	lv.checkRepaired(t, n, 30)
}
