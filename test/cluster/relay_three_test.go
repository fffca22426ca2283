package cluster

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/cascade-sfu/cascade/pkg/auth"
	"github.com/cascade-sfu/cascade/pkg/cluster/redistest"
)

// perSender counts packets received per msid stream (the publisher's participant sid).
type perSender struct {
	mu sync.Mutex
	n  map[string]int
	wg sync.WaitGroup
}

func (p *perSender) onTrack(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		buf := make([]byte, 1500)
		for {
			if _, _, err := tr.Read(buf); err != nil {
				return
			}
			p.mu.Lock()
			if p.n == nil {
				p.n = map[string]int{}
			}
			p.n[tr.StreamID()]++
			p.mu.Unlock()
		}
	}()
}

// senders returns how many distinct publishers delivered at least min packets.
func (p *perSender) senders(min int) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	k := 0
	for _, n := range p.n {
		if n >= min {
			k++
		}
	}
	return k
}

// Three participants on three nodes each receive both others.
func TestRoomSpansThreeNodes(t *testing.T) {
	redis := redistest.Start(t)
	s1, s2, s3 := freePort(t), freePort(t), freePort(t)
	nodes := []*proc{
		startNode(t, redis.Addr(), nodeSpec{id: "eu", lat: 52.37, lon: 4.90, serf: s1, join: s2}),
		startNode(t, redis.Addr(), nodeSpec{id: "sgp", lat: 1.35, lon: 103.82, serf: s2, join: s1}),
		startNode(t, redis.Addr(), nodeSpec{id: "hcm", lat: 10.82, lon: 106.63, serf: s3, join: s1}),
	}
	mctx, stopMedia := context.WithCancel(context.Background())
	var media sync.WaitGroup
	defer func() { stopMedia(); media.Wait() }()
	rx := make([]*perSender, len(nodes))
	for i, p := range nodes {
		rx[i] = &perSender{}
		c := dialWith(t, p, "trio", fmt.Sprintf("user-%s", p.name), auth.Grants{CanPublish: true, CanSubscribe: true}, rx[i].onTrack)
		defer func(i int) { c.Close(); rx[i].wg.Wait() }(i)
		tr := newVP8(t, "s")
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if _, err := c.Publish(ctx, tr); err != nil {
			t.Fatal(err)
		}
		cancel()
		sendVP8(mctx, &media, tr)
	}
	for i, p := range nodes {
		eventuallyT(t, 20*time.Second, "the participant on "+p.name+" receives both others", func() bool { return rx[i].senders(30) == 2 }, func() string {
			rx[i].mu.Lock()
			defer rx[i].mu.Unlock()
			return fmt.Sprint(rx[i].n)
		})
	}
}
