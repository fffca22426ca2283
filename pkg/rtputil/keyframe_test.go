package rtputil

import (
	"bytes"
	"testing"
)

type keyframeCase struct {
	name    string
	payload []byte
	want    bool
}

func runKeyframeCases(t *testing.T, c Codec, cases []keyframeCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := c.IsKeyframe(tc.payload); got != tc.want {
				t.Errorf("%v.IsKeyframe(% x) = %v, want %v", c, tc.payload, got, tc.want)
			}
			// Every strict prefix of a payload must be handled without panicking.
			for i := range tc.payload {
				_ = c.IsKeyframe(tc.payload[:i])
			}
		})
	}
}

// VP8 payload headers (RFC 7741 section 4.3, RFC 6386 section 9.1): a 3-byte
// little-endian frame tag whose bit 0 is the inverse key frame flag, then
// for key frames the start code 9d 01 2a and 14-bit width and height.
var (
	vp8KeyHeader   = []byte{0x50, 0x42, 0x00, 0x9d, 0x01, 0x2a, 0x80, 0x02, 0x68, 0x01} // 640x360, show_frame
	vp8InterHeader = []byte{0x31, 0x1c, 0x00}                                           // P=1
)

func TestIsKeyframeVP8(t *testing.T) {
	runKeyframeCases(t, CodecVP8, []keyframeCase{
		{"no extension, key", cat(0x10, vp8KeyHeader, fill(20)), true},
		{"no extension, inter", cat(0x10, vp8InterHeader, fill(20)), false},
		{"non-reference bit does not matter", cat(0x30, vp8KeyHeader), true},
		{"S=0 continuation", cat(0x00, vp8KeyHeader), false},
		{"S=1 but partition 1", cat(0x11, vp8KeyHeader), false},
		{"7-bit picture ID, key", cat(0x90, 0x80, 0x17, vp8KeyHeader), true},
		// Misparsing the picture ID as payload would read 0x16 (P=0) as a key frame.
		{"7-bit picture ID, inter", cat(0x90, 0x80, 0x16, vp8InterHeader), false},
		{"15-bit picture ID, key", cat(0x90, 0x80, 0x81, 0x22, vp8KeyHeader), true},
		// Misparsing as 7-bit would read 0x22 (P=0) as the payload header.
		{"15-bit picture ID, inter", cat(0x90, 0x80, 0x81, 0x22, vp8InterHeader), false},
		{"I L T K all present, key", cat(0x90, 0xf0, 0x92, 0x34, 0x05, 0x40, vp8KeyHeader), true},
		{"I L T K all present, inter", cat(0x90, 0xf0, 0x92, 0x34, 0x04, 0x40, vp8InterHeader), false},
		{"L only, key", cat(0x90, 0x40, 0x07, vp8KeyHeader), true},
		{"L only, inter (TL0PICIDX even)", cat(0x90, 0x40, 0x06, vp8InterHeader), false},
		{"T only, inter (TID byte even)", cat(0x90, 0x20, 0x80, vp8InterHeader), false},
		{"K only, key", cat(0x90, 0x10, 0x03, vp8KeyHeader), true},
		{"T and K share one byte", cat(0x90, 0x30, 0x62, vp8InterHeader), false},
		{"empty", nil, false},
		{"descriptor only", cat(0x10), false},
		{"X without extension byte", cat(0x90), false},
		{"I without picture ID", cat(0x90, 0x80), false},
		{"15-bit picture ID cut", cat(0x90, 0x80, 0x81), false},
		{"L without TL0PICIDX", cat(0x90, 0x40), false},
		{"T without TID byte", cat(0x90, 0xe0, 0x01, 0x02), false},
		{"full descriptor, no payload", cat(0x90, 0xf0, 0x92, 0x34, 0x05, 0x40), false},
	})
}

