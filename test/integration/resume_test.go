package integration

import (
	"context"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/cascade-sfu/cascade/pkg/client"
)

// The publisher's WebSocket breaks (its TCP connection closed under it) while its
// PeerConnections stay up; it resumes the session on a new socket. The subscriber's packet
// counter never stalls for a second, and it sees no leave or join.
func TestResumeKeepsMediaFlowing(t *testing.T) {
	n := startNode(t)
	var mu sync.Mutex
	var raw net.Conn
	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
		mu.Lock()
		raw = c
		mu.Unlock()
		return c, err
	}}}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	alice, err := client.Dial(ctx, client.Options{
		URL: n.wsURL(), Token: n.token("resume", "alice", everything), API: loopbackAPI(t), HTTPClient: hc,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer alice.Close()
	if alice.Joined.ResumeToken == "" {
		t.Fatal("no resume token in joined")
	}
	bob := n.join("resume", "bob")

	src := startSource(t)
	audio := opusTrack(t, "mic", "s")
	if _, err := alice.Publish(ctx, audio); err != nil {
		t.Fatal(err)
	}
	src.audio(audio)
	mic := publishedTrack(t, bob, "audio").ID
	eventually(t, 10*time.Second, "bob receives alice's audio", func() bool { return bob.rx.packetsOf(mic) > 25 })

	// Sample bob's counter; record the longest time it did not move.
	stop := make(chan struct{})
	var longest time.Duration
	var sampler sync.WaitGroup
	sampler.Add(1)
	go func() {
		defer sampler.Done()
		last, since := bob.rx.packetsOf(mic), time.Now()
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case now := <-tick.C:
				if p := bob.rx.packetsOf(mic); p != last {
					last, since = p, now
				} else if d := now.Sub(since); d > longest {
					longest = d
				}
			}
		}
	}()

	mu.Lock()
	_ = raw.Close()
	mu.Unlock()
	<-alice.Done()
	time.Sleep(time.Second) // the session is parked: media goes on without a socket
	if err := alice.Resume(ctx); err != nil {
		t.Fatalf("resume: %v", err)
	}
	if err := alice.Chat("back"); err != nil {
		t.Fatal(err)
	}
	seenByBob(t, bob, "data")
	time.Sleep(time.Second)
	close(stop)
	sampler.Wait()
	t.Logf("longest stall of the subscriber's packet counter across the resume: %v", longest)
	if longest > time.Second {
		t.Fatalf("bob's media stalled for %v across the resume", longest)
	}
	if err := bob.Chat("end"); err != nil {
		t.Fatal(err)
	}
	seenByBob(t, bob, "data")
}

// seenByBob reads p's messages up to one of type typ, failing on any leave or join.
func seenByBob(t *testing.T, p *peer, typ string) {
	t.Helper()
	timer := time.NewTimer(10 * time.Second)
	defer timer.Stop()
	for {
		select {
		case env := <-p.Messages():
			if env.Type == "participant_left" || env.Type == "participant_joined" {
				t.Fatalf("bob saw %s %s", env.Type, env.Data)
			}
			if env.Type == typ {
				return
			}
		case <-timer.C:
			t.Fatalf("no %s message", typ)
		}
	}
}
