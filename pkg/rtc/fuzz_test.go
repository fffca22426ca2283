package rtc

import (
	"errors"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/cascade-sfu/cascade/pkg/room"
)

// chromeOffer is shaped like a Chrome publisher offer: Opus audio, VP8/VP9/H264 video sent
// as three simulcast layers (q, h, f), bundled, with ICE and DTLS attributes.
const chromeOffer = "v=0\r\n" +
	"o=- 4611731400430051336 2 IN IP4 127.0.0.1\r\n" +
	"s=-\r\n" +
	"t=0 0\r\n" +
	"a=group:BUNDLE 0 1\r\n" +
	"a=extmap-allow-mixed\r\n" +
	"a=msid-semantic: WMS 3b1c2d\r\n" +
	"m=audio 9 UDP/TLS/RTP/SAVPF 111 63 9 0 8 13 110 126\r\n" +
	"c=IN IP4 0.0.0.0\r\n" +
	"a=rtcp:9 IN IP4 0.0.0.0\r\n" +
	"a=ice-ufrag:Vq3T\r\n" +
	"a=ice-pwd:jgcuFHBLqXNIlo0I6bFl5qUB\r\n" +
	"a=ice-options:trickle\r\n" +
	"a=fingerprint:sha-256 5C:27:2F:A8:4B:2D:BF:D3:74:6E:07:52:6F:BA:E1:40:A3:A6:C4:1D:0C:8A:53:20:10:9A:77:F3:1C:C3:6A:0E\r\n" +
	"a=setup:actpass\r\n" +
	"a=mid:0\r\n" +
	"a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level\r\n" +
	"a=extmap:2 http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time\r\n" +
	"a=extmap:3 http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01\r\n" +
	"a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid\r\n" +
	"a=sendonly\r\n" +
	"a=msid:3b1c2d 7f0e-audio\r\n" +
	"a=rtcp-mux\r\n" +
	"a=rtcp-rsize\r\n" +
	"a=rtpmap:111 opus/48000/2\r\n" +
	"a=rtcp-fb:111 transport-cc\r\n" +
	"a=fmtp:111 minptime=10;useinbandfec=1\r\n" +
	"a=rtpmap:63 red/48000/2\r\n" +
	"a=fmtp:63 111/111\r\n" +
	"a=rtpmap:9 G722/8000\r\n" +
	"a=rtpmap:0 PCMU/8000\r\n" +
	"a=rtpmap:8 PCMA/8000\r\n" +
	"a=rtpmap:13 CN/8000\r\n" +
	"a=rtpmap:110 telephone-event/48000\r\n" +
	"a=rtpmap:126 telephone-event/8000\r\n" +
	"a=ssrc:1001 cname:YZcxBwerFFm6GH69\r\n" +
	"a=ssrc:1001 msid:3b1c2d 7f0e-audio\r\n" +
	"m=video 9 UDP/TLS/RTP/SAVPF 96 97 98 99 102 103 45\r\n" +
	"c=IN IP4 0.0.0.0\r\n" +
	"a=rtcp:9 IN IP4 0.0.0.0\r\n" +
	"a=ice-ufrag:Vq3T\r\n" +
	"a=ice-pwd:jgcuFHBLqXNIlo0I6bFl5qUB\r\n" +
	"a=ice-options:trickle\r\n" +
	"a=fingerprint:sha-256 5C:27:2F:A8:4B:2D:BF:D3:74:6E:07:52:6F:BA:E1:40:A3:A6:C4:1D:0C:8A:53:20:10:9A:77:F3:1C:C3:6A:0E\r\n" +
	"a=setup:actpass\r\n" +
	"a=mid:1\r\n" +
	"a=extmap:14 urn:ietf:params:rtp-hdrext:toffset\r\n" +
	"a=extmap:2 http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time\r\n" +
	"a=extmap:13 urn:3gpp:video-orientation\r\n" +
	"a=extmap:3 http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01\r\n" +
	"a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid\r\n" +
	"a=extmap:10 urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id\r\n" +
	"a=extmap:11 urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id\r\n" +
	"a=sendonly\r\n" +
	"a=msid:3b1c2d 9a4d-video\r\n" +
	"a=rtcp-mux\r\n" +
	"a=rtcp-rsize\r\n" +
	"a=rtpmap:96 VP8/90000\r\n" +
	"a=rtcp-fb:96 goog-remb\r\n" +
	"a=rtcp-fb:96 transport-cc\r\n" +
	"a=rtcp-fb:96 ccm fir\r\n" +
	"a=rtcp-fb:96 nack\r\n" +
	"a=rtcp-fb:96 nack pli\r\n" +
	"a=rtpmap:97 rtx/90000\r\n" +
	"a=fmtp:97 apt=96\r\n" +
	"a=rtpmap:98 VP9/90000\r\n" +
	"a=rtcp-fb:98 transport-cc\r\n" +
	"a=rtcp-fb:98 ccm fir\r\n" +
	"a=rtcp-fb:98 nack\r\n" +
	"a=rtcp-fb:98 nack pli\r\n" +
	"a=fmtp:98 profile-id=0\r\n" +
	"a=rtpmap:99 rtx/90000\r\n" +
	"a=fmtp:99 apt=98\r\n" +
	"a=rtpmap:102 H264/90000\r\n" +
	"a=rtcp-fb:102 transport-cc\r\n" +
	"a=rtcp-fb:102 ccm fir\r\n" +
	"a=rtcp-fb:102 nack\r\n" +
	"a=rtcp-fb:102 nack pli\r\n" +
	"a=fmtp:102 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f\r\n" +
	"a=rtpmap:103 rtx/90000\r\n" +
	"a=fmtp:103 apt=102\r\n" +
	"a=rtpmap:45 AV1/90000\r\n" +
	"a=rtcp-fb:45 transport-cc\r\n" +
	"a=rtcp-fb:45 nack\r\n" +
	"a=rtcp-fb:45 nack pli\r\n" +
	"a=rid:q send\r\n" +
	"a=rid:h send\r\n" +
	"a=rid:f send\r\n" +
	"a=simulcast:send q;h;f\r\n"

