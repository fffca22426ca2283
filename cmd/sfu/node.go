package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/cascade-sfu/cascade/pkg/auth"
	"github.com/cascade-sfu/cascade/pkg/metrics"
	"github.com/cascade-sfu/cascade/pkg/room"
	"github.com/cascade-sfu/cascade/pkg/rtc"
	"github.com/cascade-sfu/cascade/pkg/signal"
	"github.com/cascade-sfu/cascade/pkg/web"
)

// node is one running SFU: it wires the room manager, the media engine, the signalling server
// and the HTTP endpoints together.
type node struct {
	cfg    Config
	log    *slog.Logger
	rooms  *room.Manager
	engine *rtc.Engine
	signal *signal.Server
	http   *http.Server
	ln     net.Listener
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
	engine, err := rtc.NewEngine(rtc.Config{
		UDPAddr:  net.JoinHostPort(host, strconv.Itoa(cfg.UDPPort)),
		PublicIP: cfg.PublicIP,
		Logger:   log.With("component", "rtc"),
	})
	if err != nil {
		return nil, err
	}
	rcfg := room.DefaultConfig()
	rcfg.MaxParticipants = cfg.MaxParticipants
	rcfg.Logger = log.With("component", "room")
	rooms := room.NewManager(rcfg)
	sig := signal.NewServer(signal.Config{
		Rooms: rooms, Engine: engine, Verifier: verifier, Logger: log.With("component", "signal"),
		Dev: cfg.Dev, DevKey: cfg.APIKey, DevSecret: cfg.APISecret,
		JoinRate: cfg.JoinRate, JoinBurst: cfg.JoinBurst,
	})
	ln, err := net.Listen("tcp", cfg.HTTP)
	if err != nil {
		rooms.Close()
		_ = engine.Close()
		return nil, fmt.Errorf("listen %s: %w", cfg.HTTP, err)
	}
	n := &node{cfg: cfg, log: log, rooms: rooms, engine: engine, signal: sig, ln: ln}
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
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		metrics.NewRoomCollector(n.rooms, n.cfg.NodeID),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", n.healthz)
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

// Addr returns the HTTP listen address.
func (n *node) Addr() string { return n.ln.Addr().String() }

// Serve serves HTTP until Shutdown.
func (n *node) Serve() error {
	if err := n.http.Serve(n.ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// Shutdown stops taking sessions, tells every participant the node is shutting down, closes
// their sessions and the media port, and stops the HTTP server.
func (n *node) Shutdown(ctx context.Context) error {
	n.signal.Drain()
	n.rooms.Close()
	n.signal.Close()
	err := n.http.Shutdown(ctx)
	return errors.Join(err, n.engine.Close())
}
