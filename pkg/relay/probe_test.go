package relay

import (
	"math"
	"testing"
	"time"
)

// fakeClock is a prober clock the test moves.
type fakeClock struct{ now time.Duration }

func (c *fakeClock) read() time.Duration { return c.now }

// A probe every probeInterval; the echoes come back after 100 ms ± 10 ms alternately (so consecutive
// round trips differ by 20 ms), and every tenth probe is lost.
func TestProberFigures(t *testing.T) {
	clock := &fakeClock{}
	var out [][]byte
	p := &prober{clock: clock.read, send: func(b []byte) error { out = append(out, append([]byte(nil), b...)); return nil }}
	if _, ok := p.quality(); ok {
		t.Fatal("figures reported before any echo")
	}
	for i := range 100 {
		clock.now = time.Duration(i) * probeInterval
		out = out[:0]
		p.tick()
		if len(out) != 1 || out[0][0] != probeRequest {
			t.Fatalf("tick %d sent %v", i, out)
		}
		if i%10 == 9 {
			continue // lost
		}
		rtt := 90 * time.Millisecond
		if i%2 == 1 {
			rtt = 110 * time.Millisecond
		}
		// The peer's prober echoes the request.
		peer := &prober{clock: clock.read, send: func(b []byte) error { out = append(out, append([]byte(nil), b...)); return nil }}
		peer.receive(out[0])
		if len(out) != 2 || out[1][0] != probeReply {
			t.Fatalf("probe %d was not echoed: %v", i, out)
		}
		clock.now += rtt
		p.receive(out[1])
		p.receive(out[1]) // a duplicate echo counts once
	}
	clock.now = 100*probeInterval + probeTimeout // the last probes are due
	q, ok := p.quality()
	if !ok {
		t.Fatal("no figures after 90 echoes")
	}
	if q.RTT < 95*time.Millisecond || q.RTT > 105*time.Millisecond {
		t.Errorf("RTT %v, want about 100 ms", q.RTT)
	}
	// Consecutive answered probes differ by 20 ms, except across a lost one (same parity
	// around it: 0 ms): the mean deviation is a little under 20 ms.
	if q.Jitter < 14*time.Millisecond || q.Jitter > 20*time.Millisecond {
		t.Errorf("jitter %v, want a little under 20 ms", q.Jitter)
	}
	// The window holds the probes of the last 10 s that are due: one in ten was lost.
	if math.Abs(q.Loss-0.1) > 0.02 {
		t.Errorf("loss %.3f, want 0.10", q.Loss)
	}
}

// Echoes that are malformed, forged (a sequence number or send time never sent) or too late
// change nothing.
func TestProberIgnoresBadEchoes(t *testing.T) {
	clock := &fakeClock{}
	var last []byte
	p := &prober{clock: clock.read, send: func(b []byte) error { last = append([]byte(nil), b...); return nil }}
	p.tick()
	req := last
	forged := append([]byte(nil), req...)
	forged[0] = probeReply
	forged[15]++ // another send time
	p.receive(forged)
	p.receive([]byte{probeReply, 0, 0})
	p.receive(nil)
	late := append([]byte(nil), req...)
	late[0] = probeReply
	clock.now = probeTimeout + time.Millisecond
	p.receive(late)
	if p.samples != 0 {
		t.Fatalf("%d samples from bad echoes", p.samples)
	}
}

