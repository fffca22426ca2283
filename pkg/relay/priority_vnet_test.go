package relay_test

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/transport/v4/vnet"

	"github.com/cascade-sfu/cascade/pkg/cluster"
	"github.com/cascade-sfu/cascade/pkg/room"
)

// flowSpec is one synthetic RTP stream the test publishes: packets per second and size.
type flowSpec struct {
	pps, size int
	video     bool
	sent      atomic.Int64
	src       *chanSource
}

// run sends the stream until stop: one packet per frame, a VP8 keyframe every second for video.
func (f *flowSpec) run(stop <-chan struct{}, ssrc uint32) {
	tick := time.NewTicker(time.Second / time.Duration(f.pps))
	defer tick.Stop()
	for i := uint16(0); ; i++ {
		select {
		case <-stop:
			return
		case <-tick.C:
		}
		payload := make([]byte, f.size)
		if f.video {
			payload[0] = 0x10 // VP8 descriptor: start of partition
			if int(i)%f.pps != 0 {
				payload[1] = 0x01 // an inter frame
			}
		}
		pkt := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 96, SequenceNumber: i, Timestamp: uint32(i) * (90000 / uint32(f.pps)), SSRC: ssrc, Marker: true}, Payload: payload}
		b, _ := pkt.Marshal()
		select {
		case f.src.ch <- b:
			f.sent.Add(1)
		case <-stop:
			return
		}
	}
}

// countingTransport binds each of a subscriber's down tracks to its own packet counter.
type countingTransport struct {
	mu    sync.Mutex
	downs map[string]*room.DownTrack // "audio", "screen", "camera"
	count map[string]*atomic.Int64
}

type countWriter struct{ n *atomic.Int64 }

func (w countWriter) WriteRTP(_ *rtp.Header, payload []byte) (int, error) {
	w.n.Add(1)
	return 12 + len(payload), nil
}

func kindOf(d *room.DownTrack) string {
	info := d.Track().Info()
	switch {
	case info.Kind == room.KindAudio:
		return "audio"
	case info.Source == room.SourceScreen:
		return "screen"
	default:
		return "camera"
	}
}

func (c *countingTransport) AddTrack(d *room.DownTrack) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	k := kindOf(d)
	c.downs[k] = d
	if c.count[k] == nil {
		c.count[k] = &atomic.Int64{}
	}
	d.Bind(room.Binding{Writer: countWriter{c.count[k]}, SSRC: 1, PayloadType: 96})
	return nil
}
func (*countingTransport) RemoveTrack(*room.DownTrack) error { return nil }
func (*countingTransport) BandwidthEstimate() int            { return 0 }

func (c *countingTransport) received(k string) int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	if n := c.count[k]; n != nil {
		return n.Load()
	}
	return 0
}

func (c *countingTransport) layer(k string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if d := c.downs[k]; d != nil {
		return d.Stats().Layer
	}
	return -1
}

// roomMedia is what publishRoomMedia sends: about 1.85 Mbps in all, audio 48 kbps, a screen
// share of 400 kbps and a camera with three layers of 100, 300 and 960 kbps.
type roomMedia struct {
	audio, screen, camQ, camH, camF *flowSpec
	camera                          room.TrackID
}

