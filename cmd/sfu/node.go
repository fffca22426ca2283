package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/cascade-sfu/cascade/geo"
	"github.com/cascade-sfu/cascade/pkg/api"
	"github.com/cascade-sfu/cascade/pkg/auth"
	"github.com/cascade-sfu/cascade/pkg/cluster"
	"github.com/cascade-sfu/cascade/pkg/dashboard"
	"github.com/cascade-sfu/cascade/pkg/relay"
	"github.com/cascade-sfu/cascade/pkg/room"
	"github.com/cascade-sfu/cascade/pkg/rtc"
	"github.com/cascade-sfu/cascade/pkg/signal"
	"github.com/cascade-sfu/cascade/pkg/web"
)

// node is one running SFU: it wires the room manager, the media engine, the signalling server
// and the HTTP endpoints together.
type node struct {
	cfg     Config
	log     *slog.Logger
	rooms   *room.Manager
	engine  *rtc.Engine
	signal  *signal.Server
	api     *api.Server
	cluster *clusterParts
	locator *geo.Locator
	dash    *dashboard.Dashboard
	http    *http.Server
	ln      net.Listener
	drop    *dropHook // test hook (envDropUDPFile); nil normally
	metrics *nodeMetrics
	verify  *auth.Verifier
	// drainReq is signalled once when an operator asks this node to drain (admin API).
	drainReq chan struct{}
}

