package rtputil

import (
	"bytes"
	"testing"

	"github.com/pion/rtp/codecs"
)

// FuzzIsKeyframe: no payload makes any codec panic, read out of bounds or
// modify its input; audio is always a keyframe, unknown codecs never.
func FuzzIsKeyframe(f *testing.F) {
	seeds := [][]byte{
		nil,
		cat(0x90, 0xf0, 0x92, 0x34, 0x05, 0x40, vp8KeyHeader),
		cat(0x8f, 0x92, 0x34, 0x18, 0x02, 0x80, 0x01, 0x68, 0x01, 0x14, 0x01, vp9FrameHeader(0, true, 640, 360)),
		cat(0xb8, 0x81, 0x00, 0x00, 0x82),
		cat(0x78, stap(testSPS264, testPPS264, testIDR264)),
		cat(0x7c, 0x85, 0x00),
		cat(0x20, 0x01, obuTD, obuSeqHdr, 0x00),
		cat(0x00, 0x82, 0x01, obuSeqHdr),
		cat(h265NAL(48), stap(h265NAL(32, 0x0c), h265NAL(19, 0x01))),
		cat(h265NAL(49), 0x93, 0x00),
	}
	for _, s := range seeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		orig := bytes.Clone(payload)
		for c := range codecCount + 1 {
			got := c.IsKeyframe(payload)
			switch {
			case c.IsAudio() && !got:
				t.Fatalf("%v.IsKeyframe = false for audio", c)
			case !c.IsAudio() && !c.IsVideo() && got:
				t.Fatalf("%v.IsKeyframe = true", c)
			}
			// Cutting the capacity to the length exposes reads past the end.
			_ = c.IsKeyframe(payload[:len(payload):len(payload)])
		}
		if !bytes.Equal(payload, orig) {
			t.Fatal("IsKeyframe modified its input")
		}
	})
}

// FuzzParseVP8Descriptor checks the parser against pion's depacketizer.
func FuzzParseVP8Descriptor(f *testing.F) {
	f.Add(cat(0x90, 0xf0, 0x92, 0x34, 0x05, 0x40, 0x50))
	f.Add(cat(0x90, 0x80, 0x17))
	f.Add(cat(0x10))
	f.Fuzz(func(t *testing.T, payload []byte) {
		d, err := ParseVP8Descriptor(payload)
		var p codecs.VP8Packet
		rest, perr := p.Unmarshal(append([]byte{}, payload...))
		if (err == nil) != (perr == nil) {
			t.Fatalf("err = %v, pion err = %v", err, perr)
		}
		if err != nil {
			return
		}
		want := VP8Descriptor{
			Size:          len(payload) - len(rest),
			NonReference:  p.N == 1,
			Start:         p.S == 1,
			PartitionID:   p.PID,
			HasPictureID:  p.I == 1,
			PictureIDWide: p.I == 1 && payload[2]&0x80 != 0,
			PictureID:     p.PictureID,
			HasTL0PICIDX:  p.L == 1,
			TL0PICIDX:     p.TL0PICIDX,
			HasTID:        p.T == 1,
			TID:           p.TID,
			LayerSync:     p.Y == 1,
			HasKeyIdx:     p.K == 1,
			KeyIdx:        p.KEYIDX,
		}
		if d != want {
			t.Fatalf("got  %+v\npion %+v", d, want)
		}
	})
}

// FuzzVP9DescriptorSize checks the descriptor walk against pion's
// depacketizer.
func FuzzVP9DescriptorSize(f *testing.F) {
	f.Add(cat(0x8f, 0x92, 0x34, 0x18, 0x02, 0x80, 0x01, 0x68, 0x01, 0x14, 0x01, 0x82))
	f.Add(cat(0xf8, 0x81, 0x00, 0x00, 0x03, 0x05, 0x02, 0x82))
	f.Add(cat(0xaa, 0x05, 0x00, 0x07, 0x50, 0x01, 0x40, 0x00, 0xb4, 0x02, 0x80, 0x01, 0x68, 0x05, 0x00, 0x02, 0xd0))
	f.Fuzz(func(t *testing.T, payload []byte) {
		if len(payload) == 0 {
			return
		}
		n, ok := vp9DescriptorSize(payload)
		var p codecs.VP9Packet
		rest, err := p.Unmarshal(append([]byte{}, payload...))
		if err != nil && p.L && p.SID >= 5 {
			return // pion rejects more than 5 spatial layers; we only need SID 0
		}
		if ok != (err == nil) {
			t.Fatalf("ok = %v, pion err = %v", ok, err)
		}
		if ok && n != len(payload)-len(rest) {
			t.Fatalf("size %d, pion %d", n, len(payload)-len(rest))
		}
	})
}

