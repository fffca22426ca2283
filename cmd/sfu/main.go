// Command sfu runs one Cascade node: signalling, WHIP/WHEP, media forwarding, metrics and the
// demo page on one HTTP port, and all media on one UDP port.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	code := start(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr, installLibLoggers)
	stop()
	os.Exit(code)
}

// run starts the node and serves until ctx ends, then shuts down gracefully.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	return start(ctx, args, getenv, stdout, stderr, nil)
}

// start is run; onLogger, if set, is given the root logger first (main routes the process-global
// library loggers through it).
func start(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer, onLogger func(*slog.Logger)) int {
	cfg, err := LoadConfig(args, getenv, stdout)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, "sfu:", err)
		return 2
	}
	log := newLogger(cfg, stderr)
	if onLogger != nil {
		onLogger(log)
	}
	n, err := newNode(cfg, log)
	if err != nil {
		log.Error("cannot start", "err", err)
		return 1
	}
	if cfg.UsingDevKeys {
		fmt.Fprintf(stdout, "development mode: API key %q, secret %q (never use these in production)\n", cfg.APIKey, cfg.APISecret)
	}
	fmt.Fprintf(stdout, "cascade node %s listening on http://%s (media on udp %s)\n", cfg.NodeID, n.Addr(), n.engine.UDPAddr())
	if cfg.Dev {
		fmt.Fprintf(stdout, "demo: open http://%s/?room=demo in two browser tabs\n", n.Addr())
	}
	errc := make(chan error, 1)
	go func() { errc <- n.Serve() }()
	select {
	case <-ctx.Done():
		log.Info("shutting down")
	case err := <-errc:
		log.Error("http server failed", "err", err)
		_ = n.Shutdown(context.Background())
		return 1
	}
	sctx, cancel := context.WithTimeout(context.Background(), cfg.DrainTimeout+cfg.ShutdownTimeout)
	defer cancel()
	if err := n.Shutdown(sctx); err != nil {
		log.Warn("shutdown incomplete", "err", err)
	}
	<-errc
	log.Info("stopped")
	return 0
}

func newLogger(cfg Config, w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: cfg.SlogLevel()}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts)).With("node", cfg.NodeID)
	}
	return slog.New(slog.NewTextHandler(w, opts)).With("node", cfg.NodeID)
}