// publishRoomMedia publishes a microphone, a screen share and a simulcast camera for pub and
// sends their packets until the test ends.
func publishRoomMedia(t *testing.T, pub *room.Participant) *roomMedia {
	t.Helper()
	m := &roomMedia{
		audio:  &flowSpec{pps: 50, size: 120},
		screen: &flowSpec{pps: 50, size: 1000, video: true},
		camQ:   &flowSpec{pps: 25, size: 500, video: true},
		camH:   &flowSpec{pps: 50, size: 750, video: true},
		camF:   &flowSpec{pps: 100, size: 1200, video: true},
	}
	publish := func(info room.TrackInfo, layers map[string]*flowSpec) room.TrackID {
		t.Helper()
		up, err := pub.Publish(info)
		if err != nil {
			t.Fatal(err)
		}
		for rid, f := range layers {
			f.src = &chanSource{ch: make(chan []byte, 256), done: make(chan struct{})}
			if err := up.AddLayer(rid, f.src); err != nil {
				t.Fatal(err)
			}
		}
		return up.ID()
	}
	publish(room.TrackInfo{Kind: room.KindAudio, Source: room.SourceMicrophone, Codec: room.CodecParams{MimeType: "audio/opus", ClockRate: 48000, Channels: 2}},
		map[string]*flowSpec{"": m.audio})
	publish(room.TrackInfo{Kind: room.KindVideo, Source: room.SourceScreen, Codec: room.CodecParams{MimeType: "video/VP8", ClockRate: 90000}},
		map[string]*flowSpec{"": m.screen})
	m.camera = publish(room.TrackInfo{Kind: room.KindVideo, Source: room.SourceCamera, Codec: room.CodecParams{MimeType: "video/VP8", ClockRate: 90000}, RIDs: []string{"q", "h", "f"}},
		map[string]*flowSpec{"q": m.camQ, "h": m.camH, "f": m.camF})
	stop := make(chan struct{})
	var senders sync.WaitGroup
	for i, f := range []*flowSpec{m.audio, m.screen, m.camQ, m.camH, m.camF} {
		senders.Add(1)
		go func() { defer senders.Done(); f.run(stop, uint32(100+i)) }()
	}
	t.Cleanup(func() { close(stop); senders.Wait() })
	return m
}

// On a relay link too narrow for everything a room sends across it, the sending node pauses
// the camera's top layer and keeps audio, the screen share and the lower camera layers whole;
// the subscriber on the far node moves down a layer instead of losing packets everywhere. When
// the link widens again, the layer comes back.
func TestShortLinkKeepsPriorities(t *testing.T) {
	if testing.Short() {
		t.Skip("slow: waits for the bandwidth estimate to fall and recover")
	}
	const oneWay = 10 * time.Millisecond
	netA, netB := vnetHost(t, "198.51.100.1"), vnetHost(t, "198.51.100.2")
	// Everything toward hcm crosses a 1.3 Mbps token bucket with 60 kB of queue.
	const narrow = 1_300_000
	tbf := vnet.NewTBFQueue(narrow, 6000, 60_000)
	toB, err := vnet.NewQueue(netB, tbf)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = toB.Close() })
	startWAN(t, oneWay, netA, toB)

	c := newCluster(t, "eu", "hcm")
	dir := cluster.NewMemoryStore()
	eu := startSpanNode(t, c, "eu", netA, dir)
	hcm := startSpanNode(t, c, "hcm", netB, dir)

	sub := &countingTransport{downs: map[string]*room.DownTrack{}, count: map[string]*atomic.Int64{}}
	pub := spanRoom(t, eu, hcm, dir, sub)

	m := publishRoomMedia(t, pub)
	audio, screen, camQ := m.audio, m.screen, m.camQ

	link := func() (paused, estimate int) {
		for _, l := range eu.coord.Links().Links() {
			if l.Peer == "hcm" {
				return l.PausedLayers, l.BandwidthEstimate
			}
		}
		return 0, 0
	}
	eventually(t, 40*time.Second, "eu pauses a layer on its 1.3 Mbps link to hcm", func() bool {
		p, _ := link()
		return p > 0
	})

	// Over a window in which the layer stays paused, audio and the screen share arrive whole,
	// and the subscriber's camera runs on a lower layer.
	var ok bool
	for attempt := 0; attempt < 8 && !ok; attempt++ {
		sentA, sentS, sentQ := audio.sent.Load(), screen.sent.Load(), camQ.sent.Load()
		gotA, gotS, gotC := sub.received("audio"), sub.received("screen"), sub.received("camera")
		time.Sleep(3 * time.Second)
		dSentA, dSentS, dSentQ := audio.sent.Load()-sentA, screen.sent.Load()-sentS, camQ.sent.Load()-sentQ
		dA, dS, dC := sub.received("audio")-gotA, sub.received("screen")-gotS, sub.received("camera")-gotC
		paused, est := link()
		t.Logf("window %d: audio %d/%d, screen %d/%d, camera %d packets on layer %d; eu→hcm estimate %d bps, %d layers paused",
			attempt, dA, dSentA, dS, dSentS, dC, sub.layer("camera"), est, paused)
		ok = paused > 0 && float64(dA) >= 0.95*float64(dSentA) && float64(dS) >= 0.95*float64(dSentS) &&
			float64(dC) >= 0.8*float64(dSentQ) && sub.layer("camera") < 2
	}
	if !ok {
		t.Fatal("no 3 s window in which audio and the screen share arrived whole (≥ 95%) and the camera ran, below its top layer")
	}

	// Widen the link: the estimate climbs back and the top layer resumes.
	tbf.SetRate(50_000_000)
	widened := time.Now()
	lastLog := widened
	eventually(t, 60*time.Second, "eu resumes every layer once the link is wide again", func() bool {
		p, est := link()
		if time.Since(lastLog) >= 5*time.Second {
			lastLog = time.Now()
			t.Logf("%v after widening: estimate %d bps, %d layers paused", time.Since(widened).Round(time.Second), est, p)
		}
		return p == 0
	})
	eventually(t, 20*time.Second, "the subscriber on hcm is back on the camera's top layer", func() bool {
		return sub.layer("camera") == 2
	})
}

