package loadgen

import (
	"os"
	"testing"
	"time"
)

func TestPercentile(t *testing.T) {
	ms := func(v ...int) []time.Duration {
		var d []time.Duration
		for _, x := range v {
			d = append(d, time.Duration(x)*time.Millisecond)
		}
		return d
	}
	cases := []struct {
		in   []time.Duration
		p    float64
		want time.Duration
	}{
		{nil, 50, 0},
		{ms(7), 95, 7 * time.Millisecond},
		{ms(5, 1, 4, 2, 3), 50, 3 * time.Millisecond},
		{ms(5, 1, 4, 2, 3), 0, 1 * time.Millisecond},
		{ms(5, 1, 4, 2, 3), 100, 5 * time.Millisecond},
		{ms(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20), 95, 19 * time.Millisecond},
		{ms(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20), 50, 10 * time.Millisecond},
	}
	for _, c := range cases {
		in := append([]time.Duration(nil), c.in...)
		if got := Percentile(c.in, c.p); got != c.want {
			t.Errorf("Percentile(%v, %v) = %v, want %v", c.in, c.p, got, c.want)
		}
		for i := range in {
			if in[i] != c.in[i] {
				t.Fatalf("Percentile modified its input")
			}
		}
	}
}

func feed(s *SeqTracker, seqs ...int) {
	for _, q := range seqs {
		s.Add(uint16(q))
	}
}

func TestSeqTrackerLossAndWrap(t *testing.T) {
	cases := []struct {
		name               string
		seqs               []int
		expected, received uint64
	}{
		{"in order", []int{10, 11, 12, 13}, 4, 4},
		{"a gap", []int{10, 11, 14, 15}, 6, 4},
		{"gap repaired by a retransmission", []int{10, 11, 14, 12, 13, 15}, 6, 6},
		{"duplicate not counted twice", []int{10, 11, 11, 12}, 3, 3},
		{"wrap-around", []int{65533, 65534, 65535, 0, 1, 2}, 6, 6},
		{"gap across the wrap", []int{65534, 65535, 1, 2}, 5, 4},
		{"reordered across the wrap", []int{65534, 0, 65535, 1}, 4, 4},
		{"older than the first ignored", []int{100, 99, 101}, 2, 2},
		{"large jump forward", []int{0, 2000, 2001}, 2002, 3},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var s SeqTracker
			feed(&s, c.seqs...)
			if s.Expected() != c.expected || s.Received() != c.received {
				t.Fatalf("expected/received = %d/%d, want %d/%d", s.Expected(), s.Received(), c.expected, c.received)
			}
		})
	}
}

func TestSeqTrackerManyWraps(t *testing.T) {
	var s SeqTracker
	lost := 0
	for i := 0; i < 3*65536+100; i++ {
		if i%1000 == 999 {
			lost++
			continue
		}
		s.Add(uint16(i + 60000))
	}
	want := uint64(3*65536 + 100)
	if s.Expected() != want || s.Received() != want-uint64(lost) {
		t.Fatalf("expected/received = %d/%d, want %d/%d", s.Expected(), s.Received(), want, want-uint64(lost))
	}
	if l := LossRatio(s.Expected(), s.Received()); l < 0.0009 || l > 0.0011 {
		t.Fatalf("loss %v, want about 0.1%%", l)
	}
}

func TestLossRatio(t *testing.T) {
	if LossRatio(0, 0) != 0 || LossRatio(10, 12) != 0 || LossRatio(100, 99) != 0.01 {
		t.Fatal("LossRatio")
	}
}

func TestParseProcStat(t *testing.T) {
	// A real line's shape, with a command name holding spaces and a parenthesis.
	stat := "4242 (sfu (x) y) S 1 4242 4242 0 -1 4194560 1234 0 0 0 250 75 0 0 20 0 12 0 100 0 0"
	got, err := ParseProcStat(stat)
	if err != nil {
		t.Fatal(err)
	}
	if want := 3250 * time.Millisecond; got != want {
		t.Fatalf("cpu %v, want %v (utime 250 + stime 75 ticks)", got, want)
	}
	for _, bad := range []string{"", "4242 sfu S 1", "4242 (sfu) S 1 2 3", "4242 (sfu) S 1 4242 4242 0 -1 4194560 1234 0 0 0 x 75 0"} {
		if _, err := ParseProcStat(bad); err == nil {
			t.Errorf("ParseProcStat(%q) accepted", bad)
		}
	}
}

func TestCPUPerMillion(t *testing.T) {
	t0 := time.Unix(1000, 0)
	a := CPUSample{At: t0, CPU: 10 * time.Second}
	b := CPUSample{At: t0.Add(30 * time.Second), CPU: 25 * time.Second}
	// 15 CPU-seconds for 5.46 million packets: 2.747 s per million.
	if got := CPUPerMillion(a, b, 5_460_000); got < 2.747 || got > 2.748 {
		t.Fatalf("CPUPerMillion = %v", got)
	}
	if got := Utilization(a, b); got != 0.5 {
		t.Fatalf("Utilization = %v, want 0.5", got)
	}
	if CPUPerMillion(a, b, 0) != 0 || CPUPerMillion(b, a, 10) != 0 {
		t.Fatal("no packets or a reversed pair must give 0")
	}
}

func TestReadProcCPUSelf(t *testing.T) {
	s, err := ReadProcCPU(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if s.At.IsZero() {
		t.Fatal("no sample time")
	}
	if _, err := ReadProcCPU(1 << 30); err == nil {
		t.Fatal("a missing process was read")
	}
}

// A window whose totals fell (viewers closed and left the sums) reports nothing, not a
// wrapped-around figure (seen at the end of a --find-max run: "egress 18447578789752983552 pkt/s").
func TestWindowWhenTotalsFall(t *testing.T) {
	now := time.Now()
	a := totals{packets: 1000, bytes: 1_000_000, expected: 1000, received: 990, at: now}
	b := totals{packets: 10, bytes: 10_000, expected: 10, received: 10, at: now.Add(time.Second)}
	w := window(a, b)
	if w.Packets != 0 || w.PacketsPerSec != 0 || w.BitsPerSec != 0 || w.Loss != 0 {
		t.Fatalf("window over falling totals: %+v", w)
	}
}
