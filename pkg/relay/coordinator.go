package relay

import (
	"context"
	"encoding/json"
	"log/slog"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/cascade-sfu/cascade/pkg/cluster"
	"github.com/cascade-sfu/cascade/pkg/room"
)

// Directory says which nodes have occupants in a room (cluster.RoomStore does).
type Directory interface {
	RoomNodes(ctx context.Context, room string) (map[cluster.NodeID]int, error)
}

// CoordinatorConfig sets up a Coordinator.
type CoordinatorConfig struct {
	// Link configures the link Manager the coordinator owns (its OnLink is replaced).
	Link      Config
	Rooms     *room.Manager
	Directory Directory
	// Interval is how often rooms, interests and subscriptions are reconciled (default 250 ms).
	Interval time.Duration
	// Grace is how long a relayed track keeps crossing after its last subscriber here left
	// (default 3 s), so that a subscriber flapping does not restart it.
	Grace time.Duration
	// Linger is how long a link that carries no room stays open before it is closed (default
	// 30 s), so that a room emptying and refilling does not pay the set-up again.
	Linger time.Duration
	// Prewarm, if set, lists the nodes to keep a link to whether or not a room needs it, so
	// that a room spanning nodes never waits for a link's set-up (a few RTT). Such links do not
	// linger-close.
	Prewarm func() []cluster.NodeID
	// Via returns the node through which to reach a node (itself, or nil, for a direct link):
	// the relay path policy. A transit node forwards the tracks of the origins asked of it.
	Via func(to cluster.NodeID) cluster.NodeID
	// Alive, if set, says whether a node is still a live member of the cluster (its health
	// record or gossip membership). A link to a node that is not is closed at once, and none is
	// opened, rather than waiting for ICE to fail (Engine ICEFailedTimeout).
	Alive  func(cluster.NodeID) bool
	Logger *slog.Logger
}

// Coordinator makes rooms span nodes. For every room with participants here and on another
// node it keeps a link to that node and tells it so (interest); each side then sends the
// other a snapshot of its own participants and tracks in the room (state) whenever it
// changes. A node shows the other's participants as proxy participants whose tracks are
// published locally with no media; only when a proxy track has a subscriber here does the node
// ask for it (subscribe), and the origin node answers with the slot of each layer (assigned).
// After the last subscriber leaves, and Grace, the track stops crossing (unsubscribe).
//
// All state lives on the coordinator's goroutine; control messages reach it through a channel.
type Coordinator struct {
	cfg     CoordinatorConfig
	log     *slog.Logger
	links   *Manager
	inbox   chan inbound
	data    chan localData    // chat and state sent by this node's participants
	actions chan remoteAction // host actions on remote participants
	ctx     context.Context
	stop    context.CancelFunc
	done    chan struct{}
	once    sync.Once

	peers map[cluster.NodeID]*peerState // coordinator goroutine only
	// present is, per room hosted here, the other nodes the directory lists with occupants in
	// it, and when it first stopped listing one (see roomNodes). Coordinator goroutine only.
	present map[string]map[cluster.NodeID]time.Time
	// parked holds the proxies of a peer this node stopped receiving a room from while their
	// origin is alive: the relay path is moving to another peer, which will describe the same
	// participants. Coordinator goroutine only. See park and adopt (moves.go).
	parked map[parkKey]parkedProxy
	// wantedOrigins is, per room, the nodes whose participants the last reconcile wanted here.
	// Coordinator goroutine only.
	wantedOrigins map[string]map[cluster.NodeID]bool
}

type localData struct {
	room   string
	sid    room.ParticipantSID
	origin cluster.NodeID // "" for this node's participants
	msg    room.DataMessage
}

type inbound struct {
	link *Link
	msg  ControlMessage
}

// peerState is what this node shares with one peer, over one link.
type peerState struct {
	link     *Link
	wanted   map[string]map[cluster.NodeID]bool // room → origins to receive through this peer
	interest map[string]string                  // room → origins last asked for (key)
	// origins is, per room, the nodes whose participants the peer asked to receive through us
	// (besides ours): we are its transit for them.
	origins  map[string]map[cluster.NodeID]bool
	exported map[string]string        // rooms the peer asked about → last state sent
	exports  map[room.TrackID]*export // our tracks the peer subscribed to
	idle     time.Time                // since when the link carries no room; zero while it does
	// lastChange is when this node last paused flows for congestion or resumed one as a
	// probe (priority.go).
	lastChange time.Time
	imports    map[string]*importedRoom // the peer's participants, by room
}

