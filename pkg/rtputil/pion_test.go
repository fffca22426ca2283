package rtputil

// Cross-checks against pion/rtp: its payloaders produce the packets our
// keyframe detection must understand, and its depacketizers parse the same
// descriptors we do.

import (
	"testing"

	"github.com/pion/rtp/codecs"
)

const testMTU = 1200

type frameCase struct {
	name  string
	frame []byte
	key   bool
}

// checkPayloaded asserts that exactly the first packet of a key frame is a
// keyframe start and that no packet of a delta frame is.
func checkPayloaded(t *testing.T, c Codec, name string, pkts [][]byte, key bool) {
	t.Helper()
	if len(pkts) < 2 {
		t.Fatalf("%s: payloader produced %d packets, want a fragmented frame", name, len(pkts))
	}
	for i, p := range pkts {
		if got, want := c.IsKeyframe(p), key && i == 0; got != want {
			t.Errorf("%s: packet %d/%d (% x...) keyframe = %v, want %v", name, i, len(pkts), p[:min(len(p), 16)], got, want)
		}
	}
}

func TestPionVP8Payloader(t *testing.T) {
	keyFrame := cat(vp8KeyHeader, fill(3000))
	interFrame := cat(vp8InterHeader, fill(2500))
	p := &codecs.VP8Payloader{EnablePictureID: true}
	// 300 frames walk the picture ID through 7- and 15-bit values.
	for i := range 300 {
		key := i%30 == 0
		frame := interFrame
		if key {
			frame = keyFrame
		}
		checkPayloaded(t, CodecVP8, "vp8", p.Payload(testMTU, frame), key)
	}
	plain := &codecs.VP8Payloader{}
	checkPayloaded(t, CodecVP8, "vp8 without picture ID", plain.Payload(testMTU, keyFrame), true)
}

func TestPionVP9Payloader(t *testing.T) {
	keyFrame := cat(vp9FrameHeader(0, true, 640, 360), fill(3000))
	interFrame := cat(vp9FrameHeader(0, false, 0, 0), fill(2500))
	for _, flexible := range []bool{false, true} {
		p := &codecs.VP9Payloader{FlexibleMode: flexible, InitialPictureIDFn: func() uint16 { return 100 }}
		for i := range 60 {
			key := i%30 == 0
			frame := interFrame
			if key {
				frame = keyFrame
			}
			name := "vp9 non-flexible"
			if flexible {
				name = "vp9 flexible"
			}
			checkPayloaded(t, CodecVP9, name, p.Payload(testMTU, frame), key)
		}
	}
}

func annexB(nals ...[]byte) []byte {
	var out []byte
	for _, n := range nals {
		out = append(out, 0, 0, 0, 1)
		out = append(out, n...)
	}
	return out
}

func TestPionH264Payloader(t *testing.T) {
	idr := cat(0x65, fill(3000))
	slice := cat(0x41, fill(2500))
	for _, disableStapA := range []bool{false, true} {
		p := &codecs.H264Payloader{DisableStapA: disableStapA}
		pkts := p.Payload(testMTU, annexB(testSPS264, testPPS264, idr))
		// SPS (alone or in a STAP-A) starts the key frame; with STAP-A
		// disabled the PPS travels alone, then FU-A start of the IDR.
		for i, pkt := range pkts {
			nalType := pkt[0] & 0x1f
			want := i == 0 || (nalType == h264FUA && pkt[1]&0x80 != 0)
			if got := CodecH264.IsKeyframe(pkt); got != want {
				t.Errorf("stap-a disabled %v: packet %d (% x...) keyframe = %v, want %v",
					disableStapA, i, pkt[:8], got, want)
			}
		}
		checkPayloaded(t, CodecH264, "h264 delta", p.Payload(testMTU, annexB(slice)), false)
	}
}

func TestPionH265Payloader(t *testing.T) {
	vps := h265NAL(32, 0x0c, 0x01, 0xff, 0xff, 0x01, 0x60, 0x00, 0x00, 0x03, 0x00, 0x90)
	sps := h265NAL(33, 0x01, 0x01, 0x60, 0x00, 0x00, 0x03, 0x00, 0x90, 0x00, 0x00)
	pps := h265NAL(34, 0xc1, 0x72, 0xb4, 0x62, 0x40)
	idr := cat(h265NAL(19), fill(3000))
	trail := cat(h265NAL(1), fill(2500))
	for _, skipAgg := range []bool{false, true} {
		p := &codecs.H265Payloader{SkipAggregation: skipAgg}
		pkts := p.Payload(testMTU, annexB(vps, sps, pps, idr))
		if !CodecH265.IsKeyframe(pkts[0]) {
			t.Errorf("skip aggregation %v: first packet % x is not a keyframe", skipAgg, pkts[0][:8])
		}
		sawIDRStart := false
		for i, pkt := range pkts[1:] {
			if h265Type(pkt[0]) == h265FU {
				start := pkt[2]&0x80 != 0
				sawIDRStart = sawIDRStart || start
				if got := CodecH265.IsKeyframe(pkt); got != start {
					t.Errorf("skip aggregation %v: FU packet %d keyframe = %v, want %v", skipAgg, i+1, got, start)
				}
			}
		}
		if !sawIDRStart {
			t.Errorf("skip aggregation %v: no FU start packet among %d", skipAgg, len(pkts))
		}
		checkPayloaded(t, CodecH265, "h265 delta", p.Payload(testMTU, annexB(trail)), false)
	}
}

// obuWithSize returns an OBU in low-overhead bitstream format
// (obu_has_size_field=1), as encoders emit them.
func obuWithSize(header byte, body []byte) []byte {
	return cat(header|0x02, leb128(len(body)), body)
}

func TestPionAV1Payloader(t *testing.T) {
	td := obuWithSize(obuTD, nil)
	seq := obuWithSize(obuSeqHdr, []byte{0x00, 0x00, 0x00, 0x0a, 0x0b, 0xf0, 0x00, 0x8d, 0x06})
	key := cat(td, seq, obuWithSize(obuFrame, fill(3000)))
	delta := cat(td, obuWithSize(obuFrame, fill(2500)))
	p := &codecs.AV1Payloader{}
	checkPayloaded(t, CodecAV1, "av1 key", p.Payload(testMTU, key), true)
	checkPayloaded(t, CodecAV1, "av1 delta", p.Payload(testMTU, delta), false)
}
