package wan

import (
	"encoding/binary"
	"errors"
	"io"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"
)

// memPort is an in-memory port: frames offered on in, departures timed on write.
type memPort struct {
	in     chan []byte
	closed chan struct{}
	once   sync.Once
	mu     sync.Mutex
	out    func(frame []byte)
}

func newMemPort(out func([]byte)) *memPort {
	return &memPort{in: make(chan []byte, 1024), closed: make(chan struct{}), out: out}
}

func (p *memPort) Read(b []byte) (int, error) {
	select {
	case f := <-p.in:
		return copy(b, f), nil
	case <-p.closed:
		return 0, io.EOF
	}
}

func (p *memPort) Write(b []byte) (int, error) {
	if p.out != nil {
		p.out(b)
	}
	return len(b), nil
}

func (p *memPort) Close() error { p.once.Do(func() { close(p.closed) }); return nil }

// BenchmarkSwitchAccuracy20Mbit sends 1200-byte frames at 20 Mb/s through a
// 10 ms pipe and reports the emulator's own error: how late each frame leaves
// compared with its due time (delay_err_p50_us, delay_err_p99_us), and the
// CPU the switch spends per frame (cpu_ns/frame, user+system of the whole
// process, which here is mostly the switch).
func BenchmarkSwitchAccuracy20Mbit(b *testing.B) {
	const size, delay = 1200, 10 * time.Millisecond
	const interval = time.Duration(size * 8 * int64(time.Second) / 20_000_000) // 480 µs
	sent := make([]int64, b.N)
	errs := make([]int64, 0, b.N)
	var mu sync.Mutex
	var s *Switch
	got := make(chan struct{}, b.N)
	dst := newMemPort(func(f []byte) {
		i := binary.BigEndian.Uint32(f[14:])
		now := s.now()
		mu.Lock()
		errs = append(errs, now-sent[i]-int64(delay))
		mu.Unlock()
		got <- struct{}{}
	})
	src := newMemPort(nil)
	macA, macB := [6]byte{2, 0, 0, 0, 0, 1}, [6]byte{2, 0, 0, 0, 0, 2}
	pipes := [][]*Pipe{{nil, NewPipe(Params{Delay: delay}, 1)}, {NewPipe(Params{Delay: delay}, 2), nil}}
	s, err := New([]Port{{Name: "a", MAC: macA, Dev: src}, {Name: "b", MAC: macB, Dev: dst}}, pipes, nil)
	if err != nil {
		b.Fatal(err)
	}
	s.Start()
	frames := make([][]byte, 64)
	for i := range frames {
		f := make([]byte, size)
		copy(f[0:6], macB[:])
		copy(f[6:12], macA[:])
		frames[i] = f
	}
	var ru0, ru1 syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru0)
	b.ResetTimer()
	start := time.Now()
	for i := range b.N {
		for d := time.Duration(i) * interval; time.Since(start) < d; {
			time.Sleep(50 * time.Microsecond)
		}
		f := frames[i%len(frames)]
		binary.BigEndian.PutUint32(f[14:], uint32(i))
		sent[i] = s.now()
		src.in <- slices.Clone(f)
	}
	timeout := time.After(10 * time.Second)
	for range b.N {
		select {
		case <-got:
		case <-timeout:
			b.Fatal(errors.New("frames missing"))
		}
	}
	b.StopTimer()
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru1)
	s.Close()
	slices.Sort(errs)
	cpu := time.Duration(ru1.Utime.Nano() - ru0.Utime.Nano() + ru1.Stime.Nano() - ru0.Stime.Nano())
	b.ReportMetric(float64(errs[len(errs)/2])/1e3, "delay_err_p50_us")
	b.ReportMetric(float64(errs[len(errs)*99/100])/1e3, "delay_err_p99_us")
	b.ReportMetric(float64(errs[len(errs)-1])/1e3, "delay_err_max_us")
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu_ns/frame")
	if errs[0] < 0 {
		b.Fatalf("a frame left %d ns early", -errs[0])
	}
}
