package loadgen

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/interceptor"
	"github.com/pion/rtcp"
	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media"

	"github.com/cascade-sfu/cascade/pkg/client"
)

// apis holds the pion APIs of a run: one shared by all viewers, one for the publishers.
//
// Viewers do not share one UDP socket: pion's ICE UDP mux tells its connections apart by the
// remote address, and an SFU serving all media on one port (Cascade, LiveKit) is the same
// remote address for every viewer. Each viewer has one socket, bound to the one local
// address that routes to the server (no gathering on other interfaces).
type apis struct {
	viewer, publisher *webrtc.API
}

// newAPIs builds the APIs for a server at serverHost.
func newAPIs(serverHost string) (*apis, error) {
	ip, err := localIPFor(serverHost)
	if err != nil {
		return nil, err
	}
	a := &apis{}

	// Viewers: NACK (loss is counted after repair), receiver reports and TWCC feedback so the
	// server runs its usual congestion control; no stats interceptor.
	vm := &webrtc.MediaEngine{}
	if err := vm.RegisterDefaultCodecs(); err != nil {
		a.close()
		return nil, err
	}
	vr := &interceptor.Registry{}
	if err := webrtc.ConfigureNack(vm, vr); err != nil {
		a.close()
		return nil, err
	}
	if err := webrtc.ConfigureRTCPReports(vr); err != nil {
		a.close()
		return nil, err
	}
	if err := webrtc.ConfigureTWCCSender(vm, vr); err != nil {
		a.close()
		return nil, err
	}
	vse := webrtc.SettingEngine{}
	vse.SetIPFilter(func(i net.IP) bool { return i.Equal(ip) })
	vse.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	vse.SetIncludeLoopbackCandidate(ip.IsLoopback())
	// Sockets, timers and buffers per viewer are what limits a generator; the viewers keep
	// pion's defaults otherwise.
	a.viewer = webrtc.NewAPI(webrtc.WithMediaEngine(vm), webrtc.WithInterceptorRegistry(vr), webrtc.WithSettingEngine(vse))

	pm := &webrtc.MediaEngine{}
	if err := pm.RegisterDefaultCodecs(); err != nil {
		a.close()
		return nil, err
	}
	pr := &interceptor.Registry{}
	if err := webrtc.RegisterDefaultInterceptors(pm, pr); err != nil {
		a.close()
		return nil, err
	}
	pse := webrtc.SettingEngine{}
	pse.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	pse.SetIncludeLoopbackCandidate(ip.IsLoopback())
	pse.SetIPFilter(func(i net.IP) bool { return i.Equal(ip) })
	a.publisher = webrtc.NewAPI(webrtc.WithMediaEngine(pm), webrtc.WithInterceptorRegistry(pr), webrtc.WithSettingEngine(pse))
	return a, nil
}

func (a *apis) close() {}

