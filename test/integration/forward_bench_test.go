package integration

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/pion/interceptor"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"

	"github.com/cascade-sfu/cascade/pkg/auth"
	"github.com/cascade-sfu/cascade/pkg/room"
	"github.com/cascade-sfu/cascade/pkg/rtc"
	"github.com/cascade-sfu/cascade/pkg/signal"
)

// BenchmarkForwardE2E forwards real SRTP packets through real pion PeerConnections on loopback:
// one WHIP publisher, the node, N WHEP subscribers, all in this process. One op is one
// packet published. It reports, over the timed loop:
//
//   - cpu-ns/egress-pkt: process CPU (user+system, getrusage) per packet counted at the
//     subscribers. Publisher and subscribers run in the same process, so this is an upper bound
//     of the node's own cost; `relayctl load --server-pid` measures the node alone.
//   - allocs/egress-pkt: heap allocations (runtime.MemStats.Mallocs) per egress packet, the
//     whole process again.
//   - loss-%: packets not counted at the subscribers.
func BenchmarkForwardE2E(b *testing.B) {
	for _, n := range []int{1, 10, 50} {
		b.Run(fmt.Sprintf("subscribers=%d", n), func(b *testing.B) { benchForward(b, n) })
	}
}

func benchForward(b *testing.B, subscribers int) {
	srv := benchNode(b)
	api := benchAPI(b)
	track := benchPublisher(b, srv, api)
	var egress atomic.Uint64
	for i := range subscribers {
		benchSubscriber(b, srv, api, fmt.Sprintf("sub-%d", i), &egress)
	}

	// Warm up: key frames at 30 fps until every subscriber has video.
	pub := &benchSource{track: track}
	deadline := time.Now().Add(30 * time.Second)
	for egress.Load() < uint64(subscribers)*30 {
		if time.Now().After(deadline) {
			b.Fatalf("subscribers received %d packets after 30 s of key frames", egress.Load())
		}
		pub.write(b, true)
		time.Sleep(33 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond)

	var ms0, ms1 runtime.MemStats
	var ru0, ru1 syscall.Rusage
	runtime.GC()
	runtime.ReadMemStats(&ms0)
	start := egress.Load()
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru0)
	base := int64(start)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		pub.write(b, i%300 == 0)
		// Keep about 32 packets in flight per subscriber: a flood would measure socket
		// buffer overflows, not forwarding. A lost packet must not stall the loop: when
		// nothing more arrives, the shortfall is accepted and pacing goes on from there.
		if i%16 == 15 {
			want := base + int64(subscribers)*int64(i+1-32)
			last := int64(egress.Load())
			for moved := time.Now(); last < want; {
				time.Sleep(20 * time.Microsecond)
				if cur := int64(egress.Load()); cur != last {
					last, moved = cur, time.Now()
				} else if time.Since(moved) > 5*time.Millisecond {
					base += last - want
					break
				}
			}
		}
	}
	// Let the last packets arrive.
	for last, still := egress.Load(), 0; still < 5; {
		time.Sleep(2 * time.Millisecond)
		if cur := egress.Load(); cur == last {
			still++
		} else {
			last, still = cur, 0
		}
	}
	b.StopTimer()
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru1)
	runtime.ReadMemStats(&ms1)
	pkts := egress.Load() - start
	if pkts == 0 {
		b.Fatal("no packet reached a subscriber in the timed loop")
	}
	cpu := time.Duration(syscall.TimevalToNsec(ru1.Utime) - syscall.TimevalToNsec(ru0.Utime) +
		syscall.TimevalToNsec(ru1.Stime) - syscall.TimevalToNsec(ru0.Stime))
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(pkts), "cpu-ns/egress-pkt")
	b.ReportMetric(float64(ms1.Mallocs-ms0.Mallocs)/float64(pkts), "allocs/egress-pkt")
	sent := uint64(b.N) * uint64(subscribers)
	loss := 0.0
	if pkts < sent {
		loss = 100 * float64(sent-pkts) / float64(sent)
	}
	b.ReportMetric(loss, "loss-%")
}

// benchSource writes one-packet VP8 frames of 1100 bytes, as a 720p stream's packets are.
type benchSource struct {
	track   *webrtc.TrackLocalStaticRTP
	seq     uint16
	ts      uint32
	payload [1100]byte
	pkt     rtp.Packet
}