func TestParseVP8Descriptor(t *testing.T) {
	tests := []struct {
		name    string
		payload []byte
		want    VP8Descriptor
		err     error
	}{
		{"minimal", cat(0x10, 0x50), VP8Descriptor{Size: 1, Start: true}, nil},
		{"N and PID", cat(0x25, 0x50), VP8Descriptor{Size: 1, NonReference: true, PartitionID: 5}, nil},
		{
			"7-bit picture ID", cat(0x90, 0x80, 0x7f, 0x50),
			VP8Descriptor{Size: 3, Start: true, HasPictureID: true, PictureID: 127}, nil,
		},
		{
			"15-bit picture ID", cat(0x90, 0x80, 0xff, 0xfe, 0x50),
			VP8Descriptor{Size: 4, Start: true, HasPictureID: true, PictureIDWide: true, PictureID: 0x7ffe}, nil,
		},
		{
			"everything", cat(0xb0, 0xf0, 0x81, 0x02, 0x09, 0xbf, 0x50),
			VP8Descriptor{
				Size: 6, NonReference: true, Start: true,
				HasPictureID: true, PictureIDWide: true, PictureID: 0x0102,
				HasTL0PICIDX: true, TL0PICIDX: 9,
				HasTID: true, TID: 2, LayerSync: true,
				HasKeyIdx: true, KeyIdx: 31,
			}, nil,
		},
		{"K without T", cat(0x80, 0x10, 0xff), VP8Descriptor{Size: 3, HasKeyIdx: true, KeyIdx: 31}, nil},
		{"T without K", cat(0x80, 0x20, 0xff), VP8Descriptor{Size: 3, HasTID: true, TID: 3, LayerSync: true}, nil},
		{"empty", nil, VP8Descriptor{}, ErrShortPayload},
		{"cut in picture ID", cat(0x80, 0x80, 0x80), VP8Descriptor{HasPictureID: true, PictureID: 0}, ErrShortPayload},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseVP8Descriptor(tc.payload)
			if err != tc.err {
				t.Fatalf("err = %v, want %v", err, tc.err)
			}
			if err == nil && got != tc.want {
				t.Errorf("got %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

// vp9FrameHeader returns the start of a VP9 uncompressed header (VP9
// bitstream specification, section 6.2) for the given profile, as far as
// frame_size() for key frames.
func vp9FrameHeader(profile int, key bool, w, h int) []byte {
	var b bitWriter
	b.put(2, 2)                  // frame_marker
	b.put(uint64(profile&1), 1)  // profile_low_bit
	b.put(uint64(profile>>1), 1) // profile_high_bit
	if profile == 3 {
		b.put(0, 1) // reserved_zero
	}
	b.put(0, 1) // show_existing_frame
	if !key {
		b.put(1, 1) // frame_type: NON_KEY_FRAME
		b.put(1, 1) // show_frame
		b.put(0, 1) // error_resilient_mode
		b.put(0, 1) // intra_only
		b.put(0, 2) // reset_frame_context
		b.put(0, 8) // refresh_frame_flags...
		return b.buf
	}
	b.put(0, 1)         // frame_type: KEY_FRAME
	b.put(1, 1)         // show_frame
	b.put(0, 1)         // error_resilient_mode
	b.put(0x498342, 24) // frame_sync_code
	if profile >= 2 {
		b.put(0, 1) // ten_or_twelve_bit
	}
	b.put(2, 3) // color_space: CS_BT_709
	b.put(0, 1) // color_range
	if profile == 1 || profile == 3 {
		b.put(0, 1) // subsampling_x
		b.put(0, 1) // subsampling_y
		b.put(0, 1) // reserved_zero
	}
	b.put(uint64(w-1), 16) // frame_width_minus_1
	b.put(uint64(h-1), 16) // frame_height_minus_1
	b.put(0, 1)            // render_and_frame_size_different
	return b.buf
}

func TestVP9FrameHeaderFirstBytes(t *testing.T) {
	// Pin the hand-computed first bytes against the bit writer.
	for _, tc := range []struct {
		profile int
		key     bool
		want    byte
	}{{0, true, 0x82}, {0, false, 0x86}, {1, true, 0xa2}, {3, true, 0xb1}, {3, false, 0xb3}} {
		if got := vp9FrameHeader(tc.profile, tc.key, 640, 360)[0]; got != tc.want {
			t.Errorf("profile %d key %v: first byte %#x, want %#x", tc.profile, tc.key, got, tc.want)
		}
	}
}

func TestIsKeyframeVP9(t *testing.T) {
	key := vp9FrameHeader(0, true, 640, 360)
	inter := vp9FrameHeader(0, false, 0, 0)
	// Scalability structure as libwebrtc and pion send it on key frames:
	// N_S=0, Y=1, G=1; 640x360; N_G=1: TID=0 U=1 R=1 P_DIFF=1.
	ss := []byte{0x18, 0x02, 0x80, 0x01, 0x68, 0x01, 0x14, 0x01}
	// Three spatial layers with sizes, no picture group.
	ss3 := []byte{0x50, 0x01, 0x40, 0x00, 0xb4, 0x02, 0x80, 0x01, 0x68, 0x05, 0x00, 0x02, 0xd0}
	// One layer without sizes; two picture group entries with R=2 and R=0.
	ssG := []byte{0x08, 0x02, 0x18, 0x01, 0x02, 0x20}

	runKeyframeCases(t, CodecVP9, []keyframeCase{
		{"minimal B only", cat(0x08, key), true},
		{"non-flexible, 15-bit PID, SS (pion/libwebrtc)", cat(0x8f, 0x92, 0x34, ss, key, fill(30)), true},
		{"non-flexible inter P=1", cat(0xcc, 0x92, 0x35, inter, fill(30)), false},
		{"non-flexible, L, 7-bit PID, TL0PICIDX", cat(0xac, 0x05, 0x00, 0x07, key), true},
		{"non-flexible, L, SID=1", cat(0xac, 0x05, 0x02, 0x07, key), false},
		{"non-flexible, L, SID=1 with D", cat(0xac, 0x05, 0x03, 0x07, key), false},
		{"flexible, L, no TL0PICIDX", cat(0xb8, 0x81, 0x00, 0x00, key), true},
		{"flexible, L, SID=2", cat(0xb8, 0x81, 0x00, 0x04, key), false},
		// pion's flexible-mode payloader never sets P: the frame header decides.
		{"flexible P=0 but inter frame header", cat(0x9c, 0x81, 0x00, inter), false},
		{"flexible P=1 with P_DIFFs", cat(0xd8, 0x81, 0x00, 0x03, 0x05, 0x02, key), false},
		{"SS with 3 spatial layers", cat(0x8a, 0x10, ss3, key), true},
		{"SS with picture group R=2, R=0", cat(0x8a, 0x10, ssG, key), true},
		{"profile 1 key", cat(0x08, vp9FrameHeader(1, true, 64, 64)), true},
		{"profile 3 key", cat(0x08, vp9FrameHeader(3, true, 64, 64)), true},
		{"profile 3 inter", cat(0x08, vp9FrameHeader(3, false, 0, 0)), false},
		{"profile 3 reserved bit set", cat(0x08, 0xb9), false},
		{"show_existing_frame", cat(0x08, 0x88), false},
		{"bad frame marker", cat(0x08, 0x42), false},
		{"B=0 continuation", cat(0x84, 0x10, key), false},
		{"empty", nil, false},
		{"descriptor only", cat(0x08), false},
		{"I without PID", cat(0x88), false},
		{"15-bit PID cut", cat(0x88, 0x80), false},
		{"L cut", cat(0xa8, 0x01), false},
		{"TL0PICIDX cut", cat(0xa8, 0x01, 0x00), false},
		{"SS sizes cut", cat(0x8a, 0x10, ss[:3]), false},
		{"SS picture group cut", cat(0x8a, 0x10, ss[:7]), false},
		{"SS ends exactly, no frame", cat(0x8a, 0x10, ss), false},
		{"too many P_DIFFs", cat(0xd8, 0x81, 0x00, 0x03, 0x05, 0x03, 0x02, key), false},
	})
}

// H.264 NAL units with their header byte (F=0, NRI, type).
var (
	testSPS264   = []byte{0x67, 0x42, 0xc0, 0x1f, 0xda, 0x01, 0x40, 0x16, 0xec, 0x04, 0x40}
	testPPS264   = []byte{0x68, 0xce, 0x3c, 0x80}
	testIDR264   = []byte{0x65, 0x88, 0x84, 0x00, 0x33, 0xff}
	testSlice264 = []byte{0x41, 0x9a, 0x24, 0x6c, 0x41}
	testSEI264   = []byte{0x06, 0x05, 0x01, 0x80}
)

// stap returns aggregation units: each NAL unit preceded by its 16-bit size.
func stap(nals ...[]byte) []byte {
	var out []byte
	for _, n := range nals {
		out = append(out, byte(len(n)>>8), byte(len(n)))
		out = append(out, n...)
	}
	return out
}

func TestIsKeyframeH264(t *testing.T) {
	runKeyframeCases(t, CodecH264, []keyframeCase{
		{"single IDR", cat(testIDR264, fill(100)), true},
		{"single SPS", testSPS264, true},
		{"single PPS", testPPS264, false},
		{"single non-IDR slice", testSlice264, false},
		{"single SEI", testSEI264, false},
		{"STAP-A SPS PPS", cat(0x78, stap(testSPS264, testPPS264)), true},
		{"STAP-A SPS PPS IDR", cat(0x78, stap(testSPS264, testPPS264, testIDR264)), true},
		{"STAP-A SEI then IDR", cat(0x78, stap(testSEI264, testIDR264)), true},
		{"STAP-A PPS and slice", cat(0x78, stap(testPPS264, testSlice264)), false},
		{"STAP-A first unit overruns", cat(0x78, 0x00, 0x20, testSPS264), false},
		{"STAP-A zero-size unit", cat(0x78, 0x00, 0x00, stap(testSPS264)), false},
		{"STAP-A header only", cat(0x78), false},
		{"STAP-A trailing byte", cat(0x78, stap(testPPS264), 0x00), false},
		{"STAP-A forbidden bit in unit", cat(0x78, stap(cat(0xe5, 0x00))), false},
		{"STAP-B IDR", cat(0x79, 0x00, 0x01, stap(testIDR264)), true},
		{"STAP-B DON cut", cat(0x79, 0x00), false},
		{"FU-A start IDR", cat(0x7c, 0x85, fill(100)), true},
		{"FU-A start SPS", cat(0x7c, 0x87, fill(10)), true},
		{"FU-A middle IDR", cat(0x7c, 0x05, fill(100)), false},
		{"FU-A end IDR", cat(0x7c, 0x45, fill(100)), false},
		{"FU-A start non-IDR", cat(0x5c, 0x81, fill(100)), false},
		{"FU-A indicator only", cat(0x7c), false},
		{"FU-B start IDR", cat(0x7d, 0x85, 0x00, 0x07, fill(10)), true},
		{"MTAP16 not supported", cat(0x7a, 0x00, 0x00, stap(testIDR264)), false},
		{"forbidden bit", cat(0xe5, 0x88), false},
		{"type 0", cat(0x00, 0x01), false},
		{"empty", nil, false},
	})
}

// h265NAL returns a NAL unit header (F=0, LayerId 0, TID 1) and body.
func h265NAL(typ byte, body ...byte) []byte {
	return append([]byte{typ << 1, 0x01}, body...)
}

func TestIsKeyframeH265(t *testing.T) {
	vps := h265NAL(32, 0x0c, 0x01, 0xff, 0xff)
	sps := h265NAL(33, 0x01, 0x01, 0x60)
	pps := h265NAL(34, 0xc1, 0x72, 0xb4)
	trail := h265NAL(1, 0xaf, 0x08)
	runKeyframeCases(t, CodecH265, []keyframeCase{
		{"IDR_W_RADL", h265NAL(19, 0xaf, 0x00), true},
		{"IDR_N_LP", h265NAL(20, 0xaf, 0x00), true},
		{"CRA", h265NAL(21, 0xaf), true},
		{"BLA_W_LP", h265NAL(16, 0xaf), true},
		{"BLA_N_LP", h265NAL(18, 0xaf), true},
		{"reserved IRAP 22", h265NAL(22, 0xaf), false},
		{"VPS", vps, true},
		{"SPS", sps, true},
		{"PPS", pps, false},
		{"TRAIL_R", trail, false},
		{"RASL_N", h265NAL(8, 0x01), false},
		{"prefix SEI", h265NAL(39, 0x01), false},
		{"higher layer IDR", []byte{19 << 1, 0x09, 0xaf}, true},
		{"AP VPS SPS PPS", cat(h265NAL(48), stap(vps, sps, pps)), true},
		{"AP PPS then IDR", cat(h265NAL(48), stap(pps, h265NAL(19, 0x01))), true},
		{"AP PPS and trail", cat(h265NAL(48), stap(pps, trail)), false},
		{"AP unit overruns", cat(h265NAL(48), 0x00, 0x09, vps), false},
		{"AP unit shorter than a NAL header", cat(h265NAL(48), 0x00, 0x01, 0x40, stap(vps)), false},
		{"AP header only", h265NAL(48), false},
		{"FU start IDR_W_RADL", cat(h265NAL(49), 0x80|19, fill(50)), true},
		{"FU start CRA", cat(h265NAL(49), 0x80|21, fill(50)), true},
		{"FU middle IDR", cat(h265NAL(49), 19, fill(50)), false},
		{"FU end IDR", cat(h265NAL(49), 0x40|19, fill(50)), false},
		{"FU start TRAIL_R", cat(h265NAL(49), 0x81, fill(50)), false},
		{"FU header missing", h265NAL(49), false},
		{"PACI", cat(h265NAL(50), 0x26, 0x00, fill(4)), false},
		{"forbidden bit", []byte{0x80 | 19<<1, 0x01, 0xaf}, false},
		{"one byte", []byte{19 << 1}, false},
		{"empty", nil, false},
	})
}

// leb128 encodes v as unsigned LEB128.
func leb128(v int) []byte {
	var out []byte
	for {
		b := byte(v & 0x7f)
		v >>= 7
		if v == 0 {
			return append(out, b)
		}
		out = append(out, b|0x80)
	}
}

// AV1 OBU headers without obu_has_size_field, as the RTP format recommends.
const (
	obuSeqHdr   = 1 << 3
	obuTD       = 2 << 3
	obuFrameHdr = 3 << 3
	obuFrame    = 6 << 3
	obuPadding  = 15 << 3
	obuExt      = 0x04
)

func TestIsKeyframeAV1(t *testing.T) {
	seqHdr := cat(obuSeqHdr, 0x00, 0x00, 0x00, 0x0a, 0x0b, 0xf0, 0x00, 0x8d, 0x06) // 10 bytes
	frame := cat(obuFrame, fill(40))
	long := cat(obuSeqHdr, fill(200)) // needs a two-byte length
	runKeyframeCases(t, CodecAV1, []keyframeCase{
		{"N=1, W=2", cat(0x28, leb128(len(seqHdr)), seqHdr, frame), true},
		{"N=1 with frame OBU only", cat(0x18, frame), true},
		{"W=1 sequence header", cat(0x10, seqHdr), true},
		{"W=2 sequence header then frame", cat(0x20, leb128(len(seqHdr)), seqHdr, frame), true},
		{"W=0 all lengths", cat(0x00, leb128(len(seqHdr)), seqHdr, leb128(len(frame)), frame), true},
		{"two-byte leb128 length", cat(0x20, leb128(len(long)), long, frame), true},
		{"temporal delimiter then sequence header", cat(0x20, 0x01, obuTD, seqHdr), true},
		{"padding then sequence header", cat(0x30, 0x02, obuPadding, 0x00, 0x01, obuTD, seqHdr), true},
		{"sequence header with extension", cat(0x10, obuSeqHdr|obuExt, 0x08, fill(8)), true},
		{"Y=1 sequence header", cat(0x50, seqHdr), true},
		{"W=1 frame", cat(0x10, frame), false},
		{"W=2 frame header then sequence header", cat(0x20, 0x02, obuFrameHdr, 0x00, seqHdr), false},
		{"Z=1 continuation looking like a sequence header", cat(0x90, seqHdr), false},
		{"W=1 temporal delimiter only", cat(0x10, obuTD), false},
		{"W=2 delimiters only", cat(0x20, 0x01, obuTD, obuTD), false},
		{"forbidden bit", cat(0x10, 0x80|obuSeqHdr, 0x00), false},
		{"length overruns", cat(0x20, 0x20, seqHdr), false},
		{"zero length", cat(0x00, 0x00, seqHdr), false},
		{"leb128 unterminated", cat(0x20, 0x80), false},
		{"leb128 longer than 8 bytes", cat(0x20, bytes.Repeat([]byte{0x80}, 9), 0x01, seqHdr), false},
		{"aggregation header only", cat(0x10), false},
		{"N=1 header only", cat(0x08), false},
		{"empty", nil, false},
	})
}

func TestIsKeyframeAudioAndUnknown(t *testing.T) {
	for _, c := range []Codec{CodecOpus, CodecG722, CodecPCMU, CodecPCMA} {
		for _, p := range [][]byte{nil, {0x00}, fill(160)} {
			if !c.IsKeyframe(p) {
				t.Errorf("%v.IsKeyframe(% x) = false, want true", c, p)
			}
		}
	}
	for _, c := range []Codec{CodecUnknown, codecCount, 200} {
		if c.IsKeyframe(cat(0x10, vp8KeyHeader)) {
			t.Errorf("Codec(%d).IsKeyframe = true, want false", c)
		}
	}
}
