// Package agent is the latency lab's publisher and subscriber: the publisher sends real VP8
// frames from an IVF file and Opus from an Ogg file over WHIP, stamping abs-capture-time on
// every packet; the subscriber plays the room over WHEP and feeds every video packet to a
// measure.Recorder. Path asks the nodes which relay links carry the media.
package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/interceptor"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/rtp/codecs"
	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media/ivfreader"

	"github.com/cascade-sfu/cascade/pkg/api"
	"github.com/cascade-sfu/cascade/pkg/client"
	"github.com/cascade-sfu/cascade/pkg/lab/measure"
	"github.com/cascade-sfu/cascade/pkg/rtc"
	"github.com/cascade-sfu/cascade/pkg/rtputil"
)

// Sentinel errors.
var (
	ErrNoExtension = errors.New("agent: the server did not negotiate abs-capture-time")
	ErrMedia       = errors.New("agent: bad media file")
	ErrNoFrame     = errors.New("agent: no complete keyframe")
)

// FirstFrameWait is how much longer than its duration a subscriber waits for a first frame.
const FirstFrameWait = 30 * time.Second

// mtu is the largest RTP payload the publisher sends.
const mtu = 1200

// newAPI builds a pion API with the default codecs and interceptors (NACK, reports) and the
// abs-capture-time extension on audio and video.
func newAPI() (*webrtc.API, error) {
	m := &webrtc.MediaEngine{}
	if err := m.RegisterDefaultCodecs(); err != nil {
		return nil, err
	}
	for _, k := range []webrtc.RTPCodecType{webrtc.RTPCodecTypeVideo, webrtc.RTPCodecTypeAudio} {
		if err := m.RegisterHeaderExtension(webrtc.RTPHeaderExtensionCapability{URI: rtc.ExtAbsCaptureTime}, k); err != nil {
			return nil, err
		}
	}
	reg := &interceptor.Registry{}
	if err := webrtc.RegisterDefaultInterceptors(m, reg); err != nil {
		return nil, err
	}
	return webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithInterceptorRegistry(reg)), nil
}

func extID(exts []webrtc.RTPHeaderExtensionParameter) uint8 {
	for _, e := range exts {
		if e.URI == rtc.ExtAbsCaptureTime {
			return uint8(e.ID)
		}
	}
	return 0
}

// waitConnected waits until pc is connected.
func waitConnected(ctx context.Context, pc *webrtc.PeerConnection) error {
	ch := make(chan webrtc.PeerConnectionState, 8)
	pc.OnConnectionStateChange(func(s webrtc.PeerConnectionState) {
		select {
		case ch <- s:
		default:
		}
	})
	if pc.ConnectionState() == webrtc.PeerConnectionStateConnected {
		return nil
	}
	for {
		select {
		case s := <-ch:
			switch s {
			case webrtc.PeerConnectionStateConnected:
				return nil
			case webrtc.PeerConnectionStateFailed, webrtc.PeerConnectionStateClosed:
				return fmt.Errorf("agent: connection %s", s)
			}
		case <-ctx.Done():
			return fmt.Errorf("agent: waiting for the connection: %w", ctx.Err())
		}
	}
}

// PublishConfig configures Publish.
type PublishConfig struct {
	WHIP  string // e.g. http://node:7880/whip/room
	Token string
	IVF   string // VP8 IVF file, looped
	Ogg   string // Opus Ogg file, looped
	// Ready, if set, is called once media flows.
	Ready func()
}