func newNode(cfg Config, log *slog.Logger) (*node, error) {
	verifier, err := auth.NewVerifier(map[string]string{cfg.APIKey: cfg.APISecret})
	if err != nil {
		return nil, err
	}
	host, _, err := net.SplitHostPort(cfg.HTTP)
	if err != nil {
		return nil, fmt.Errorf("http address %q: %w", cfg.HTTP, err)
	}
	ecfg := rtc.Config{
		UDPAddr:  net.JoinHostPort(host, strconv.Itoa(cfg.UDPPort)),
		PublicIP: cfg.PublicIP,
		Logger:   log.With("component", "rtc"),
	}
	var drop *dropHook
	if path := os.Getenv(envDropUDPFile); path != "" {
		log.Warn("test hook: dropping media to and from the addresses listed in a file", "file", path)
		drop = startDropHook(path)
		ecfg.Drop = drop.drop
	}
	engine, err := rtc.NewEngine(ecfg)
	if err != nil {
		drop.Close()
		return nil, err
	}
	rcfg := room.DefaultConfig()
	rcfg.MaxParticipants = cfg.MaxParticipants
	rcfg.Logger = log.With("component", "room")
	var relays atomic.Pointer[relay.Coordinator] // set once the cluster is up
	rcfg.OnData = func(name room.Name, from *room.Participant, msg room.DataMessage) {
		if c := relays.Load(); c != nil {
			c.DataSent(name, from, msg)
		}
	}
	rcfg.Remote = remoteActions{&relays}
	var order atomic.Pointer[cluster.MessageOrder] // set once the cluster parts exist
	rcfg.Sequencer = roomOrder{&order}
	nm := newNodeMetrics(cfg)
	rcfg.FirstPacket = nm.events.FirstPacket
	rcfg.Batcher = engine
	rooms := room.NewManager(rcfg)
	ln, err := net.Listen("tcp", cfg.HTTP)
	if err != nil {
		rooms.Close()
		_ = engine.Close()
		return nil, fmt.Errorf("listen %s: %w", cfg.HTTP, err)
	}
	n := &node{cfg: cfg, log: log, rooms: rooms, engine: engine, ln: ln, drop: drop, metrics: nm, verify: verifier, drainReq: make(chan struct{}, 1)}
	publicURL := cfg.PublicURL
	if publicURL == "" {
		publicURL = "http://" + ln.Addr().String()
	}
	if n.locator, err = geo.NewLocator(cfg.GeoIP); err != nil {
		n.abort()
		return nil, err
	}
	if n.cluster, err = startCluster(cfg, log.With("component", "cluster"), publicURL, rooms, engine, nm.redis); err != nil {
		n.abort()
		return nil, err
	}
	order.Store(&n.cluster.order)
	if n.cluster.relays != nil {
		relays.Store(n.cluster.relays)
	}
	startAdmin(n.cluster, cluster.NodeID(cfg.NodeID), rooms, n.requestDrain, log.With("component", "admin"))
	n.signal = signal.NewServer(signal.Config{
		Rooms: rooms, Engine: engine, Verifier: verifier, Logger: log.With("component", "signal"),
		Dev: cfg.Dev, DevKey: cfg.APIKey, DevSecret: cfg.APISecret,
		JoinRate: cfg.JoinRate, JoinBurst: cfg.JoinBurst, FailedJoinRate: cfg.FailedJoinRate, FailedJoinBurst: cfg.FailedJoinBurst, ResumeGrace: resumeGrace(cfg.ResumeGrace),
		Observer:  nm.events,
		Occupancy: occupancy{store: n.cluster.store, bus: n.cluster.bus, node: cluster.NodeID(cfg.NodeID), capacity: cfg.MaxParticipants, log: log},
	})
	apiCfg := api.Config{
		Self: n.cluster.agentSelf, Registry: n.cluster.registry, Store: n.cluster.store, Locator: n.locator,
		Verifier: verifier, Logger: log.With("component", "api"), Operator: n.cluster.admin,
	}
	if n.cluster.membership != nil {
		apiCfg.RTT = n.cluster.membership
	}
	if n.cluster.relays != nil { // not a nil *relay.Manager in the interface: the API checks for nil
		apiCfg.Relays = n.cluster.relays.Links()
	}
	n.api = api.New(apiCfg)
	n.dash = newDashboard(cfg, n.cluster, verifier, log)
	n.http = &http.Server{
		Handler:           n.routes(),
		ReadHeaderTimeout: 10 * time.Second,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	return n, nil
}

func (n *node) routes() http.Handler {
	mux := http.NewServeMux()
	n.signal.Register(mux)
	n.api.Register(mux)
	n.dash.Register(mux)
	mux.Handle("GET /metrics", promhttp.HandlerFor(n.registry(), promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", n.healthz)
	mux.HandleFunc("GET /livez", livez)
	if n.cfg.Pprof {
		registerPprof(mux, n.verify)
	}
	mux.Handle("/", web.Handler())
	return mux
}

func (n *node) healthz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if n.signal.Draining() {
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte("draining\n"))
		return
	}
	_, _ = w.Write([]byte("ok\n"))
}

// livez answers 200 while the process serves HTTP, draining or not: a liveness probe on it
// never restarts a node that is draining (/healthz answers 503 then, for readiness).
func livez(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = w.Write([]byte("ok\n"))
}

// Addr returns the HTTP listen address.
func (n *node) Addr() string { return n.ln.Addr().String() }

// Serve serves HTTP until Shutdown.
func (n *node) Serve() error {
	if err := n.http.Serve(n.ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// Shutdown drains the node: it is marked draining in the cluster at once and takes no new
// sessions; existing sessions may go on for the drain timeout; then the remaining participants
// are told the node is shutting down, sessions close, the node leaves the cluster, and the media
// port and HTTP server close.
func (n *node) Shutdown(ctx context.Context) error {
	n.signal.Drain()
	n.cluster.drain()
	n.waitEmpty(ctx, n.cfg.DrainTimeout)
	n.rooms.Close()
	n.signal.Close()
	n.dash.Close() // ends the event streams, which http.Shutdown would wait for
	err := n.cluster.close(ctx)
	err = errors.Join(err, n.http.Shutdown(ctx))
	err = errors.Join(err, n.engine.Close(), n.locator.Close())
	n.drop.Close()
	return err
}

// waitEmpty waits until no participant is left or the drain timeout passes.
func (n *node) waitEmpty(ctx context.Context, timeout time.Duration) {
	if timeout <= 0 {
		return
	}
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for len(n.rooms.Rooms()) > 0 {
		select {
		case <-ctx.Done():
			return
		case <-deadline.C:
			return
		case <-tick.C:
		}
	}
	n.log.Info("all sessions ended while draining")
}

// abort releases what newNode built before it failed.
func (n *node) abort() {
	n.rooms.Close()
	_ = n.ln.Close()
	_ = n.engine.Close()
	if n.locator != nil {
		_ = n.locator.Close()
	}
	n.drop.Close()
}

// resumeGrace maps the node's setting (0: off) to signal's (negative: off).
func resumeGrace(d time.Duration) time.Duration {
	if d == 0 {
		return -1
	}
	return d
}
