// Package dashboard builds the live cluster view that /dashboard shows: every node with its
// state (active, draining, failed), the rooms and the nodes hosting them, and the relay links
// between nodes. One producer goroutine per node reads the registry and the room state, keeps
// failed nodes for a retention window, and pushes each changed snapshot to the subscribers
// (server-sent events, see handler.go).
package dashboard

import (
	"context"
	"encoding/json"
	"log/slog"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/cascade-sfu/cascade/pkg/cluster"
)

// Node states in the view. StateActive and StateDraining are the nodes' own; StateFailed is
// the view's verdict on a node that stopped refreshing its record or that gossip declared failed.
const (
	StateActive   = string(cluster.StateActive)
	StateDraining = string(cluster.StateDraining)
	StateFailed   = "failed"
)

// Registry is the node registry as the view reads it (cluster.Registry meets it).
type Registry interface {
	Nodes(ctx context.Context) ([]cluster.Node, error)
	Expired(ctx context.Context) ([]cluster.NodeID, error)
}

// RoomState is the cluster room state as the view reads it (cluster.RoomStore meets it).
type RoomState interface {
	Rooms(ctx context.Context) ([]cluster.RoomInfo, error)
	RoomNodes(ctx context.Context, room string) (map[cluster.NodeID]int, error)
}

// Gossip is the membership's verdict on a node (cluster.Membership meets it); optional.
type Gossip interface {
	Status(id cluster.NodeID) cluster.MemberStatus
}

// Config configures a Dashboard.
type Config struct {
	Self     func() cluster.Node // this node, measured now (its links included)
	Registry Registry
	Rooms    RoomState // optional
	Gossip   Gossip    // optional
	Verifier Verifier  // checks the cluster admin token of the HTTP endpoints
	// FailedRetention is how long a failed node stays in the view (default 5 min).
	FailedRetention time.Duration
	// Interval is how often the producer rebuilds the view (default 500 ms): at most that many
	// snapshots a second are pushed.
	Interval time.Duration
	// MaxStreams limits the concurrent event streams (default 32).
	MaxStreams int
	// MaxRooms limits the rooms listed (default 200, the first by name).
	MaxRooms int
	Logger   *slog.Logger
	Now      func() time.Time // for tests; default time.Now
}

// NodeView is one node in the view.
type NodeView struct {
	ID           string     `json:"id"`
	Region       string     `json:"region"`
	Lat          float64    `json:"lat"`
	Lon          float64    `json:"lon"`
	URL          string     `json:"url"`
	State        string     `json:"state"`
	Load         float64    `json:"load"`
	Rooms        int        `json:"rooms"`
	Participants int        `json:"participants"`
	LastSeen     time.Time  `json:"last_seen"`
	FailedAt     *time.Time `json:"failed_at,omitempty"`
	Self         bool       `json:"self,omitempty"`
}

// RoomView is one room and the nodes hosting its participants (participants by node).
type RoomView struct {
	Name         string         `json:"name"`
	Participants int            `json:"participants"`
	Nodes        map[string]int `json:"nodes"`
}

// LinkView is a relay link as its source node reports it.
type LinkView struct {
	Src          string  `json:"src"`
	Dst          string  `json:"dst"`
	State        string  `json:"state,omitempty"`
	RTTMs        float64 `json:"rtt_ms"`
	BitrateOut   int64   `json:"bitrate_out"` // src → dst, bits per second
	BitrateIn    int64   `json:"bitrate_in"`  // dst → src, bits per second
	Loss         float64 `json:"loss"`        // toward dst, 0..1
	PausedLayers int     `json:"paused_layers"`
}

// Snapshot is the whole view at one time.
type Snapshot struct {
	From   string     `json:"from"`
	At     time.Time  `json:"at"`
	Nodes  []NodeView `json:"nodes"`
	Rooms  []RoomView `json:"rooms"`
	Links  []LinkView `json:"links"`
	Errors []string   `json:"errors,omitempty"` // what could not be read this time
}

// failedNode is a node remembered as failed.
type failedNode struct {
	node  cluster.Node
	since time.Time
}

// model is the producer's state; only the producer goroutine (or a test) touches it.
type model struct {
	cfg    Config
	known  map[cluster.NodeID]cluster.Node // alive at the last build
	failed map[cluster.NodeID]failedNode
}

func newModel(cfg Config) *model {
	return &model{cfg: cfg, known: map[cluster.NodeID]cluster.Node{}, failed: map[cluster.NodeID]failedNode{}}
}

