package relay_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/pion/logging"
	"github.com/pion/transport/v4/vnet"

	"github.com/cascade-sfu/cascade/pkg/cluster"
	"github.com/cascade-sfu/cascade/pkg/relay"
	"github.com/cascade-sfu/cascade/pkg/rtc"
)

// TestLinkSetupOverWAN measures link set-up across a virtual network with a 100 ms RTT
// between the two nodes (pion's vnet), with the bus on loopback Redis ("bus-loopback") and
// with every bus message also delayed by the one-way delay ("bus-wan"), as when the bus
// crosses the same WAN, which is the honest figure for a deployment.
//
// The offerer's link opens after about 2.2 RTT with the bus on loopback and 3.2 RTT with the
// bus on the WAN (both ends open half an RTT later): one bus round trip (offer, answer), one
// RTT of ICE (the offerer's first check and its answer, with the answerer's ClientHello right
// behind it: rtc.EarlyStart), one RTT of DTLS for the offerer, the DTLS server (flight 4 out,
// flight 5 back). Before EarlyStart it was 4.3 and 5.3 RTT: the offerer waited for its
// nomination's round trip before starting DTLS, and here its loopback candidates kept pion
// from nominating at once, so the nomination also waited for pion's 200 ms check tick.
// docs/performance.md keeps the figures; TestLinkSetupManyCandidates covers the set-up
// without EarlyStart.
func TestLinkSetupOverWAN(t *testing.T) {
	if testing.Short() {
		t.Skip("slow: WAN delays")
	}
	const oneWay = 50 * time.Millisecond
	for _, tc := range []struct {
		name  string
		delay time.Duration // added to every bus message
	}{
		{"bus-loopback", 0},
		{"bus-wan", oneWay},
	} {
		t.Run(tc.name, func(t *testing.T) { linkSetupOverWAN(t, oneWay, tc.delay) })
	}
}

func linkSetupOverWAN(t *testing.T, oneWay, busDelay time.Duration) {
	netA, netB := wanPair(t, oneWay, []string{"198.51.100.1"}, []string{"198.51.100.2"})
	c := newCluster(t, "a", "b")
	wrap := func(b cluster.Bus) cluster.Bus { return slowBus{Bus: b, d: busDelay} }
	a := c.node(t, "a", nodeOpts{engine: rtc.Config{Net: netA}, wrapBus: wrap})
	b := c.node(t, "b", nodeOpts{engine: rtc.Config{Net: netB}, wrapBus: wrap})
	rtt := 2 * oneWay
	var offerer, both []time.Duration
	for range 3 {
		la := a.link(t, "b")
		lb := <-b.opened
		ia, ib := la.Info(), lb.Info()
		// Both ends' times on the same clock: when the later of the two opened, from the
		// offerer's first step.
		openA, openB := ia.Created.Add(ia.OpenedAfter), ib.Created.Add(ib.OpenedAfter)
		offerer = append(offerer, ia.OpenedAfter)
		both = append(both, max(openA.Sub(ia.Created), openB.Sub(ia.Created)))
		t.Logf("offerer open after %v = %.1f RTT, both ends open after %v = %.1f RTT (RTT %v, bus one way +%v; ICE RTT measured %v)",
			ia.OpenedAfter.Round(time.Millisecond), inRTT(ia.OpenedAfter, rtt),
			both[len(both)-1].Round(time.Millisecond), inRTT(both[len(both)-1], rtt), rtt, busDelay, ia.RTT)
		la.Close()
		waitClosed(t, lb, 5*time.Second)
		// Each round measures a first set-up, not a rebuild: restarting b's manager waits
		// until its side of the link has closed its PeerConnection, which a new link to the
		// same peer would otherwise wait for (up to 0.4 s, see Failure in doc.go).
		b.stop()
		b.start(t)
	}
	// A record, not a limit (tests assert no wall-clock times): docs/performance.md keeps the
	// figures. What is asserted is that the link opens across the emulated WAN at all.
	mo, mb := median(offerer), median(both)
	t.Logf("median: offerer open %v = %.1f RTT, both open %v = %.1f RTT", mo.Round(time.Millisecond), inRTT(mo, rtt),
		mb.Round(time.Millisecond), inRTT(mb, rtt))
}

// TestLinkSetupManyCandidates sets a link up between nodes with two addresses each: there
// are four candidate pairs, so the early DTLS start (rtc.EarlyStart) stays off and standard
// ICE nomination picks the pair. The link must open, control messages must cross, both ways.
func TestLinkSetupManyCandidates(t *testing.T) {
	const oneWay = 10 * time.Millisecond
	netA, netB := wanPair(t, oneWay, []string{"198.51.100.1", "198.51.100.3"}, []string{"198.51.100.2", "198.51.100.4"})
	c := newCluster(t, "a", "b")
	a := c.node(t, "a", nodeOpts{engine: rtc.Config{Net: netA}})
	b := c.node(t, "b", nodeOpts{engine: rtc.Config{Net: netB}})
	la := a.link(t, "b")
	lb := <-b.opened
	t.Logf("offerer open after %v (RTT %v)", la.Info().OpenedAfter.Round(time.Millisecond), 2*oneWay)
	got := make(chan relay.ControlMessage, 2)
	for _, l := range []*relay.Link{la, lb} {
		l.OnControl(func(m relay.ControlMessage) { got <- m })
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, l := range []*relay.Link{la, lb} {
		if err := l.Send(ctx, relay.ControlMessage{Type: "ping", Room: "r"}); err != nil {
			t.Fatalf("send on %s's link: %v", l.Peer(), err)
		}
	}
	for range 2 {
		select {
		case m := <-got:
			if m.Type != "ping" {
				t.Fatalf("control message %+v, want a ping", m)
			}
		case <-ctx.Done():
			t.Fatal("control messages did not cross the link")
		}
	}
}

// wanPair returns two virtual networks with the given addresses, oneWay apart.
func wanPair(t *testing.T, oneWay time.Duration, ipsA, ipsB []string) (*vnet.Net, *vnet.Net) {
	t.Helper()
	wan, err := vnet.NewRouter(&vnet.RouterConfig{
		CIDR: "198.51.100.0/24", MinDelay: oneWay, LoggerFactory: quietPion(),
	})
	if err != nil {
		t.Fatal(err)
	}
	netA, err := vnet.NewNet(&vnet.NetConfig{StaticIPs: ipsA})
	if err != nil {
		t.Fatal(err)
	}
	netB, err := vnet.NewNet(&vnet.NetConfig{StaticIPs: ipsB})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []*vnet.Net{netA, netB} {
		if err := wan.AddNet(n); err != nil {
			t.Fatal(err)
		}
	}
	if err := wan.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = wan.Stop() })
	return netA, netB
}

// slowBus delays every relay message by d before sending it (the sender waits, which keeps
// each sender's messages in order): a bus whose messages cross the WAN.
type slowBus struct {
	cluster.Bus
	d time.Duration
}

func (b slowBus) Send(ctx context.Context, to cluster.NodeID, typ string, body any) error {
	if b.d > 0 {
		tm := time.NewTimer(b.d)
		select {
		case <-tm.C:
		case <-ctx.Done():
			tm.Stop()
			return ctx.Err()
		}
	}
	return b.Bus.Send(ctx, to, typ, body)
}

func inRTT(d, rtt time.Duration) float64 { return float64(d) / float64(rtt) }

func median(ds []time.Duration) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}

func quietPion() logging.LoggerFactory {
	f := logging.NewDefaultLoggerFactory()
	f.DefaultLogLevel = logging.LogLevelDisabled
	return f
}
