package relay_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/cascade-sfu/cascade/pkg/cluster"
	"github.com/cascade-sfu/cascade/pkg/relay"
	"github.com/cascade-sfu/cascade/pkg/rtc"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestLinkOpensAndCarriesControlMessages(t *testing.T) {
	c := newCluster(t, "a", "b")
	a, b := c.node(t, "a", nodeOpts{}), c.node(t, "b", nodeOpts{})

	la := a.link(t, "b")
	info := la.Info()
	t.Logf("link a→b open after %v (offerer a, loopback, real Redis)", info.OpenedAfter)
	if info.State != relay.StateOpen || !info.Offerer || info.OpenedAfter <= 0 || info.Peer != "b" {
		t.Fatalf("a's link: %+v", info)
	}

	// b's side of the link is the one b answered: b.Link(a) returns it, no second
	// PeerConnection and no offer from b.
	var lbOpened *relay.Link
	select {
	case lbOpened = <-b.opened:
	case <-time.After(time.Second):
		t.Fatal("b's side did not report the link open")
	}
	lb := b.link(t, "a")
	if lb != lbOpened || lb.ID() != la.ID() || lb.Info().Offerer {
		t.Fatalf("b.Link(a) = %p %+v, want the answered link %p with id %s", lb, lb.Info(), lbOpened, la.ID())
	}
	if a.offers.Load() != 0 {
		t.Fatalf("b sent %d offers to a; it had a link already", a.offers.Load())
	}
	if again := a.link(t, "b"); again != la {
		t.Fatal("a.Link(b) set up a second link")
	}
	if n := len(a.m().Links()); n != 1 {
		t.Fatalf("a has %d links", n)
	}
	if n := len(b.m().Links()); n != 1 {
		t.Fatalf("b has %d links", n)
	}

	// Control messages both ways, in order, including one that arrived at b before b set its
	// handler (kept in the backlog).
	ctx := context.Background()
	if err := la.Send(ctx, relay.ControlMessage{Type: "hello", Room: "r1", Body: json.RawMessage(`{"n":0}`)}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond)
	atB, atA := make(chan relay.ControlMessage, 16), make(chan relay.ControlMessage, 16)
	lb.OnControl(func(m relay.ControlMessage) { atB <- m })
	la.OnControl(func(m relay.ControlMessage) { atA <- m })
	for i := 1; i <= 5; i++ {
		body, _ := json.Marshal(map[string]int{"n": i})
		if err := la.Send(ctx, relay.ControlMessage{Type: "track", Room: "r1", Body: body}); err != nil {
			t.Fatal(err)
		}
	}
	if err := lb.Send(ctx, relay.ControlMessage{Type: "subscribe", Room: "r2", Body: json.RawMessage(`{"track":"TR_1"}`)}); err != nil {
		t.Fatal(err)
	}
	for i := 0; i <= 5; i++ {
		m := recv(t, atB)
		var body struct{ N int }
		if err := json.Unmarshal(m.Body, &body); err != nil || body.N != i || m.Room != "r1" {
			t.Fatalf("message %d at b: %+v", i, m)
		}
	}
	if m := recv(t, atA); m.Type != "subscribe" || m.Room != "r2" || string(m.Body) != `{"track":"TR_1"}` {
		t.Fatalf("at a: %+v", m)
	}
	big := relay.ControlMessage{Type: "big", Body: json.RawMessage(`"` + strings.Repeat("x", relay.MaxControlMessage) + `"`)}
	if err := la.Send(ctx, big); !errors.Is(err, relay.ErrTooLarge) {
		t.Fatalf("oversized message: %v", err)
	}

	// Statistics: ICE RTT of the nominated pair and byte counters.
	eventually(t, 5*time.Second, "an RTT measurement", func() bool { return la.Info().RTT > 0 })
	info = la.Info()
	if info.BytesSent == 0 || info.BytesReceived == 0 {
		t.Fatalf("no byte counts: %+v", info)
	}
	t.Logf("a's link: rtt %v, sent %d B, received %d B", info.RTT, info.BytesSent, info.BytesReceived)
	if rtts := a.m().RTTs(); len(rtts) != 1 || rtts[la.Peer()] <= 0 {
		t.Fatalf("a's measured link RTTs: %v", rtts)
	}

	// Closing one side closes the other and removes both.
	la.Close()
	waitClosed(t, lb, 5*time.Second)
	if !errors.Is(lb.Err(), relay.ErrPeerClosed) && !errors.Is(lb.Err(), relay.ErrLinkFailed) {
		t.Fatalf("b's link closed with %v", lb.Err())
	}
	if err := la.Send(ctx, relay.ControlMessage{Type: "late"}); !errors.Is(err, relay.ErrLinkClosed) {
		t.Fatalf("send on a closed link: %v", err)
	}
	eventually(t, time.Second, "no links left", func() bool { return len(a.m().Links())+len(b.m().Links()) == 0 })
	if rtts := a.m().RTTs(); len(rtts) != 0 {
		t.Fatalf("a measures links it no longer has: %v", rtts)
	}
}