type export struct {
	room   string
	up     *room.UpTrack
	layers map[int]*exportLayer // by layer index
}

type exportLayer struct {
	down *room.DownTrack
	mid  string
	rid  string
	flow flow // its place among the link's priorities
	told bool // the peer was told the layer is paused
}

type importedRoom struct {
	proxies map[string]*proxy // by the peer's participant sid
}

type proxy struct {
	part     *room.Participant
	origin   cluster.NodeID // the node the participant is on
	identity string
	tracks   map[room.TrackID]*proxyTrack
}

type proxyTrack struct {
	room       string
	up         *room.UpTrack
	rids       []string                // layer order; [""] for a single layer
	sources    map[string]*proxySource // by rid
	subscribed bool
	maxLayer   int // layers asked for: 0..maxLayer
	idleSince  time.Time
}

// NewCoordinator starts the coordinator and its link manager.
func NewCoordinator(cfg CoordinatorConfig) *Coordinator {
	if cfg.Interval <= 0 {
		cfg.Interval = 250 * time.Millisecond
	}
	if cfg.Grace <= 0 {
		cfg.Grace = 3 * time.Second
	}
	if cfg.Linger <= 0 {
		cfg.Linger = 30 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	ctx, stop := context.WithCancel(context.Background())
	c := &Coordinator{
		cfg: cfg, log: cfg.Logger.With("component", "relay-rooms"), inbox: make(chan inbound, 1024),
		data: make(chan localData, 1024), actions: make(chan remoteAction, 256),
		ctx: ctx, stop: stop, done: make(chan struct{}), peers: map[cluster.NodeID]*peerState{},
		present: map[string]map[cluster.NodeID]time.Time{}, parked: map[parkKey]parkedProxy{},
	}
	lc := cfg.Link
	lc.OnLink = func(l *Link) {
		l.OnControl(func(m ControlMessage) {
			select {
			case c.inbox <- inbound{link: l, msg: m}:
			case <-ctx.Done():
			}
		})
	}
	c.links = NewManager(lc)
	go c.run()
	return c
}

// DataSent is room.Config.OnData: it carries chat and room-state messages of this node's
// participants to the nodes that host the same room. Every node numbers the messages it
// delivers in its own order; across nodes the order of messages from different nodes may
// differ. It only enqueues (it runs under the room's event lock).
func (c *Coordinator) DataSent(name room.Name, from *room.Participant, msg room.DataMessage) {
	select {
	case c.data <- localData{room: string(name), sid: from.SID(), origin: cluster.NodeID(from.Origin()), msg: msg}:
	default:
		c.log.Warn("relay data queue full; a chat message did not reach other nodes", "room", name, "participant", from.SID())
	}
}

func (c *Coordinator) forwardData(d localData) {
	body := dataBody{
		SID: string(d.sid), Seq: d.msg.Seq, UnixMS: d.msg.UnixMS,
		Kind: string(d.msg.Kind), Text: d.msg.Text, Topic: d.msg.Topic, Payload: d.msg.Payload,
	}
	for id, ps := range c.peers {
		if _, hosts := ps.exported[d.room]; !hosts || isDone(ps.link) {
			continue
		}
		// Our own participants' messages go to every peer in the room; a remote participant's
		// only to peers that receive its node through us, and never back to its node.
		if d.origin == "" || (d.origin != id && ps.origins[d.room][d.origin]) {
			c.send(ps, "data", d.room, body)
		}
	}
}

// Links returns the link manager (its bus messages, stats).
func (c *Coordinator) Links() *Manager { return c.links }

// Close stops the coordinator, removes every proxy and closes every link.
func (c *Coordinator) Close() {
	c.once.Do(func() {
		c.stop()
		<-c.done
		c.links.Close()
	})
}

func (c *Coordinator) run() {
	defer close(c.done)
	tick := time.NewTicker(c.cfg.Interval)
	defer tick.Stop()
	defer func() {
		for id, ps := range c.peers {
			c.dropPeer(id, ps)
		}
		c.expireParked(time.Time{}, true)
	}()
	for {
		select {
		case <-c.ctx.Done():
			return
		case in := <-c.inbox:
			c.handle(in)
		case d := <-c.data:
			c.forwardData(d)
		case a := <-c.actions:
			c.act(a)
		case <-tick.C:
			c.reconcile()
		}
	}
}

// peer returns the state for a link's peer, resetting it when the link changed.
func (c *Coordinator) peer(id cluster.NodeID, l *Link) *peerState {
	ps := c.peers[id]
	if ps != nil && l != nil && ps.link != l {
		c.dropPeer(id, ps)
		ps = nil
	}
	if ps == nil {
		ps = &peerState{
			link: l, wanted: map[string]map[cluster.NodeID]bool{}, interest: map[string]string{},
			origins: map[string]map[cluster.NodeID]bool{}, exported: map[string]string{},
			exports: map[room.TrackID]*export{}, imports: map[string]*importedRoom{},
		}
		c.peers[id] = ps
	}
	return ps
}

// reconcile brings links, interests, state snapshots and subscriptions up to date.
func (c *Coordinator) reconcile() {
	self := c.cfg.Link.Self
	hosted := map[string]bool{} // rooms with participants here, or that we relay for a peer
	wanted := map[cluster.NodeID]map[string]map[cluster.NodeID]bool{}
	want := func(hop cluster.NodeID, name string, origin cluster.NodeID) {
		if wanted[hop] == nil {
			wanted[hop] = map[string]map[cluster.NodeID]bool{}
		}
		if wanted[hop][name] == nil {
			wanted[hop][name] = map[cluster.NodeID]bool{}
		}
		wanted[hop][name][origin] = true
	}
	now := time.Now()
	c.expireParked(now, false)
	for _, r := range c.cfg.Rooms.Rooms() {
		if !hasLocal(r) {
			continue
		}
		name := string(r.Name())
		hosted[name] = true
		for _, id := range c.roomNodes(name, now) {
			want(c.via(id), name, id)
		}
	}
	for name := range c.present {
		if !hosted[name] {
			delete(c.present, name)
		}
	}
	// As a transit node, receive from each origin a peer asked of us, directly.
	for peer, ps := range c.peers {
		for name, origins := range ps.origins {
			for o := range origins {
				if o != self && o != peer {
					hosted[name] = true
					want(o, name, o)
				}
			}
		}
	}
	// The origins each room is to receive, whichever peer through: a proxy dropped with one
	// peer is parked only when its origin is still wanted (the path moved), not when its node
	// no longer hosts the room.
	c.wantedOrigins = map[string]map[cluster.NodeID]bool{}
	for _, rooms := range wanted {
		for name, origins := range rooms {
			if c.wantedOrigins[name] == nil {
				c.wantedOrigins[name] = map[cluster.NodeID]bool{}
			}
			for o := range origins {
				c.wantedOrigins[name][o] = true
			}
		}
	}
	for id, ps := range c.peers {
		if !isDone(ps.link) && !c.alive(id) {
			c.log.Info("closing the relay link to a node that left the cluster", "peer", id)
			ps.link.Close()
		}
		if isDone(ps.link) {
			c.dropPeer(id, ps)
			delete(c.peers, id)
		}
	}

	warm := map[cluster.NodeID]bool{}
	if c.cfg.Prewarm != nil {
		for _, id := range c.cfg.Prewarm() {
			if id != self {
				warm[id] = true
				if wanted[id] == nil {
					wanted[id] = map[string]map[cluster.NodeID]bool{}
				}
			}
		}
	}
	for id, rooms := range wanted {
		if !c.alive(id) {
			delete(wanted, id)
			continue
		}
		l := c.linkTo(id)
		if l == nil {
			continue
		}
		ps := c.peer(id, l)
		ps.wanted = rooms
	}
	for id, ps := range c.peers {
		if wanted[id] == nil {
			ps.wanted = map[string]map[cluster.NodeID]bool{}
		}
		c.syncPeer(id, ps, hosted)
		c.prioritize(ps, now)
		if !warm[id] {
			c.closeIfIdle(id, ps, now)
		}
	}
}

// directoryGrace is how long a node stays a room's host once the directory has stopped listing
// it. The directory is the shared store (Redis): after a restart that emptied it, the nodes
// write their sessions back within a heartbeat (a third of the health TTL), and meanwhile the
// room goes on across the links as it was; while the directory cannot be read at all, nothing
// changes. A node whose participants really left has said so in its state snapshots already;
// a node that died is dropped through Alive and its link.
const directoryGrace = 5 * time.Second

// roomNodes returns the other nodes hosting room: those the directory lists, and those it
// stopped listing less than directoryGrace of successful reads ago.
func (c *Coordinator) roomNodes(name string, now time.Time) []cluster.NodeID {
	ctx, cancel := context.WithTimeout(c.ctx, time.Second)
	nodes, err := c.cfg.Directory.RoomNodes(ctx, name)
	cancel()
	known := c.present[name] // node → when a successful read first lacked it (zero: listed)
	if known == nil {
		known = map[cluster.NodeID]time.Time{}
		c.present[name] = known
	}
	if err == nil {
		for id, missing := range known {
			switch {
			case nodes[id] > 0:
				known[id] = time.Time{}
			case missing.IsZero():
				known[id] = now
			case now.Sub(missing) > directoryGrace:
				delete(known, id)
			}
		}
		for id, n := range nodes {
			if _, ok := known[id]; !ok && id != c.cfg.Link.Self && n > 0 {
				known[id] = time.Time{}
			}
		}
	}
	out := make([]cluster.NodeID, 0, len(known))
	for id := range known {
		out = append(out, id)
	}
	return out
}

// closeIfIdle closes a link that has carried no room, either way, for the linger time.
func (c *Coordinator) closeIfIdle(id cluster.NodeID, ps *peerState, now time.Time) {
	if len(ps.wanted) > 0 || len(ps.interest) > 0 || len(ps.exported) > 0 || len(ps.imports) > 0 || len(ps.exports) > 0 {
		ps.idle = time.Time{}
		return
	}
	if ps.idle.IsZero() {
		ps.idle = now
		return
	}
	if now.Sub(ps.idle) >= c.cfg.Linger {
		c.log.Info("closing a relay link that carries no room", "peer", id)
		ps.link.Close()
		delete(c.peers, id)
	}
}

// alive reports whether a node is a live member, as far as Config.Alive knows.
func (c *Coordinator) alive(id cluster.NodeID) bool {
	return c.cfg.Alive == nil || c.cfg.Alive(id)
}

// via returns the next hop toward a node.
func (c *Coordinator) via(to cluster.NodeID) cluster.NodeID {
	if c.cfg.Via != nil {
		if hop := c.cfg.Via(to); hop != "" && hop != c.cfg.Link.Self {
			return hop
		}
	}
	return to
}

// originKey lists a set of origins, without the peer itself, in a stable order.
func originKey(origins map[cluster.NodeID]bool, peer cluster.NodeID) []string {
	var out []string
	for o := range origins {
		if o != peer {
			out = append(out, string(o))
		}
	}
	sort.Strings(out)
	return out
}

// linkTo returns the open link to a peer, starting one if needed without waiting long.
func (c *Coordinator) linkTo(id cluster.NodeID) *Link {
	if ps := c.peers[id]; ps != nil && !isDone(ps.link) {
		return ps.link
	}
	ctx, cancel := context.WithTimeout(c.ctx, 200*time.Millisecond)
	defer cancel()
	l, err := c.links.Link(ctx, id)
	if err != nil {
		return nil // the attempt goes on; the next tick takes the link
	}
	return l
}

func (c *Coordinator) syncPeer(id cluster.NodeID, ps *peerState, hosted map[string]bool) {
	for name, origins := range ps.wanted {
		through := originKey(origins, id)
		key := "[" + strings.Join(through, ",") + "]"
		if sent, ok := ps.interest[name]; !ok || sent != key {
			if c.send(ps, "interest", name, interestBody{Origins: through}) {
				ps.interest[name] = key
			}
		}
	}
	for name := range ps.interest {
		if ps.wanted[name] == nil {
			c.send(ps, "uninterest", name, nil)
			delete(ps.interest, name)
			c.dropImports(ps, name)
		}
	}
	for name, last := range ps.exported {
		if !hosted[name] {
			// We no longer host it: an empty snapshot removes our proxies there.
			if last != "{}" {
				c.send(ps, "state", name, stateBody{})
				ps.exported[name] = "{}"
			}
			continue
		}
		st := c.snapshot(name, id, ps.origins[name])
		b, _ := json.Marshal(st)
		if string(b) != last && c.send(ps, "state", name, st) {
			ps.exported[name] = string(b)
		}
	}
	for id, ex := range ps.exports {
		if r := c.cfg.Rooms.Room(room.Name(ex.room)); r == nil || r.Track(id) == nil {
			c.unexport(ps, id)
		}
	}
	now := time.Now()
	for name, ir := range ps.imports {
		for _, px := range ir.proxies {
			for tid, pt := range px.tracks {
				c.syncSubscription(ps, name, tid, pt, now)
			}
		}
	}
}

// syncSubscription subscribes to a proxy track while it has subscribers here, asking for the
// layers up to the highest one they want.
func (c *Coordinator) syncSubscription(ps *peerState, name string, id room.TrackID, pt *proxyTrack, now time.Time) {
	if want := pt.up.MaxWantedLayer(); want >= 0 {
		pt.idleSince = time.Time{}
		if (!pt.subscribed || want != pt.maxLayer) && c.send(ps, "subscribe", name, subscribeBody{Track: string(id), MaxLayer: want}) {
			pt.subscribed, pt.maxLayer = true, want
			for i, rid := range pt.rids {
				if i > want {
					pt.sources[rid].assign(nil) // the origin stops sending it
				}
			}
		}
		return
	}
	if !pt.subscribed {
		return
	}
	if pt.idleSince.IsZero() {
		pt.idleSince = now
		return
	}
	if now.Sub(pt.idleSince) >= c.cfg.Grace && c.send(ps, "unsubscribe", name, subscribeBody{Track: string(id)}) {
		pt.subscribed = false
		for _, s := range pt.sources {
			s.assign(nil)
		}
	}
}

func (c *Coordinator) send(ps *peerState, typ, name string, body any) bool {
	msg := ControlMessage{Type: typ, Room: name}
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return false
		}
		msg.Body = b
	}
	ctx, cancel := context.WithTimeout(c.ctx, time.Second)
	defer cancel()
	if err := ps.link.Send(ctx, msg); err != nil {
		c.log.Debug("control message not sent", "type", typ, "peer", ps.link.Peer(), "err", err)
		return false
	}
	return true
}