// build reads the cluster and returns the view. A node whose record vanished, or that gossip
// reports failed, is failed from then on for FailedRetention unless it comes back. A node whose
// record vanished while it was draining and that did not expire (it deregistered: a graceful
// leave), or that gossip reports left, is dropped at once.
func (m *model) build(ctx context.Context) Snapshot {
	now := m.cfg.Now()
	self := m.cfg.Self()
	self.LastSeen = now // measured now, not read from the registry
	snap := Snapshot{From: string(self.ID), At: now.UTC(), Nodes: []NodeView{}, Rooms: []RoomView{}, Links: []LinkView{}}
	nodes, err := m.cfg.Registry.Nodes(ctx)
	if err != nil {
		// Without a registry read nothing is declared failed: show what we know and say why.
		snap.Errors = append(snap.Errors, "node registry unavailable")
		m.cfg.Logger.Debug("dashboard: registry read failed", "err", err)
		nodes = nil
		for _, n := range m.known {
			nodes = append(nodes, n)
		}
	}
	alive := map[cluster.NodeID]cluster.Node{}
	for _, n := range nodes {
		if n.ID == self.ID {
			continue
		}
		alive[n.ID] = n
	}
	alive[self.ID] = self
	if err == nil {
		var expired map[cluster.NodeID]bool
		for id, old := range m.known {
			if _, ok := alive[id]; ok {
				continue
			}
			if expired == nil {
				expired = map[cluster.NodeID]bool{}
				if ids, err := m.cfg.Registry.Expired(ctx); err == nil {
					for _, e := range ids {
						expired[e] = true
					}
				}
			}
			if old.State == cluster.StateDraining && !expired[id] {
				continue // deregistered after draining: left
			}
			if m.cfg.Gossip != nil && m.cfg.Gossip.Status(id) == cluster.MemberLeft {
				continue
			}
			m.failed[id] = failedNode{node: old, since: now}
		}
	}
	if m.cfg.Gossip != nil {
		for id, n := range alive {
			if id != self.ID && m.cfg.Gossip.Status(id) == cluster.MemberFailed {
				// Gossip noticed first; the record will expire within the TTL.
				delete(alive, id)
				if _, ok := m.failed[id]; !ok {
					m.failed[id] = failedNode{node: n, since: now}
				}
			}
		}
	}
	for id := range alive {
		delete(m.failed, id) // it came back
	}
	for id, f := range m.failed {
		if now.Sub(f.since) >= m.cfg.FailedRetention {
			delete(m.failed, id)
		}
	}
	if err == nil {
		m.known = alive
	}
	for _, n := range alive {
		snap.Nodes = append(snap.Nodes, nodeView(n, string(n.State), n.ID == self.ID))
		for _, l := range n.Links {
			if l.Peer == "" {
				continue
			}
			snap.Links = append(snap.Links, LinkView{
				Src: string(n.ID), Dst: string(l.Peer), State: l.State, RTTMs: float64(l.RTT.Microseconds()) / 1000,
				BitrateOut: l.BitrateOut, BitrateIn: l.BitrateIn, Loss: l.LossOut, PausedLayers: l.PausedLayers,
			})
		}
	}
	for _, f := range m.failed {
		v := nodeView(f.node, StateFailed, false)
		at := f.since.UTC()
		v.FailedAt = &at
		v.Load, v.Rooms, v.Participants = 0, 0, 0
		snap.Nodes = append(snap.Nodes, v)
	}
	sort.Slice(snap.Nodes, func(i, j int) bool { return snap.Nodes[i].ID < snap.Nodes[j].ID })
	sort.Slice(snap.Links, func(i, j int) bool {
		a, b := snap.Links[i], snap.Links[j]
		return a.Src < b.Src || a.Src == b.Src && a.Dst < b.Dst
	})
	if m.cfg.Rooms != nil {
		snap.Rooms, snap.Errors = m.rooms(ctx, snap.Errors)
	}
	return snap
}

func nodeView(n cluster.Node, state string, self bool) NodeView {
	return NodeView{
		ID: string(n.ID), Region: n.Region, Lat: n.Lat, Lon: n.Lon, URL: n.URL, State: state, Load: n.Load,
		Rooms: n.Rooms, Participants: n.Participants, LastSeen: n.LastSeen.UTC(), Self: self,
	}
}