// Publish publishes until ctx ends.
func Publish(ctx context.Context, cfg PublishConfig) error {
	hc := &http.Client{Timeout: 15 * time.Second}
	wapi, err := newAPI()
	if err != nil {
		return err
	}
	pc, err := wapi.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		return err
	}
	defer pc.Close()
	video, err := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000}, "video", "lab")
	if err != nil {
		return err
	}
	audio, err := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2}, "audio", "lab")
	if err != nil {
		return err
	}
	var wg sync.WaitGroup
	defer wg.Wait() // after pc.Close (deferred later, runs first)
	var senders []*webrtc.RTPSender
	var keyframeWanted atomic.Bool // the video's receiver asked for a keyframe (PLI, FIR)
	for i, t := range []*webrtc.TrackLocalStaticRTP{video, audio} {
		s, err := pc.AddTransceiverFromTrack(t, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly})
		if err != nil {
			return err
		}
		senders = append(senders, s.Sender())
		wg.Add(1)
		go func() { // read RTCP so that the NACK responder and reports work, and hear PLIs
			defer wg.Done()
			for {
				pkts, _, err := s.Sender().ReadRTCP()
				if err != nil {
					return
				}
				if i == 0 && wantsKeyframe(pkts) {
					keyframeWanted.Store(true)
				}
			}
		}()
	}
	defer pc.Close()
	octx, cancel := context.WithTimeout(ctx, 15*time.Second)
	resource, err := client.PostOffer(octx, hc, pc, cfg.WHIP, cfg.Token)
	if err == nil {
		err = waitConnected(octx, pc)
	}
	cancel()
	if err != nil {
		return fmt.Errorf("publishing to %s: %w", cfg.WHIP, err)
	}
	defer client.DeleteResource(hc, resource, cfg.Token)
	vid, aid := extID(senders[0].GetParameters().HeaderExtensions), extID(senders[1].GetParameters().HeaderExtensions)
	if vid == 0 {
		return ErrNoExtension
	}
	if cfg.Ready != nil {
		cfg.Ready()
	}
	errs := make(chan error, 2)
	wg.Add(2)
	go func() { defer wg.Done(); errs <- sendVideo(ctx, video, cfg.IVF, vid, &keyframeWanted) }()
	go func() { defer wg.Done(); errs <- sendAudio(ctx, audio, cfg.Ogg, aid) }()
	err = <-errs
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		err = ctx.Err()
	}
	_ = pc.Close()
	wg.Wait()
	if ctx.Err() != nil {
		return nil
	}
	return err
}

func stamp(p *rtp.Packet, id uint8, at time.Time) {
	if id != 0 {
		_ = p.Header.SetExtension(id, measure.AbsCaptureTime(at))
	}
}

// rtpWriter is where the publisher writes its packets (a pion local track).
type rtpWriter interface{ WriteRTP(*rtp.Packet) error }

// wantsKeyframe reports whether RTCP packets ask for a keyframe.
func wantsKeyframe(pkts []rtcp.Packet) bool {
	for _, p := range pkts {
		switch p.(type) {
		case *rtcp.PictureLossIndication, *rtcp.FullIntraRequest:
			return true
		}
	}
	return false
}

// keyframeEvery bounds how often the publisher answers a keyframe request.
const keyframeEvery = 500 * time.Millisecond

// sendVideo sends the IVF file's frames at its frame rate, looping. When the receiver asks for
// a keyframe (wanted), it skips ahead to the file's next one and sends it at once, as a live
// encoder would make one, at most once per keyframeEvery: a subscriber then waits for its
// set-up, not for the file's keyframe interval.
func sendVideo(ctx context.Context, t rtpWriter, path string, id uint8, wanted *atomic.Bool) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	r, hdr, err := ivfreader.NewWith(f)
	if err != nil {
		return fmt.Errorf("%w: %s: %w", ErrMedia, path, err)
	}
	if hdr.TimebaseNumerator == 0 || hdr.TimebaseDenominator == 0 {
		return fmt.Errorf("%w: %s: no frame rate", ErrMedia, path)
	}
	interval := time.Duration(float64(time.Second) * float64(hdr.TimebaseNumerator) / float64(hdr.TimebaseDenominator))
	if interval < 5*time.Millisecond || interval > time.Second {
		interval = time.Second / 30
	}
	tsStep := uint32(90000 * interval / time.Second)
	pay := &codecs.VP8Payloader{EnablePictureID: true}
	var seq uint16
	var ts uint32
	tick := time.NewTicker(interval)
	defer tick.Stop()
	frames := 0
	skipping := false
	var answered time.Time
	for {
		frame, _, err := r.ParseNextFrame()
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			if frames == 0 {
				return fmt.Errorf("%w: %s: no frames", ErrMedia, path)
			}
			if _, err := f.Seek(0, io.SeekStart); err != nil {
				return err
			}
			if r, _, err = ivfreader.NewWith(f); err != nil {
				return err
			}
			continue
		}
		if err != nil {
			return fmt.Errorf("%w: %s: %w", ErrMedia, path, err)
		}
		frames++
		keyframe := len(frame) > 0 && frame[0]&0x01 == 0 // VP8 frame tag: P bit clear
		if !skipping && wanted.Load() && time.Since(answered) >= keyframeEvery {
			wanted.Store(false)
			answered = time.Now()
			skipping = !keyframe
		}
		if skipping {
			if !keyframe {
				continue
			}
			skipping = false
		} else {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-tick.C:
			}
		}
		now := time.Now()
		payloads := pay.Payload(mtu, frame)
		for i, pl := range payloads {
			p := &rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: seq, Timestamp: ts, Marker: i == len(payloads)-1}, Payload: pl}
			stamp(p, id, now)
			seq++
			if err := t.WriteRTP(p); err != nil && !errors.Is(err, io.ErrClosedPipe) {
				return err
			}
		}
		ts += tsStep
	}
}

