package vnet

import (
	"context"
	"encoding/binary"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/transport/v4/vnet"
	"github.com/pion/webrtc/v4"

	"github.com/cascade-sfu/cascade/pkg/auth"
	"github.com/cascade-sfu/cascade/pkg/client"
	"github.com/cascade-sfu/cascade/pkg/rtc"
)

// The test media: one VP8 packet per frame, 30 frames a second. The payload is a VP8
// payload descriptor (S=1), the first byte of the VP8 payload header (its P bit clear on a
// keyframe), the sending publisher's marker, and the send time (Unix ns): receivers tell
// publishers apart and measure the one-way delay. Audio is Opus-framed noise, 50 packets a second.
const (
	frameInterval = 33 * time.Millisecond
	audioInterval = 20 * time.Millisecond
	payloadSize   = 600
)

func videoPayload(marker byte, key bool) []byte {
	p := make([]byte, payloadSize)
	p[0] = 0x10
	if !key {
		p[1] = 0x01
	}
	p[2] = marker
	binary.BigEndian.PutUint64(p[3:11], uint64(time.Now().UnixNano()))
	return p
}

// stampCapture sets the abs-capture-time extension (id, 0: not negotiated) to now.
func stampCapture(h *rtp.Header, id uint8) {
	if id == 0 {
		return
	}
	if b, err := rtp.NewAbsCaptureTimeExtension(time.Now()).Marshal(); err == nil {
		_ = h.SetExtension(id, b)
	}
}

// extID is the id negotiated for uri among params' header extensions, 0 if none.
func extID(params webrtc.RTPParameters, uri string) uint8 {
	for _, h := range params.HeaderExtensions {
		if h.URI == uri {
			return uint8(h.ID)
		}
	}
	return 0
}

func isKeyframe(p []byte) bool { return len(p) > 1 && p[0]&0x10 != 0 && p[1]&0x01 == 0 }

// video sends one publisher's VP8 frames. A frame is a keyframe when it is the first, every
// keyEvery frames (0: never by itself), or when a PLI asked for one.
type video struct {
	track    *webrtc.TrackLocalStaticRTP
	marker   byte
	keyEvery int
	wantKey  atomic.Bool
	absID    atomic.Uint32 // negotiated abs-capture-time id, 0 until known (then stamped on each packet)
	plis     atomic.Int64  // PLIs the publisher received
	keys     atomic.Int64  // keyframes sent
}

func newVideo(t *testing.T, marker byte, keyEvery int) *video {
	t.Helper()
	tr, err := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000}, "cam", "stream-"+string(marker))
	if err != nil {
		t.Fatal(err)
	}
	return &video{track: tr, marker: marker, keyEvery: keyEvery}
}

func (v *video) send(ctx context.Context) {
	tick := time.NewTicker(frameInterval)
	defer tick.Stop()
	for i := 0; ; i++ {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		key := i == 0 || (v.keyEvery > 0 && i%v.keyEvery == 0)
		if v.wantKey.Swap(false) {
			key = true
		}
		if key {
			v.keys.Add(1)
		}
		pkt := &rtp.Packet{
			Header:  rtp.Header{Version: 2, SequenceNumber: uint16(i), Timestamp: uint32(i) * 3000, Marker: true},
			Payload: videoPayload(v.marker, key),
		}
		stampCapture(&pkt.Header, uint8(v.absID.Load()))
		_ = v.track.WriteRTP(pkt)
	}
}

// readRTCP reads the publisher's RTCP for its video until the sender closes: a PLI makes the
// next frame a keyframe.
func (v *video) readRTCP(s *webrtc.RTPSender) {
	for {
		pkts, _, err := s.ReadRTCP()
		if err != nil {
			return
		}
		for _, p := range pkts {
			if _, ok := p.(*rtcp.PictureLossIndication); ok {
				v.plis.Add(1)
				v.wantKey.Store(true)
			}
		}
	}
}

func sendAudio(ctx context.Context, tr *webrtc.TrackLocalStaticRTP) {
	tick := time.NewTicker(audioInterval)
	defer tick.Stop()
	for i := 0; ; i++ {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		_ = tr.WriteRTP(&rtp.Packet{
			Header:  rtp.Header{Version: 2, SequenceNumber: uint16(i), Timestamp: uint32(i) * 960, Marker: i == 0},
			Payload: []byte{0xfc, 0xff, 0xfe, byte(i)},
		})
	}
}