func recv(t *testing.T, ch <-chan relay.ControlMessage) relay.ControlMessage {
	t.Helper()
	select {
	case m := <-ch:
		return m
	case <-time.After(5 * time.Second):
		t.Fatal("control message not delivered")
		return relay.ControlMessage{}
	}
}

func TestConcurrentCallersShareOneAttempt(t *testing.T) {
	c := newCluster(t, "a", "b")
	a, b := c.node(t, "a", nodeOpts{}), c.node(t, "b", nodeOpts{})
	const callers = 8
	links := make([]*relay.Link, callers)
	var wg sync.WaitGroup
	for i := range callers {
		wg.Go(func() { links[i] = a.link(t, "b") })
	}
	wg.Wait()
	for _, l := range links[1:] {
		if l != links[0] {
			t.Fatal("concurrent callers got different links")
		}
	}
	if n := b.offers.Load(); n != 1 {
		t.Fatalf("b received %d offers, want 1", n)
	}
}

// TestGlare: both nodes set up the link at once; the smaller id offers, both end with the same
// single link, and both callers get it. The delays force each order of events: b's offer
// reaching a while a's is pending (a keeps its offer, b abandons its own and answers), and
// b's offer still on its way when b has abandoned it (b's answer waits for it, so a still
// sees it as glare instead of a new link).
func TestGlare(t *testing.T) {
	for _, tc := range []struct {
		name   string
		a, b   nodeOpts
		rounds int
	}{
		{name: "simultaneous", rounds: 5},
		{name: "a's offer late", a: nodeOpts{wrapBus: delayed(relay.MsgOffer, 50*time.Millisecond)}, rounds: 2},
		{name: "b's abandoned offer late", b: nodeOpts{wrapBus: delayed(relay.MsgOffer, 100*time.Millisecond)}, rounds: 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newCluster(t, "a", "b")
			a, b := c.node(t, "a", tc.a), c.node(t, "b", tc.b)
			for round := range tc.rounds {
				glareRound(t, a, b, round)
			}
		})
	}
}

func glareRound(t *testing.T, a, b *testNode, round int) {
	var la, lb *relay.Link
	var wg sync.WaitGroup
	start := make(chan struct{})
	wg.Go(func() { <-start; la = a.link(t, "b") })
	wg.Go(func() { <-start; lb = b.link(t, "a") })
	close(start)
	wg.Wait()
	if la.ID() != lb.ID() {
		t.Fatalf("round %d: a has link %s, b has %s", round, la.ID(), lb.ID())
	}
	// A stray offer of the losing attempt may leave a short-lived half at a, refused by b.
	eventually(t, 2*time.Second, "exactly one link on each side", func() bool {
		oa, xa := openLinks(a.m())
		ob, xb := openLinks(b.m())
		return len(oa) == 1 && len(ob) == 1 && len(xa)+len(xb) == 0
	})
	if !la.Info().Offerer || lb.Info().Offerer {
		t.Fatalf("round %d: the larger id offered", round)
	}
	if la.Info().State != relay.StateOpen || lb.Info().State != relay.StateOpen {
		t.Fatalf("round %d: %+v / %+v", round, la.Info(), lb.Info())
	}
	t.Logf("round %d: link %s; offers accepted so far: at a %d, at b %d", round, la.ID()[:8], a.offers.Load(), b.offers.Load())
	la.Close()
	waitClosed(t, lb, 5*time.Second)
	eventually(t, 2*time.Second, "no links left", func() bool { return len(a.m().Links())+len(b.m().Links()) == 0 })
}

