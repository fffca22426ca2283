package vnet

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cascade-sfu/cascade/pkg/auth"
	"github.com/cascade-sfu/cascade/pkg/cluster"
	"github.com/cascade-sfu/cascade/pkg/cluster/redistest"
	"github.com/cascade-sfu/cascade/pkg/relay"
	"github.com/cascade-sfu/cascade/pkg/room"
	"github.com/cascade-sfu/cascade/pkg/rtc"
	"github.com/cascade-sfu/cascade/pkg/signal"
)

const (
	apiKey    = "vnet"
	apiSecret = "vnet-test-secret"
	busPrefix = "vnettest:"
)

// testCluster is what a test's nodes share: the virtual network their media crosses, Redis
// (the bus between them) and the cluster's room state, in memory.
type testCluster struct {
	t      *testing.T
	wan    *wan
	redis  *redistest.Server
	store  *cluster.MemoryStore
	http   *http.Client // signalling requests of the test's clients, to 127.0.0.1
	secret []byte
}

func newCluster(t *testing.T, oneWay time.Duration) *testCluster {
	t.Helper()
	c := &testCluster{
		t: t, wan: newWAN(t, oneWay), redis: redistest.Start(t), store: cluster.NewMemoryStore(),
		http: &http.Client{Transport: &http.Transport{}, Timeout: 10 * time.Second}, secret: []byte("vnet-bus-secret"),
	}
	t.Cleanup(func() {
		c.http.CloseIdleConnections()
		_ = c.store.Close()
	})
	return c
}

// member is the bus's membership check: the test's node names.
func member(_ context.Context, id cluster.NodeID) bool {
	switch id {
	case "eu", "hcm", "sgp":
		return true
	}
	return false
}

// node is an in-process Cascade node wired as cmd/sfu wires one with --redis: media engine on
// its own host of the virtual network, rooms, relay coordinator over the Redis bus, the
// cluster room state as Directory and Occupancy, and signalling over real HTTP on 127.0.0.1.
type node struct {
	id     cluster.NodeID
	ip     string
	c      *testCluster
	rooms  *room.Manager
	engine *rtc.Engine
	bus    *cluster.RedisBus
	coord  *relay.Coordinator
	signal *signal.Server
	http   *httptest.Server
	// dead is set by kill: from then on the node's room-state writes and bus sends go nowhere,
	// as those of a process killed with SIGKILL.
	dead atomic.Bool
	once sync.Once
}