// FuzzParseSDP checks that parseSDP and sendsMedia never panic and that what parseSDP
// accepts has a usable m-line.
func FuzzParseSDP(f *testing.F) {
	for _, s := range sdpSeeds() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := parseSDP(s)
		if err != nil {
			if d != nil {
				t.Fatal("parseSDP returned a description with an error")
			}
			if !errors.Is(err, ErrInvalidSDP) && !errors.Is(err, ErrNothingUsable) {
				t.Fatalf("error %v wraps neither ErrInvalidSDP nor ErrNothingUsable", err)
			}
			return
		}
		usable, sending := false, false
		for _, m := range d.MediaDescriptions {
			kind := strings.ToLower(m.MediaName.Media)
			if m.MediaName.Port.Value == 0 {
				continue
			}
			switch kind {
			case "audio", "video":
				usable, sending = true, true
			case "application":
				usable = true
			}
		}
		if !usable {
			t.Fatalf("accepted a description without a usable m-line:\n%q", s)
		}
		if sendsMedia(d) && !sending {
			t.Fatalf("sendsMedia is true without an active audio or video m-line:\n%q", s)
		}
	})
}

// FuzzPublisherOffer feeds offers to a real Publisher on a real Engine: HandleOffer must
// return an answer or an error, never panic. One engine serves every input; each input gets
// its own participant and PeerConnection, closed before the next.
func FuzzPublisherOffer(f *testing.F) {
	leaks := goleak.IgnoreCurrent()
	e, err := NewEngine(Config{UDPAddr: "127.0.0.1:0"})
	if err != nil {
		f.Fatal(err)
	}
	m := room.NewManager(room.DefaultConfig())
	f.Cleanup(func() {
		m.Close()
		if err := e.Close(); err != nil {
			f.Error(err)
		}
		goleak.VerifyNone(f, leaks)
	})
	for _, s := range sdpSeeds() {
		if len(s) <= maxSDPSize { // parseSDP rejects the huge seed before pion sees it
			f.Add(s)
		}
	}
	f.Fuzz(func(t *testing.T, offer string) {
		part, err := m.Join("fuzz", room.JoinParams{
			Identity:    "fuzzer",
			Session:     room.SessionID(room.NewID("SE")),
			Permissions: room.Permissions{Publish: true},
			Sink:        nopSink{},
		})
		if err != nil {
			t.Fatal(err)
		}
		defer part.Leave(room.ReasonLeft)
		pub, err := e.NewPublisher(part, PeerEvents{})
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = pub.Close() }()
		ans, err := pub.HandleOffer(offer, nil)
		if err != nil {
			if ans != "" {
				t.Fatalf("answer %q along with error %v", ans, err)
			}
			return
		}
		if !strings.HasPrefix(ans, "v=0") {
			t.Fatalf("answer is not an SDP: %q", ans)
		}
	})
}

// TestPublisherAnswersChromeOffer makes sure the main fuzz seed is a real, accepted offer, so
// that the fuzzer starts from inputs that reach deep into pion.
func TestPublisherAnswersChromeOffer(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	e, err := NewEngine(Config{UDPAddr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	m := room.NewManager(room.DefaultConfig())
	defer func() {
		m.Close()
		if err := e.Close(); err != nil {
			t.Error(err)
		}
	}()
	part, err := m.Join("r", room.JoinParams{
		Identity: "chrome", Session: "SE_1", Permissions: room.Permissions{Publish: true}, Sink: nopSink{},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer part.Leave(room.ReasonLeft)
	pub, err := e.NewPublisher(part, PeerEvents{})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = pub.Close() }()
	ans, err := pub.HandleOffer(chromeOffer, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"m=audio 9", "m=video 9", "a=simulcast:recv q;h;f", "a=recvonly", "a=candidate:"} {
		if !strings.Contains(ans, want) {
			t.Errorf("answer lacks %q:\n%s", want, ans)
		}
	}
}

type nopSink struct{}

func (nopSink) Deliver(room.Event) {}

// sdpSeeds are the starting corpus of the SDP fuzz targets.
func sdpSeeds() []string {
	return []string{
		chromeOffer,
		strings.ReplaceAll(chromeOffer, "a=sendonly", "a=recvonly"),
		strings.ReplaceAll(chromeOffer, "m=video 9", "m=video 0"),
		"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\n" +
			"c=IN IP4 0.0.0.0\r\na=ice-ufrag:abcd\r\na=ice-pwd:abcdefghijklmnopqrstuvwx\r\na=setup:actpass\r\na=mid:0\r\n" +
			"a=fingerprint:sha-256 5C:27:2F:A8:4B:2D:BF:D3:74:6E:07:52:6F:BA:E1:40:A3:A6:C4:1D:0C:8A:53:20:10:9A:77:F3:1C:C3:6A:0E\r\n" +
			"a=sctp-port:5000\r\n",
		"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n",
		"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio 0 RTP/AVP 0\r\n",
		"v=0\r\nm=video 9\r\n",
		"this is not an SDP",
		"\x00\xff\r\n=\r\n",
		"",
		chromeOffer + strings.Repeat("a=x-padding:0123456789abcdef0123456789abcdef\r\n", 1700), // over 64 KiB
	}
}
