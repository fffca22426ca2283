package rtputil

import (
	"testing"
	"time"
)

func BenchmarkPacketCachePut(b *testing.B) {
	c := NewPacketCache(512, 1500)
	p := fill(1200)
	b.ReportAllocs()
	b.SetBytes(int64(len(p)))
	var seq uint16
	for b.Loop() {
		c.Put(seq, p)
		seq++
	}
}

func BenchmarkPacketCacheGet(b *testing.B) {
	c := NewPacketCache(512, 1500)
	p := fill(1200)
	for s := range uint16(512) {
		c.Put(s, p)
	}
	dst := make([]byte, 1500)
	b.ReportAllocs()
	b.SetBytes(int64(len(p)))
	var seq uint16
	for b.Loop() {
		c.Get(seq&511, dst) // b.Loop keeps call results alive
		seq++
	}
}

func BenchmarkPacketCacheGetParallel(b *testing.B) {
	c := NewPacketCache(512, 1500)
	p := fill(1200)
	for s := range uint16(512) {
		c.Put(s, p)
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(p)))
	b.RunParallel(func(pb *testing.PB) {
		dst := make([]byte, 1500)
		var seq uint16
		for pb.Next() {
			c.Get(seq&511, dst)
			seq++
		}
	})
}

func benchmarkIsKeyframe(b *testing.B, c Codec, payloads ...[]byte) {
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		c.IsKeyframe(payloads[i%len(payloads)])
		i++
	}
}

func BenchmarkIsKeyframeVP8(b *testing.B) {
	benchmarkIsKeyframe(b, CodecVP8,
		cat(0x90, 0xe0, 0x92, 0x34, 0x05, 0x40, vp8KeyHeader, fill(1100)),
		cat(0x80, 0xe0, 0x92, 0x34, 0x05, 0x40, fill(1100)),
		cat(0x90, 0xe0, 0x92, 0x35, 0x05, 0x40, vp8InterHeader, fill(1100)))
}

func BenchmarkIsKeyframeVP9(b *testing.B) {
	benchmarkIsKeyframe(b, CodecVP9,
		cat(0x8f, 0x92, 0x34, 0x18, 0x02, 0x80, 0x01, 0x68, 0x01, 0x14, 0x01, vp9FrameHeader(0, true, 640, 360), fill(1100)),
		cat(0xcc, 0x92, 0x35, vp9FrameHeader(0, false, 0, 0), fill(1100)))
}

func BenchmarkIsKeyframeH264(b *testing.B) {
	benchmarkIsKeyframe(b, CodecH264,
		cat(0x78, stap(testSPS264, testPPS264)),
		cat(0x7c, 0x85, fill(1100)),
		cat(0x7c, 0x05, fill(1100)),
		cat(0x41, fill(1100)))
}

func BenchmarkIsKeyframeH265(b *testing.B) {
	benchmarkIsKeyframe(b, CodecH265,
		cat(h265NAL(48), stap(h265NAL(32, 0x0c), h265NAL(33, 0x01), h265NAL(34, 0xc1))),
		cat(h265NAL(49), 0x93, fill(1100)),
		cat(h265NAL(1), fill(1100)))
}

func BenchmarkIsKeyframeAV1(b *testing.B) {
	benchmarkIsKeyframe(b, CodecAV1,
		cat(0x20, 0x0a, obuSeqHdr, fill(9), obuFrame, fill(1100)),
		cat(0x10, obuFrame, fill(1100)))
}

func BenchmarkSeqUnwrapper(b *testing.B) {
	var u SeqUnwrapper
	b.ReportAllocs()
	var seq uint16
	for b.Loop() {
		u.Unwrap(seq)
		seq++
	}
}

func BenchmarkRateMeterAdd(b *testing.B) {
	m := NewRateMeter(time.Second, 10)
	now := time.Unix(1_700_000_000, 0)
	b.ReportAllocs()
	for b.Loop() {
		now = now.Add(100 * time.Microsecond)
		m.Add(now, 1200)
	}
}

func BenchmarkRateMeterRate(b *testing.B) {
	m := NewRateMeter(time.Second, 10)
	now := time.Unix(1_700_000_000, 0)
	for range 10000 {
		now = now.Add(100 * time.Microsecond)
		m.Add(now, 1200)
	}
	b.ReportAllocs()
	for b.Loop() {
		m.Rate(now)
	}
}

func BenchmarkKeyframeThrottleAllow(b *testing.B) {
	t := NewKeyframeThrottle(time.Second)
	now := time.Unix(1_700_000_000, 0)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			t.Allow(now)
		}
	})
}
