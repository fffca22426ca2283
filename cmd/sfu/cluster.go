package main

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cascade-sfu/cascade/pkg/cluster"
	"github.com/cascade-sfu/cascade/pkg/relay"
	"github.com/cascade-sfu/cascade/pkg/room"
	"github.com/cascade-sfu/cascade/pkg/rtc"
	"github.com/cascade-sfu/cascade/pkg/signal"
)

// clusterParts are the node's cluster pieces: room state and registry (in memory, or in Redis
// with --redis), gossip membership (with --serf-bind) and the agent that keeps the node's
// health record fresh and cleans up after dead nodes.
type clusterParts struct {
	rdb        *redis.Client // nil without --redis
	store      cluster.RoomStore
	order      cluster.MessageOrder // rooms' data message order, cluster-wide with Redis
	registry   cluster.Registry
	membership *cluster.Membership // nil without --serf-bind
	agent      *cluster.Agent
	bus        cluster.Bus        // nil without Redis
	relays     *relay.Coordinator // nil without Redis
	auto       *autoPath          // the --relay-via auto policy; nil with another policy
	nodes      *nodeCache         // the registry's records, read in the background; nil without Redis
	// serf is membership for the relay coordinator's goroutine, which starts before gossip.
	serf      atomic.Pointer[cluster.Membership]
	agentSelf func() cluster.Node
	draining  atomic.Bool
	// rpc and admin serve the admin API across nodes (admin.go); rpcRef lets the bus, which
	// starts first, reach rpc once it exists.
	rpc    *cluster.RPC
	admin  *cluster.Admin
	rpcRef atomic.Pointer[cluster.RPC]
}

// loadScale is the participant count that makes a node's coarse load figure 1.
const loadScale = 500

