package rtputil

import "strings"

// Codec identifies a media codec by its RTP mime type.
type Codec uint8

// The codecs the SFU knows how to forward.
const (
	CodecUnknown Codec = iota
	CodecOpus
	CodecVP8
	CodecVP9
	CodecH264
	CodecAV1
	CodecH265
	CodecG722
	CodecPCMU
	CodecPCMA

	codecCount // one past the last valid codec
)

// CodecFromMime returns the codec with the given mime type, compared
// case-insensitively ("video/VP8", "audio/opus", "video/h264", ...).
// It returns CodecUnknown for anything else, including a bare subtype.
func CodecFromMime(mime string) Codec {
	for c := CodecOpus; c < codecCount; c++ {
		if strings.EqualFold(mime, c.MimeType()) {
			return c
		}
	}
	return CodecUnknown
}

// MimeType returns the codec's mime type in the spelling pion uses
// ("video/VP8", "audio/opus"), or "" for CodecUnknown and invalid values.
func (c Codec) MimeType() string {
	switch c {
	case CodecOpus:
		return "audio/opus"
	case CodecVP8:
		return "video/VP8"
	case CodecVP9:
		return "video/VP9"
	case CodecH264:
		return "video/H264"
	case CodecAV1:
		return "video/AV1"
	case CodecH265:
		return "video/H265"
	case CodecG722:
		return "audio/G722"
	case CodecPCMU:
		return "audio/PCMU"
	case CodecPCMA:
		return "audio/PCMA"
	default:
		return ""
	}
}

// String returns the codec's mime subtype ("VP8", "opus"), or "unknown".
func (c Codec) String() string {
	m := c.MimeType()
	if m == "" {
		return "unknown"
	}
	return m[strings.IndexByte(m, '/')+1:]
}

// IsVideo reports whether c is a video codec.
func (c Codec) IsVideo() bool {
	switch c {
	case CodecVP8, CodecVP9, CodecH264, CodecAV1, CodecH265:
		return true
	default:
		return false
	}
}

// IsAudio reports whether c is an audio codec.
func (c Codec) IsAudio() bool {
	switch c {
	case CodecOpus, CodecG722, CodecPCMU, CodecPCMA:
		return true
	default:
		return false
	}
}

// IsKeyframe reports whether the RTP payload starts something a decoder can
// begin decoding at: the first packet of a keyframe, or a parameter set or
// sequence header that precedes one. Truncated or malformed payloads report
// false. It never panics and never allocates.
//
//   - VP8 (RFC 7741): S=1, PID=0 and P=0 in the VP8 payload header, after the
//     X/I/L/T/K extensions with 7- or 15-bit picture IDs.
//   - VP9 (RFC 9628): B=1, P=0, spatial layer 0 (or no layer indices), in
//     flexible or non-flexible mode, with or without a scalability structure;
//     the uncompressed header that follows must also say KEY_FRAME.
//   - H.264 (RFC 6184): an IDR slice (5) or SPS (7) as a single NAL unit, in
//     a STAP-A/STAP-B/MTAP, or at the start of an FU-A/FU-B.
//   - AV1 (AV1 RTP payload format): N=1 in the aggregation header, or an
//     OBU_SEQUENCE_HEADER as the first OBU of the packet (temporal delimiters
//     and padding OBUs are skipped).
//   - H.265 (RFC 7798): an IRAP picture (BLA 16-18, IDR_W_RADL 19, IDR_N_LP
//     20, CRA 21), VPS (32) or SPS (33) as a single NAL unit, inside an
//     aggregation packet, or at the start of a fragmentation unit. DONL
//     fields (sprop-max-don-diff > 0) are not supported; WebRTC never uses
//     them.
//   - Audio codecs: always true.
//   - CodecUnknown and invalid values: false.
func (c Codec) IsKeyframe(payload []byte) bool {
	switch c {
	case CodecVP8:
		return isVP8Keyframe(payload)
	case CodecVP9:
		return isVP9Keyframe(payload)
	case CodecH264:
		return isH264Keyframe(payload)
	case CodecAV1:
		return isAV1Keyframe(payload)
	case CodecH265:
		return isH265Keyframe(payload)
	default:
		return c.IsAudio()
	}
}
