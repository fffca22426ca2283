package relay_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/transport/v4/vnet"

	"github.com/cascade-sfu/cascade/pkg/cluster"
	"github.com/cascade-sfu/cascade/pkg/room"
)

// When the cluster reports a peer gone (its health record expired, or gossip declared it
// failed), the link to it is closed and its participants removed at once, without waiting the
// 15 s ICE needs to declare the link failed. Here the peer's process is in fact still running
// (a partition, as seen from this node): only the membership view can have closed the link.
func TestLinkClosesWhenPeerLeavesCluster(t *testing.T) {
	wan, err := vnet.NewRouter(&vnet.RouterConfig{CIDR: "198.51.100.0/24", LoggerFactory: quietPion()})
	if err != nil {
		t.Fatal(err)
	}
	netA, _ := vnet.NewNet(&vnet.NetConfig{StaticIPs: []string{"198.51.100.1"}})
	netB, _ := vnet.NewNet(&vnet.NetConfig{StaticIPs: []string{"198.51.100.2"}})
	for _, n := range []*vnet.Net{netA, netB} {
		if err := wan.AddNet(n); err != nil {
			t.Fatal(err)
		}
	}
	if err := wan.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = wan.Stop() })

	c := newCluster(t, "eu", "hcm")
	dir := cluster.NewMemoryStore()
	var euAlive atomic.Bool
	euAlive.Store(true)
	eu := startSpanNode(t, c, "eu", netA, dir)
	hcm := startSpanNode(t, c, "hcm", netB, dir, spanOpts{alive: func(id cluster.NodeID) bool { return id != "eu" || euAlive.Load() }})
	ctx := context.Background()
	if _, err := eu.rooms.Join("r", room.JoinParams{Identity: "alice", Session: "s1", Permissions: room.Permissions{Publish: true}, Sink: nopSink{}}); err != nil {
		t.Fatal(err)
	}
	_, _ = dir.Join(ctx, cluster.Occupant{Room: "r", Identity: "alice", SessionID: "s1", Node: "eu"}, 0)
	if _, err := hcm.rooms.Join("r", room.JoinParams{Identity: "bob", Session: "s2", Permissions: room.Permissions{Subscribe: true}, Sink: nopSink{}}); err != nil {
		t.Fatal(err)
	}
	_, _ = dir.Join(ctx, cluster.Occupant{Room: "r", Identity: "bob", SessionID: "s2", Node: "hcm"}, 0)

	aliceOnHCM := func() bool {
		r := hcm.rooms.Room("r")
		if r == nil {
			return false
		}
		for _, p := range r.Participants() {
			if p.Info().Identity == "alice" {
				return true
			}
		}
		return false
	}
	linkToEU := func() string {
		for _, l := range hcm.coord.Links().Links() {
			if l.Peer == "eu" && l.State == "open" {
				return l.ID
			}
		}
		return ""
	}
	eventually(t, 10*time.Second, "alice (on eu) shows on hcm over an open link", func() bool { return aliceOnHCM() && linkToEU() != "" })
	first := linkToEU()

	euAlive.Store(false) // the room store still lists alice on eu: only membership says otherwise
	eventually(t, 3*time.Second, "hcm closes its link to eu and removes alice", func() bool {
		return linkToEU() != first && !aliceOnHCM()
	})
}
