package wan

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// MaxFrame is the largest frame the switch carries (Ethernet MTU 1500 plus headers).
const MaxFrame = 1600

// MaxQueued bounds the frames waiting at one output; more are dropped.
const MaxQueued = 1 << 16

// Port is one side of the switch: a TAP device (or any frame reader/writer).
// Read returns one frame; Close makes a blocked Read return.
type Port struct {
	Name string
	MAC  [6]byte // frames to it carry this destination; frames from it this source
	Dev  io.ReadWriteCloser
}

// Switch forwards Ethernet frames between ports through per-pair pipes. A
// port reaches another only when a pipe joins them; broadcast and multicast
// frames (ARP) go to every port linked to the source.
type Switch struct {
	log   *slog.Logger
	ports []Port
	pipes [][]*Pipe // [src][dst], nil = not linked
	outs  []*output
	pool  sync.Pool
	start time.Time
	wg    sync.WaitGroup
	once  sync.Once
	done  chan struct{}

	failOnce sync.Once
	failed   chan struct{} // closed when a port fails
	failErr  error         // set before failed is closed

	NoRoute  atomic.Uint64 // frames to an unknown or unlinked destination
	Spoofed  atomic.Uint64 // frames whose source MAC is not the port's
	OutDrops atomic.Uint64 // frames dropped at a full output queue
	WriteErr atomic.Uint64
}

// ErrConfig is returned for an inconsistent switch configuration.
var ErrConfig = errors.New("wan: bad switch configuration")

