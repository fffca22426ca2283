package cluster

import (
	"fmt"
	"log/slog"
	"maps"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/hashicorp/serf/serf"
)

// MembershipConfig sets up gossip membership.
type MembershipConfig struct {
	Self Node
	// BindAddr is the gossip address, host:port (TCP and UDP).
	BindAddr string
	// AdvertiseAddr, if set, is the address other members use to reach this one.
	AdvertiseAddr string
	// SecretKey, if set (16, 24 or 32 bytes), encrypts gossip.
	SecretKey []byte
	// Fast shortens gossip timers for tests on one machine.
	Fast   bool
	Logger *slog.Logger
	// OnChange is called, from the event goroutine, after membership changes settle.
	OnChange func()
	// Join lists gossip addresses to join. They are retried every RetryJoin (default 2 s)
	// while this node sees no other member, so nodes may start in any order.
	Join      []string
	RetryJoin time.Duration
}

// Membership is this node's view of the Serf cluster.
type Membership struct {
	serf     *serf.Serf
	events   chan serf.Event
	done     chan struct{}
	log      *slog.Logger
	onChange func()

	join      []string
	retryJoin time.Duration

	mu   sync.Mutex // guards self
	self Node
	// tagsMu serialises Update: serf.SetTags is not safe for concurrent use.
	tagsMu sync.Mutex

	closeOnce sync.Once
}

