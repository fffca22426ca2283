package room

import (
	"fmt"
	"testing"

	"github.com/pion/rtp"
)

type discard struct{}

func (discard) WriteRTP(h *rtp.Header, payload []byte) (int, error) { return len(payload) + 12, nil }

// BenchmarkForward measures the hot path: one RTP packet in, N out (cache, layer choice,
// rewriting, header building), with a writer that discards, so that only the SFU's own cost
// is measured, not SRTP or the kernel. The abs-capture-time cases forward that extension
// (publisher id 3, subscriber id 5) on every packet.
func BenchmarkForward(b *testing.B) {
	for _, n := range []int{1, 10, 100} {
		b.Run(fmt.Sprintf("subscribers=%d", n), func(b *testing.B) { benchForward(b, n, false) })
	}
	b.Run("subscribers=100/abs-capture-time", func(b *testing.B) { benchForward(b, 100, true) })
}

func benchForward(b *testing.B, n int, absCapture bool) {
	stats := &Stats{}
	cfg := testConfig()
	info := vp8Info()
	var absID uint8
	if absCapture {
		info.AbsCaptureTimeExtID, absID = 3, 5
	}
	track := newUpTrack(info, stats, cfg.Logger, cfg.KeyframeInterval, nil, nil)
	l := &upLayer{}
	src := newFakeSource()
	if err := track.AddLayer("", src); err != nil {
		b.Fatal(err)
	}
	l = track.layer(0)
	for range n {
		d := newDownTrack(track, "s", stats)
		d.Bind(Binding{Writer: discard{}, SSRC: 5, PayloadType: 96, AbsCaptureTimeExtID: absID})
		if err := track.addDownTrack(d); err != nil {
			b.Fatal(err)
		}
	}
	key := vp8Packet(1, 0, 0, true, 1100)
	delta := vp8Packet(1, 0, 0, false, 1100)
	if absCapture {
		capture := []byte{0xe8, 0x9a, 0x1b, 0x2c, 0x80, 0, 0, 1}
		key, delta = withAbsCapture(b, key, 3, capture), withAbsCapture(b, delta, 3, capture)
	}
	rb := &readBatch{}
	forward := func(raw []byte) {
		if track.receive(l, raw, &rb.hdrs[0], &rb.pkts[0]) {
			rb.n = 1
			track.forwardBatch(l, rb)
		}
	}
	forward(key)
	b.ReportAllocs()
	b.SetBytes(int64(len(delta)))
	b.ResetTimer()
	for i := range b.N {
		seq := uint16(i + 1)
		delta[2], delta[3] = byte(seq>>8), byte(seq)
		forward(delta)
	}
	b.StopTimer()
	if stats.PacketsOut.Load() < uint64(b.N*n) {
		b.Fatalf("forwarded %d packets, want %d", stats.PacketsOut.Load(), b.N*n)
	}
	track.Close()
}
