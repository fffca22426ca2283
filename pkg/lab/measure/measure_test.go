package measure

import (
	"math"
	"testing"
	"time"
)

var t0 = time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC)

func ms(v float64) time.Time { return t0.Add(time.Duration(v * float64(time.Millisecond))) }

func near(a, b float64) bool { return math.Abs(a-b) < 1e-6 }

// TestJitterHandComputed checks RFC 3550 A.8 against a hand computation. Clock rate 1000 Hz, so
// one timestamp unit is 1 ms. Timestamps 0, 20, 40, 60; arrivals 0, 25, 40, 70 ms: transits
// 0, 5, 0, 10; |D| = 5, 5, 10; J = 5/16 = 0.3125, then 0.3125 + (5-0.3125)/16 = 0.60546875,
// then 0.60546875 + (10-0.60546875)/16 = 1.192626953125 ms.
func TestJitterHandComputed(t *testing.T) {
	r := NewRecorder(1000, t0)
	for i, a := range []float64{0, 25, 40, 70} {
		r.Add(Packet{Seq: uint16(i), Timestamp: uint32(20 * i), Marker: true, FrameStart: true, Arrival: ms(a)})
	}
	if got := r.Result().JitterMs; !near(got, 1.192626953125) {
		t.Fatalf("jitter %v ms, want 1.192626953125", got)
	}
}

// TestJitterConstantDelay: a constant network delay gives no jitter, also at 90 kHz.
func TestJitterConstantDelay(t *testing.T) {
	r := NewRecorder(90000, t0)
	for i := range 100 {
		r.Add(Packet{Seq: uint16(i), Timestamp: uint32(3000 * i), Marker: true, FrameStart: true, Arrival: ms(100 + float64(i)*100/3)})
	}
	if got := r.Result().JitterMs; got > 0.001 {
		t.Fatalf("jitter %v ms with a constant delay", got)
	}
}

func TestPercentiles(t *testing.T) {
	var s []float64
	for i := 100; i >= 1; i-- {
		s = append(s, float64(i))
	}
	p := Percentile(s)
	if p.P50 != 50 || p.P95 != 95 || p.P99 != 99 || p.Mean != 50.5 {
		t.Fatalf("got %+v, want p50 50, p95 95, p99 99, mean 50.5", p)
	}
	if s[0] != 100 {
		t.Fatal("Percentile sorted its input")
	}
	if p := Percentile([]float64{7}); p.P50 != 7 || p.P99 != 7 || p.Mean != 7 {
		t.Fatalf("one sample: %+v", p)
	}
	if p := Percentile(nil); p != (Percentiles{}) {
		t.Fatalf("no samples: %+v", p)
	}
}

func TestFreezes(t *testing.T) {
	times := []time.Time{ms(0), ms(33), ms(700), ms(66), ms(733), ms(1233), ms(1800)}
	// sorted: 0 33 66 700 733 1233 1800: gaps 634 (freeze), 500 (not over), 567 (freeze)
	n, total := Freezes(times, FreezeGap)
	if n != 2 || total != 1201*time.Millisecond {
		t.Fatalf("got %d freezes, %v; want 2, 1.201s", n, total)
	}
	if n, _ := Freezes(nil, FreezeGap); n != 0 {
		t.Fatal("freezes without frames")
	}
}

// TestLossAfterRetransmission: a packet that arrives late (repaired by NACK) is not lost; one
// that never arrives is.
func TestLossAfterRetransmission(t *testing.T) {
	r := NewRecorder(90000, t0)
	for _, s := range []uint16{0, 1, 2, 4, 5, 6, 8, 9, 3, 3} { // 3 late (and duplicated), 7 never
		r.Add(Packet{Seq: s, Timestamp: uint32(s) * 3000, Marker: true, FrameStart: true, Arrival: ms(float64(s) * 33)})
	}
	res := r.Result()
	if !near(res.LossPct, 10) || res.Repaired != 1 || res.Packets != 9 || res.Frames != 9 {
		t.Fatalf("got loss %v%%, repaired %d, packets %d, frames %d; want 10, 1, 9, 9", res.LossPct, res.Repaired, res.Packets, res.Frames)
	}
}

func TestSequenceWrap(t *testing.T) {
	r := NewRecorder(90000, t0)
	for i := range 10 {
		s := uint16(65530 + i)
		r.Add(Packet{Seq: s, Timestamp: uint32(i) * 3000, Marker: true, FrameStart: true, Arrival: ms(float64(i) * 33)})
	}
	if res := r.Result(); res.LossPct != 0 || res.Frames != 10 {
		t.Fatalf("across the wrap: %+v", res)
	}
}

// TestFramesAndFirstFrame: a frame completes only with every packet from its start to its
// marker; the first complete keyframe sets first_frame_ms; latency comes from capture times.
func TestFramesAndFirstFrame(t *testing.T) {
	r := NewRecorder(90000, t0)
	add := func(seq uint16, ts uint32, start, key, marker bool, at float64) {
		r.Add(Packet{Seq: seq, Timestamp: ts, FrameStart: start, Keyframe: key, Marker: marker, Size: 1000, Arrival: ms(at), Capture: ms(at - 100)})
	}
	add(10, 0, true, false, false, 200) // delta frame, incomplete (11 missing)
	add(12, 0, false, false, true, 201)
	add(13, 3000, true, true, false, 240) // keyframe 13..15
	add(15, 3000, false, false, true, 242)
	add(14, 3000, false, false, false, 250) // completes it
	add(16, 6000, true, false, true, 1000)
	res := r.Result()
	if res.Frames != 2 || res.FirstFrameMs != 250 || res.Freezes != 1 {
		t.Fatalf("frames %d, first frame %v ms, freezes %d; want 2, 250, 1", res.Frames, res.FirstFrameMs, res.Freezes)
	}
	if res.Latency.P50 != 100 || res.Latency.Mean != 100 {
		t.Fatalf("latency %+v, want 100 ms", res.Latency)
	}
	// 6 packets of 1000 bytes over 800 ms
	if !near(res.BitrateMbps, 6*8000/0.8/1e6) {
		t.Fatalf("bitrate %v", res.BitrateMbps)
	}
}

func TestAbsCaptureTimeRoundTrip(t *testing.T) {
	at := time.Date(2026, 12, 5, 10, 0, 0, 123456789, time.UTC)
	got, err := ParseAbsCaptureTime(AbsCaptureTime(at))
	if err != nil || got.Sub(at).Abs() > time.Microsecond {
		t.Fatalf("round trip: %v, %v", got, err)
	}
	if _, err := ParseAbsCaptureTime(make([]byte, 16)); err != nil {
		t.Fatal("16 bytes (with clock offset) refused")
	}
	if _, err := ParseAbsCaptureTime(make([]byte, 5)); err == nil {
		t.Fatal("5 bytes accepted")
	}
}
