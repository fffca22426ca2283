package rtputil

// H.265 NAL unit types (RFC 7798, section 4.4; ITU-T H.265 table 7-1).
const (
	h265BLAWLP   = 16 // first IRAP type
	h265CRA      = 21 // last IRAP type a decoder can start at
	h265VPS      = 32
	h265SPS      = 33
	h265AP       = 48
	h265FU       = 49
	h265HdrSize  = 2
	h265TypeMask = 0x3f
	h265FBit     = 0x80
)

// isH265Keyframe reports whether the payload carries an IRAP picture (BLA,
// IDR or CRA), a VPS or an SPS: as a single NAL unit, inside an aggregation
// packet, or at the start of a fragmentation unit. PACI packets report false.
// DONL/DOND fields (sprop-max-don-diff > 0) are not supported.
func isH265Keyframe(payload []byte) bool {
	if len(payload) < h265HdrSize || payload[0]&h265FBit != 0 {
		return false
	}
	switch t := h265Type(payload[0]); t {
	case h265AP:
		return h265AggregateHasKeyframe(payload[h265HdrSize:])
	case h265FU:
		return len(payload) > h265HdrSize && payload[h265HdrSize]&fuStartBit != 0 &&
			h265IsKeyframeType(payload[h265HdrSize]&h265TypeMask)
	default: // single NAL unit packet; PACI (50) and unspecified types are not keyframes
		return h265IsKeyframeType(t)
	}
}

// h265Type extracts nal_unit_type from the first byte of a NAL unit header.
func h265Type(b byte) byte { return b >> 1 & h265TypeMask }

func h265IsKeyframeType(t byte) bool {
	return (t >= h265BLAWLP && t <= h265CRA) || t == h265VPS || t == h265SPS
}

// h265AggregateHasKeyframe walks aggregation units, each a 16-bit NAL unit
// size followed by the NAL unit, and reports whether one of them is a
// keyframe NAL unit. A malformed unit ends the walk with false.
func h265AggregateHasKeyframe(units []byte) bool {
	for len(units) >= 2 {
		size := int(units[0])<<8 | int(units[1])
		units = units[2:]
		if size < h265HdrSize || len(units) < size {
			return false
		}
		if nal := units[0]; nal&h265FBit == 0 && h265IsKeyframeType(h265Type(nal)) {
			return true
		}
		units = units[size:]
	}
	return false
}
