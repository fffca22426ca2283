package relay_test

import (
	"testing"
	"time"
)

// BenchmarkLinkSetup sets up a link between two nodes on loopback (real Redis bus, real pion
// stacks) and closes it, per iteration, restarting the answering node's relay manager between
// iterations. setup-ms/link is the set-up time alone (offer to open control channel, as the
// offerer measures it).
func BenchmarkLinkSetup(b *testing.B) {
	c := newCluster(b, "a", "b")
	na, nb := c.node(b, "a", nodeOpts{}), c.node(b, "b", nodeOpts{})
	var setup time.Duration
	b.ReportAllocs()
	for b.Loop() {
		la := na.link(b, "b")
		lb := <-nb.opened
		setup += la.Info().OpenedAfter
		la.Close()
		waitClosed(b, lb, 5*time.Second)
		// A first set-up each time, not a rebuild: without the restart, the next link would
		// at times wait up to 0.4 s for b's side of this one to close its PeerConnection.
		nb.stop()
		nb.start(b)
	}
	b.ReportMetric(float64(setup.Microseconds())/1000/float64(b.N), "setup-ms/link")
}