// TestPeerRestartBeforeFailureDetected: b crashes and comes back on the same media port
// before a's ICE notices. b's new offer replaces a's stale link at once (a node offers only
// when it has no link), instead of waiting for ICE to fail.
func TestPeerRestartBeforeFailureDetected(t *testing.T) {
	c := newCluster(t, "a", "b")
	a, b := c.node(t, "a", nodeOpts{}), c.node(t, "b", nodeOpts{})
	old := a.link(t, "b")
	addr := b.eng.UDPAddr()
	b.crash()
	time.Sleep(50 * time.Millisecond)
	if old.Info().State != relay.StateOpen {
		t.Fatalf("a noticed the crash: %+v", old.Info())
	}
	b2 := c.node(t, "b", nodeOpts{udpAddr: addr})
	start := time.Now()
	lb := b2.link(t, "a")
	t.Logf("restarted b linked again after %v", time.Since(start))
	waitClosed(t, old, time.Second)
	if !errors.Is(old.Err(), relay.ErrReplaced) {
		t.Fatalf("a's old link closed with %v", old.Err())
	}
	la := a.link(t, "b")
	if la.ID() != lb.ID() || la.Info().Offerer {
		t.Fatalf("a's link %+v, b's %s", la.Info(), lb.ID())
	}
	ctx := context.Background()
	got := make(chan relay.ControlMessage, 1)
	lb.OnControl(func(m relay.ControlMessage) { got <- m })
	if err := la.Send(ctx, relay.ControlMessage{Type: "ping"}); err != nil {
		t.Fatal(err)
	}
	if m := recv(t, got); m.Type != "ping" {
		t.Fatalf("got %+v", m)
	}
}

