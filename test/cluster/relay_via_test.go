package cluster

import (
	"context"
	"encoding/json"
	"regexp"
	"sync"
	"testing"
	"time"

	"github.com/cascade-sfu/cascade/pkg/auth"
	"github.com/cascade-sfu/cascade/pkg/cluster/redistest"
	"github.com/cascade-sfu/cascade/pkg/signal"
)

// With --relay-via, eu and hcm reach each other through sgp (which hosts no participant of the
// room): media and chat take eu → sgp → hcm, and there is no direct eu–hcm link.
func TestRelayThroughATransitNode(t *testing.T) {
	redis := redistest.Start(t)
	s1, s2, s3 := freePort(t), freePort(t), freePort(t)
	eu := startNode(t, redis.Addr(), nodeSpec{id: "eu", lat: 52.37, lon: 4.90, serf: s1, join: s2, extra: []string{"--relay-via", "hcm=sgp"}})
	sgp := startNode(t, redis.Addr(), nodeSpec{id: "sgp", lat: 1.35, lon: 103.82, serf: s2, join: s1})
	hcm := startNode(t, redis.Addr(), nodeSpec{id: "hcm", lat: 10.82, lon: 106.63, serf: s3, join: s1, extra: []string{"--relay-via", "eu=sgp"}})

	alice := dialWith(t, eu, "via", "alice", auth.Grants{CanPublish: true, CanSubscribe: true, CanPublishData: true}, nil)
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

	var rx counter
	bob := dialWith(t, hcm, "via", "bob", auth.Grants{CanSubscribe: true, CanPublishData: true}, rx.onTrack)
	defer func() { bob.Close(); rx.wg.Wait() }()
	waitFor(t, bob, "participant_joined", func(d json.RawMessage) bool {
		var m signal.ParticipantJoinedMsg
		return json.Unmarshal(d, &m) == nil && m.Participant.Identity == "alice"
	})
	eventuallyT(t, 20*time.Second, "bob on hcm receives alice's video through sgp", func() bool { return rx.count() > 30 }, func() string { return "" })

	links := func(p *proc) string {
		out, err := relayctl(t, p.url, "relays")
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	peerOpen := func(out, peer string) bool {
		return regexp.MustCompile(`(?m)^` + peer + `\s+open\s`).MatchString(out)
	}
	if out := links(eu); !peerOpen(out, "sgp") || peerOpen(out, "hcm") {
		t.Fatalf("eu's links should be to sgp only:\n%s", out)
	}
	if out := links(hcm); !peerOpen(out, "sgp") || peerOpen(out, "eu") {
		t.Fatalf("hcm's links should be to sgp only:\n%s", out)
	}
	if out := links(sgp); !peerOpen(out, "eu") || !peerOpen(out, "hcm") {
		t.Fatalf("sgp should link to both:\n%s", out)
	}

	// Chat takes the same path, both ways.
	if err := bob.Chat("via sgp"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, alice, "data", func(d json.RawMessage) bool {
		var m signal.DataMsg
		return json.Unmarshal(d, &m) == nil && m.Text == "via sgp" && m.From.Identity == "bob"
	})
	// alice sees bob as a participant, and exactly once.
	r, err := roomsOf(t, sgp)
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range r.Rooms {
		if x.Name == "via" && x.Nodes["sgp"] != 0 {
			t.Fatalf("sgp is only a transit but the room state lists occupants on it: %+v", x)
		}
	}
	_ = alice.Leave()
	waitFor(t, bob, "participant_left", func(d json.RawMessage) bool {
		var m signal.ParticipantLeftMsg
		return json.Unmarshal(d, &m) == nil && m.Identity == "alice"
	})
}