// NewMembership starts gossip. Join connects to existing members.
func NewMembership(cfg MembershipConfig) (*Membership, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	host, portStr, err := net.SplitHostPort(cfg.BindAddr)
	if err != nil {
		return nil, fmt.Errorf("serf bind address %q: %w", cfg.BindAddr, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return nil, fmt.Errorf("serf bind port %q: %w", portStr, err)
	}
	sc := serf.DefaultConfig()
	sc.NodeName = string(cfg.Self.ID)
	sc.Tags = cfg.Self.tags()
	ml := memberlist.DefaultLANConfig()
	if cfg.Fast {
		ml = memberlist.DefaultLocalConfig()
		ml.ProbeInterval = 200 * time.Millisecond
		ml.ProbeTimeout = 100 * time.Millisecond
		ml.GossipInterval = 50 * time.Millisecond
		ml.SuspicionMult = 2
		sc.ReapInterval = time.Second
		sc.ReconnectTimeout = 5 * time.Second
		sc.TombstoneTimeout = 5 * time.Second
	}
	ml.BindAddr, ml.BindPort = host, port
	if cfg.AdvertiseAddr != "" {
		ah, ap, err := net.SplitHostPort(cfg.AdvertiseAddr)
		if err != nil {
			return nil, fmt.Errorf("serf advertise address %q: %w", cfg.AdvertiseAddr, err)
		}
		ml.AdvertiseAddr = ah
		ml.AdvertisePort, _ = strconv.Atoi(ap)
	}
	ml.SecretKey = cfg.SecretKey
	logger := NewLibLogger(cfg.Logger.With("component", "serf"))
	ml.Logger = logger
	ml.LogOutput = nil
	sc.MemberlistConfig = ml
	sc.Logger = logger
	sc.LogOutput = nil
	sc.CoalescePeriod = 300 * time.Millisecond
	sc.QuiescentPeriod = 100 * time.Millisecond
	events := make(chan serf.Event, 256)
	sc.EventCh = events
	s, err := serf.Create(sc)
	if err != nil {
		return nil, fmt.Errorf("start serf: %w", err)
	}
	m := &Membership{
		serf: s, events: events, done: make(chan struct{}), log: cfg.Logger.With("component", "membership"),
		onChange: cfg.OnChange, self: cfg.Self, join: cfg.Join, retryJoin: cfg.RetryJoin,
	}
	if m.retryJoin <= 0 {
		m.retryJoin = 2 * time.Second
	}
	m.tryJoin()
	go m.drain()
	return m, nil
}

// drain consumes Serf's events so that Serf never blocks. Member events are already coalesced
// by Serf (CoalescePeriod); each batch results in one OnChange.
func (m *Membership) drain() {
	defer close(m.done)
	retry := time.NewTicker(m.retryJoin)
	defer retry.Stop()
	for {
		select {
		case <-retry.C:
			if m.serf.NumNodes() <= 1 {
				m.tryJoin()
			}
		case ev := <-m.events:
			if me, ok := ev.(serf.MemberEvent); ok {
				for _, mem := range me.Members {
					m.log.Debug("member event", "event", me.EventType().String(), "member", mem.Name)
				}
				if m.onChange != nil {
					m.onChange()
				}
			}
		case <-m.serf.ShutdownCh():
			return
		}
	}
}

// tryJoin contacts the configured members; failures are retried by the event goroutine.
func (m *Membership) tryJoin() {
	if len(m.join) == 0 {
		return
	}
	if n, err := m.serf.Join(m.join, true); err != nil {
		m.log.Debug("cannot join the cluster yet", "addrs", m.join, "err", err)
	} else {
		m.log.Info("joined the cluster", "contacted", n)
	}
}

// Join contacts existing members (host:port each). It returns how many were reached.
func (m *Membership) Join(addrs []string) (int, error) {
	if len(addrs) == 0 {
		return 0, nil
	}
	return m.serf.Join(addrs, true)
}

// Self returns this node's current record.
func (m *Membership) Self() Node {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.self
}

// Update changes this node's tags (state, load, counts) and gossips them if they changed.
func (m *Membership) Update(f func(*Node)) error {
	m.tagsMu.Lock()
	defer m.tagsMu.Unlock()
	m.mu.Lock()
	before := m.self.tags()
	f(&m.self)
	tags := m.self.tags()
	m.mu.Unlock()
	if maps.Equal(before, tags) {
		return nil
	}
	return m.serf.SetTags(tags)
}

// Members returns the alive members, each with the estimated RTT from this node.
func (m *Membership) Members() []Member {
	var out []Member
	for _, mem := range m.serf.Members() {
		if mem.Status != serf.StatusAlive {
			continue
		}
		n, err := nodeFromTags(mem.Name, mem.Tags)
		if err != nil {
			continue
		}
		rtt, ok := m.RTT(n.ID)
		out = append(out, Member{Node: n, Addr: net.JoinHostPort(mem.Addr.String(), strconv.Itoa(int(mem.Port))), RTT: rtt, HasRTT: ok})
	}
	return out
}

// Gone reports whether gossip has declared a node failed or departed (it knew the node, and it
// is no longer alive). A node gossip never heard of is not gone.
func (m *Membership) Gone(id NodeID) bool {
	for _, mem := range m.serf.Members() {
		if mem.Name == string(id) {
			return mem.Status == serf.StatusFailed || mem.Status == serf.StatusLeft || mem.Status == serf.StatusLeaving
		}
	}
	return false
}

// Member is an alive Serf member.
type Member struct {
	Node
	Addr   string        // gossip address
	RTT    time.Duration // estimated from network coordinates
	HasRTT bool
}

// RTT estimates the round-trip time to another node from Serf's network coordinates.
func (m *Membership) RTT(id NodeID) (time.Duration, bool) {
	if string(id) == m.serf.LocalMember().Name {
		return 0, true
	}
	mine, err := m.serf.GetCoordinate()
	if err != nil {
		return 0, false
	}
	theirs, ok := m.serf.GetCachedCoordinate(string(id))
	if !ok || theirs == nil {
		return 0, false
	}
	return mine.DistanceTo(theirs), true
}

// RTTBetween estimates the round-trip time between two nodes from their gossip coordinates.
func (m *Membership) RTTBetween(a, b NodeID) (time.Duration, bool) {
	local := NodeID(m.serf.LocalMember().Name)
	if a == local {
		return m.RTT(b)
	}
	if b == local {
		return m.RTT(a)
	}
	ca, ok1 := m.serf.GetCachedCoordinate(string(a))
	cb, ok2 := m.serf.GetCachedCoordinate(string(b))
	if !ok1 || !ok2 || ca == nil || cb == nil {
		return 0, false
	}
	return ca.DistanceTo(cb), true
}

// Leave tells the cluster this node is leaving (graceful).
func (m *Membership) Leave() error { return m.serf.Leave() }

// Close stops gossip and waits for the event goroutine. Safe to call twice.
func (m *Membership) Close() error {
	var err error
	m.closeOnce.Do(func() {
		err = m.serf.Shutdown()
		<-m.done
	})
	return err
}
