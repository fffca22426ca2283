package cluster

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"

	"github.com/cascade-sfu/cascade/pkg/auth"
)

// A publisher that sends keyframes only when asked (PLI): a late subscriber on another node
// receives anything only if its keyframe request crosses the relay to the publisher.
func TestLateSubscriberOnAnotherNodeGetsAKeyframe(t *testing.T) {
	eu, hcm := twoNodes(t)

	alice := dialWith(t, eu, "kf", "alice", auth.Grants{CanPublish: true}, nil)
	defer alice.Close()
	pc, err := alice.Publisher()
	if err != nil {
		t.Fatal(err)
	}
	video := newVP8(t, "s")
	sender, err := pc.AddTrack(video)
	if err != nil {
		t.Fatal(err)
	}
	var plis atomic.Int64
	var wantKey atomic.Bool
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // the publisher's RTCP: a PLI makes the next frame a keyframe
		defer wg.Done()
		for {
			pkts, _, err := sender.ReadRTCP()
			if err != nil {
				return
			}
			for _, p := range pkts {
				if _, ok := p.(*rtcp.PictureLossIndication); ok {
					plis.Add(1)
					wantKey.Store(true)
				}
			}
		}
	}()
	defer func() { _ = pc.Close(); wg.Wait() }()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	if err := alice.Negotiate(ctx); err != nil {
		t.Fatal(err)
	}
	cancel()
	mctx, stopMedia := context.WithCancel(context.Background())
	var media sync.WaitGroup
	defer func() { stopMedia(); media.Wait() }()
	media.Add(1)
	go func() {
		defer media.Done()
		tick := time.NewTicker(33 * time.Millisecond)
		defer tick.Stop()
		for i := uint16(0); ; i++ {
			select {
			case <-mctx.Done():
				return
			case <-tick.C:
			}
			payload := make([]byte, 300)
			payload[0] = 0x10
			if !wantKey.Swap(false) {
				payload[1] = 0x01 // delta, unless a keyframe was asked for
			}
			_ = video.WriteRTP(&rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: i, Timestamp: uint32(i) * 3000, Marker: true}, Payload: payload})
		}
	}()

	// Let the stream run keyframe-less for a while, then a subscriber joins on hcm.
	time.Sleep(2 * time.Second)
	before := plis.Load()
	var rx counter
	late := dialWith(t, hcm, "kf", "late", auth.Grants{CanSubscribe: true}, rx.onTrack)
	defer func() { late.Close(); rx.wg.Wait() }()
	eventuallyT(t, 10*time.Second, "the late subscriber on hcm receives (it needs a keyframe requested across the relay)", func() bool {
		return rx.count() > 10
	}, func() string { return "" })
	if plis.Load() == before {
		t.Fatal("the publisher got no keyframe request for the late subscriber")
	}

	// With the track already crossing, a second late subscriber on hcm can only start if its
	// keyframe request goes hcm → link → eu → publisher.
	time.Sleep(time.Second)
	before = plis.Load()
	var rx2 counter
	later := dialWith(t, hcm, "kf", "later", auth.Grants{CanSubscribe: true}, rx2.onTrack)
	defer func() { later.Close(); rx2.wg.Wait() }()
	eventuallyT(t, 10*time.Second, "the second late subscriber on hcm receives", func() bool { return rx2.count() > 10 }, func() string { return "" })
	if plis.Load() == before {
		t.Fatal("no keyframe request reached the publisher across the relay")
	}
}