// sendAudio sends the Ogg file's Opus packets, one per RTP packet, at their duration, looping.
func sendAudio(ctx context.Context, t *webrtc.TrackLocalStaticRTP, path string, id uint8) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	r := rtputil.NewOggOpusReader(f)
	var seq uint16
	var ts uint32
	next := time.Now()
	packets := 0
	for {
		pkt, samples, err := r.NextPacket()
		if errors.Is(err, io.EOF) {
			if packets == 0 {
				return fmt.Errorf("%w: %s: no audio", ErrMedia, path)
			}
			if _, err := f.Seek(0, io.SeekStart); err != nil {
				return err
			}
			r = rtputil.NewOggOpusReader(f)
			continue
		}
		if err != nil {
			return fmt.Errorf("%w: %s: %w", ErrMedia, path, err)
		}
		packets++
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Until(next)):
		}
		next = next.Add(time.Duration(samples) * time.Second / 48000)
		if time.Until(next) < -time.Second { // fell far behind: do not burst
			next = time.Now()
		}
		p := &rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: seq, Timestamp: ts, Marker: packets == 1}, Payload: pkt}
		stamp(p, id, time.Now())
		seq++
		ts += uint32(samples)
		if err := t.WriteRTP(p); err != nil && !errors.Is(err, io.ErrClosedPipe) {
			return err
		}
	}
}

// SubscribeConfig configures Subscribe.
type SubscribeConfig struct {
	WHEP     string // e.g. http://node:7880/whep/room
	Token    string
	Duration time.Duration // measured from the first complete keyframe
	// Progress, if set, is called about once a second with the figures so far.
	Progress func(elapsed time.Duration, r measure.Result)
}

