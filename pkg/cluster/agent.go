package cluster

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// NodeRemover removes a dead node's occupants (RoomStore does).
type NodeRemover interface {
	RemoveNode(ctx context.Context, node NodeID) (map[string][]Occupant, error)
}

// AgentConfig sets up an Agent.
type AgentConfig struct {
	// Self returns this node's current record (state, load and counts filled in).
	Self     func() Node
	Registry Registry
	Store    NodeRemover
	// TTL of the health record (default 10 s); Heartbeat refreshes it (default 3 s).
	TTL, Heartbeat time.Duration
	// ReapInterval is how often expired nodes are looked for (default 2 s).
	ReapInterval time.Duration
	// OnNodeDead is told what was removed after a node's record expired. Called from the agent
	// goroutine.
	OnNodeDead func(id NodeID, removed map[string][]Occupant)
	// Gossip, if set, is given the record after each heartbeat (to update Serf tags).
	Gossip func(Node)
	// Lost, if set, is called (on the agent goroutine) when a heartbeat finds this node's own
	// record gone although it was registered before: Redis lost its data or the node was
	// unreachable past the TTL. The node should re-assert what it holds (its live sessions).
	// While it returns an error (Redis came back but is not taking writes yet), it is called
	// again after each successful heartbeat.
	Lost   func() error
	Logger *slog.Logger
}

// Agent keeps this node's health record fresh and cleans up after dead nodes.
type Agent struct {
	cfg  AgentConfig
	log  *slog.Logger
	kick chan struct{}
	// registered is set after the first successful registration; agent goroutine only.
	registered bool
	// lostPending: Lost has to run (again); agent goroutine only.
	lostPending bool
	cancel      context.CancelFunc
	done        chan struct{}
	once        sync.Once
}

// StartAgent registers the node at once (an error is logged and retried) and starts the loop.
func StartAgent(cfg AgentConfig) *Agent {
	if cfg.TTL <= 0 {
		cfg.TTL = 10 * time.Second
	}
	if cfg.Heartbeat <= 0 {
		cfg.Heartbeat = 3 * time.Second
	}
	if cfg.ReapInterval <= 0 {
		cfg.ReapInterval = 2 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	a := &Agent{cfg: cfg, log: cfg.Logger.With("component", "agent"), kick: make(chan struct{}, 1), cancel: cancel, done: make(chan struct{})}
	a.heartbeat(ctx)
	go a.run(ctx)
	return a
}

func (a *Agent) run(ctx context.Context) {
	defer close(a.done)
	beat := time.NewTicker(a.cfg.Heartbeat)
	defer beat.Stop()
	reap := time.NewTicker(a.cfg.ReapInterval)
	defer reap.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-beat.C:
			a.heartbeat(ctx)
		case <-a.kick:
			a.heartbeat(ctx)
		case <-reap.C:
			a.reap(ctx)
		}
	}
}

// Refresh re-registers now (e.g. after the node's state changed).
func (a *Agent) Refresh() {
	select {
	case a.kick <- struct{}{}:
	default:
	}
}

func (a *Agent) heartbeat(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, a.cfg.Heartbeat)
	defer cancel()
	self := a.cfg.Self()
	existed, err := a.cfg.Registry.Register(ctx, self, a.cfg.TTL)
	switch {
	case err != nil:
		if ctx.Err() == nil {
			a.log.Warn("cannot refresh the health record", "err", err)
		}
	case !existed && a.registered:
		a.log.Warn("this node's health record had vanished; re-asserting its sessions")
		a.lostPending = true
	default:
		a.registered = true
	}
	if err == nil && a.lostPending && a.cfg.Lost != nil {
		if lerr := a.cfg.Lost(); lerr != nil {
			a.log.Warn("cannot re-assert everything yet; retrying at the next heartbeat", "err", lerr)
		} else {
			a.lostPending = false
		}
	}
	if a.cfg.Gossip != nil {
		a.cfg.Gossip(self)
	}
}

// reap removes the occupants of nodes whose record expired. Several survivors may do it at the
// same time: removal is idempotent and serialised per room by the store.
func (a *Agent) reap(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, a.cfg.ReapInterval*4)
	defer cancel()
	dead, err := a.cfg.Registry.Expired(ctx)
	if err != nil {
		a.log.Debug("cannot list expired nodes", "err", err)
		return
	}
	self := a.cfg.Self().ID
	for _, id := range dead {
		if id == self {
			continue // our own record lapsed (e.g. Redis restarted); the heartbeat restores it
		}
		removed, err := a.cfg.Store.RemoveNode(ctx, id)
		if err != nil {
			a.log.Warn("cannot remove a dead node's occupants", "peer", id, "err", err)
			continue
		}
		if err := a.cfg.Registry.Forget(ctx, id); err != nil {
			a.log.Debug("cannot forget node", "peer", id, "err", err)
		}
		n := 0
		for _, occ := range removed {
			n += len(occ)
		}
		a.log.Info("node is gone; removed its occupants", "peer", id, "occupants", n, "rooms", len(removed))
		if a.cfg.OnNodeDead != nil {
			a.cfg.OnNodeDead(id, removed)
		}
	}
}

// Close stops the loop and deletes the health record. Safe to call twice.
func (a *Agent) Close(ctx context.Context) error {
	var err error
	a.once.Do(func() {
		a.cancel()
		<-a.done
		err = a.cfg.Registry.Deregister(ctx, a.cfg.Self().ID)
	})
	return err
}
