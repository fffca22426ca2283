package rtputil

// AV1 RTP aggregation header bits (AV1 RTP payload format, section 4.4).
const (
	av1Z = 0x80 // the first OBU element continues an OBU from the previous packet
	av1N = 0x08 // the packet starts a new coded video sequence

	av1OBUForbidden      = 0x80
	av1OBUSequenceHeader = 1
	av1OBUTemporalDelim  = 2
	av1OBUPadding        = 15

	leb128MaxBytes = 8
)

// isAV1Keyframe reports whether the payload starts a new coded video
// sequence (N=1) or whose first OBU, after any temporal delimiters and
// padding, is a sequence header.
func isAV1Keyframe(payload []byte) bool {
	if len(payload) < 2 {
		return false
	}
	agg := payload[0]
	if agg&av1N != 0 {
		return true
	}
	if agg&av1Z != 0 {
		return false
	}
	w := int(agg>>4) & 0x03 // number of OBU elements; 0: each has a length field
	rest := payload[1:]
	for i := 1; len(rest) > 0 && (w == 0 || i <= w); i++ {
		size := len(rest)
		if w == 0 || i < w {
			v, n, ok := readLEB128(rest)
			if !ok || v == 0 || v > uint64(len(rest)-n) {
				return false
			}
			size = int(v)
			rest = rest[n:]
		}
		obu := rest[0]
		if obu&av1OBUForbidden != 0 {
			return false
		}
		switch obu >> 3 & 0x0f {
		case av1OBUSequenceHeader:
			return true
		case av1OBUTemporalDelim, av1OBUPadding:
			rest = rest[size:]
		default:
			return false
		}
	}
	return false
}

// readLEB128 decodes an unsigned LEB128 value of at most 8 bytes (AV1
// specification, section 4.10.5) and returns it with the number of bytes
// read.
func readLEB128(b []byte) (v uint64, n int, ok bool) {
	for i := 0; i < leb128MaxBytes && i < len(b); i++ {
		v |= uint64(b[i]&0x7f) << (7 * i)
		if b[i]&0x80 == 0 {
			return v, i + 1, true
		}
	}
	return 0, 0, false
}