// handle processes one control message from a peer.
func (c *Coordinator) handle(in inbound) {
	if isDone(in.link) {
		return
	}
	ps := c.peer(in.link.Peer(), in.link)
	m := in.msg
	switch m.Type {
	case "interest":
		var ib interestBody
		_ = json.Unmarshal(m.Body, &ib)
		origins := map[cluster.NodeID]bool{}
		for _, o := range ib.Origins {
			origins[cluster.NodeID(o)] = true
		}
		ps.origins[m.Room] = origins
		ps.exported[m.Room] = "" // (re)send the snapshot: its scope may have changed
	case "uninterest":
		delete(ps.exported, m.Room)
		delete(ps.origins, m.Room)
		for id, ex := range ps.exports {
			if ex.room == m.Room {
				c.unexport(ps, id)
			}
		}
	case "state":
		var st stateBody
		if json.Unmarshal(m.Body, &st) == nil {
			c.applyState(ps, m.Room, st)
		}
	case "subscribe":
		var sb subscribeBody
		if json.Unmarshal(m.Body, &sb) == nil {
			c.export(ps, m.Room, room.TrackID(sb.Track), sb.MaxLayer)
		}
	case "unsubscribe":
		var sb subscribeBody
		if json.Unmarshal(m.Body, &sb) == nil {
			c.unexport(ps, room.TrackID(sb.Track))
		}
	case "kick":
		var kb kickBody
		if json.Unmarshal(m.Body, &kb) == nil {
			c.onKick(m.Room, kb)
		}
	case "mute":
		var mb muteBody
		if json.Unmarshal(m.Body, &mb) == nil {
			c.onMute(m.Room, mb)
		}
	case "data":
		var db dataBody
		if json.Unmarshal(m.Body, &db) == nil {
			c.deliverData(ps, m.Room, db)
		}
	case "assigned":
		var ab assignedBody
		if json.Unmarshal(m.Body, &ab) == nil {
			c.assigned(ps, m.Room, ab)
		}
	case "paused":
		var pb pausedBody
		if json.Unmarshal(m.Body, &pb) == nil {
			c.layerPaused(ps, m.Room, pb)
		}
	default:
		c.log.Debug("unknown control message", "type", m.Type)
	}
}