func startCluster(cfg Config, log *slog.Logger, publicURL string, rooms *room.Manager, engine *rtc.Engine, hooks ...redis.Hook) (*clusterParts, error) {
	c := &clusterParts{}
	if cfg.Redis != "" {
		opts, err := redis.ParseURL(cfg.Redis)
		if err != nil {
			return nil, fmt.Errorf("redis URL: %w", err)
		}
		c.rdb = redis.NewClient(opts)
		for _, h := range hooks { // before any command: AddHook is not safe while commands run
			c.rdb.AddHook(h)
		}
		c.store = cluster.NewRedisStore(c.rdb, cluster.RedisStoreOptions{Prefix: cfg.RedisPrefix, Logger: log})
		c.order = cluster.NewRedisOrder(c.rdb, cfg.RedisPrefix)
		c.registry = cluster.NewRedisRegistry(c.rdb, cfg.RedisPrefix)
	} else {
		c.store = cluster.NewMemoryStore()
		c.order = cluster.NewMemoryOrder()
		c.registry = cluster.NewMemoryRegistry()
	}
	self := func() cluster.Node {
		n := cluster.Node{
			ID: cluster.NodeID(cfg.NodeID), Region: cfg.Region, Lat: cfg.Lat, Lon: cfg.Lon, URL: publicURL,
			State: cluster.StateActive,
		}
		if c.draining.Load() {
			n.State = cluster.StateDraining
		}
		for _, r := range rooms.Rooms() {
			n.Rooms++
			for _, p := range r.Participants() {
				if p.Origin() == "" { // remote participants are counted by their own node
					n.Participants++
				}
			}
		}
		n.Load = min(1, float64(n.Participants)/loadScale)
		if c.relays != nil { // set before anything calls self
			n.LinkRTT = c.relays.Links().RTTs()
			n.LinkQuality = c.relays.Links().Qualities()
			n.Links = linkSummaries(c.relays.Links().Links())
		}
		return n
	}
	c.agentSelf = self
	if c.rdb != nil {
		// Offers for relay links may arrive as soon as the bus listens: route them through a
		// pointer that is set once the coordinator exists.
		var relays atomic.Pointer[relay.Coordinator]
		bus, err := cluster.NewRedisBus(context.Background(), c.rdb, cfg.RedisPrefix, cluster.BusConfig{
			Self: cluster.NodeID(cfg.NodeID), Secret: busSecret(cfg.APISecret), Logger: log,
			IsMember: func(ctx context.Context, id cluster.NodeID) bool {
				nodes, err := c.registry.Nodes(ctx)
				return err == nil && slices.ContainsFunc(nodes, func(n cluster.Node) bool { return n.ID == id })
			},
			Handler: func(m cluster.Message) {
				if r := relays.Load(); r != nil && r.Links().HandleBusMessage(m) {
					return
				}
				if r := c.rpcRef.Load(); r != nil && r.HandleMessage(m) {
					return
				}
				handleBus(m, rooms, log)
			},
		})
		if err != nil {
			c.close(context.Background())
			return nil, fmt.Errorf("cluster bus (is Redis reachable?): %w", err)
		}
		c.bus = bus
		c.nodes = startNodeCache(c.registry, cluster.NodeID(cfg.NodeID), relayPathRefresh, cfg.HealthTTL/3+relayPathRefresh, log.With("component", "node-cache"))
		own := func() (map[cluster.NodeID]time.Duration, map[cluster.NodeID]cluster.LinkQuality) {
			if r := relays.Load(); r != nil {
				return r.Links().RTTs(), r.Links().Qualities()
			}
			return nil, nil
		}
		via, err := c.relayPolicy(cfg, own, log)
		if err != nil {
			c.close(context.Background())
			return nil, err
		}
		c.relays = relay.NewCoordinator(relay.CoordinatorConfig{
			Link:  relay.Config{Self: cluster.NodeID(cfg.NodeID), Engine: engine, Bus: bus, Logger: log},
			Rooms: rooms, Directory: c.store, Via: via, Linger: cfg.RelayLinger, Logger: log,
			Prewarm: c.prewarm(cfg.RelayPrewarm), Alive: c.alive,
		})
		relays.Store(c.relays)
	}
	if cfg.SerfBind != "" {
		var key []byte
		if cfg.SerfKey != "" {
			k, err := base64.StdEncoding.DecodeString(cfg.SerfKey)
			if err != nil {
				c.close(context.Background())
				return nil, fmt.Errorf("serf key: %w", err)
			}
			key = k
		}
		m, err := cluster.NewMembership(cluster.MembershipConfig{
			Self: self(), BindAddr: cfg.SerfBind, SecretKey: key, Join: withDefaultPort(cfg.Join, cfg.SerfBind), Logger: log,
			Fast: isLoopback(cfg.SerfBind),
		})
		if err != nil {
			c.close(context.Background())
			return nil, err
		}
		c.membership = m
		c.serf.Store(m)
		if c.auto != nil {
			c.auto.serf.Store(m)
		}
	}
	ttl := cfg.HealthTTL
	c.agent = cluster.StartAgent(cluster.AgentConfig{
		Self: self, Registry: c.registry, Store: c.store, TTL: ttl, Heartbeat: ttl / 3, ReapInterval: ttl / 5,
		Logger: log,
		Gossip: func(n cluster.Node) {
			if c.membership != nil {
				_ = c.membership.Update(func(s *cluster.Node) { *s = n })
			}
		},
		Lost: func() error {
			if c.nodes != nil { // the registry lost us, so it lost the others too for a moment
				c.nodes.Suspect()
			}
			return reassert(c.store, rooms, cluster.NodeID(cfg.NodeID), log)
		},
	})
	return c, nil
}

// prewarm returns the nodes to keep relay links to whether or not a room needs one: every
// live node when --relay-prewarm is set, and those whose direct path the path policy has
// routed around (so that the link's probes tell when it is back).
func (c *clusterParts) prewarm(on bool) func() []cluster.NodeID {
	return func() []cluster.NodeID {
		var ids []cluster.NodeID
		if c.auto != nil {
			ids = c.auto.Warm()
		}
		if !on {
			return ids
		}
		for _, n := range c.nodes.Nodes() {
			if n.State == cluster.StateActive {
				ids = append(ids, n.ID)
			}
		}
		return ids
	}
}

