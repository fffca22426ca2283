package relay_test

import (
	"cmp"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cascade-sfu/cascade/pkg/cluster"
	"github.com/cascade-sfu/cascade/pkg/cluster/redistest"
	"github.com/cascade-sfu/cascade/pkg/relay"
	"github.com/cascade-sfu/cascade/pkg/rtc"
)

const (
	busPrefix = "relaytest:"
	// testOfferTimeout leaves room for -race on a busy 2-core machine; loopback set-up takes tens of ms.
	testOfferTimeout = 10 * time.Second
)

var busSecret = []byte("relay-test-cluster-secret")

// testCluster is a Redis server shared by the test's nodes.
type testCluster struct {
	srv     *redistest.Server
	members map[cluster.NodeID]bool // fixed before the first node starts
}

func newCluster(t testing.TB, members ...cluster.NodeID) *testCluster {
	t.Helper()
	c := &testCluster{srv: redistest.Start(t), members: map[cluster.NodeID]bool{}}
	for _, id := range members {
		c.members[id] = true
	}
	return c
}

// testNode is one node: a media engine, a bus endpoint and a relay manager that can be
// replaced (a restart) while the bus keeps running.
type testNode struct {
	id  cluster.NodeID
	eng *rtc.Engine
	bus *cluster.RedisBus
	cfg relay.Config

	mgr    atomic.Pointer[relay.Manager]
	cut    atomic.Bool  // the relay's bus sends fail (a crashed node)
	offers atomic.Int64 // relay_offer messages the bus accepted
	opened chan *relay.Link
}

type nodeOpts struct {
	offerTimeout time.Duration
	engine       rtc.Config
	noManager    bool
	wrapBus      func(cluster.Bus) cluster.Bus // what the relay manager sends through
	udpAddr      string                        // default 127.0.0.1:0
}

// node starts a node: engine on 127.0.0.1:0, bus, and (unless noManager) a relay manager.
// Everything is closed in t.Cleanup: manager, then bus, then engine.
func (c *testCluster) node(t testing.TB, id cluster.NodeID, o nodeOpts) *testNode {
	t.Helper()
	o.engine.UDPAddr = cmp.Or(o.udpAddr, "127.0.0.1:0")
	o.engine.Logger = testLogger(string(id))
	eng, err := rtc.NewEngine(o.engine)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = eng.Close() })
	n := &testNode{id: id, eng: eng, opened: make(chan *relay.Link, 64)}
	bus, err := cluster.NewRedisBus(context.Background(), c.srv.Client(), busPrefix, cluster.BusConfig{
		Self:     id,
		Secret:   busSecret,
		IsMember: func(_ context.Context, id cluster.NodeID) bool { return c.members[id] },
		Handler:  n.handle,
		Logger:   testLogger(string(id)),
	})
	if err != nil {
		t.Fatal(err)
	}
	n.bus = bus
	t.Cleanup(func() { _ = bus.Close() })
	var relayBus cluster.Bus = cutBus{Bus: bus, cut: &n.cut}
	if o.wrapBus != nil {
		relayBus = o.wrapBus(bus)
	}
	n.cfg = relay.Config{
		Self: id, Engine: eng, Bus: relayBus, OfferTimeout: o.offerTimeout, Logger: testLogger(string(id)),
		OnLink: func(l *relay.Link) {
			select {
			case n.opened <- l:
			default:
			}
		},
	}
	if n.cfg.OfferTimeout == 0 {
		n.cfg.OfferTimeout = testOfferTimeout
	}
	if !o.noManager {
		n.start(t)
	}
	t.Cleanup(n.stop)
	return n
}

// handle is the node's bus handler, as cmd/sfu will wire it.
func (n *testNode) handle(m cluster.Message) {
	if m.Type == relay.MsgOffer {
		n.offers.Add(1)
	}
	if mgr := n.mgr.Load(); mgr != nil {
		if !mgr.HandleBusMessage(m) {
			panic("relay manager refused a relay message: " + m.Type)
		}
	}
}

// start (re)starts the node's relay manager.
func (n *testNode) start(t testing.TB) *relay.Manager {
	t.Helper()
	m := relay.NewManager(n.cfg)
	n.mgr.Store(m)
	return m
}