// export sends layers 0..maxLayer of one of our tracks to the peer, one slot per layer, and
// stops sending the layers above.
func (c *Coordinator) export(ps *peerState, name string, id room.TrackID, maxLayer int) {
	r := c.cfg.Rooms.Room(room.Name(name))
	if r == nil {
		return
	}
	up := r.Track(id)
	if up == nil {
		return
	}
	if origin := trackOrigin(r, up); origin != "" && (origin == string(ps.link.Peer()) || !ps.origins[name][cluster.NodeID(origin)]) {
		return // a relayed track goes only where it was asked for through us, never back
	}
	rids := up.Info().RIDs
	if len(rids) == 0 {
		rids = []string{""}
	}
	ex := ps.exports[id]
	if ex == nil {
		ex = &export{room: name, up: up, layers: map[int]*exportLayer{}}
		ps.exports[id] = ex
	}
	for i, rid := range rids {
		el, sending := ex.layers[i]
		switch {
		case i > maxLayer && sending:
			ps.link.Detach(el.mid)
			el.down.Close()
			delete(ex.layers, i)
		case i <= maxLayer && !sending:
			d, err := up.Subscribe(room.ParticipantSID("relay:" + string(ps.link.Peer())))
			if err != nil {
				return
			}
			d.SetMaxLayer(room.Quality(i))
			d.SetTargetLayer(i)
			mid, err := ps.link.Attach(d)
			if err != nil {
				d.Close()
				c.log.Warn("cannot relay a track layer", "room", name, "participant", up.Info().Participant, "track", id, "rid", rid, "err", err)
				continue
			}
			ex.layers[i] = &exportLayer{down: d, mid: mid, rid: rid, flow: flow{class: classOf(up.Info()), layer: i, track: id}}
			c.send(ps, "assigned", name, assignedBody{Track: string(id), RID: rid, MID: mid})
		}
	}
}