// localIPFor returns the local IPv4 address the kernel would use to reach host (no packet is
// sent).
func localIPFor(host string) (net.IP, error) {
	c, err := net.Dial("udp4", net.JoinHostPort(host, "9"))
	if err != nil {
		return nil, fmt.Errorf("no IPv4 route to %s: %w", host, err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).IP, nil
}

// publisher sends one looped video source over WHIP.
type publisher struct {
	pc       *webrtc.PeerConnection
	resource string
	frames   atomic.Uint64
	keyframe atomic.Bool // a key frame was asked for
	track    *webrtc.TrackLocalStaticSample
}

func startPublisher(ctx context.Context, api *webrtc.API, hc *http.Client, src Source, endpoint, token, id string) (*publisher, error) {
	pc, err := api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		return nil, err
	}
	track, err := webrtc.NewTrackLocalStaticSample(webrtc.RTPCodecCapability{MimeType: src.mime(), ClockRate: 90000}, "video", id)
	if err != nil {
		_ = pc.Close()
		return nil, err
	}
	sender, err := pc.AddTrack(track)
	if err != nil {
		_ = pc.Close()
		return nil, err
	}
	// Offer only the codec the source sends: a server that takes the first codec of the
	// m-line (LiveKit) would otherwise read H.264 packets as VP8.
	var only []webrtc.RTPCodecParameters
	for _, c := range sender.GetParameters().Codecs {
		if strings.EqualFold(c.MimeType, src.mime()) {
			only = append(only, c)
		}
	}
	for _, tr := range pc.GetTransceivers() {
		if tr.Sender() == sender && len(only) > 0 {
			if err := tr.SetCodecPreferences(only); err != nil {
				_ = pc.Close()
				return nil, err
			}
		}
	}
	p := &publisher{pc: pc, track: track}
	go p.readRTCP(sender)
	connected := make(chan struct{})
	var once sync.Once
	pc.OnConnectionStateChange(func(s webrtc.PeerConnectionState) {
		if s == webrtc.PeerConnectionStateConnected {
			once.Do(func() { close(connected) })
		}
	})
	loc, err := client.PostOffer(ctx, hc, pc, endpoint, token)
	if err != nil {
		_ = pc.Close()
		return nil, classifyErr("whip", err)
	}
	p.resource = loc
	select {
	case <-connected:
	case <-ctx.Done():
		_ = pc.Close()
		return nil, classifyErr("whip", fmt.Errorf("not connected: %w", ctx.Err()))
	}
	return p, nil
}

// readRTCP reads the sender's RTCP so that its interceptors (NACK, reports) see it, and
// notes a picture loss indication or a full intra request: the pattern then sends a key
// frame next, as an encoder would (a file source cannot).
func (p *publisher) readRTCP(s *webrtc.RTPSender) {
	buf := make([]byte, 1500)
	for {
		n, _, err := s.Read(buf)
		if err != nil {
			return
		}
		pkts, err := rtcp.Unmarshal(buf[:n])
		if err != nil {
			continue
		}
		for _, pkt := range pkts {
			switch pkt.(type) {
			case *rtcp.PictureLossIndication, *rtcp.FullIntraRequest:
				p.keyframe.Store(true)
			}
		}
	}
}

// run paces the source's frames until ctx ends.
func (p *publisher) run(ctx context.Context, src Source) error {
	r, err := src.open()
	if err != nil {
		return err
	}
	defer r.close()
	next := time.Now()
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-timer.C:
		}
		if kf, ok := r.(keyframer); ok && p.keyframe.Swap(false) {
			kf.forceKeyframe()
		}
		frame, dur, err := r.next()
		if err != nil {
			return err
		}
		if err := p.track.WriteSample(media.Sample{Data: frame, Duration: dur}); err != nil && !errors.Is(err, io.ErrClosedPipe) {
			return err
		}
		p.frames.Add(1)
		next = next.Add(dur)
		if d := time.Until(next); d > 0 {
			timer.Reset(d)
		} else {
			next = time.Now() // fell behind: do not burst to catch up
			timer.Reset(0)
		}
	}
}

func (p *publisher) close(hc *http.Client, token string) {
	client.DeleteResource(hc, p.resource, token)
	_ = p.pc.Close()
}

// viewer receives and counts packets; it never decodes.
type viewer struct {
	start   time.Time
	firstNS atomic.Int64 // time from start to the first media packet; 0 before
	first   chan struct{}
	once    sync.Once
	packets atomic.Uint64 // every packet read, repairs and duplicates included
	bytes   atomic.Uint64 // RTP bytes (header + payload) of those packets

	pc       *webrtc.PeerConnection
	ws       *client.Client
	resource string
	token    string

	mu     sync.Mutex    // guards seqs
	seqs   []*SeqTracker // one per received track
	closed bool
	wg     sync.WaitGroup // the track readers
}

func newViewer(token string) *viewer {
	return &viewer{start: time.Now(), first: make(chan struct{}), token: token}
}