// drainRTCP reads a sender's RTCP so that pion's interceptors see it, until the sender closes.
func drainRTCP(s *webrtc.RTPSender) {
	buf := make([]byte, 1500)
	for {
		if _, _, err := s.Read(buf); err != nil {
			return
		}
	}
}

// goroutines runs a client's media and RTCP goroutines; stop ends the media and waits for all
// of them (RTCP readers end when their PeerConnection closes, which stop's caller does first).
type goroutines struct {
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

func newGoroutines() *goroutines {
	ctx, cancel := context.WithCancel(context.Background())
	return &goroutines{ctx: ctx, cancel: cancel}
}

func (g *goroutines) run(f func()) {
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		f()
	}()
}

// receiver records what a client receives: packets per kind, video packets per publisher
// marker, whether the first video packet was a keyframe, when the first keyframe came, and the
// least one-way delay of the video.
type receiver struct {
	wg sync.WaitGroup

	mu         sync.Mutex // guards the fields below
	packets    map[string]int
	byMarker   map[byte]int
	sawVideo   bool
	firstIsKey bool
	firstKey   time.Time
	minDelay   time.Duration
	// Video packets that carried the publisher's abs-capture-time, and the least one-way
	// delay it gives.
	captured        int
	minCaptureDelay time.Duration
}

func newReceiver() *receiver {
	return &receiver{packets: map[string]int{}, byMarker: map[byte]int{}, minDelay: time.Hour, minCaptureDelay: time.Hour}
}

func (r *receiver) onTrack(tr *webrtc.TrackRemote, recv *webrtc.RTPReceiver) {
	kind := tr.Kind().String()
	absID := extID(recv.GetParameters(), rtc.ExtAbsCaptureTime)
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		for {
			p, _, err := tr.ReadRTP()
			if err != nil {
				return
			}
			r.record(kind, &p.Header, absID, p.Payload)
		}
	}()
}

func (r *receiver) record(kind string, h *rtp.Header, absID uint8, payload []byte) {
	now := time.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	r.packets[kind]++
	if kind != "video" || len(payload) < 11 {
		return
	}
	var capture rtp.AbsCaptureTimeExtension
	if absID != 0 && capture.Unmarshal(h.GetExtension(absID)) == nil {
		r.captured++
		r.minCaptureDelay = min(r.minCaptureDelay, now.Sub(capture.CaptureTime()))
	}
	key := isKeyframe(payload)
	if !r.sawVideo {
		r.sawVideo, r.firstIsKey = true, key
	}
	if key && r.firstKey.IsZero() {
		r.firstKey = now
	}
	r.byMarker[payload[2]]++
	sent := time.Unix(0, int64(binary.BigEndian.Uint64(payload[3:11])))
	r.minDelay = min(r.minDelay, now.Sub(sent))
}

func (r *receiver) count(kind string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.packets[kind]
}

func (r *receiver) from(marker byte) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.byMarker[marker]
}

// start reports whether video arrived, whether its first packet was a keyframe, and when the
// first keyframe came.
func (r *receiver) start() (saw, firstIsKey bool, firstKey time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.sawVideo, r.firstIsKey, r.firstKey
}

// capture reports how many video packets carried abs-capture-time and the least one-way delay
// it gives.
func (r *receiver) capture() (int, time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.captured, r.minCaptureDelay
}

func (r *receiver) delay() time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.minDelay
}

// post performs a WHIP or WHEP exchange for pc and returns the session's resource URL.
func (c *testCluster) post(pc *webrtc.PeerConnection, url, tok string) string {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	loc, err := client.PostOffer(ctx, c.http, pc, url, tok)
	if err != nil {
		c.t.Fatal(err)
	}
	return loc
}

// whipPublisher is a WHIP client (a broadcaster's encoder) on a host of the virtual network.
type whipPublisher struct {
	c        *testCluster
	node     *node
	room     string
	identity string
	video    *video
	location string
}

