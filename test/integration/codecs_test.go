package integration

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

// keyframePayloads are minimal RTP payloads that start a keyframe in each codec; deltas do not.
var codecCases = []struct {
	mime, fmtp string
	key, delta []byte
	clockRate  uint32
}{
	// VP9: descriptor B=1 (start of frame), P=0; then an uncompressed header of a key frame
	// (frame marker 2, profile 0, frame_type 0) with the sync code.
	{webrtc.MimeTypeVP9, "profile-id=0", []byte{0x08, 0x82, 0x49, 0x83, 0x42, 0x00, 0x01}, []byte{0x48, 0x86, 0x00, 0x00}, 90000},
	// H264: a single IDR NAL unit (type 5); a delta is a non-IDR slice (type 1).
	{webrtc.MimeTypeH264, "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f", []byte{0x65, 0x88, 0x84, 0x00}, []byte{0x41, 0x9a, 0x00}, 90000},
	// AV1: aggregation header with N=1 (new coded video sequence).
	{webrtc.MimeTypeAV1, "", []byte{0x08, 0x0a, 0x0b, 0x00, 0x00}, []byte{0x00, 0x32, 0x00}, 90000},
}

func TestEveryVideoCodecIsForwarded(t *testing.T) {
	for _, c := range codecCases {
		t.Run(strings.TrimPrefix(c.mime, "video/"), func(t *testing.T) {
			n := startNode(t)
			pub := n.join("codecs", "alice")
			sub := n.join("codecs", "bob")
			track, err := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: c.mime, ClockRate: c.clockRate, SDPFmtpLine: c.fmtp}, "cam", "s")
			if err != nil {
				t.Fatal(err)
			}
			if _, err := pub.Publish(ctx10(t), track); err != nil {
				t.Fatal(err)
			}
			src := startSource(t)
			src.wg.Add(1)
			go func() {
				defer src.wg.Done()
				tick := time.NewTicker(33 * time.Millisecond)
				defer tick.Stop()
				for i := uint16(0); ; i++ {
					select {
					case <-src.ctx.Done():
						return
					case <-tick.C:
					}
					payload := c.delta
					if i%30 == 5 { // the first frames are deltas: they must not be forwarded
						payload = c.key
					}
					_ = track.WriteRTP(&rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: i, Timestamp: uint32(i) * 3000, Marker: true}, Payload: payload})
				}
			}()
			vt := publishedTrack(t, sub, "video")
			if !strings.EqualFold(vt.Codec, c.mime) {
				t.Fatalf("published codec %q, want %q", vt.Codec, c.mime)
			}
			eventually(t, 15*time.Second, c.mime+" packets at the subscriber", func() bool {
				return sub.rx.packetsOf(vt.ID) > 10
			}, n.statsString)
			// Decoding can only start at a keyframe, so nothing before the first one is sent.
			if got, _ := sub.rx.snapshot(vt.ID); !bytes.Equal(got.first, c.key) {
				t.Fatalf("first packet forwarded is %x, want the keyframe %x", got.first, c.key)
			}
		})
	}
}
