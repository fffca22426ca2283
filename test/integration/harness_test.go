package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/interceptor"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"

	"github.com/cascade-sfu/cascade/pkg/auth"
	"github.com/cascade-sfu/cascade/pkg/client"
	"github.com/cascade-sfu/cascade/pkg/room"
	"github.com/cascade-sfu/cascade/pkg/rtc"
	"github.com/cascade-sfu/cascade/pkg/rtputil"
	"github.com/cascade-sfu/cascade/pkg/signal"
)

const (
	apiKey    = "itest"
	apiSecret = "integration-test-secret"
)

// node is an in-process Cascade node on 127.0.0.1, wired like cmd/sfu.
type node struct {
	t      *testing.T
	rooms  *room.Manager
	engine *rtc.Engine
	signal *signal.Server
	http   *httptest.Server
}

// nodeOptions adjust a test node.
type nodeOptions struct {
	room   func(*room.Config)
	signal func(*signal.Config)
	rtc    func(*rtc.Config)
}

func startNode(t *testing.T, opts ...nodeOptions) *node {
	t.Helper()
	verifier, err := auth.NewVerifier(map[string]string{apiKey: apiSecret})
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	if os.Getenv("CASCADE_TEST_LOG") != "" {
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	ecfg := rtc.Config{UDPAddr: "127.0.0.1:0", InitialBitrate: 3_000_000, Logger: log}
	for _, o := range opts {
		if o.rtc != nil {
			o.rtc(&ecfg)
		}
	}
	engine, err := rtc.NewEngine(ecfg)
	if err != nil {
		t.Fatal(err)
	}
	rcfg := room.DefaultConfig()
	rcfg.AllocateInterval = 200 * time.Millisecond
	rcfg.Logger = log
	scfg := signal.Config{Verifier: verifier, JoinRate: 1000, JoinBurst: 1000, FailedJoinRate: 1000, FailedJoinBurst: 1000, Logger: log}
	for _, o := range opts {
		if o.room != nil {
			o.room(&rcfg)
		}
		if o.signal != nil {
			o.signal(&scfg)
		}
	}
	rooms := room.NewManager(rcfg)
	scfg.Rooms, scfg.Engine = rooms, engine
	sig := signal.NewServer(scfg)
	mux := http.NewServeMux()
	sig.Register(mux)
	n := &node{t: t, rooms: rooms, engine: engine, signal: sig, http: httptest.NewServer(mux)}
	t.Cleanup(n.close)
	return n
}

func (n *node) close() {
	n.signal.Drain()
	n.rooms.Close()
	n.signal.Close()
	n.http.Close()
	_ = n.engine.Close()
}

func (n *node) wsURL() string { return "ws" + strings.TrimPrefix(n.http.URL, "http") + "/v1/rtc" }

func (n *node) token(roomName, identity string, g auth.Grants) string {
	n.t.Helper()
	g.Room, g.Identity = roomName, identity
	tok, err := auth.Sign(apiKey, apiSecret, g, time.Hour, time.Now())
	if err != nil {
		n.t.Fatal(err)
	}
	return tok
}

var everything = auth.Grants{CanPublish: true, CanSubscribe: true, CanPublishData: true}

// peer is a test participant with what it received.
type peer struct {
	*client.Client
	rx *receiver
}

// join connects a pion client; extra interceptors are placed nearest the network.
func (n *node) join(roomName, identity string, extra ...interceptor.Factory) *peer {
	n.t.Helper()
	rx := newReceiver()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, client.Options{
		URL: n.wsURL(), Token: n.token(roomName, identity, everything), API: loopbackAPI(n.t, extra...),
		OnTrack: rx.onTrack,
	})
	if err != nil {
		n.t.Fatalf("join %s: %v", identity, err)
	}
	p := &peer{Client: c, rx: rx}
	n.t.Cleanup(func() { p.Close(); rx.wait() })
	return p
}

// loopbackAPI builds a pion API whose ICE stays on 127.0.0.1.
func loopbackAPI(t *testing.T, extra ...interceptor.Factory) *webrtc.API {
	t.Helper()
	return loopbackAPIWith(t, nil, extra...)
}

// loopbackAPIWith is loopbackAPI with settings of the test's own (tune may be nil).
func loopbackAPIWith(t *testing.T, tune func(*webrtc.SettingEngine) error, extra ...interceptor.Factory) *webrtc.API {
	t.Helper()
	m := &webrtc.MediaEngine{}
	if err := m.RegisterDefaultCodecs(); err != nil {
		t.Fatal(err)
	}
	reg := &interceptor.Registry{}
	for _, f := range extra {
		reg.Add(f)
	}
	if err := webrtc.RegisterDefaultInterceptors(m, reg); err != nil {
		t.Fatal(err)
	}
	se := webrtc.SettingEngine{}
	se.SetIncludeLoopbackCandidate(true)
	se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	if len(extra) > 0 {
		// Impairments drop packets after SRTP has decrypted them, which SRTP's replay window
		// then remembers; a real loss on the wire happens before. Without this, the node's
		// correct retransmission of a "lost" packet would be rejected as a replay.
		se.DisableSRTPReplayProtection(true)
	}
	if tune != nil {
		if err := tune(&se); err != nil {
			t.Fatal(err)
		}
	}
	return webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithInterceptorRegistry(reg), webrtc.WithSettingEngine(se))
}