// New returns a switch over ports; pipes[i][j] carries frames from port i to
// port j (nil: not linked). Start runs it.
func New(ports []Port, pipes [][]*Pipe, log *slog.Logger) (*Switch, error) {
	if len(pipes) != len(ports) {
		return nil, fmt.Errorf("%w: %d pipe rows for %d ports", ErrConfig, len(pipes), len(ports))
	}
	for i := range pipes {
		if len(pipes[i]) != len(ports) || pipes[i][i] != nil {
			return nil, fmt.Errorf("%w: pipe row %d", ErrConfig, i)
		}
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Switch{log: log, ports: ports, pipes: pipes, start: time.Now(), done: make(chan struct{}), failed: make(chan struct{})}
	s.pool.New = func() any { b := make([]byte, MaxFrame); return &b }
	for i := range ports {
		s.outs = append(s.outs, &output{port: ports[i], wake: make(chan struct{}, 1)})
	}
	return s, nil
}

// Start starts one reader and one writer goroutine per port.
func (s *Switch) Start() {
	for i := range s.ports {
		s.wg.Add(2)
		go s.readLoop(i)
		go s.writeLoop(s.outs[i])
	}
}

// Close stops the switch, closes the ports and waits for its goroutines.
func (s *Switch) Close() error {
	var err error
	s.once.Do(func() {
		close(s.done)
		for _, p := range s.ports {
			err = errors.Join(err, p.Dev.Close())
		}
		s.wg.Wait()
		for _, o := range s.outs {
			for _, it := range o.h {
				s.pool.Put(it.buf)
			}
			o.h = nil
		}
	})
	return err
}

// Failed is closed when a port fails (its device went away); Err says why.
func (s *Switch) Failed() <-chan struct{} { return s.failed }

// Err returns the port failure, once Failed is closed.
func (s *Switch) Err() error {
	select {
	case <-s.failed:
		return s.failErr
	default:
		return nil
	}
}

func (s *Switch) now() int64 { return int64(time.Since(s.start)) }

// dest returns the port index owning mac, or -1.
func (s *Switch) dest(mac []byte) int {
	for j := range s.ports {
		if [6]byte(mac) == s.ports[j].MAC {
			return j
		}
	}
	return -1
}

func (s *Switch) readLoop(i int) {
	defer s.wg.Done()
	row := s.pipes[i]
	for {
		bp := s.pool.Get().(*[]byte)
		n, err := s.ports[i].Dev.Read(*bp)
		if err != nil {
			s.pool.Put(bp)
			select {
			case <-s.done:
			default:
				s.log.Error("lab switch: port read failed", "port", s.ports[i].Name, "err", err)
				s.failOnce.Do(func() { s.failErr = fmt.Errorf("port %s: %w", s.ports[i].Name, err); close(s.failed) })
			}
			return
		}
		if n < 14 {
			s.pool.Put(bp)
			continue
		}
		frame := (*bp)[:n]
		if [6]byte(frame[6:12]) != s.ports[i].MAC {
			s.Spoofed.Add(1)
			s.pool.Put(bp)
			continue
		}
		now := s.now()
		if frame[0]&1 == 0 { // unicast
			j := s.dest(frame[0:6])
			if j < 0 || row[j] == nil {
				s.NoRoute.Add(1)
				s.pool.Put(bp)
				continue
			}
			due, ok := row[j].Admit(now, n)
			if !ok {
				s.pool.Put(bp)
				continue
			}
			s.enqueue(s.outs[j], item{due: due, buf: bp, n: n})
			continue
		}
		for j, p := range row { // broadcast / multicast: a copy to every linked port
			if p == nil {
				continue
			}
			due, ok := p.Admit(now, n)
			if !ok {
				continue
			}
			cp := s.pool.Get().(*[]byte)
			copy(*cp, frame)
			s.enqueue(s.outs[j], item{due: due, buf: cp, n: n})
		}
		s.pool.Put(bp)
	}
}

func (s *Switch) enqueue(o *output, it item) {
	o.mu.Lock()
	if len(o.h) >= MaxQueued {
		o.mu.Unlock()
		s.OutDrops.Add(1)
		s.pool.Put(it.buf)
		return
	}
	o.seq++
	it.seq = o.seq
	o.push(it)
	first := o.h[0].seq == it.seq
	o.mu.Unlock()
	if first {
		select {
		case o.wake <- struct{}{}:
		default:
		}
	}
}

func (s *Switch) writeLoop(o *output) {
	defer s.wg.Done()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		o.mu.Lock()
		if len(o.h) == 0 {
			o.mu.Unlock()
			select {
			case <-s.done:
				return
			case <-o.wake:
			}
			continue
		}
		due := o.h[0].due
		if wait := due - s.now(); wait > 0 {
			o.mu.Unlock()
			timer.Reset(time.Duration(wait))
			select {
			case <-s.done:
				return
			case <-o.wake:
				timer.Stop()
			case <-timer.C:
			}
			continue
		}
		it := o.pop()
		o.mu.Unlock()
		if _, err := o.port.Dev.Write((*it.buf)[:it.n]); err != nil {
			s.WriteErr.Add(1)
		}
		s.pool.Put(it.buf)
	}
}

type item struct {
	due int64
	seq uint64
	buf *[]byte
	n   int
}

// output is a port's departure queue: a min-heap by (due, seq).
type output struct {
	port Port
	wake chan struct{}
	mu   sync.Mutex // guards the fields below
	h    []item
	seq  uint64
}

func (o *output) less(a, b int) bool {
	if o.h[a].due != o.h[b].due {
		return o.h[a].due < o.h[b].due
	}
	return o.h[a].seq < o.h[b].seq
}

func (o *output) push(it item) {
	o.h = append(o.h, it)
	i := len(o.h) - 1
	for i > 0 {
		p := (i - 1) / 2
		if !o.less(i, p) {
			break
		}
		o.h[i], o.h[p] = o.h[p], o.h[i]
		i = p
	}
}

func (o *output) pop() item {
	top := o.h[0]
	last := len(o.h) - 1
	o.h[0] = o.h[last]
	o.h[last] = item{}
	o.h = o.h[:last]
	i := 0
	for {
		l, r, m := 2*i+1, 2*i+2, i
		if l < len(o.h) && o.less(l, m) {
			m = l
		}
		if r < len(o.h) && o.less(r, m) {
			m = r
		}
		if m == i {
			break
		}
		o.h[i], o.h[m] = o.h[m], o.h[i]
		i = m
	}
	return top
}
