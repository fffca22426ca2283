package rtputil

// H.264 NAL unit types (RFC 6184, section 5.4; ITU-T H.264 table 7-1).
const (
	h264IDR   = 5
	h264SPS   = 7
	h264STAPA = 24
	h264STAPB = 25
	h264FUA   = 28
	h264FUB   = 29

	h264TypeMask = 0x1f
	h264FBit     = 0x80 // forbidden_zero_bit
	fuStartBit   = 0x80 // S in an H.264 or H.265 FU header
)

// isH264Keyframe reports whether the payload carries an IDR slice or an
// SPS: as a single NAL unit, inside a STAP-A/STAP-B, or at the start of an
// FU-A/FU-B. MTAPs (interleaved mode only, never used by WebRTC) and NAL
// unit types 0 and 30-31 report false.
func isH264Keyframe(payload []byte) bool {
	if len(payload) < 1 || payload[0]&h264FBit != 0 {
		return false
	}
	switch t := payload[0] & h264TypeMask; t {
	case h264STAPA:
		return h264AggregateHasKeyframe(payload[1:])
	case h264STAPB:
		return h264AggregateHasKeyframe(skip(payload, 3)) // after the DON
	case h264FUA, h264FUB:
		return len(payload) >= 2 && payload[1]&fuStartBit != 0 &&
			h264IsKeyframeType(payload[1]&h264TypeMask)
	default: // single NAL unit packet
		return h264IsKeyframeType(t)
	}
}

func h264IsKeyframeType(t byte) bool { return t == h264IDR || t == h264SPS }

// h264AggregateHasKeyframe walks single-time aggregation units, each a
// 16-bit NAL unit size followed by the NAL unit, and reports whether one of
// them is an IDR slice or SPS. A malformed unit ends the walk with false.
func h264AggregateHasKeyframe(units []byte) bool {
	for len(units) >= 2 {
		size := int(units[0])<<8 | int(units[1])
		units = units[2:]
		if size < 1 || len(units) < size {
			return false
		}
		if nal := units[0]; nal&h264FBit == 0 && h264IsKeyframeType(nal&h264TypeMask) {
			return true
		}
		units = units[size:]
	}
	return false
}

// skip returns b[n:], or nil if b is shorter than n.
func skip(b []byte, n int) []byte {
	if len(b) < n {
		return nil
	}
	return b[n:]
}
