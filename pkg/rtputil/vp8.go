package rtputil

// VP8Descriptor is the VP8 payload descriptor of RFC 7741, section 4.2.
type VP8Descriptor struct {
	// Size is the length of the descriptor in bytes: the VP8 payload starts
	// at payload[Size].
	Size int

	NonReference bool  // N: the frame can be discarded without affecting others
	Start        bool  // S: the packet starts a VP8 partition
	PartitionID  uint8 // PID: 0..7

	HasPictureID  bool   // I
	PictureIDWide bool   // M: PictureID has 15 bits rather than 7
	PictureID     uint16 // 7 or 15 bits

	HasTL0PICIDX bool // L
	TL0PICIDX    uint8

	HasTID    bool  // T
	TID       uint8 // temporal layer, 0..3
	LayerSync bool  // Y

	HasKeyIdx bool  // K
	KeyIdx    uint8 // 0..31
}

// VP8 payload descriptor bits.
const (
	vp8X = 0x80
	vp8N = 0x20
	vp8S = 0x10
	vp8I = 0x80
	vp8L = 0x40
	vp8T = 0x20
	vp8K = 0x10
	vp8M = 0x80
)

// ParseVP8Descriptor parses the VP8 payload descriptor at the start of an
// RTP payload. It returns ErrShortPayload if the payload ends inside the
// descriptor.
func ParseVP8Descriptor(payload []byte) (VP8Descriptor, error) {
	var d VP8Descriptor
	if len(payload) < 1 {
		return d, ErrShortPayload
	}
	b := payload[0]
	d.NonReference = b&vp8N != 0
	d.Start = b&vp8S != 0
	d.PartitionID = b & 0x07
	n := 1
	if b&vp8X == 0 {
		d.Size = n
		return d, nil
	}
	if len(payload) < 2 {
		return d, ErrShortPayload
	}
	x := payload[1]
	n = 2
	if x&vp8I != 0 {
		if len(payload) <= n {
			return d, ErrShortPayload
		}
		d.HasPictureID = true
		d.PictureID = uint16(payload[n] & 0x7f)
		if payload[n]&vp8M != 0 {
			if len(payload) <= n+1 {
				return d, ErrShortPayload
			}
			d.PictureIDWide = true
			d.PictureID = d.PictureID<<8 | uint16(payload[n+1])
			n++
		}
		n++
	}
	if x&vp8L != 0 {
		if len(payload) <= n {
			return d, ErrShortPayload
		}
		d.HasTL0PICIDX = true
		d.TL0PICIDX = payload[n]
		n++
	}
	if x&(vp8T|vp8K) != 0 {
		if len(payload) <= n {
			return d, ErrShortPayload
		}
		tk := payload[n]
		if x&vp8T != 0 {
			d.HasTID = true
			d.TID = tk >> 6
			d.LayerSync = tk&0x20 != 0
		}
		if x&vp8K != 0 {
			d.HasKeyIdx = true
			d.KeyIdx = tk & 0x1f
		}
		n++
	}
	d.Size = n
	return d, nil
}

// isVP8Keyframe reports whether the payload starts the first partition of a
// VP8 key frame: S=1, PID=0 and the inverse key frame flag P of the VP8
// payload header (RFC 7741, section 4.3) clear. It walks the descriptor like
// ParseVP8Descriptor without filling one in: this runs on every packet.
func isVP8Keyframe(payload []byte) bool {
	if len(payload) < 1 || payload[0]&(vp8S|0x07) != vp8S {
		return false
	}
	n := 1
	if payload[0]&vp8X != 0 {
		if len(payload) < 2 {
			return false
		}
		x := payload[1]
		n = 2
		if x&vp8I != 0 {
			if len(payload) <= n {
				return false
			}
			if payload[n]&vp8M != 0 {
				n++
			}
			n++
		}
		if x&vp8L != 0 {
			n++
		}
		if x&(vp8T|vp8K) != 0 {
			n++
		}
	}
	return len(payload) > n && payload[n]&0x01 == 0
}