// alive is the relay coordinator's view of membership: a node is not alive once its health
// record has gone from the registry, or gossip has declared it failed or departed. Without a
// fresh registry read (Redis unreachable) nothing is declared gone.
func (c *clusterParts) alive(id cluster.NodeID) bool {
	if c.nodes.Gone(id) {
		return false
	}
	m := c.serf.Load()
	return m == nil || !m.Gone(id)
}

// relayPathRefresh is how often the node cache re-reads the node registry.
const relayPathRefresh = 2 * time.Second

// relayPolicy turns --relay-via into the coordinator's next-hop function (nil: direct). own
// returns this node's measured link RTTs and probe figures, for the auto policy.
func (c *clusterParts) relayPolicy(cfg Config, own ownLinks, log *slog.Logger) (func(cluster.NodeID) cluster.NodeID, error) {
	switch cfg.RelayVia {
	case "", "auto":
		c.auto = newAutoPath(cluster.NodeID(cfg.NodeID), c.nodes, own, log.With("component", "relay-paths"))
		c.auto.failoverOnly = cfg.RelayVia == "" // direct, except around a cut link
		return c.auto.Next, nil
	}
	pairs, err := parseRelayVia(cfg.RelayVia)
	if err != nil {
		return nil, err
	}
	return func(to cluster.NodeID) cluster.NodeID { return cluster.NodeID(pairs[string(to)]) }, nil
}