func (s *benchSource) write(b *testing.B, key bool) {
	s.seq++
	s.ts += 3000
	s.payload[0] = 0x10 // S=1, PID=0
	s.payload[1] = 0x01 // P=1: delta frame
	if key {
		s.payload[1] = 0x00
	}
	s.pkt.Header = rtp.Header{Version: 2, SequenceNumber: s.seq, Timestamp: s.ts, Marker: true}
	s.pkt.Payload = s.payload[:]
	if err := s.track.WriteRTP(&s.pkt); err != nil {
		b.Fatal(err)
	}
}

// benchNode runs a node wired like cmd/sfu on 127.0.0.1, without logs.
func benchNode(b *testing.B) *httptest.Server {
	b.Helper()
	verifier, err := auth.NewVerifier(map[string]string{apiKey: apiSecret})
	if err != nil {
		b.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	engine, err := rtc.NewEngine(rtc.Config{UDPAddr: "127.0.0.1:0", InitialBitrate: 3_000_000, Logger: log})
	if err != nil {
		b.Fatal(err)
	}
	rcfg := room.DefaultConfig()
	rcfg.Logger = log
	rooms := room.NewManager(rcfg)
	sig := signal.NewServer(signal.Config{Rooms: rooms, Engine: engine, Verifier: verifier, Logger: log,
		JoinRate: 1000, JoinBurst: 1000, FailedJoinRate: 1000, FailedJoinBurst: 1000})
	mux := http.NewServeMux()
	sig.Register(mux)
	srv := httptest.NewServer(mux)
	b.Cleanup(func() {
		sig.Drain()
		rooms.Close()
		sig.Close()
		srv.Close()
		_ = engine.Close()
	})
	return srv
}

// benchAPI is the pion API of the publisher and subscribers: loopback only, NACK and reports.
func benchAPI(b *testing.B) *webrtc.API {
	b.Helper()
	m := &webrtc.MediaEngine{}
	if err := m.RegisterDefaultCodecs(); err != nil {
		b.Fatal(err)
	}
	reg := &interceptor.Registry{}
	if err := webrtc.RegisterDefaultInterceptors(m, reg); err != nil {
		b.Fatal(err)
	}
	se := webrtc.SettingEngine{}
	se.SetIncludeLoopbackCandidate(true)
	se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	return webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithInterceptorRegistry(reg), webrtc.WithSettingEngine(se))
}

func benchToken(b *testing.B, identity string, g auth.Grants) string {
	b.Helper()
	g.Room, g.Identity = "bench", identity
	tok, err := auth.Sign(apiKey, apiSecret, g, time.Hour, time.Now())
	if err != nil {
		b.Fatal(err)
	}
	return tok
}

// benchExchange does a WHIP/WHEP offer/answer for pc.
func benchExchange(b *testing.B, pc *webrtc.PeerConnection, url, token string) {
	b.Helper()
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		b.Fatal(err)
	}
	done := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(offer); err != nil {
		b.Fatal(err)
	}
	<-done
	req, _ := http.NewRequest(http.MethodPost, url, bytes.NewBufferString(pc.LocalDescription().SDP))
	req.Header.Set("Content-Type", "application/sdp")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		b.Fatalf("POST %s: %d %s", url, resp.StatusCode, body)
	}
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: string(body)}); err != nil {
		b.Fatal(err)
	}
}

func benchPublisher(b *testing.B, srv *httptest.Server, api *webrtc.API) *webrtc.TrackLocalStaticRTP {
	b.Helper()
	pc, err := api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = pc.Close() })
	track, err := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000}, "video", "bench-pub")
	if err != nil {
		b.Fatal(err)
	}
	sender, err := pc.AddTrack(track)
	if err != nil {
		b.Fatal(err)
	}
	go func() {
		buf := make([]byte, 1500)
		for {
			if _, _, err := sender.Read(buf); err != nil {
				return
			}
		}
	}()
	benchExchange(b, pc, srv.URL+"/whip/bench", benchToken(b, "publisher", auth.Grants{CanPublish: true}))
	return track
}

// benchSubscriber is a WHEP player that counts the packets it reads.
func benchSubscriber(b *testing.B, srv *httptest.Server, api *webrtc.API, identity string, egress *atomic.Uint64) {
	b.Helper()
	pc, err := api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		b.Fatal(err)
	}
	var wg sync.WaitGroup
	b.Cleanup(func() { _ = pc.Close(); wg.Wait() })
	pc.OnTrack(func(t *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 1500)
			for {
				if _, _, err := t.Read(buf); err != nil {
					return
				}
				egress.Add(1)
			}
		}()
	})
	if _, err := pc.AddTransceiverFromKind(webrtc.RTPCodecTypeVideo, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
		b.Fatal(err)
	}
	benchExchange(b, pc, srv.URL+"/whep/bench", benchToken(b, identity, auth.Grants{CanSubscribe: true}))
}