// A probe lost on the wire reaches the peer only with SCTP's retransmission, and the probes
// sent meanwhile wait behind it: the burst of late echoes counts as one loss and gives no RTT
// sample. A path that becomes slower for good is taken as the new normal.
func TestProberLateBurstIsOneLoss(t *testing.T) {
	clock := &fakeClock{}
	var last []byte
	p := &prober{clock: clock.read, send: func(b []byte) error { last = append([]byte(nil), b...); return nil }}
	echo := func(req []byte, at time.Duration) {
		reply := append([]byte(nil), req...)
		reply[0] = probeReply
		clock.now = at
		p.receive(reply)
	}
	var reqs [][]byte
	for i := range 100 {
		clock.now = time.Duration(i) * probeInterval
		p.tick()
		reqs = append(reqs, last)
	}
	for i := range 100 {
		sent := time.Duration(i) * probeInterval
		switch {
		case i >= 60 && i < 66: // 60 lost; 61..65 queued behind its retransmission, 600 ms later
			echo(reqs[i], 60*probeInterval+1600*time.Millisecond)
		default:
			echo(reqs[i], sent+20*time.Millisecond)
		}
	}
	clock.now = 100*probeInterval + probeTimeout
	q, ok := p.quality()
	if !ok {
		t.Fatal("no figures")
	}
	// The window holds the 50 probes of the last 10 s that are due.
	if math.Abs(q.Loss-0.02) > 0.001 || q.RTT > 25*time.Millisecond {
		t.Fatalf("got %+v, want one loss in 50 and an RTT of 20 ms", q)
	}
	// From now on every echo takes 300 ms: after a run of late echoes that is the RTT.
	for i := 100; i < 160; i++ {
		clock.now = time.Duration(i) * probeInterval
		p.tick()
		echo(last, clock.now+300*time.Millisecond)
	}
	if q, _ = p.quality(); q.RTT < 250*time.Millisecond {
		t.Fatalf("RTT %v after the path slowed to 300 ms", q.RTT)
	}
}

// A link whose echoes stop is down after downAfter, and up again with the next echo.
func TestProberDown(t *testing.T) {
	clock := &fakeClock{}
	var last []byte
	p := &prober{clock: clock.read, send: func(b []byte) error { last = append([]byte(nil), b...); return nil }}
	echo := func() {
		reply := append([]byte(nil), last...)
		reply[0] = probeReply
		p.receive(reply)
	}
	for i := range 20 {
		clock.now = time.Duration(i) * probeInterval
		p.tick()
		clock.now += 10 * time.Millisecond
		echo()
	}
	if q, ok := p.quality(); !ok || q.Down {
		t.Fatalf("healthy link: %+v %v", q, ok)
	}
	cut := clock.now
	for i := 20; clock.now < cut+downAfter+probeInterval; i++ { // probes go out, nothing comes back
		clock.now = time.Duration(i) * probeInterval
		p.tick()
		if q, _ := p.quality(); q.Down != (clock.now-cut >= downAfter) {
			t.Fatalf("%v after the last echo: down=%v", clock.now-cut, q.Down)
		}
	}
	clock.now += 10 * time.Millisecond
	echo()
	if q, _ := p.quality(); q.Down {
		t.Fatal("still down after an echo")
	}
	// A link that never got an echo is down once it has probed for downAfter.
	fresh := &prober{clock: clock.read, send: func([]byte) error { return nil }}
	start := clock.now
	fresh.tick()
	if _, ok := fresh.quality(); ok {
		t.Fatal("figures from a link that just started")
	}
	clock.now = start + downAfter
	if q, ok := fresh.quality(); !ok || !q.Down {
		t.Fatalf("no echo for %v: %+v %v, want down", downAfter, q, ok)
	}
}

// Where media flows, the link's loss is the peer's NACKs per video packet sent over the last
// ten seconds, doubled as a round-trip figure, when it exceeds the probes'.
func TestProberMediaLoss(t *testing.T) {
	clock := &fakeClock{}
	var last []byte
	p := &prober{clock: clock.read, send: func(b []byte) error { last = append([]byte(nil), b...); return nil }}
	for i := range 20 { // healthy probes
		clock.now = time.Duration(i) * probeInterval
		p.tick()
		reply := append([]byte(nil), last...)
		reply[0] = probeReply
		clock.now += 10 * time.Millisecond
		p.receive(reply)
	}
	for s := range 30 { // 1000 packets a second; 5% NACKed from second 15 on
		nacks := uint64(0)
		if s > 15 {
			nacks = uint64(s-15) * 50
		}
		p.sampleMedia(uint64(s)*1000, nacks)
	}
	q, ok := p.quality()
	if !ok || math.Abs(q.Loss-0.1) > 0.001 {
		t.Fatalf("got %+v, want a loss of 0.10 (5%% one way)", q)
	}
	idle := &prober{clock: clock.read, send: func([]byte) error { return nil }}
	idle.sampleMedia(0, 0)
	idle.sampleMedia(50, 40) // too few packets to tell
	if _, ok := idle.mediaLossLocked(); ok {
		t.Fatal("a media loss from 50 packets")
	}
}
