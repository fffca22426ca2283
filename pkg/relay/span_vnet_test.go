package relay_test

import (
	"context"
	"encoding/binary"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/transport/v4/vnet"

	"github.com/cascade-sfu/cascade/pkg/cluster"
	"github.com/cascade-sfu/cascade/pkg/relay"
	"github.com/cascade-sfu/cascade/pkg/room"
	"github.com/cascade-sfu/cascade/pkg/rtc"
)

// spanNode is an in-process node without signalling: engine, rooms and relay coordinator.
type spanNode struct {
	rooms   *room.Manager
	coord   *relay.Coordinator
	batches *batchLog // the room's write batcher: records batches for the tests
}

// spanOpts are the optional settings of a span node.
type spanOpts struct {
	alive func(cluster.NodeID) bool           // the coordinator's Alive
	via   func(cluster.NodeID) cluster.NodeID // the coordinator's Via
	dir   relay.Directory                     // the coordinator's Directory, if not the store
}

func startSpanNode(t *testing.T, c *testCluster, id cluster.NodeID, net *vnet.Net, dir *cluster.MemoryStore, opts ...spanOpts) *spanNode {
	t.Helper()
	eng, err := rtc.NewEngine(rtc.Config{Net: net, Logger: testLogger(string(id))})
	if err != nil {
		t.Fatal(err)
	}
	rcfg := room.DefaultConfig()
	rcfg.Logger = testLogger(string(id))
	batches := &batchLog{}
	rcfg.Batcher = batches
	n := &spanNode{rooms: room.NewManager(rcfg), batches: batches}
	var coord atomic.Pointer[relay.Coordinator]
	bus, err := cluster.NewRedisBus(context.Background(), c.srv.Client(), busPrefix, cluster.BusConfig{
		Self: id, Secret: busSecret, Logger: testLogger(string(id)),
		IsMember: func(_ context.Context, id cluster.NodeID) bool { return c.members[id] },
		Handler: func(m cluster.Message) {
			if co := coord.Load(); co != nil {
				co.Links().HandleBusMessage(m)
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	cfg := relay.CoordinatorConfig{
		Link:  relay.Config{Self: id, Engine: eng, Bus: bus, Logger: testLogger(string(id))},
		Rooms: n.rooms, Directory: dir, Interval: 100 * time.Millisecond, Logger: testLogger(string(id)),
	}
	for _, o := range opts {
		cfg.Alive, cfg.Via = o.alive, o.via
		if o.dir != nil {
			cfg.Directory = o.dir
		}
	}
	n.coord = relay.NewCoordinator(cfg)
	coord.Store(n.coord)
	t.Cleanup(func() {
		n.rooms.Close()
		n.coord.Close()
		_ = bus.Close()
		_ = eng.Close()
	})
	return n
}

// vnetHost returns a host of the test WAN (198.51.100.0/24) with one address.
func vnetHost(t testing.TB, ip string) *vnet.Net {
	t.Helper()
	n, err := vnet.NewNet(&vnet.NetConfig{StaticIPs: []string{ip}})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// startWAN connects hosts (or filters and queues wrapping them) through one virtual router that
// holds every packet for oneWay, and stops it when the test ends.
func startWAN(t testing.TB, oneWay time.Duration, nics ...vnet.NIC) {
	t.Helper()
	wan, err := vnet.NewRouter(&vnet.RouterConfig{CIDR: "198.51.100.0/24", MinDelay: oneWay, LoggerFactory: quietPion()})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range nics {
		if err := wan.AddNet(n); err != nil {
			t.Fatal(err)
		}
	}
	if err := wan.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = wan.Stop() })
}

// spanRoom puts alice (a publisher) on eu and bob (a subscriber, with transport sub, or none) on
// hcm in room "r", both in the room store, and returns alice.
func spanRoom(t testing.TB, eu, hcm *spanNode, dir *cluster.MemoryStore, sub room.SubscriberTransport) *room.Participant {
	t.Helper()
	ctx := context.Background()
	pub, err := eu.rooms.Join("r", room.JoinParams{Identity: "alice", Session: "s1", Permissions: room.Permissions{Publish: true}, Sink: nopSink{}})
	if err != nil {
		t.Fatal(err)
	}
	_, _ = dir.Join(ctx, cluster.Occupant{Room: "r", Identity: "alice", SessionID: "s1", Node: "eu"}, 0)
	if _, err := hcm.rooms.Join("r", room.JoinParams{Identity: "bob", Session: "s2", Permissions: room.Permissions{Subscribe: true}, Sink: nopSink{}, Transport: sub}); err != nil {
		t.Fatal(err)
	}
	_, _ = dir.Join(ctx, cluster.Occupant{Room: "r", Identity: "bob", SessionID: "s2", Node: "hcm"}, 0)
	return pub
}

// chanSource is a PacketSource fed by the test.
type chanSource struct {
	ch   chan []byte
	done chan struct{}
	once sync.Once
}

func (s *chanSource) ReadRTP(buf []byte) (int, error) {
	select {
	case b := <-s.ch:
		return copy(buf, b), nil
	case <-s.done:
		return 0, errors.New("closed")
	}
}
func (s *chanSource) RequestKeyframe() error { return nil }
func (s *chanSource) Close() error           { s.once.Do(func() { close(s.done) }); return nil }

// stampWriter records the one-way delay of packets carrying their send time.
type stampWriter struct {
	mu     sync.Mutex
	delays []time.Duration
}

func (w *stampWriter) WriteRTP(_ *rtp.Header, payload []byte) (int, error) {
	if len(payload) >= 10 {
		sent := int64(binary.BigEndian.Uint64(payload[2:10]))
		w.mu.Lock()
		w.delays = append(w.delays, time.Duration(time.Now().UnixNano()-sent))
		w.mu.Unlock()
	}
	return 12 + len(payload), nil
}

func (w *stampWriter) count() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.delays)
}

// bindAll is a subscriber transport that binds every track to one writer.
type bindAll struct{ w room.PacketWriter }

func (b bindAll) AddTrack(d *room.DownTrack) error {
	d.Bind(room.Binding{Writer: b.w, SSRC: 1, PayloadType: 96})
	return nil
}
func (bindAll) RemoveTrack(*room.DownTrack) error { return nil }
func (bindAll) BandwidthEstimate() int            { return 0 }

type nopSink struct{}

func (nopSink) Deliver(room.Event) {}

// A room spans two in-process nodes across pion's virtual network with 40 ms one way between
// them: the publisher's packets reach the subscriber on the other node, one link hop later.
func TestRoomSpansNodesOverVirtualWAN(t *testing.T) {
	const oneWay = 40 * time.Millisecond
	netA, netB := vnetHost(t, "198.51.100.1"), vnetHost(t, "198.51.100.2")
	startWAN(t, oneWay, netA, netB)

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
	w := &stampWriter{}
	if _, err := hcm.rooms.Join("r", room.JoinParams{Identity: "bob", Session: "s2", Permissions: room.Permissions{Subscribe: true}, Sink: nopSink{}, Transport: bindAll{w}}); err != nil {
		t.Fatal(err)
	}
	_, _ = dir.Join(ctx, cluster.Occupant{Room: "r", Identity: "bob", SessionID: "s2", Node: "hcm"}, 0)

	track, err := pub.Publish(room.TrackInfo{Kind: room.KindVideo, Codec: room.CodecParams{MimeType: "video/VP8", ClockRate: 90000}})
	if err != nil {
		t.Fatal(err)
	}
	src := &chanSource{ch: make(chan []byte, 64), done: make(chan struct{})}
	if err := track.AddLayer("", src); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	var sender sync.WaitGroup
	sender.Add(1)
	go func() {
		defer sender.Done()
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for i := uint16(0); ; i++ {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			payload := make([]byte, 200)
			payload[0] = 0x10
			if i%25 != 0 {
				payload[1] = 0x01
			}
			binary.BigEndian.PutUint64(payload[2:10], uint64(time.Now().UnixNano()))
			b, _ := (&rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 96, SequenceNumber: i, Timestamp: uint32(i) * 1800, SSRC: 7, Marker: true}, Payload: payload}).Marshal()
			select {
			case src.ch <- b:
			case <-stop:
				return
			}
		}
	}()
	defer func() { close(stop); sender.Wait() }()

	eventually(t, 20*time.Second, "bob on hcm receives alice's packets across the virtual WAN", func() bool { return w.count() > 50 })
	w.mu.Lock()
	d := append([]time.Duration(nil), w.delays...)
	w.mu.Unlock()
	var min time.Duration = time.Hour
	for _, x := range d {
		min = minDur(min, x)
	}
	t.Logf("one-way delay publisher → eu → (40 ms WAN) → hcm → subscriber: min %v over %d packets", min, len(d))
	if min < oneWay {
		t.Fatalf("packets arrived faster (%v) than the emulated WAN allows: they did not cross it", min)
	}
}

func minDur(a, b time.Duration) time.Duration {
	if a < b {
		return a
	}
	return b
}