func (c *testCluster) startNode(id cluster.NodeID, ip string) *node {
	t := c.t
	t.Helper()
	log := testLogger(string(id))
	n := &node{id: id, ip: ip, c: c}
	engine, err := rtc.NewEngine(rtc.Config{Net: c.wan.host(t, ip), InitialBitrate: 3_000_000, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	n.engine = engine
	var coord atomic.Pointer[relay.Coordinator] // bus messages and data may come before it exists
	rcfg := room.DefaultConfig()
	rcfg.AllocateInterval = 200 * time.Millisecond
	rcfg.Logger = log
	rcfg.OnData = func(name room.Name, from *room.Participant, msg room.DataMessage) {
		if co := coord.Load(); co != nil {
			co.DataSent(name, from, msg)
		}
	}
	n.rooms = room.NewManager(rcfg)
	n.bus, err = cluster.NewRedisBus(context.Background(), c.redis.Client(), busPrefix, cluster.BusConfig{
		Self: id, Secret: c.secret, Logger: log, IsMember: member,
		Handler: func(m cluster.Message) {
			if co := coord.Load(); co != nil {
				co.Links().HandleBusMessage(m)
			}
		},
	})
	if err != nil {
		n.rooms.Close()
		_ = engine.Close()
		t.Fatal(err)
	}
	n.coord = relay.NewCoordinator(relay.CoordinatorConfig{
		Link:  relay.Config{Self: id, Engine: engine, Bus: deadBus{Bus: n.bus, dead: &n.dead}, OfferTimeout: 10 * time.Second, Logger: log},
		Rooms: n.rooms, Directory: c.store, Interval: 100 * time.Millisecond, Logger: log,
	})
	coord.Store(n.coord)
	verifier, err := auth.NewVerifier(map[string]string{apiKey: apiSecret})
	if err != nil {
		t.Fatal(err)
	}
	n.signal = signal.NewServer(signal.Config{
		Rooms: n.rooms, Engine: engine, Verifier: verifier, Logger: log, JoinRate: 1000, JoinBurst: 1000, FailedJoinRate: 1000, FailedJoinBurst: 1000,
		Occupancy: occupancy{store: c.store, node: id, dead: &n.dead},
	})
	mux := http.NewServeMux()
	n.signal.Register(mux)
	n.http = httptest.NewServer(mux)
	t.Cleanup(n.close)
	return n
}

// close shuts the node down in cmd/sfu's order: signalling, rooms, relays, bus, media port.
// Calling it twice is safe.
func (n *node) close() {
	n.once.Do(func() {
		n.signal.Drain()
		n.rooms.Close()
		n.signal.Close()
		n.http.Close()
		n.coord.Close()
		_ = n.bus.Close()
		_ = n.engine.Close()
	})
}

// kill stops the node as SIGKILL would: its host drops off the network first (no packet of
// its goodbyes gets out, nothing reaches it), its room-state writes and bus sends fail, then
// its in-process parts are released. The cluster's room state still lists its occupants, as
// after a real crash, until reap.
func (n *node) kill() {
	n.dead.Store(true)
	n.c.wan.cutOff(n.ip)
	n.close()
}

// reap removes a dead node's occupants from the room state, as the cluster agent does once the
// node's health record has expired.
func (c *testCluster) reap(id cluster.NodeID) map[string][]cluster.Occupant {
	c.t.Helper()
	removed, err := c.store.RemoveNode(context.Background(), id)
	if err != nil {
		c.t.Fatal(err)
	}
	return removed
}

var errDead = errors.New("test: the node was killed")

// deadBus fails every send once the node is dead.
type deadBus struct {
	cluster.Bus
	dead *atomic.Bool
}

func (b deadBus) Send(ctx context.Context, to cluster.NodeID, typ string, body any) error {
	if b.dead.Load() {
		return errDead
	}
	return b.Bus.Send(ctx, to, typ, body)
}

// occupancy is cmd/sfu's signal.Occupancy over the cluster room state (without the cross-node
// kick of a replaced session, which these tests do not exercise).
type occupancy struct {
	store cluster.RoomStore
	node  cluster.NodeID
	dead  *atomic.Bool
}

func (o occupancy) Join(ctx context.Context, roomName, identity, session string, host bool) error {
	if o.dead.Load() {
		return errDead
	}
	_, err := o.store.Join(ctx, cluster.Occupant{Room: roomName, Identity: identity, SessionID: session, Node: o.node, Host: host}, 0)
	if err != nil {
		return fmt.Errorf("%w: %v", signal.ErrOccupancyUnavailable, err)
	}
	return nil
}

func (o occupancy) Leave(ctx context.Context, roomName, identity, session string) {
	if !o.dead.Load() {
		_, _ = o.store.Leave(ctx, roomName, identity, session)
	}
}

func (n *node) wsURL() string { return "ws" + strings.TrimPrefix(n.http.URL, "http") + "/v1/rtc" }

func token(t *testing.T, roomName, identity string, g auth.Grants) string {
	t.Helper()
	g.Room, g.Identity = roomName, identity
	tok, err := auth.Sign(apiKey, apiSecret, g, time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// remote returns the proxy participants on n that stand for participants of node origin.
func (n *node) remote(roomName string, origin cluster.NodeID) []*room.Participant {
	r := n.rooms.Room(room.Name(roomName))
	if r == nil {
		return nil
	}
	var out []*room.Participant
	for _, p := range r.Participants() {
		if p.Origin() == string(origin) {
			out = append(out, p)
		}
	}
	return out
}

// tracksFrom counts the tracks in n's room published by participants of node origin ("" for
// n's own participants).
func (n *node) tracksFrom(roomName string, origin cluster.NodeID) int {
	r := n.rooms.Room(room.Name(roomName))
	if r == nil {
		return 0
	}
	k := 0
	for _, p := range r.Participants() {
		if p.Origin() != string(origin) {
			continue
		}
		for _, tr := range r.Tracks() {
			if tr.Info().Participant == p.SID() {
				k++
			}
		}
	}
	return k
}

// stats summarises a node's forwarding and relay state, for failure messages.
func (n *node) stats() string {
	s := n.rooms.Stats()
	out := fmt.Sprintf("%s: in=%d out=%d plis=%d kf=%d drops:", n.id, s.PacketsIn.Load(), s.PacketsOut.Load(),
		s.PLIsReceived.Load(), s.KeyframeRequests.Load())
	for _, r := range room.DropReasons() {
		if v := s.Drops(r); v > 0 {
			out += fmt.Sprintf(" %s=%d", r, v)
		}
	}
	for _, l := range n.coord.Links().Links() {
		out += fmt.Sprintf(" link(%s %s)", l.Peer, l.State)
	}
	return out
}

// eventually polls cond until it holds; on timeout it fails with what and the context.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool, context ...func() string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			for _, c := range context {
				what += "; " + c()
			}
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// testLogger logs to stderr when CASCADE_TEST_LOG is set.
func testLogger(node string) *slog.Logger {
	if os.Getenv("CASCADE_TEST_LOG") == "" {
		return slog.New(slog.DiscardHandler)
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})).With("node", node)
}