// Subscribe plays the room for cfg.Duration and returns what it measured on the video track.
func Subscribe(ctx context.Context, cfg SubscribeConfig) (measure.Result, error) {
	hc := &http.Client{Timeout: 15 * time.Second}
	wapi, err := newAPI()
	if err != nil {
		return measure.Result{}, err
	}
	pc, err := wapi.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		return measure.Result{}, err
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	defer pc.Close()
	for _, k := range []webrtc.RTPCodecType{webrtc.RTPCodecTypeVideo, webrtc.RTPCodecTypeAudio} {
		if _, err := pc.AddTransceiverFromKind(k, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
			return measure.Result{}, err
		}
	}
	start := time.Now()
	var mu sync.Mutex
	rec := measure.NewRecorder(90000, start)
	sawExt := false
	var audioPackets atomic.Int64
	pc.OnTrack(func(t *webrtc.TrackRemote, r *webrtc.RTPReceiver) {
		if t.Kind() != webrtc.RTPCodecTypeVideo {
			wg.Add(1)
			go func() { // drain audio
				defer wg.Done()
				for {
					if _, _, err := t.ReadRTP(); err != nil {
						return
					}
					audioPackets.Add(1)
				}
			}()
			return
		}
		id := extID(r.GetParameters().HeaderExtensions)
		codec := rtputil.CodecFromMime(t.Codec().MimeType)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				p, _, err := t.ReadRTP()
				if err != nil {
					return
				}
				mp := measure.Packet{Seq: p.SequenceNumber, Timestamp: p.Timestamp, Marker: p.Marker, Size: p.MarshalSize(), Arrival: time.Now()}
				if id != 0 {
					if b := p.GetExtension(id); b != nil {
						if at, err := measure.ParseAbsCaptureTime(b); err == nil {
							mp.Capture = at
						}
					}
				}
				if len(p.Payload) > 0 && codec == rtputil.CodecVP8 {
					var vp8 codecs.VP8Packet
					if _, err := vp8.Unmarshal(p.Payload); err == nil && vp8.S == 1 && vp8.PID == 0 {
						mp.FrameStart = true
						mp.Keyframe = codec.IsKeyframe(p.Payload)
					}
				}
				mu.Lock()
				sawExt = sawExt || !mp.Capture.IsZero()
				rec.Add(mp)
				mu.Unlock()
			}
		}()
	})
	octx, cancel := context.WithTimeout(ctx, 15*time.Second)
	resource, err := client.PostOffer(octx, hc, pc, cfg.WHEP, cfg.Token)
	cancel()
	if err != nil {
		return measure.Result{}, fmt.Errorf("subscribing at %s: %w", cfg.WHEP, err)
	}
	defer client.DeleteResource(hc, resource, cfg.Token)

	// The measured window is cfg.Duration from the first complete keyframe (a slow set-up does
	// not eat it); without a frame the subscriber gives up FirstFrameWait after the window.
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	lastProgress := start
	for {
		select {
		case <-ctx.Done():
			return measure.Result{}, ctx.Err()
		case <-tick.C:
		}
		mu.Lock()
		r := rec.Result()
		mu.Unlock()
		now := time.Now()
		if cfg.Progress != nil && now.Sub(lastProgress) >= time.Second {
			lastProgress = now
			cfg.Progress(now.Sub(start), r)
		}
		if r.FirstFrameMs >= 0 && now.Sub(start) >= cfg.Duration+time.Duration(r.FirstFrameMs*float64(time.Millisecond)) {
			break
		}
		if r.FirstFrameMs < 0 && now.Sub(start) >= cfg.Duration+FirstFrameWait {
			mu.Lock()
			defer mu.Unlock()
			res := rec.Result()
			res.AudioPackets = int(audioPackets.Load())
			return res, fmt.Errorf("%w within %v (%d packets)", ErrNoFrame, cfg.Duration+FirstFrameWait, r.Packets)
		}
	}
	_ = pc.Close()
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	res := rec.Result()
	res.AudioPackets = int(audioPackets.Load())
	if res.Packets > 0 && !sawExt {
		return res, ErrNoExtension
	}
	return res, nil
}

// Links fetches a node's relay links (GET /v1/relays with a cluster admin token).
func Links(ctx context.Context, nodeURL, adminToken string) (api.Relays, error) {
	var out api.Relays
	return out, GetJSON(ctx, nodeURL, adminToken, "/v1/relays", &out)
}

// GetJSON GETs path from a node's API with a token and decodes the answer into v.
func GetJSON(ctx context.Context, nodeURL, token, path string, v any) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(nodeURL, "/")+path, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s%s: %s: %s", nodeURL, path, resp.Status, strings.TrimSpace(string(body)))
	}
	return json.Unmarshal(body, v)
}

// MediaBps is the outgoing bitrate over which a relay link counts as carrying the experiment's
// media (one room runs at a time; its video is about 1.5 Mb/s, probes and control far less).
const MediaBps = 300_000

// Path follows the relay links with media moving out of them from the publisher's node to the
// subscriber's node and returns the node ids crossed, both ends included; nil when the links
// do not lead there.
func Path(pubNode, subNode string, links map[string]api.Relays) []string {
	path := []string{pubNode}
	seen := map[string]bool{pubNode: true}
	for cur := pubNode; cur != subNode; {
		next := ""
		var best int64
		for _, l := range links[cur].Links {
			if l.State == "open" && l.BitrateOut > MediaBps && !seen[l.Peer] && l.BitrateOut > best {
				next, best = l.Peer, l.BitrateOut
			}
		}
		if next == "" {
			return nil
		}
		seen[next] = true
		path = append(path, next)
		cur = next
	}
	return path
}
