package rtputil

// VP9 payload descriptor bits (RFC 9628, section 4.2).
const (
	vp9I = 0x80 // picture ID present
	vp9P = 0x40 // inter-picture predicted
	vp9L = 0x20 // layer indices present
	vp9F = 0x10 // flexible mode
	vp9B = 0x08 // start of a frame
	vp9V = 0x02 // scalability structure present
	vp9M = 0x80 // 15-bit picture ID
	vp9N = 0x01 // another P_DIFF follows

	vp9MaxPDiff = 3 // P_DIFF entries in flexible mode
)

// isVP9Keyframe reports whether the payload starts a VP9 key frame in
// spatial layer 0: B=1 and P=0 in the payload descriptor, and, because some
// senders (pion in flexible mode) never set P, KEY_FRAME in the uncompressed
// header that follows the descriptor.
func isVP9Keyframe(payload []byte) bool {
	if len(payload) < 1 {
		return false
	}
	b := payload[0]
	if b&vp9B == 0 || b&vp9P != 0 {
		return false
	}
	n, ok := vp9DescriptorSize(payload)
	if !ok || len(payload) <= n {
		return false
	}
	if b&vp9L != 0 {
		sid := (payload[vp9LayerOffset(payload)] >> 1) & 0x07
		if sid != 0 {
			return false
		}
	}
	return vp9HeaderIsKeyframe(payload[n])
}

// vp9LayerOffset returns the offset of the layer indices byte, which the
// caller has checked is present.
func vp9LayerOffset(payload []byte) int {
	if payload[0]&vp9I == 0 {
		return 1
	}
	if payload[1]&vp9M != 0 {
		return 3
	}
	return 2
}

// vp9DescriptorSize walks the payload descriptor and returns its length, or
// false if the payload ends inside it.
func vp9DescriptorSize(payload []byte) (int, bool) {
	b := payload[0]
	n := 1
	if b&vp9I != 0 {
		if len(payload) <= n {
			return 0, false
		}
		if payload[n]&vp9M != 0 {
			n++
		}
		n++
	}
	if b&vp9L != 0 {
		n++
		if b&vp9F == 0 {
			n++ // TL0PICIDX
		}
	}
	if b&vp9F != 0 && b&vp9P != 0 {
		for i := 0; ; i++ {
			if len(payload) <= n || i == vp9MaxPDiff {
				return 0, false
			}
			more := payload[n]&vp9N != 0
			n++
			if !more {
				break
			}
		}
	}
	if b&vp9V != 0 {
		return vp9SSSize(payload, n)
	}
	if len(payload) < n {
		return 0, false
	}
	return n, true
}

// vp9SSSize walks the scalability structure at payload[n:] and returns the
// offset just past it.
func vp9SSSize(payload []byte, n int) (int, bool) {
	if len(payload) <= n {
		return 0, false
	}
	ss := payload[n]
	n++
	if ss&0x10 != 0 { // Y: WIDTH and HEIGHT for each of N_S+1 spatial layers
		n += 4 * (int(ss>>5) + 1)
	}
	if ss&0x08 != 0 { // G: picture group description
		if len(payload) <= n {
			return 0, false
		}
		ng := int(payload[n])
		n++
		for range ng {
			if len(payload) <= n {
				return 0, false
			}
			r := int(payload[n]>>2) & 0x03
			n += 1 + r
		}
	}
	if len(payload) < n {
		return 0, false
	}
	return n, true
}

// vp9HeaderIsKeyframe reads the first byte of a VP9 uncompressed header
// (VP9 bitstream specification, section 6.2): frame_marker, profile,
// reserved_zero for profile 3, show_existing_frame, frame_type.
func vp9HeaderIsKeyframe(h byte) bool {
	if h>>6 != 2 { // frame_marker
		return false
	}
	profile := ((h>>4)&0x01)<<1 | (h>>5)&0x01
	shift := 3 // show_existing_frame is bit 4 from the top
	if profile == 3 {
		if h&0x08 != 0 { // reserved_zero
			return false
		}
		shift = 2
	}
	showExisting := (h >> shift) & 0x01
	frameType := (h >> (shift - 1)) & 0x01
	return showExisting == 0 && frameType == 0
}
