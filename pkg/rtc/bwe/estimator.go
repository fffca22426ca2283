package bwe

import (
	"math"
	"time"
)

// Constants of GCC (draft-ietf-rmcat-gcc-02 and its reference implementation's defaults).
const (
	burstInterval = 5 * time.Millisecond // packets sent within this of a group's first are one group
	trendWindow   = 20                   // delay samples the trend is fitted over
	smoothing     = 0.9                  // of the accumulated delay
	trendGain     = 4.0
	maxTrendCount = 60
	// The overuse threshold adapts between these (ms), faster up than down.
	thresholdInit, thresholdMin, thresholdMax = 12.5, 6.0, 600.0
	kUp, kDown                                = 0.0087, 0.039
	overuseTime                               = 10 * time.Millisecond // overuse must last this long
	decreaseFactor                            = 0.85                  // of the received rate, on overuse
	increasePerSecond                         = 0.08                  // multiplicative increase
	// Loss: above lossHigh the estimate drops by half the loss, below lossLow it may grow.
	lossHigh, lossLow = 0.10, 0.02
	rateWindow        = 500 * time.Millisecond // received rate measured over this
)

type signal int

const (
	normal signal = iota
	overusing
	underusing
)

// estimator is GCC's state. Used under Sender.fbMu only.
type estimator struct {
	min, max, rate float64 // bits per second

	// Packet groups (inter-arrival).
	group, prev  groupTimes
	haveGroup    bool
	havePrev     bool
	accumulated  float64 // ms
	smoothed     float64 // ms
	firstArrival int64
	samples      [trendWindow][2]float64 // (arrival ms, smoothed delay ms), a ring
	nSamples     int
	nDeltas      int
	prevTrend    float64

	// Overuse detection.
	threshold    float64
	lastAdapt    int64
	overSince    float64 // ms of continuous overuse
	overCount    int
	signal       signal
	lastDecrease int64
	lastUpdate   int64

	// Received rate: bytes and arrival times of recent packets, a ring.
	recv    [256]struct{ at, bytes int64 }
	recvN   int
	recvPos int
}

// groupTimes are a packet group's first send time, last send and arrival times and size.
type groupTimes struct {
	firstSend, lastSend, lastArrive int64
}

func (e *estimator) init(cfg Config) {
	e.min, e.max, e.rate = float64(cfg.Min), float64(cfg.Max), float64(cfg.Initial)
	e.threshold = thresholdInit
}

// update folds one feedback's packets (in sequence order) into the estimate and returns it.
func (e *estimator) update(pkts []result, loss float64, now int64) int {
	for _, p := range pkts {
		if p.arriveAt == 0 {
			continue
		}
		e.addReceived(p.arriveAt, int64(p.size))
		e.addPacket(p)
	}
	received := e.receivedRate()
	// Decreases wait 200 ms for the previous one to take effect (the queue drains within a
	// round trip or so); increases are multiplicative, 8% a second.
	canDecrease := now-e.lastDecrease > int64(200*time.Millisecond)
	switch {
	case loss > lossHigh:
		if now-e.lastDecrease > int64(300*time.Millisecond) {
			e.rate *= 1 - 0.5*loss
			e.lastDecrease = now
		}
	case e.signal == overusing:
		if canDecrease {
			if received > 0 {
				e.rate = math.Min(e.rate, decreaseFactor*received)
			} else {
				e.rate *= decreaseFactor
			}
			e.lastDecrease = now
		}
	case e.signal == normal && loss < lossLow && e.lastUpdate != 0:
		dt := math.Min(float64(now-e.lastUpdate)/float64(time.Second), 1)
		grown := e.rate * (1 + increasePerSecond*dt)
		// An estimate is only as good as the traffic that tested it: it does not grow past
		// 1.5 times what is getting through (a sender that sends less, e.g. a low simulcast
		// layer, learns nothing about the path above it; allocation probes a layer up).
		if received > 0 {
			grown = math.Min(grown, math.Max(e.rate, 1.5*received+10_000))
		}
		e.rate = grown
	}
	// Underuse (queues draining) and moderate loss hold the estimate.
	e.lastUpdate = now
	e.rate = clamp(e.rate, e.min, e.max)
	return int(e.rate)
}