// onTrack starts the track's reader: one goroutine per track, reading into one buffer.
func (v *viewer) onTrack(t *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
	s := &SeqTracker{}
	v.mu.Lock()
	if v.closed {
		v.mu.Unlock()
		return
	}
	v.seqs = append(v.seqs, s)
	v.wg.Add(1)
	v.mu.Unlock()
	go func() {
		defer v.wg.Done()
		buf := make([]byte, 1500)
		for {
			n, _, err := t.Read(buf)
			if err != nil {
				return
			}
			if n < 12 {
				continue
			}
			v.packets.Add(1)
			v.bytes.Add(uint64(n))
			s.Add(uint16(buf[2])<<8 | uint16(buf[3]))
			if v.firstNS.Load() == 0 {
				v.once.Do(func() {
					v.firstNS.Store(max(int64(time.Since(v.start)), 1))
					close(v.first)
				})
			}
		}
	}()
}

// counts sums the viewer's sequence trackers.
func (v *viewer) counts() (expected, received uint64) {
	v.mu.Lock()
	defer v.mu.Unlock()
	for _, s := range v.seqs {
		expected += s.Expected()
		received += s.Received()
	}
	return expected, received
}

// startWHEP negotiates a receive-only viewer (one video, one audio transceiver) over WHEP.
func startWHEP(ctx context.Context, api *webrtc.API, hc *http.Client, endpoint, token string) (*viewer, error) {
	v := newViewer(token)
	pc, err := api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		return nil, classifyErr("peer", err)
	}
	v.pc = pc
	for _, k := range []webrtc.RTPCodecType{webrtc.RTPCodecTypeVideo, webrtc.RTPCodecTypeAudio} {
		if _, err := pc.AddTransceiverFromKind(k, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
			v.close(hc)
			return nil, classifyErr("peer", err)
		}
	}
	pc.OnTrack(v.onTrack)
	if v.resource, err = client.PostOffer(ctx, hc, pc, endpoint, token); err != nil {
		v.close(hc)
		return nil, classifyErr("whep", err)
	}
	return v, nil
}

// startWS joins as a WebSocket participant with a subscribe-only token.
func startWS(ctx context.Context, api *webrtc.API, wsURL, token, name string) (*viewer, error) {
	v := newViewer(token)
	c, err := client.Dial(ctx, client.Options{URL: wsURL, Token: token, Name: name, API: api, OnTrack: v.onTrack})
	if err != nil {
		return nil, classifyErr("join", err)
	}
	v.ws = c
	return v, nil
}

// waitMedia waits for the first packet.
func (v *viewer) waitMedia(ctx context.Context) error {
	select {
	case <-v.first:
		return nil
	case <-ctx.Done():
		return &ViewerError{Kind: "no media", Err: ErrNoMedia}
	}
}

func (v *viewer) close(hc *http.Client) {
	v.mu.Lock()
	v.closed = true
	v.mu.Unlock()
	if v.ws != nil {
		v.ws.Close()
	}
	if v.pc != nil {
		client.DeleteResource(hc, v.resource, v.token)
		_ = v.pc.Close()
	}
	v.wg.Wait()
}

// ViewerError is why a viewer or publisher failed; Kind groups failures in the summary.
type ViewerError struct {
	Kind string // e.g. "whep 429", "whep", "join", "no media"
	Err  error
}

func (e *ViewerError) Error() string { return e.Kind + ": " + e.Err.Error() }
func (e *ViewerError) Unwrap() error { return e.Err }

// classifyErr names an error's kind: the stage, plus the HTTP status when there is one.
func classifyErr(stage string, err error) error {
	kind := stage
	if s := err.Error(); strings.Contains(s, ": ") {
		// PostOffer's errors read "POST URL: 429 Too Many Requests: ...".
		if i := strings.Index(s, ": "); i >= 0 && strings.HasPrefix(s, "POST ") {
			rest := s[i+2:]
			if len(rest) >= 3 && rest[0] >= '1' && rest[0] <= '5' {
				kind += " " + rest[:3]
			}
		}
	}
	if errors.Is(err, context.DeadlineExceeded) {
		kind += " timeout"
	}
	return &ViewerError{Kind: kind, Err: err}
}
