package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"testing"
	"time"

	"github.com/cascade-sfu/cascade/pkg/auth"
	"github.com/cascade-sfu/cascade/pkg/cluster"
	"github.com/cascade-sfu/cascade/pkg/cluster/redistest"
	"github.com/cascade-sfu/cascade/pkg/signal"
)

// Once a room spans eu and hcm, each node measures the RTT of its relay link to the other and
// publishes it: in its Redis registry record, in /v1/nodes (relayctl nodes --json) as seen from
// either node, and in relayctl's table.
func TestNodesPublishMeasuredLinkRTT(t *testing.T) {
	redis := redistest.Start(t)
	s1, s2 := freePort(t), freePort(t)
	eu := startNode(t, redis.Addr(), nodeSpec{id: "eu", lat: 52.37, lon: 4.90, serf: s1, join: s2, extra: []string{"--relay-via", "auto"}})
	hcm := startNode(t, redis.Addr(), nodeSpec{id: "hcm", lat: 10.82, lon: 106.63, serf: s2, join: s1, extra: []string{"--relay-via", "auto"}})

	// Before any room spans them there is no link, so nothing is measured.
	if n, err := nodesOf(t, eu); err != nil || len(n.Nodes) != 2 {
		t.Fatalf("nodes before any room: %+v %v", n, err)
	} else {
		for _, x := range n.Nodes {
			if len(x.LinkRTTMs) != 0 {
				t.Fatalf("%s has link RTTs with no link: %v", x.ID, x.LinkRTTMs)
			}
		}
	}

	g := auth.Grants{CanPublishData: true}
	alice := dialWith(t, eu, "rtt", "alice", g, nil)
	defer alice.Close()
	bob := dialWith(t, hcm, "rtt", "bob", g, nil)
	defer bob.Close()
	waitFor(t, bob, "participant_joined", func(d json.RawMessage) bool {
		var m signal.ParticipantJoinedMsg
		return json.Unmarshal(d, &m) == nil && m.Participant.Identity == "alice"
	})

	// Every view from every node: eu measured its link to hcm, hcm its link to eu.
	peerOf := map[string]string{"eu": "hcm", "hcm": "eu"}
	measured := func() (bool, string) {
		for _, from := range []*proc{eu, hcm} {
			n, err := nodesOf(t, from)
			if err != nil {
				return false, err.Error()
			}
			seen := 0
			for _, x := range n.Nodes {
				if rtt := x.LinkRTTMs[peerOf[x.ID]]; rtt <= 0 || len(x.LinkRTTMs) != 1 {
					return false, fmt.Sprintf("from %s: %s has link_rtt_ms %v", from.name, x.ID, x.LinkRTTMs)
				}
				seen++
			}
			if seen != 2 {
				return false, fmt.Sprintf("from %s: %d nodes", from.name, seen)
			}
		}
		return true, ""
	}
	eventually(t, 20*time.Second, "each node's measured RTT to the other in /v1/nodes", measured)

	// The registry records in Redis carry them.
	for id, peer := range peerOf {
		b, err := redis.Client().Get(context.Background(), "t:"+t.Name()+":node:"+id).Bytes()
		if err != nil {
			t.Fatalf("%s's record: %v", id, err)
		}
		var rec cluster.Node
		if err := json.Unmarshal(b, &rec); err != nil {
			t.Fatal(err)
		}
		if rec.LinkRTT[cluster.NodeID(peer)] <= 0 {
			t.Fatalf("%s's registry record has no measured RTT to %s: %s", id, peer, b)
		}
	}

	// relayctl's table shows them too.
	out, err := relayctl(t, eu.url, "nodes")
	if err != nil {
		t.Fatal(err)
	}
	for id, peer := range peerOf {
		if !regexp.MustCompile(`(?m)^` + id + `\s.*\s` + peer + `=\d+\.\dms$`).MatchString(out) {
			t.Fatalf("relayctl nodes has no link RTT from %s to %s:\n%s", id, peer, out)
		}
	}
}