// Through a transit node, a layer paused on the first, short hop is reported on down the
// path: eu → sgp is narrow, and hcm, which receives eu's tracks through sgp, learns that the
// camera's top layer is paused and moves its subscriber down at once.
func TestPausedLayerReportedThroughTransit(t *testing.T) {
	if testing.Short() {
		t.Skip("slow: waits for the bandwidth estimate to fall")
	}
	netEU, netHCM, netSGP := vnetHost(t, "198.51.100.1"), vnetHost(t, "198.51.100.2"), vnetHost(t, "198.51.100.3")
	toSGP, err := vnet.NewQueue(netSGP, vnet.NewTBFQueue(1_300_000, 6000, 60_000))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = toSGP.Close() })
	startWAN(t, 5*time.Millisecond, netEU, netHCM, toSGP)

	c := newCluster(t, "eu", "hcm", "sgp")
	dir := cluster.NewMemoryStore()
	through := func(far cluster.NodeID) spanOpts {
		return spanOpts{via: func(to cluster.NodeID) cluster.NodeID {
			if to == far {
				return "sgp"
			}
			return to
		}}
	}
	eu := startSpanNode(t, c, "eu", netEU, dir, through("hcm"))
	hcm := startSpanNode(t, c, "hcm", netHCM, dir, through("eu"))
	startSpanNode(t, c, "sgp", netSGP, dir)

	sub := &countingTransport{downs: map[string]*room.DownTrack{}, count: map[string]*atomic.Int64{}}
	pub := spanRoom(t, eu, hcm, dir, sub)
	m := publishRoomMedia(t, pub)

	eventually(t, 20*time.Second, "bob on hcm receives alice's camera through sgp", func() bool { return sub.received("camera") > 0 })
	for _, l := range hcm.coord.Links().Links() {
		if l.Peer == "eu" {
			t.Fatal("hcm has a direct link to eu: the test's path policy was not followed")
		}
	}
	suspended := func() bool {
		r := hcm.rooms.Room("r")
		if r == nil {
			return false
		}
		up := r.Track(m.camera)
		return up != nil && up.LayerSuspended(2)
	}
	eventually(t, 40*time.Second, "hcm learns that eu paused the camera's top layer on its way to sgp", suspended)
	eventually(t, 10*time.Second, "bob's camera runs below its top layer", func() bool {
		l := sub.layer("camera")
		return l >= 0 && l < 2
	})
}
