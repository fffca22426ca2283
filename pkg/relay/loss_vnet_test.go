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

// A lossy link shows as such to operators: with 10% of the packets toward hcm dropped, eu's
// link reports about 10% loss before repair (hcm's NACKs per packet sent), and much less after
// (hcm's receiver reports: eu answered the NACKs from its cache).
func TestLinkReportsLoss(t *testing.T) {
	wan, err := vnet.NewRouter(&vnet.RouterConfig{CIDR: "198.51.100.0/24", MinDelay: 5 * time.Millisecond, LoggerFactory: quietPion()})
	if err != nil {
		t.Fatal(err)
	}
	netA, _ := vnet.NewNet(&vnet.NetConfig{StaticIPs: []string{"198.51.100.1"}})
	netB, _ := vnet.NewNet(&vnet.NetConfig{StaticIPs: []string{"198.51.100.2"}})
	lossy, err := vnet.NewLossFilter(netB, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []vnet.NIC{netA, lossy} {
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
	eu := startSpanNode(t, c, "eu", netA, dir)
	hcm := startSpanNode(t, c, "hcm", netB, dir)
	ctx := context.Background()
	pub, err := eu.rooms.Join("r", room.JoinParams{Identity: "alice", Session: "s1", Permissions: room.Permissions{Publish: true}, Sink: nopSink{}})
	if err != nil {
		t.Fatal(err)
	}
	_, _ = dir.Join(ctx, cluster.Occupant{Room: "r", Identity: "alice", SessionID: "s1", Node: "eu"}, 0)
	sub := &countingTransport{downs: map[string]*room.DownTrack{}, count: map[string]*atomic.Int64{}}
	if _, err := hcm.rooms.Join("r", room.JoinParams{Identity: "bob", Session: "s2", Permissions: room.Permissions{Subscribe: true}, Sink: nopSink{}, Transport: sub}); err != nil {
		t.Fatal(err)
	}
	_, _ = dir.Join(ctx, cluster.Occupant{Room: "r", Identity: "bob", SessionID: "s2", Node: "hcm"}, 0)
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
	if err := lossy.SetLossRate(10, true); err != nil {
		t.Fatal(err)
	}
	var raw, res float64
	eventually(t, 20*time.Second, "eu's link to hcm reports about 10% loss before repair, less after", func() bool {
		raw, res = loss()
		return raw >= 0.07 && raw <= 0.25 && res < raw/2
	})
	t.Logf("10%% of packets dropped toward hcm: reported loss %.3f before repair, %.3f after", raw, res)
}