// publishWHIP publishes v (and Opus audio if withAudio) to room on n as identity, from host,
// and starts sending.
func (c *testCluster) publishWHIP(n *node, host *vnet.Net, roomName, identity string, v *video, withAudio bool) *whipPublisher {
	t := c.t
	t.Helper()
	pc, err := clientAPI(t, host).NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	g := newGoroutines()
	t.Cleanup(func() { g.cancel(); _ = pc.Close(); g.wg.Wait() })
	tr, err := pc.AddTransceiverFromTrack(v.track, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly})
	if err != nil {
		t.Fatal(err)
	}
	var audio *webrtc.TrackLocalStaticRTP
	if withAudio {
		audio, err = webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2}, "mic", "stream-"+identity)
		if err != nil {
			t.Fatal(err)
		}
		atr, err := pc.AddTransceiverFromTrack(audio, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly})
		if err != nil {
			t.Fatal(err)
		}
		g.run(func() { drainRTCP(atr.Sender()) })
	}
	g.run(func() { v.readRTCP(tr.Sender()) })
	loc := c.post(pc, n.http.URL+"/whip/"+roomName, token(t, roomName, identity, auth.Grants{CanPublish: true}))
	v.absID.Store(uint32(extID(tr.Sender().GetParameters().RTPParameters, rtc.ExtAbsCaptureTime)))
	g.run(func() { v.send(g.ctx) })
	if audio != nil {
		g.run(func() { sendAudio(g.ctx, audio) })
	}
	return &whipPublisher{c: c, node: n, room: roomName, identity: identity, video: v, location: loc}
}

// stop ends the publication with DELETE on its WHIP resource.
func (p *whipPublisher) stop() {
	t := p.c.t
	t.Helper()
	req, _ := http.NewRequest(http.MethodDelete, p.location, nil)
	req.Header.Set("Authorization", "Bearer "+token(t, p.room, p.identity, auth.Grants{CanPublish: true}))
	resp, err := p.c.http.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("DELETE %s: %d", p.location, resp.StatusCode)
	}
}

// whepViewer is a WHEP player on a host of the virtual network.
type whepViewer struct {
	*receiver
	joined time.Time // when its POST went out
}

// watchWHEP starts a WHEP session on n with videoSlots video and, if withAudio, one audio
// receive-only m-line.
func (c *testCluster) watchWHEP(n *node, host *vnet.Net, roomName, identity string, videoSlots int, withAudio bool) *whepViewer {
	t := c.t
	t.Helper()
	pc, err := clientAPI(t, host).NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	v := &whepViewer{receiver: newReceiver()}
	pc.OnTrack(v.onTrack)
	t.Cleanup(func() { _ = pc.Close(); v.wg.Wait() })
	kinds := make([]webrtc.RTPCodecType, videoSlots, videoSlots+1)
	for i := range kinds {
		kinds[i] = webrtc.RTPCodecTypeVideo
	}
	if withAudio {
		kinds = append(kinds, webrtc.RTPCodecTypeAudio)
	}
	for _, k := range kinds {
		if _, err := pc.AddTransceiverFromKind(k, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
			t.Fatal(err)
		}
	}
	v.joined = time.Now()
	c.post(pc, n.http.URL+"/whep/"+roomName, token(t, roomName, identity, auth.Grants{CanSubscribe: true}))
	return v
}

// participant joins room on n over the WebSocket protocol (pkg/client) from host, publishes v
// and receives everyone else.
func (c *testCluster) participant(n *node, host *vnet.Net, roomName, identity string, v *video) *receiver {
	t := c.t
	t.Helper()
	rx := newReceiver()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	cl, err := client.Dial(ctx, client.Options{
		URL: n.wsURL(), API: clientAPI(t, host), OnTrack: rx.onTrack,
		Token: token(t, roomName, identity, auth.Grants{CanPublish: true, CanSubscribe: true, CanPublishData: true}),
	})
	if err != nil {
		t.Fatalf("%s joins %s: %v", identity, n.id, err)
	}
	g := newGoroutines()
	t.Cleanup(func() { g.cancel(); g.wg.Wait(); cl.Close(); rx.wg.Wait() })
	if _, err := cl.Publish(ctx, v.track); err != nil {
		t.Fatalf("%s publishes on %s: %v", identity, n.id, err)
	}
	g.run(func() { v.send(g.ctx) })
	return rx
}