// TestBusRefusesForgedStaleAndReplayedOffers publishes offers straight on b's Redis channel:
// unsigned, stale but correctly signed, and a replay of a captured valid one. None may reach
// the relay, and no link may appear. A fresh offer signed the same way is accepted (so the
// forgeries were refused for what they are, not for a bad test signature).
func TestBusRefusesForgedStaleAndReplayedOffers(t *testing.T) {
	c := newCluster(t, "a", "b")
	a, b := c.node(t, "a", nodeOpts{}), c.node(t, "b", nodeOpts{})
	ctx := context.Background()
	rdb := c.srv.Client()
	channel := busPrefix + "bus:b"

	// Capture a's valid offer to b on the wire.
	sub := rdb.Subscribe(ctx, channel)
	defer sub.Close()
	if _, err := sub.Receive(ctx); err != nil {
		t.Fatal(err)
	}
	la := a.link(t, "b")
	var captured []byte
	var offer struct{ Req, SDP string }
	for captured == nil {
		rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		msg, err := sub.ReceiveMessage(rctx)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		var m cluster.Message
		if json.Unmarshal([]byte(msg.Payload), &m) == nil && m.Type == relay.MsgOffer {
			captured = []byte(msg.Payload)
			_ = json.Unmarshal(m.Body, &offer)
		}
	}
	if offer.Req != la.ID() || offer.SDP == "" {
		t.Fatalf("captured offer %q, link %q", offer.Req, la.ID())
	}
	accepted := b.offers.Load()

	// Replayed while the link is open: refused, the link stays.
	rdb.Publish(ctx, channel, captured)
	time.Sleep(300 * time.Millisecond)
	if open, others := openLinks(b.m()); len(open) != 1 || open[0] != la.ID() || len(others) != 0 {
		t.Fatalf("after a replay b has %v %+v", open, others)
	}
	if la.Info().State != relay.StateOpen {
		t.Fatal("a replay disturbed the link")
	}

	// Close the link; then nothing at b could absorb a duplicate.
	la.Close()
	eventually(t, 5*time.Second, "the link gone at b", func() bool { return len(b.m().Links()) == 0 })

	fresh := offerBody(t, "forged-"+la.ID(), offer.SDP)
	unsigned, _ := json.Marshal(cluster.Message{
		Type: relay.MsgOffer, ID: "unsigned-1", From: "a", To: "b", TS: time.Now().UnixMilli(), Body: fresh,
	})
	badMAC, _ := json.Marshal(cluster.Message{
		Type: relay.MsgOffer, ID: "badmac-1", From: "a", To: "b", TS: time.Now().UnixMilli(), Body: fresh, MAC: "AAAA",
	})
	stale := signed(t, relay.MsgOffer, "a", "b", time.Now().Add(-2*time.Minute), json.RawMessage(fresh))
	future := signed(t, relay.MsgOffer, "a", "b", time.Now().Add(2*time.Minute), json.RawMessage(fresh))
	notMember := signed(t, relay.MsgOffer, "mallory", "b", time.Now(), json.RawMessage(fresh))
	for _, p := range [][]byte{captured, unsigned, badMAC, stale, future, notMember} {
		if err := rdb.Publish(ctx, channel, p).Err(); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(500 * time.Millisecond)
	if n := b.offers.Load() - accepted; n != 0 {
		t.Fatalf("the bus let %d bad offers through", n)
	}
	if links := b.m().Links(); len(links) != 0 {
		t.Fatalf("a bad offer made a link at b: %+v", links)
	}

	// Control: the same offer, freshly signed, is accepted (b answers; a, which has no such
	// attempt, refuses the answer with relay_close, and b's half goes away).
	if err := rdb.Publish(ctx, channel, signed(t, relay.MsgOffer, "a", "b", time.Now(), json.RawMessage(fresh))).Err(); err != nil {
		t.Fatal(err)
	}
	eventually(t, 2*time.Second, "the fresh offer accepted", func() bool { return b.offers.Load()-accepted == 1 })
	eventually(t, 2*time.Second, "b's half refused by a", func() bool { return len(b.m().Links()) == 0 })
}

func offerBody(t *testing.T, req, sdp string) json.RawMessage {
	t.Helper()
	b, err := json.Marshal(map[string]string{"req": req, "sdp": sdp})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestOfferTimeout: c is a member but runs no relay: a's attempt fails with ErrTimeout within
// the offer timeout, and nothing is left behind.
func TestOfferTimeout(t *testing.T) {
	c := newCluster(t, "a", "c")
	const timeout = 500 * time.Millisecond
	a := c.node(t, "a", nodeOpts{offerTimeout: timeout})
	c.node(t, "c", nodeOpts{noManager: true})
	start := time.Now()
	_, err := a.m().Link(context.Background(), "c")
	took := time.Since(start)
	if !errors.Is(err, relay.ErrTimeout) {
		t.Fatalf("err = %v, want ErrTimeout", err)
	}
	if took < timeout || took > timeout+300*time.Millisecond {
		t.Fatalf("failed after %v, offer timeout %v", took, timeout)
	}
	t.Logf("a.Link(c): %v after %v", err, took)
	if links := a.m().Links(); len(links) != 0 {
		t.Fatalf("left behind: %+v", links)
	}
	// A caller's own context ends its wait only.
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := a.m().Link(ctx, "c"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want the caller's deadline", err)
	}
	if _, err := a.m().Link(context.Background(), "a"); !errors.Is(err, relay.ErrSelf) {
		t.Fatalf("link to self: %v", err)
	}
}

// TestPeerManagerRestart: b's manager closes (node shutdown): a's link closes and is removed;
// once b runs again, a.Link(b) sets up a new link.
func TestPeerManagerRestart(t *testing.T) {
	c := newCluster(t, "a", "b")
	a, b := c.node(t, "a", nodeOpts{}), c.node(t, "b", nodeOpts{})
	la := a.link(t, "b")
	b.stop()
	waitClosed(t, la, 5*time.Second)
	t.Logf("a's link closed: %v", la.Err())
	if la.Info().State != relay.StateClosed {
		t.Fatalf("state %s", la.Info().State)
	}
	if links := a.m().Links(); len(links) != 0 {
		t.Fatalf("a still lists %+v", links)
	}
	b.start(t)
	lb2 := a.link(t, "b")
	if lb2 == la || lb2.ID() == la.ID() {
		t.Fatal("a.Link(b) returned the old link")
	}
	if lb2.Info().State != relay.StateOpen {
		t.Fatalf("new link: %+v", lb2.Info())
	}
}

// TestPeerGoneSilently: b vanishes without a word (its bus and media port die): a's link fails
// when ICE gives up, is removed, and a.Link(b) can set up a new one once b is back.
func TestPeerGoneSilently(t *testing.T) {
	c := newCluster(t, "a", "b")
	fast := rtc.Config{ICEDisconnectedTimeout: 300 * time.Millisecond, ICEFailedTimeout: 600 * time.Millisecond}
	a := c.node(t, "a", nodeOpts{engine: fast})
	b := c.node(t, "b", nodeOpts{engine: fast})
	la := a.link(t, "b")
	// Silence b, which keeps running: its relay can no longer reach the bus, its bus stops
	// receiving and its media port closes.
	b.cut.Store(true)
	_ = b.bus.Close()
	_ = b.eng.Close()
	waitClosed(t, la, 5*time.Second)
	if !errors.Is(la.Err(), relay.ErrLinkFailed) {
		t.Fatalf("a's link closed with %v", la.Err())
	}
	t.Logf("a's link closed: %v", la.Err())
	if links := a.m().Links(); len(links) != 0 {
		t.Fatalf("a still lists %+v", links)
	}
	b.stop()

	// b comes back as a new process would: new engine, bus and manager.
	b2 := c.node(t, "b", nodeOpts{engine: fast})
	l2 := a.link(t, "b")
	if l2.ID() == la.ID() {
		t.Fatal("old link returned")
	}
	select {
	case lb := <-b2.opened:
		if lb.ID() != l2.ID() {
			t.Fatalf("b2 opened %s, a has %s", lb.ID(), l2.ID())
		}
	case <-time.After(time.Second):
		t.Fatal("b2 did not open the link")
	}
}

// TestManagerClose: Close closes every link (and tells peers), is idempotent, and Link fails
// afterwards.
func TestManagerClose(t *testing.T) {
	c := newCluster(t, "a", "b", "c")
	a, b, cc := c.node(t, "a", nodeOpts{}), c.node(t, "b", nodeOpts{}), c.node(t, "c", nodeOpts{})
	lab, lac := a.link(t, "b"), a.link(t, "c")
	lbc := b.link(t, "c")
	if n := len(a.m().Links()); n != 2 {
		t.Fatalf("a has %d links", n)
	}
	ma := a.m()
	ma.Close()
	ma.Close()
	for _, l := range []*relay.Link{lab, lac} {
		if l.Info().State != relay.StateClosed {
			t.Fatalf("link to %s: %s", l.Peer(), l.Info().State)
		}
	}
	eventually(t, 5*time.Second, "b and c drop their links to a", func() bool {
		ob, _ := openLinks(b.m())
		oc, _ := openLinks(cc.m())
		return len(ob) == 1 && len(oc) == 1
	})
	if lbc.Info().State != relay.StateOpen {
		t.Fatal("b–c link affected")
	}
	if _, err := ma.Link(context.Background(), "b"); !errors.Is(err, relay.ErrClosed) {
		t.Fatalf("Link after Close: %v", err)
	}
}

// TestLinkSetupTime logs the set-up time of fresh links on loopback.
func TestLinkSetupTime(t *testing.T) {
	c := newCluster(t, "a", "b")
	a, b := c.node(t, "a", nodeOpts{}), c.node(t, "b", nodeOpts{})
	var total time.Duration
	const n = 5
	for range n {
		la := a.link(t, "b")
		lb := <-b.opened
		total += la.Info().OpenedAfter
		t.Logf("opened after %v (offerer), %v (answerer)", la.Info().OpenedAfter, lb.Info().OpenedAfter)
		la.Close()
		waitClosed(t, lb, 5*time.Second)
	}
	t.Logf("mean set-up time %v", total/n)
}