// cacheModel is the reference PacketCache: a map by extended sequence
// number plus the window rules, written without ring arithmetic.
type cacheModel struct {
	slots, maxSize int
	highest        int64 // 0 while empty
	probe          int   // seq that resynchronizes, or -1
	pkts           map[int64][]byte
	stats          CacheStats
}

// nearest returns the extended value with low 16 bits seq in
// [highest-32768, highest+32767].
func (m *cacheModel) nearest(seq uint16) int64 {
	lo := m.highest - 32768
	return lo + int64((int(seq)-int(lo%65536)+65536)%65536)
}

func (m *cacheModel) put(seq uint16, p []byte) {
	if len(p) > m.maxSize {
		m.stats.Oversized++
		return
	}
	var ext int64
	switch {
	case m.highest == 0:
		ext = 65536 + int64(seq)
		m.highest = ext
	default:
		ext = m.nearest(seq)
		switch {
		case ext > m.highest:
			m.highest = ext
		case m.highest-ext < int64(m.slots):
		case m.probe == int(seq):
			ext = m.highest + int64(m.slots)
			for ext%65536 != int64(seq) {
				ext++
			}
			m.highest = ext
			m.stats.Resyncs++
		default:
			m.probe = int(seq + 1) // wraps like the cache's uint16
			m.stats.TooOld++
			return
		}
	}
	m.probe = -1
	m.pkts[ext] = bytes.Clone(p)
	m.stats.Stored++
}

func (m *cacheModel) get(seq uint16, dstLen int) ([]byte, bool) {
	if m.highest == 0 {
		return nil, false
	}
	ext := m.nearest(seq)
	if ext > m.highest || m.highest-ext >= int64(m.slots) {
		return nil, false
	}
	p, ok := m.pkts[ext]
	if !ok || len(p) > dstLen {
		return nil, false
	}
	return p, true
}

// FuzzPacketCache drives a PacketCache and the model with the same
// operations. The input is a slot-count byte, then 4-byte operations:
// kind, seq (2 bytes), size.
func FuzzPacketCache(f *testing.F) {
	f.Add([]byte{8, 0, 0xff, 0xfe, 10, 0, 0xff, 0xff, 20, 0, 0, 0, 30, 1, 0xff, 0xff, 40, 1, 0, 5, 40})
	f.Add([]byte{3, 0, 0x13, 0x88, 10, 0, 0x03, 0xe8, 10, 0, 0x03, 0xe9, 10, 1, 0x03, 0xe9, 64, 1, 0x13, 0x88, 64})
	f.Add([]byte{1, 0, 0, 1, 200, 1, 0, 1, 199, 2, 0, 0, 0, 1, 0, 1, 255})
	f.Fuzz(func(t *testing.T, in []byte) {
		if len(in) < 1 {
			return
		}
		const maxSize = 128
		c := NewPacketCache(int(in[0]%64), maxSize)
		m := &cacheModel{slots: c.Slots(), maxSize: maxSize, probe: -1, pkts: map[int64][]byte{}}
		dst := make([]byte, 256)
		for i, op := 0, in[1:]; len(op) >= 4; i, op = i+1, op[4:] {
			seq := uint16(op[1])<<8 | uint16(op[2])
			size := int(op[3])
			switch op[0] % 8 {
			case 0, 1, 2, 3: // put
				p := pkt(seq, size)
				if size > 2 {
					p[2] = byte(i) // distinguish re-puts of one seq
				}
				c.Put(seq, p)
				m.put(seq, p)
			case 7:
				c.Reset()
				m.highest, m.probe, m.pkts = 0, -1, map[int64][]byte{}
			default: // get into a dst of the given size
				n, ok := c.Get(seq, dst[:size])
				want, wantOK := m.get(seq, size)
				if ok != wantOK {
					t.Fatalf("op %d: Get(%d) ok = %v, model %v", i, seq, ok, wantOK)
				}
				if ok && !bytes.Equal(dst[:n], want) {
					t.Fatalf("op %d: Get(%d) = % x, model % x", i, seq, dst[:n], want)
				}
			}
		}
		if st := c.Stats(); st != m.stats {
			t.Fatalf("stats %+v, model %+v", st, m.stats)
		}
	})
}

// FuzzVP8KeyframeMatchesDescriptor: the hot-path walk agrees with the full
// parser.
func FuzzVP8KeyframeMatchesDescriptor(f *testing.F) {
	f.Add(cat(0x90, 0xf0, 0x92, 0x34, 0x05, 0x40, 0x50))
	f.Add(cat(0x90, 0x80, 0x81))
	f.Fuzz(func(t *testing.T, payload []byte) {
		d, err := ParseVP8Descriptor(payload)
		want := err == nil && d.Start && d.PartitionID == 0 && len(payload) > d.Size && payload[d.Size]&1 == 0
		if got := isVP8Keyframe(payload); got != want {
			t.Fatalf("isVP8Keyframe(% x) = %v, descriptor says %v", payload, got, want)
		}
	})
}
