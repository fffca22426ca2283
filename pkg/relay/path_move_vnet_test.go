package relay_test

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/rtp"

	"github.com/cascade-sfu/cascade/pkg/cluster"
	"github.com/cascade-sfu/cascade/pkg/room"
)

// eventLog records the events a participant is told about.
type eventLog struct {
	mu     sync.Mutex
	events []room.Event
}

func (l *eventLog) Deliver(e room.Event) {
	l.mu.Lock()
	l.events = append(l.events, e)
	l.mu.Unlock()
}

// churn counts the participant leaves and track unpublications among the events.
func (l *eventLog) churn() (left, unpublished int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, e := range l.events {
		switch e.(type) {
		case room.ParticipantLeft:
			left++
		case room.TrackUnpublished:
			unpublished++
		}
	}
	return left, unpublished
}

// seqWriter records the sequence numbers a subscriber receives.
type seqWriter struct {
	mu   sync.Mutex
	seqs []uint16
}

func (w *seqWriter) WriteRTP(h *rtp.Header, payload []byte) (int, error) {
	w.mu.Lock()
	w.seqs = append(w.seqs, h.SequenceNumber)
	w.mu.Unlock()
	return 12 + len(payload), nil
}

func (w *seqWriter) count() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.seqs)
}

// onceTransport binds every track to one writer and counts the tracks it was given.
type onceTransport struct {
	w     *seqWriter
	added atomic.Int32
}

func (o *onceTransport) AddTrack(d *room.DownTrack) error {
	o.added.Add(1)
	d.Bind(room.Binding{Writer: o.w, SSRC: 1, PayloadType: 96})
	return nil
}
func (*onceTransport) RemoveTrack(*room.DownTrack) error { return nil }
func (*onceTransport) BandwidthEstimate() int            { return 0 }

// When the relay path from eu to hcm moves mid-call (here from direct to through sgp, as
// --relay-via auto does when sgp becomes cheaper or the direct link is cut), the subscriber on
// hcm keeps the same remote participant and track: nobody on hcm sees alice leave or her track
// end, bob's down track is not replaced, and his packets go on with no jump in numbering.
func TestPathMoveKeepsRemoteParticipant(t *testing.T) {
	netEU, netHCM, netSGP := vnetHost(t, "198.51.100.1"), vnetHost(t, "198.51.100.2"), vnetHost(t, "198.51.100.3")
	startWAN(t, 5*time.Millisecond, netEU, netHCM, netSGP)
	c := newCluster(t, "eu", "hcm", "sgp")
	dir := cluster.NewMemoryStore()
	var viaSGP atomic.Bool
	policy := func(far cluster.NodeID) spanOpts {
		return spanOpts{via: func(to cluster.NodeID) cluster.NodeID {
			if to == far && viaSGP.Load() {
				return "sgp"
			}
			return to
		}}
	}
	eu := startSpanNode(t, c, "eu", netEU, dir, policy("hcm"))
	hcm := startSpanNode(t, c, "hcm", netHCM, dir, policy("eu"))
	startSpanNode(t, c, "sgp", netSGP, dir)

	// carol, also on hcm, watches the room's events.
	events := &eventLog{}
	w := &seqWriter{}
	sub := &onceTransport{w: w}
	pub := spanRoom(t, eu, hcm, dir, sub)
	if _, err := hcm.rooms.Join("r", room.JoinParams{Identity: "carol", Session: "s3", Permissions: room.Permissions{Subscribe: true}, Sink: events}); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	defer close(stop)
	sendPackets(t, pub, 100, 100000, 10*time.Millisecond, stop)

	eventually(t, 20*time.Second, "bob on hcm receives alice's track directly", func() bool { return w.count() > 50 })
	viaSGP.Store(true)
	eventually(t, 20*time.Second, "hcm receives eu's room through sgp", func() bool {
		for _, l := range hcm.coord.Links().Links() {
			if l.Peer == "sgp" && l.State == "open" {
				return true
			}
		}
		return false
	})
	before := w.count()
	eventually(t, 20*time.Second, "bob's packets go on after the move", func() bool { return w.count() > before+200 })

	if left, unpublished := events.churn(); left != 0 || unpublished != 0 {
		t.Fatalf("carol saw %d participants leave and %d tracks end: the move was not seamless", left, unpublished)
	}
	if n := sub.added.Load(); n != 1 {
		t.Fatalf("bob was given %d down tracks, want 1 (the same track throughout)", n)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	for i := 1; i < len(w.seqs); i++ {
		if d := int16(w.seqs[i] - w.seqs[i-1]); d <= 0 || d > 100 {
			t.Fatalf("bob's numbering jumps from %d to %d at packet %d: the stream was not continuous", w.seqs[i-1], w.seqs[i], i)
		}
	}
}
