package relay_test

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/transport/v4/vnet"

	"github.com/cascade-sfu/cascade/pkg/cluster"
	"github.com/cascade-sfu/cascade/pkg/room"
)

// A lossy link shows as such to operators: with 10% of the packets toward hcm dropped, eu's
// link reports about 10% loss before repair (hcm's NACKs per packet sent), and much less after
// (hcm's receiver reports: eu answered the NACKs from its cache).
func TestLinkReportsLoss(t *testing.T) {
	netA, netB := vnetHost(t, "198.51.100.1"), vnetHost(t, "198.51.100.2")
	lossy, err := vnet.NewLossFilter(netB, 0)
	if err != nil {
		t.Fatal(err)
	}
	startWAN(t, 5*time.Millisecond, netA, lossy)

	c := newCluster(t, "eu", "hcm")
	dir := cluster.NewMemoryStore()
	eu := startSpanNode(t, c, "eu", netA, dir)
	hcm := startSpanNode(t, c, "hcm", netB, dir)
	sub := &countingTransport{downs: map[string]*room.DownTrack{}, count: map[string]*atomic.Int64{}}
	pub := spanRoom(t, eu, hcm, dir, sub)
	publishRoomMedia(t, pub)

	loss := func() (raw, residual float64) {
		for _, l := range eu.coord.Links().Links() {
			if l.Peer == "hcm" {
				return l.LossOut, l.ResidualLossOut
			}
		}
		return -1, -1
	}
	eventually(t, 20*time.Second, "media crosses to hcm", func() bool { return sub.received("audio") > 50 })
	time.Sleep(1500 * time.Millisecond) // a full sample interval of clean link
	if raw, res := loss(); raw > 0.02 || res > 0.02 {
		t.Fatalf("loss %.3f (residual %.3f) reported on a clean link", raw, res)
	}
	// The link's probes see the same: a round trip of about two 5 ms hops and no loss.
	var q cluster.LinkQuality
	eventually(t, 10*time.Second, "eu's probes measure its link to hcm", func() bool {
		var ok bool
		q, ok = eu.coord.Links().Qualities()["hcm"]
		return ok
	})
	if q.RTT < 10*time.Millisecond || q.RTT > 200*time.Millisecond || q.Loss > 0.02 {
		t.Fatalf("clean link: probes measure %+v, want an RTT of about 10 ms and no loss", q)
	}
	if err := lossy.SetLossRate(10, true); err != nil {
		t.Fatal(err)
	}
	var raw, res float64
	eventually(t, 20*time.Second, "eu's link to hcm reports about 10% loss before repair, less after", func() bool {
		raw, res = loss()
		return raw >= 0.07 && raw <= 0.25 && res < raw/2
	})
	t.Logf("10%% of packets dropped toward hcm: reported loss %.3f before repair, %.3f after", raw, res)
	// The link's quality (what relay paths are chosen by) shows it too: the media's loss
	// toward hcm, as a round-trip figure (see relay/probe.go).
	eventually(t, 20*time.Second, "eu's link quality shows the loss", func() bool {
		q = eu.coord.Links().Qualities()["hcm"]
		return q.Loss >= 0.1 && q.Loss <= 0.5
	})
	t.Logf("probes: %+v", q)
}
