package cluster

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"

	"github.com/cascade-sfu/cascade/pkg/auth"
	"github.com/cascade-sfu/cascade/pkg/client"
	"github.com/cascade-sfu/cascade/pkg/signal"
)

// packetsOut reads a node's cascade_rtp_packets_total{direction="out"}.
func packetsOut(t *testing.T, p *proc) int {
	t.Helper()
	resp, err := http.Get(p.url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	m := regexp.MustCompile(`cascade_rtp_packets_total\{direction="out",node="[^"]+"\} (\d+)`).FindSubmatch(b)
	if m == nil {
		t.Fatalf("no packets-out metric on %s", p.name)
	}
	n, _ := strconv.Atoi(string(m[1]))
	return n
}

// counter counts RTP packets received on a client's tracks.
type counter struct {
	mu sync.Mutex
	n  int
	wg sync.WaitGroup
}

func (c *counter) onTrack(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		buf := make([]byte, 1500)
		for {
			if _, _, err := tr.Read(buf); err != nil {
				return
			}
			c.mu.Lock()
			c.n++
			c.mu.Unlock()
		}
	}()
}

func (c *counter) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n
}

func dialWith(t testing.TB, p *proc, roomName, identity string, g auth.Grants, onTrack func(*webrtc.TrackRemote, *webrtc.RTPReceiver)) *client.Client {
	t.Helper()
	g.Room, g.Identity = roomName, identity
	tok, err := auth.Sign(apiKey, apiSecret, g, time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, client.Options{URL: "ws" + p.url[len("http"):] + "/v1/rtc", Token: tok, API: loopbackAPI(), OnTrack: onTrack})
	if err != nil {
		t.Fatalf("%s joins %s: %v", identity, p.name, err)
	}
	return c
}

// sendVP8 writes synthetic VP8 frames (a keyframe every second) until ctx ends.
func sendVP8(ctx context.Context, wg *sync.WaitGroup, tr *webrtc.TrackLocalStaticRTP) {
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(33 * time.Millisecond)
		defer tick.Stop()
		for i := uint16(0); ; i++ {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			payload := make([]byte, 600)
			payload[0] = 0x10
			if i%30 != 0 {
				payload[1] = 0x01
			}
			_ = tr.WriteRTP(&rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: i, Timestamp: uint32(i) * 3000, Marker: true}, Payload: payload})
		}
	}()
}

func waitFor(t *testing.T, c *client.Client, typ string, match func(json.RawMessage) bool) {
	t.Helper()
	deadline := time.After(15 * time.Second)
	for {
		select {
		case env := <-c.Messages():
			if env.Type == typ && (match == nil || match(env.Data)) {
				return
			}
		case <-deadline:
			t.Fatalf("no %s message", typ)
		}
	}
}

// A room spans two nodes: a publisher on eu is seen and received by a subscriber on hcm, and
// nothing of the track crosses while hcm has no subscriber for it.
func TestRoomSpansNodes(t *testing.T) {
	eu, hcm := twoNodes(t, "--relay-linger", "1s")

	alice := dialWith(t, eu, "span", "alice", auth.Grants{CanPublish: true, CanSubscribe: true, CanPublishData: true}, nil)
	defer alice.Close()
	video := newVP8(t, "s")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	if _, err := alice.Publish(ctx, video); err != nil {
		t.Fatal(err)
	}
	cancel()
	mctx, stopMedia := context.WithCancel(context.Background())
	var media sync.WaitGroup
	defer func() { stopMedia(); media.Wait() }()
	sendVP8(mctx, &media, video)

	// bob is in the room on hcm but receives nothing: hcm must not pull alice's track.
	bob := dialWith(t, hcm, "span", "bob", auth.Grants{CanPublishData: true}, nil)
	defer bob.Close()
	waitFor(t, bob, "participant_joined", func(d json.RawMessage) bool {
		var m signal.ParticipantJoinedMsg
		return json.Unmarshal(d, &m) == nil && m.Participant.Identity == "alice"
	})
	waitFor(t, bob, "track_published", nil)
	time.Sleep(1500 * time.Millisecond)
	if n := packetsOut(t, eu); n != 0 {
		t.Fatalf("eu sent %d packets although no one subscribes to alice's track", n)
	}

	// carol on hcm subscribes: the track crosses and reaches her.
	var rx counter
	carol := dialWith(t, hcm, "span", "carol", auth.Grants{CanSubscribe: true}, rx.onTrack)
	defer func() { carol.Close(); rx.wg.Wait() }()
	eventuallyT(t, 15*time.Second, "carol on hcm receives alice's video from eu", func() bool { return rx.count() > 30 }, func() string {
		return "eu out=" + strconv.Itoa(packetsOut(t, eu)) + " hcm out=" + strconv.Itoa(packetsOut(t, hcm))
	})

	// The link is visible to operators on both ends.
	for _, p := range []struct{ node, peer *proc }{{eu, hcm}, {hcm, eu}} {
		out, err := relayctl(t, p.node.url, "relays")
		if err != nil || !regexp.MustCompile(`(?m)^`+p.peer.name+`\s+open\s`).MatchString(out) {
			t.Fatalf("relayctl relays on %s:\n%s %v", p.node.name, out, err)
		}
		resp, err := http.Get(p.node.url + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !regexp.MustCompile(`cascade_relay_link_open\{dst="` + p.peer.name + `",src="` + p.node.name + `"\} 1`).Match(b) {
			t.Fatalf("no open link %s→%s in /metrics", p.node.name, p.peer.name)
		}
	}

	// Chat crosses nodes both ways, with the right sender.
	if err := bob.Chat("hello from hcm"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, alice, "data", func(d json.RawMessage) bool {
		var m signal.DataMsg
		return json.Unmarshal(d, &m) == nil && m.Text == "hello from hcm" && m.From.Identity == "bob"
	})
	if err := alice.Chat("hello from eu"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, bob, "data", func(d json.RawMessage) bool {
		var m signal.DataMsg
		return json.Unmarshal(d, &m) == nil && m.Text == "hello from eu" && m.From.Identity == "alice"
	})

	// alice leaves eu: she disappears on hcm.
	_ = alice.Leave()
	waitFor(t, carol, "participant_left", func(d json.RawMessage) bool {
		var m signal.ParticipantLeftMsg
		return json.Unmarshal(d, &m) == nil && m.Identity == "alice"
	})

	// With no room left across the link, it closes after the linger (1 s here).
	eventuallyT(t, 10*time.Second, "the idle link closed on both nodes", func() bool {
		for _, p := range []*proc{eu, hcm} {
			out, err := relayctl(t, p.url, "relays", "--json")
			if err != nil || regexp.MustCompile(`"state":"(open|connecting)"`).MatchString(out) {
				return false
			}
		}
		return true
	}, func() string { out, _ := relayctl(t, eu.url, "relays"); return out })
}

func eventuallyT(t *testing.T, timeout time.Duration, what string, cond func() bool, state func() string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if cond() {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s; %s", what, state())
}