// receiver records the RTP a peer receives, per msid track id.
type receiver struct {
	wg     sync.WaitGroup
	mu     sync.Mutex
	tracks map[string]*rxTrack
}

type rxTrack struct {
	kind    string
	stream  string
	packets int
	seqs    map[uint64]bool // extended sequence numbers
	unwrap  *rtputil.SeqUnwrapper
	layers  map[byte]int // VP8 test layer marker → packets
	last    byte
	first   []byte // payload of the first packet
}

func newReceiver() *receiver { return &receiver{tracks: map[string]*rxTrack{}} }

func (r *receiver) onTrack(t *webrtc.TrackRemote, recv *webrtc.RTPReceiver) {
	// Read the receiver's RTCP (sender reports) as a real client does, so that interceptors
	// see it.
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		buf := make([]byte, 1500)
		for {
			if _, _, err := recv.Read(buf); err != nil {
				return
			}
		}
	}()
	r.mu.Lock()
	rt := &rxTrack{kind: t.Kind().String(), stream: t.StreamID(), seqs: map[uint64]bool{}, layers: map[byte]int{}, unwrap: &rtputil.SeqUnwrapper{}}
	r.tracks[t.ID()] = rt
	r.mu.Unlock()
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		buf := make([]byte, 1500)
		var p rtp.Packet
		for {
			n, _, err := t.Read(buf)
			if err != nil {
				return
			}
			if p.Unmarshal(buf[:n]) != nil {
				continue
			}
			r.mu.Lock()
			if rt.packets == 0 {
				rt.first = append([]byte(nil), p.Payload...)
			}
			rt.packets++
			rt.seqs[rt.unwrap.Unwrap(p.SequenceNumber)] = true
			if rt.kind == "video" && len(p.Payload) > 2 {
				rt.layers[p.Payload[2]]++
				rt.last = p.Payload[2]
			}
			r.mu.Unlock()
		}
	}()
}

func (r *receiver) wait() { r.wg.Wait() }

// snapshot returns a copy of what a track received.
func (r *receiver) snapshot(id string) (rxTrack, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	t, ok := r.tracks[id]
	if !ok {
		return rxTrack{}, false
	}
	c := *t
	c.layers = map[byte]int{}
	for k, v := range t.layers {
		c.layers[k] = v
	}
	c.seqs = map[uint64]bool{}
	for k, v := range t.seqs {
		c.seqs[k] = v
	}
	return c, true
}

// packetsOf returns how many packets arrived on the track with the given msid, or -1.
func (r *receiver) packetsOf(id string) int {
	t, ok := r.snapshot(id)
	if !ok {
		return -1
	}
	return t.packets
}

func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool, context ...func() string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if cond() {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, c := range context {
		what += "; " + c()
	}
	t.Fatalf("timed out after %v waiting for %s", timeout, what)
}

// statsString summarises a node's forwarding counters, for failure messages.
func (n *node) statsString() string {
	s := n.rooms.Stats()
	out := fmt.Sprintf("in=%d out=%d nacks=%d rtx=%d plis=%d kf=%d switches=%d drops:",
		s.PacketsIn.Load(), s.PacketsOut.Load(), s.NACKsReceived.Load(), s.Retransmits.Load(),
		s.PLIsReceived.Load(), s.KeyframeRequests.Load(), s.LayerSwitches.Load())
	for _, r := range room.DropReasons() {
		if v := s.Drops(r); v > 0 {
			out += fmt.Sprintf(" %s=%d", r, v)
		}
	}
	return out
}

// waitMessage reads a peer's messages until one of type typ satisfies match.
func waitMessage(t *testing.T, p *peer, typ string, match func(json.RawMessage) bool) json.RawMessage {
	t.Helper()
	timer := time.NewTimer(10 * time.Second)
	defer timer.Stop()
	for {
		select {
		case env := <-p.Messages():
			if env.Type == typ && (match == nil || match(env.Data)) {
				return env.Data
			}
		case <-timer.C:
			t.Fatalf("no %s message", typ)
			return nil
		}
	}
}

// publishedTracks reads p's messages until a track of each kind was announced; it returns them
// by kind.
func publishedTracks(t *testing.T, p *peer, kinds ...string) map[string]signal.Track {
	t.Helper()
	out := map[string]signal.Track{}
	for len(out) < len(kinds) {
		var tr signal.TrackPublishedMsg
		waitMessage(t, p, "track_published", func(d json.RawMessage) bool {
			return json.Unmarshal(d, &tr) == nil
		})
		for _, k := range kinds {
			if tr.Track.Kind == k {
				if _, seen := out[k]; !seen {
					out[k] = tr.Track
				}
			}
		}
	}
	return out
}

func publishedTrack(t *testing.T, p *peer, kind string) signal.Track {
	t.Helper()
	return publishedTracks(t, p, kind)[kind]
}