// stop closes the node's relay manager, if any.
func (n *testNode) stop() {
	if m := n.mgr.Swap(nil); m != nil {
		m.Close()
	}
}

func (n *testNode) m() *relay.Manager { return n.mgr.Load() }

// link sets up (or returns) n's link to peer, failing the test on error.
func (n *testNode) link(t testing.TB, peer cluster.NodeID) *relay.Link {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*testOfferTimeout)
	defer cancel()
	l, err := n.m().Link(ctx, peer)
	if err != nil {
		t.Fatalf("%s → %s: %v", n.id, peer, err)
	}
	return l
}

// eventually polls cond until it holds or timeout passes.
func eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for: %s", timeout, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// openLinks returns the ids of a node's open links; other states are reported as such.
func openLinks(m *relay.Manager) (open []string, others []relay.LinkInfo) {
	for _, li := range m.Links() {
		if li.State == relay.StateOpen {
			open = append(open, li.ID)
		} else {
			others = append(others, li)
		}
	}
	return open, others
}

// waitClosed waits for a link to close.
func waitClosed(t testing.TB, l *relay.Link, timeout time.Duration) {
	t.Helper()
	select {
	case <-l.Done():
	case <-time.After(timeout):
		t.Fatalf("link %s → %s still open after %v: %+v", l.ID(), l.Peer(), timeout, l.Info())
	}
}

// signed builds a bus message signed with the cluster secret the way cluster.RedisBus does,
// with any timestamp: the test's forger knows the secret.
func signed(t testing.TB, typ string, from, to cluster.NodeID, ts time.Time, body any) []byte {
	t.Helper()
	b, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	m := cluster.Message{Type: typ, ID: strconv.FormatInt(time.Now().UnixNano(), 36), From: from, To: to, TS: ts.UnixMilli(), Body: b}
	h := hmac.New(sha256.New, busSecret)
	for _, part := range []string{m.Type, m.ID, string(m.From), string(m.To), strconv.FormatInt(m.TS, 10)} {
		h.Write([]byte(part))
		h.Write([]byte{0})
	}
	h.Write(m.Body)
	m.MAC = base64.RawStdEncoding.EncodeToString(h.Sum(nil))
	out, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// testLogger logs to stderr when RELAY_TEST_LOG is set (debug level with "debug", and pion's
// trace messages too with "trace").
func testLogger(node string) *slog.Logger {
	switch os.Getenv("RELAY_TEST_LOG") {
	case "":
		return slog.New(slog.DiscardHandler)
	case "debug":
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})).With("n", node)
	case "trace":
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug - 4})).With("n", node)
	default:
		return slog.New(slog.NewTextHandler(os.Stderr, nil)).With("n", node)
	}
}

// delayBus delays the relay messages of one type by d, and sends them even when the sender
// has given up on them meanwhile: a slow or stray message.
type delayBus struct {
	cluster.Bus
	typ string
	d   time.Duration
}

func delayed(typ string, d time.Duration) func(cluster.Bus) cluster.Bus {
	return func(b cluster.Bus) cluster.Bus { return delayBus{Bus: b, typ: typ, d: d} }
}

func (b delayBus) Send(ctx context.Context, to cluster.NodeID, typ string, body any) error {
	if typ == b.typ {
		time.Sleep(b.d)
		ctx = context.WithoutCancel(ctx)
	}
	return b.Bus.Send(ctx, to, typ, body)
}

// cutBus fails every send once cut is set.
type cutBus struct {
	cluster.Bus
	cut *atomic.Bool
}

func (b cutBus) Send(ctx context.Context, to cluster.NodeID, typ string, body any) error {
	if b.cut.Load() {
		return errors.New("test: node is down")
	}
	return b.Bus.Send(ctx, to, typ, body)
}

// crash stops n without a word to anyone: its relay can no longer send, its bus stops
// receiving, its media port closes, then its manager closes (its goodbyes go nowhere).
func (n *testNode) crash() {
	n.cut.Store(true)
	_ = n.bus.Close()
	_ = n.eng.Close()
	n.stop()
}