func (m *model) rooms(ctx context.Context, errs []string) ([]RoomView, []string) {
	out := []RoomView{}
	infos, err := m.cfg.Rooms.Rooms(ctx)
	if err != nil {
		return out, append(errs, "room state unavailable")
	}
	slices.SortFunc(infos, func(a, b cluster.RoomInfo) int {
		switch {
		case a.Name < b.Name:
			return -1
		case a.Name > b.Name:
			return 1
		}
		return 0
	})
	if len(infos) > m.cfg.MaxRooms {
		infos = infos[:m.cfg.MaxRooms]
		errs = append(errs, "only the first rooms are listed")
	}
	for _, info := range infos {
		byNode, err := m.cfg.Rooms.RoomNodes(ctx, info.Name)
		if err != nil {
			continue
		}
		rv := RoomView{Name: info.Name, Nodes: map[string]int{}}
		for id, c := range byNode {
			rv.Nodes[string(id)] = c
			rv.Participants += c
		}
		out = append(out, rv)
	}
	return out, errs
}

// Dashboard owns the producer goroutine and the subscribers.
type Dashboard struct {
	cfg    Config
	model  *model
	cancel context.CancelFunc
	done   chan struct{}

	mu      sync.Mutex // guards the fields below
	latest  []byte     // JSON of the last snapshot
	lastCmp []byte     // the same without its time, to tell changes
	subs    map[*subscriber]struct{}
	closed  bool
}

// New starts the producer.
func New(cfg Config) *Dashboard {
	if cfg.FailedRetention <= 0 {
		cfg.FailedRetention = 5 * time.Minute
	}
	if cfg.Interval <= 0 {
		cfg.Interval = 500 * time.Millisecond
	}
	if cfg.MaxStreams <= 0 {
		cfg.MaxStreams = 32
	}
	if cfg.MaxRooms <= 0 {
		cfg.MaxRooms = 200
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	ctx, cancel := context.WithCancel(context.Background())
	d := &Dashboard{cfg: cfg, model: newModel(cfg), cancel: cancel, done: make(chan struct{}),
		subs: map[*subscriber]struct{}{}}
	d.step(ctx)
	go d.run(ctx)
	return d
}

func (d *Dashboard) run(ctx context.Context) {
	defer close(d.done)
	t := time.NewTicker(d.cfg.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			d.step(ctx)
		}
	}
}

// step builds the view and publishes it if anything but its time changed. Only the producer
// goroutine calls it (and New, before starting it).
func (d *Dashboard) step(ctx context.Context) {
	rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	snap := d.model.build(rctx)
	cancel()
	at := snap.At
	snap.At = time.Time{}
	cmpBytes, err := json.Marshal(snap)
	if err != nil {
		return
	}
	snap.At = at
	b, _ := json.Marshal(snap)
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.latest != nil && string(d.lastCmp) == string(cmpBytes) {
		return
	}
	d.lastCmp = cmpBytes
	d.latest = b
	for s := range d.subs {
		s.offer(b) // never blocks: a slow subscriber keeps only the newest snapshot
	}
}

// Snapshot returns the latest view as JSON.
func (d *Dashboard) Snapshot() []byte {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.latest
}

// Close stops the producer and ends every stream; it waits for the producer.
func (d *Dashboard) Close() {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return
	}
	d.closed = true
	for s := range d.subs {
		close(s.gone)
	}
	d.subs = nil
	d.mu.Unlock()
	d.cancel()
	<-d.done
}

// subscriber is one event stream: it holds the newest snapshot not yet written.
type subscriber struct {
	mu      sync.Mutex
	pending []byte
	notify  chan struct{} // capacity 1
	gone    chan struct{} // closed by Close
}

func (s *subscriber) offer(b []byte) {
	s.mu.Lock()
	s.pending = b
	s.mu.Unlock()
	select {
	case s.notify <- struct{}{}:
	default:
	}
}

func (s *subscriber) take() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.pending
	s.pending = nil
	return b
}

// subscribe registers a stream that starts with the latest snapshot.
func (d *Dashboard) subscribe() (*subscriber, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return nil, ErrClosed
	}
	if len(d.subs) >= d.cfg.MaxStreams {
		return nil, ErrTooManyStreams
	}
	s := &subscriber{notify: make(chan struct{}, 1), gone: make(chan struct{})}
	s.offer(d.latest)
	d.subs[s] = struct{}{}
	return s, nil
}

func (d *Dashboard) unsubscribe(s *subscriber) {
	d.mu.Lock()
	delete(d.subs, s)
	d.mu.Unlock()
}
