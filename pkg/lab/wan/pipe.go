// Package wan is the latency lab's emulated WAN: a userspace Ethernet switch
// that holds every frame for the one-way delay of its (source, destination)
// pair, with jitter, random and bursty (Gilbert–Elliott) loss and an optional
// rate limit with a bounded queue.
//
// Models, per direction of a link (a Pipe):
//   - Delay and jitter: each frame's delay is drawn uniformly in
//     [Delay-Jitter, Delay+Jitter] (netem's convention), then raised to the
//     previous frame's departure on the same pipe, so a pipe never reorders
//     (reordering breaks media badly). At high packet rates this shifts the
//     distribution slightly upwards; the median stays within Jitter of Delay.
//   - Loss: independent (Bernoulli) with probability Loss when LossBurst is 0;
//     otherwise a two-state Gilbert–Elliott chain (Good: no loss, Bad: every
//     frame lost) with P(Bad→Good) = 1/LossBurst and
//     P(Good→Bad) = Loss/(LossBurst·(1-Loss)), so the mean burst is LossBurst
//     frames and the average loss rate stays Loss.
//   - Rate: frames are serialised at RateBits (Ethernet frame bytes counted)
//     behind a queue of at most QueueLimit of transmission time; a frame that
//     would wait longer is tail-dropped. The delay starts after serialisation.
package wan

import (
	"math/rand/v2"
	"sync/atomic"
	"time"
)

// DefaultQueueLimit bounds a rate-limited pipe's queue, in time to drain it.
const DefaultQueueLimit = 200 * time.Millisecond

// Params are the figures of one direction of a link.
type Params struct {
	Delay      time.Duration
	Jitter     time.Duration
	Loss       float64 // 0..1
	LossBurst  float64 // mean burst length in frames; 0 = independent losses
	RateBits   int64   // 0 = unlimited
	QueueLimit time.Duration
}

// Counters of a pipe. Safe to read while the pipe runs.
type Counters struct {
	Passed    atomic.Uint64
	Lost      atomic.Uint64 // by the loss model
	QueueDrop atomic.Uint64 // by the rate limiter's full queue
}

// Pipe is one direction of a link. Admit is not safe for concurrent use: a
// pipe is owned by the goroutine reading its source port.
type Pipe struct {
	p         Params
	rng       *rand.Rand
	pGB, pBG  float64 // Gilbert–Elliott transition probabilities
	bad       bool
	lastDue   int64 // departure of the previous frame, ns
	busyUntil int64 // end of the previous frame's serialisation, ns
	C         Counters
}

// NewPipe returns a pipe with its own random source seeded by seed.
func NewPipe(p Params, seed uint64) *Pipe {
	if p.QueueLimit <= 0 {
		p.QueueLimit = DefaultQueueLimit
	}
	pp := &Pipe{p: p, rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
	if p.LossBurst >= 1 && p.Loss > 0 && p.Loss < 1 {
		pp.pBG = 1 / p.LossBurst
		pp.pGB = p.Loss * pp.pBG / (1 - p.Loss)
		if pp.pGB > 1 {
			pp.pGB = 1
		}
	}
	return pp
}

// Params returns the pipe's figures.
func (p *Pipe) Params() Params { return p.p }

// lose runs the loss model for one frame.
func (p *Pipe) lose() bool {
	if p.p.Loss <= 0 {
		return false
	}
	if p.pBG == 0 {
		return p.rng.Float64() < p.p.Loss
	}
	// Transition, then emit: a Bad state loses the frame.
	if p.bad {
		if p.rng.Float64() < p.pBG {
			p.bad = false
		}
	} else if p.rng.Float64() < p.pGB {
		p.bad = true
	}
	return p.bad
}

// Admit decides the fate of a frame of size bytes arriving at now
// (nanoseconds on any monotonic clock): ok is false when it is dropped,
// otherwise due is when it leaves the pipe.
func (p *Pipe) Admit(now int64, size int) (due int64, ok bool) {
	if p.lose() {
		p.C.Lost.Add(1)
		return 0, false
	}
	start := now
	if p.p.RateBits > 0 {
		if p.busyUntil > start {
			if p.busyUntil-now > int64(p.p.QueueLimit) {
				p.C.QueueDrop.Add(1)
				return 0, false
			}
			start = p.busyUntil
		}
		p.busyUntil = start + int64(size)*8*int64(time.Second)/p.p.RateBits
		start = p.busyUntil
	}
	d := int64(p.p.Delay)
	if j := int64(p.p.Jitter); j > 0 {
		d += p.rng.Int64N(2*j+1) - j
	}
	due = start + d
	if due < p.lastDue {
		due = p.lastDue
	}
	p.lastDue = due
	p.C.Passed.Add(1)
	return due, true
}
