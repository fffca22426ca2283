package relay_test

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/cascade-sfu/cascade/pkg/cluster"
)

// When the cluster reports a peer gone (its health record expired, or gossip declared it
// failed), the link to it is closed at once, without waiting the 15 s ICE needs to declare the
// link failed, and its participants are removed after the failover grace. Here the peer's process is in fact still running
// (a partition, as seen from this node): only the membership view can have closed the link.
func TestLinkClosesWhenPeerLeavesCluster(t *testing.T) {
	netA, netB := vnetHost(t, "198.51.100.1"), vnetHost(t, "198.51.100.2")
	startWAN(t, 0, netA, netB)

	c := newCluster(t, "eu", "hcm")
	dir := cluster.NewMemoryStore()
	var euAlive atomic.Bool
	euAlive.Store(true)
	eu := startSpanNode(t, c, "eu", netA, dir)
	hcm := startSpanNode(t, c, "hcm", netB, dir, spanOpts{alive: func(id cluster.NodeID) bool { return id != "eu" || euAlive.Load() }})
	spanRoom(t, eu, hcm, dir, nil)

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
	eventually(t, 3*time.Second, "hcm closes its link to eu", func() bool { return linkToEU() != first })
	// alice stays for the failover grace (her client may join another node and be shown as a
	// move), then leaves.
	if !aliceOnHCM() {
		t.Fatal("alice left hcm at once; her proxy should wait for a failover")
	}
	eventually(t, 15*time.Second, "hcm removes alice after the failover grace", func() bool { return !aliceOnHCM() })
}
