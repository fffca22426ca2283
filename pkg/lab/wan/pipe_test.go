package wan

import (
	"math"
	"testing"
	"time"
)

func TestGilbertElliottKeepsLossAndBurst(t *testing.T) {
	const n = 2_000_000
	for _, c := range []struct{ loss, burst float64 }{{0.008, 3}, {0.05, 5}, {0.01, 1.5}} {
		p := NewPipe(Params{Loss: c.loss, LossBurst: c.burst}, 42)
		lost, bursts, run := 0, 0, 0
		for i := range n {
			if _, ok := p.Admit(int64(i)*1000, 100); !ok {
				lost++
				run++
				continue
			}
			if run > 0 {
				bursts++
				run = 0
			}
		}
		rate := float64(lost) / n
		mean := float64(lost) / float64(bursts)
		// Relative tolerance 8%: the standard error here is ≈2–4% of the loss rate (bursty losses count ~1/burst independent events).
		if math.Abs(rate-c.loss)/c.loss > 0.08 {
			t.Errorf("loss %.4f burst %v: measured loss %.5f", c.loss, c.burst, rate)
		}
		if math.Abs(mean-c.burst)/c.burst > 0.08 {
			t.Errorf("loss %.4f burst %v: measured mean burst %.3f", c.loss, c.burst, mean)
		}
		if got := p.C.Lost.Load(); got != uint64(lost) {
			t.Errorf("lost counter %d, counted %d", got, lost)
		}
	}
}

func TestIndependentLoss(t *testing.T) {
	const n = 1_000_000
	p := NewPipe(Params{Loss: 0.01}, 7)
	lost, bursts, prevLost := 0, 0, false
	for i := range n {
		_, ok := p.Admit(int64(i), 100)
		if !ok {
			lost++
			if !prevLost {
				bursts++
			}
		}
		prevLost = !ok
	}
	if r := float64(lost) / n; math.Abs(r-0.01) > 0.0005 { // ≈5σ
		t.Fatalf("loss %.5f, want 0.01", r)
	}
	if m := float64(lost) / float64(bursts); m > 1.02 { // independent: mean burst 1/(1-p) ≈ 1.01
		t.Fatalf("independent losses come in bursts of %.3f", m)
	}
}

func TestJitterKeepsOrderAndSpread(t *testing.T) {
	const delay, jitter = 100 * time.Millisecond, 8 * time.Millisecond
	// Sparse frames (50 ms apart): delays uniform in delay±jitter.
	p := NewPipe(Params{Delay: delay, Jitter: jitter}, 1)
	var sum float64
	lo, hi := time.Hour, time.Duration(0)
	const n = 100_000
	for i := range n {
		now := int64(i) * int64(50*time.Millisecond)
		due, ok := p.Admit(now, 100)
		if !ok {
			t.Fatal("dropped without loss")
		}
		d := time.Duration(due - now)
		sum += float64(d)
		lo, hi = min(lo, d), max(hi, d)
	}
	if mean := time.Duration(sum / n); mean < delay-200*time.Microsecond || mean > delay+200*time.Microsecond {
		t.Errorf("mean delay %v, want %v", mean, delay)
	}
	if lo < delay-jitter || hi > delay+jitter || lo > delay-jitter+100*time.Microsecond || hi < delay+jitter-100*time.Microsecond {
		t.Errorf("delay range [%v, %v], want [%v, %v]", lo, hi, delay-jitter, delay+jitter)
	}
	// Dense frames (1 ms apart, closer than the jitter): order is kept.
	p = NewPipe(Params{Delay: delay, Jitter: jitter}, 2)
	var last int64
	for i := range n {
		now := int64(i) * int64(time.Millisecond)
		due, _ := p.Admit(now, 100)
		if due < last {
			t.Fatalf("frame %d leaves at %d before the previous one at %d", i, due, last)
		}
		if d := time.Duration(due - now); d < delay-jitter || d > delay+jitter {
			t.Fatalf("frame %d delayed %v", i, d)
		}
		last = due
	}
}

func TestRateSerialisesAndBoundsQueue(t *testing.T) {
	// 1 Mbit/s, 1250-byte frames = 10 ms each; 100 frames offered at once.
	p := NewPipe(Params{RateBits: 1_000_000, QueueLimit: 200 * time.Millisecond}, 3)
	passed := 0
	var last int64
	for range 100 {
		due, ok := p.Admit(0, 1250)
		if ok {
			passed++
			last = due
		}
	}
	// The queue holds 200 ms: the first frame plus 20 waiting ones.
	if passed != 21 || p.C.QueueDrop.Load() != 79 {
		t.Fatalf("passed %d dropped %d, want 21 and 79", passed, p.C.QueueDrop.Load())
	}
	if time.Duration(last) != 210*time.Millisecond {
		t.Fatalf("last frame leaves at %v, want 210ms", time.Duration(last))
	}
}