// addPacket adds one received packet to the packet groups; a completed group gives a delay
// variation sample.
func (e *estimator) addPacket(p result) {
	if !e.haveGroup {
		e.group = groupTimes{firstSend: p.sendAt, lastSend: p.sendAt, lastArrive: p.arriveAt}
		e.haveGroup = true
		return
	}
	if p.sendAt < e.group.firstSend {
		return // reordered from an earlier group
	}
	if p.sendAt-e.group.firstSend <= int64(burstInterval) {
		e.group.lastSend = max(e.group.lastSend, p.sendAt)
		e.group.lastArrive = max(e.group.lastArrive, p.arriveAt)
		return
	}
	// The group is complete.
	if e.havePrev {
		sendDelta := float64(e.group.lastSend-e.prev.lastSend) / 1e6
		arriveDelta := float64(e.group.lastArrive-e.prev.lastArrive) / 1e6
		e.addDelta(arriveDelta-sendDelta, e.group.lastArrive, arriveDelta)
	}
	e.prev, e.havePrev = e.group, true
	e.group = groupTimes{firstSend: p.sendAt, lastSend: p.sendAt, lastArrive: p.arriveAt}
}

// addDelta updates the delay trend with one group's delay variation (ms) and detects overuse.
func (e *estimator) addDelta(delta float64, arrive int64, arriveDelta float64) {
	if e.nDeltas == 0 {
		e.firstArrival = arrive
	}
	e.nDeltas = min(e.nDeltas+1, maxTrendCount)
	e.accumulated += delta
	e.smoothed = smoothing*e.smoothed + (1-smoothing)*e.accumulated
	e.samples[e.nSamples%trendWindow] = [2]float64{float64(arrive-e.firstArrival) / 1e6, e.smoothed}
	e.nSamples++
	if e.nSamples < trendWindow {
		return
	}
	trend := slope(&e.samples)
	modified := float64(e.nDeltas) * trend * trendGain
	e.detect(modified, trend, arriveDelta, arrive)
	e.prevTrend = trend
}

// slope fits a line through the samples (least squares) and returns its slope.
func slope(s *[trendWindow][2]float64) float64 {
	var sx, sy float64
	for _, p := range s {
		sx += p[0]
		sy += p[1]
	}
	mx, my := sx/trendWindow, sy/trendWindow
	var num, den float64
	for _, p := range s {
		num += (p[0] - mx) * (p[1] - my)
		den += (p[0] - mx) * (p[0] - mx)
	}
	if den == 0 {
		return 0
	}
	return num / den
}

// detect compares the modified trend with the adaptive threshold.
func (e *estimator) detect(modified, trend, arriveDelta float64, now int64) {
	switch {
	case modified > e.threshold:
		e.overSince += arriveDelta
		e.overCount++
		if e.overSince > float64(overuseTime/time.Millisecond) && e.overCount > 1 && trend >= e.prevTrend {
			e.signal = overusing
			e.overSince, e.overCount = 0, 0
		}
	case modified < -e.threshold:
		e.overSince, e.overCount = 0, 0
		e.signal = underusing
	default:
		e.overSince, e.overCount = 0, 0
		e.signal = normal
	}
	e.adaptThreshold(modified, now)
}

func (e *estimator) adaptThreshold(modified float64, now int64) {
	if e.lastAdapt == 0 {
		e.lastAdapt = now
	}
	abs := math.Abs(modified)
	if abs > e.threshold+15 {
		e.lastAdapt = now // a spike: do not let it move the threshold
		return
	}
	k := kUp
	if abs < e.threshold {
		k = kDown
	}
	dt := math.Min(float64(now-e.lastAdapt)/1e6, 100)
	e.threshold = clamp(e.threshold+k*(abs-e.threshold)*dt, thresholdMin, thresholdMax)
	e.lastAdapt = now
}

// addReceived records a received packet for the received rate.
func (e *estimator) addReceived(at, bytes int64) {
	e.recv[e.recvPos] = struct{ at, bytes int64 }{at, bytes}
	e.recvPos = (e.recvPos + 1) % len(e.recv)
	e.recvN = min(e.recvN+1, len(e.recv))
}

// receivedRate is the rate (bits per second) at which packets arrived over the last
// rateWindow of the receiver's clock, 0 if that is not known yet.
func (e *estimator) receivedRate() float64 {
	if e.recvN < 2 {
		return 0
	}
	newest := e.recv[(e.recvPos-1+len(e.recv))%len(e.recv)].at
	var bytes int64
	oldest := newest
	for i := 1; i <= e.recvN; i++ {
		r := e.recv[(e.recvPos-i+len(e.recv))%len(e.recv)]
		if newest-r.at > int64(rateWindow) {
			break
		}
		bytes += r.bytes
		oldest = r.at
	}
	span := float64(newest-oldest) / float64(time.Second)
	if span < 0.05 {
		return 0
	}
	return float64(bytes*8) / span
}