// reassert writes this node's live sessions back into the room state, after Redis lost them.
// Capacity is not checked: these participants are already in their rooms.
func reassert(store cluster.RoomStore, rooms *room.Manager, node cluster.NodeID, log *slog.Logger) error {
	n, failed := 0, 0
	for _, r := range rooms.Rooms() {
		for _, p := range r.Participants() {
			if p.Origin() != "" {
				continue // a relay proxy: its own node re-asserts it
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			_, err := store.Join(ctx, cluster.Occupant{
				Room: string(r.Name()), Identity: string(p.Identity()), SessionID: string(p.Session()),
				Node: node, Host: p.Permissions().Admin,
			}, 0)
			cancel()
			if err != nil {
				log.Warn("cannot re-assert a session", "room", r.Name(), "participant", p.SID(), "identity", p.Identity(), "err", err)
				failed++
				continue
			}
			n++
		}
	}
	log.Info("re-asserted live sessions in the room state", "sessions", n, "failed", failed)
	if failed > 0 {
		return fmt.Errorf("%d of %d sessions not re-asserted", failed, n+failed)
	}
	return nil
}

// drain marks the node draining in the registry and in gossip at once.
func (c *clusterParts) drain() {
	c.draining.Store(true)
	c.agent.Refresh()
	if c.membership != nil {
		_ = c.membership.Update(func(n *cluster.Node) { n.State = cluster.StateDraining })
	}
}

// close deregisters the node, leaves the gossip cluster and closes Redis.
func (c *clusterParts) close(ctx context.Context) error {
	var errs []error
	if c.agent != nil {
		errs = append(errs, c.agent.Close(ctx))
	}
	if c.membership != nil {
		errs = append(errs, c.membership.Leave(), c.membership.Close())
	}
	if c.relays != nil {
		c.relays.Close()
	}
	if c.nodes != nil {
		c.nodes.Close()
	}
	if c.rpc != nil {
		c.rpc.Close()
	}
	if c.bus != nil {
		errs = append(errs, c.bus.Close())
	}
	if c.store != nil {
		errs = append(errs, c.store.Close())
	}
	if c.rdb != nil {
		errs = append(errs, c.rdb.Close())
	}
	return errors.Join(errs...)
}

// remoteActions passes hosts' actions on remote participants to the relay, once it exists.
type remoteActions struct {
	relays *atomic.Pointer[relay.Coordinator]
}

func (r remoteActions) Kick(name room.Name, target *room.Participant) {
	if c := r.relays.Load(); c != nil {
		c.Kick(name, target)
	}
}

func (r remoteActions) Mute(name room.Name, owner *room.Participant, track room.TrackID, muted bool) {
	if c := r.relays.Load(); c != nil {
		c.Mute(name, owner, track, muted)
	}
}

// roomOrder is the rooms' Sequencer: the cluster's message order, once the cluster parts exist
// (no session can send a message before).
type roomOrder struct {
	order *atomic.Pointer[cluster.MessageOrder]
}

func (r roomOrder) get() (cluster.MessageOrder, error) {
	if o := r.order.Load(); o != nil {
		return *o, nil
	}
	return nil, cluster.ErrUnavailable
}

func (r roomOrder) Next(ctx context.Context, name room.Name) (uint64, error) {
	o, err := r.get()
	if err != nil {
		return 0, err
	}
	return o.Next(ctx, string(name))
}

func (r roomOrder) Current(ctx context.Context, name room.Name) (uint64, error) {
	o, err := r.get()
	if err != nil {
		return 0, err
	}
	return o.Current(ctx, string(name))
}

// busSecret derives the key that signs node-to-node messages from the cluster's API secret.
func busSecret(apiSecret string) []byte {
	sum := sha256.Sum256([]byte("cascade bus v1\x00" + apiSecret))
	return sum[:]
}

// kickBody asks a node to end one of its sessions.
type kickBody struct {
	Room    string `json:"room"`
	Session string `json:"session"`
	Reason  string `json:"reason"`
}

// handleBus acts on a verified control message from another node.
func handleBus(m cluster.Message, rooms *room.Manager, log *slog.Logger) {
	switch m.Type {
	case "kick":
		var k kickBody
		if json.Unmarshal(m.Body, &k) != nil {
			return
		}
		if rooms.EndSession(room.Name(k.Room), room.SessionID(k.Session), room.LeaveReason(k.Reason)) {
			log.Info("session ended at another node's request", "from", m.From, "room", k.Room, "session", k.Session, "reason", k.Reason)
		}
	default:
		log.Debug("unknown bus message", "type", m.Type, "from", m.From)
	}
}

// occupancy admits sessions through the cluster's room state (signal.Occupancy).
type occupancy struct {
	store    cluster.RoomStore
	bus      cluster.Bus
	node     cluster.NodeID
	capacity int
	log      *slog.Logger
}

func (o occupancy) Join(ctx context.Context, roomName, identity, session string, host bool) error {
	replaced, err := o.store.Join(ctx, cluster.Occupant{
		Room: roomName, Identity: identity, SessionID: session, Node: o.node, Host: host,
	}, roomCapacity(ctx, o.store, roomName, o.capacity))
	switch {
	case errors.Is(err, cluster.ErrRoomFull):
		return fmt.Errorf("%w (counted across the cluster)", room.ErrRoomFull)
	case err != nil:
		o.log.Warn("room state unavailable", "room", roomName, "err", err)
		return fmt.Errorf("%w: %v", signal.ErrOccupancyUnavailable, err)
	}
	if replaced != nil && replaced.Node != o.node && o.bus != nil {
		// The identity's previous session is on another node: ask it to end that session.
		body := kickBody{Room: roomName, Session: replaced.SessionID, Reason: string(room.ReasonReplaced)}
		if err := o.bus.Send(ctx, replaced.Node, "kick", body); err != nil {
			o.log.Warn("cannot ask the previous node to end the replaced session", "room", roomName, "identity", identity, "peer", replaced.Node, "err", err)
		}
	}
	return nil
}

func (o occupancy) Leave(ctx context.Context, roomName, identity, session string) {
	if _, err := o.store.Leave(ctx, roomName, identity, session); err != nil {
		o.log.Warn("cannot record a leave; the dead-node reaper or the next join will fix it", "room", roomName, "identity", identity, "err", err)
	}
}

// withDefaultPort gives join addresses without a port the port of our own gossip address.
func withDefaultPort(addrs []string, bind string) []string {
	_, port, _ := net.SplitHostPort(bind)
	out := make([]string, 0, len(addrs))
	for _, a := range addrs {
		if _, _, err := net.SplitHostPort(a); err != nil {
			a = net.JoinHostPort(a, port)
		}
		out = append(out, a)
	}
	return out
}

// isLoopback reports whether a gossip address is on the loopback interface: a cluster on one
// machine (tests, a laptop) uses short gossip timers.
func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