func (c *Coordinator) unexport(ps *peerState, id room.TrackID) {
	ex := ps.exports[id]
	if ex == nil {
		return
	}
	delete(ps.exports, id)
	for _, el := range ex.layers {
		ps.link.Detach(el.mid)
		el.down.Close()
	}
}

// assigned starts reading one layer of a proxy track from its slot.
func (c *Coordinator) assigned(ps *peerState, name string, ab assignedBody) {
	ir := ps.imports[name]
	if ir == nil {
		return
	}
	for _, px := range ir.proxies {
		if pt := px.tracks[room.TrackID(ab.Track)]; pt != nil {
			if s := pt.sources[ab.RID]; s != nil {
				if i := slices.Index(pt.rids, ab.RID); i >= 0 {
					pt.up.SetLayerSuspended(i, false) // a layer starts crossing unpaused
				}
				s.assign(func() (*slotSource, error) {
					src, err := ps.link.Source(ab.MID)
					if err != nil {
						return nil, err
					}
					return src.(*slotSource), nil
				})
			}
			return
		}
	}
}

// isDone reports whether a link has closed.
func isDone(l *Link) bool {
	if l == nil {
		return true
	}
	select {
	case <-l.Done():
		return true
	default:
		return false
	}
}

// hasLocal reports whether a room has participants of this node.
func hasLocal(r *room.Room) bool {
	for _, p := range r.Participants() {
		if p.Origin() == "" {
			return true
		}
	}
	return false
}

// trackOrigin returns the node a track's publisher is on, "" for this node.
func trackOrigin(r *room.Room, t *room.UpTrack) string {
	for _, p := range r.Participants() {
		if p.SID() == t.Info().Participant {
			return p.Origin()
		}
	}
	return ""
}

// dropPeer removes everything shared with a peer whose link went away.
func (c *Coordinator) dropPeer(_ cluster.NodeID, ps *peerState) {
	for name := range ps.imports {
		c.dropImports(ps, name)
	}
	for id := range ps.exports {
		c.unexport(ps, id)
	}
}

func (c *Coordinator) dropImports(ps *peerState, name string) {
	ir := ps.imports[name]
	if ir == nil {
		return
	}
	delete(ps.imports, name)
	for _, px := range ir.proxies {
		c.park(name, px)
	}
}

func (c *Coordinator) removeProxy(px *proxy) {
	for _, pt := range px.tracks {
		for _, s := range pt.sources {
			_ = s.Close()
		}
	}
	px.part.Leave(room.ReasonLeft)
}

func proxySession(peer cluster.NodeID, sid string) room.SessionID {
	return room.SessionID("relay:" + string(peer) + ":" + sid)
}
