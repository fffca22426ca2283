// Package redistest runs a real redis-server for tests: a child process on a free loopback port,
// without persistence, killed when the test ends.
//
// If redis-server is not on PATH the test is skipped, or fails when the environment variable CI
// is set (CI installs it, so its absence there is a broken setup, not a reason to skip).
package redistest

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// startTimeout bounds the wait for a new server to answer PING.
const startTimeout = 10 * time.Second

// Server is a redis-server child process. Its methods may be called from the test goroutine
// only (Client's result is safe for concurrent use).
type Server struct {
	bin  string
	dir  string
	port int

	mu     sync.Mutex    // guards the fields below
	proc   *exec.Cmd     // nil while stopped
	exited chan struct{} // closed when proc has been waited for
	out    *bytes.Buffer // proc's output, for failure messages
	client *redis.Client // shared client, made on first use
}

// Start runs a redis-server on a free 127.0.0.1 port and stops it in t.Cleanup.
func Start(t testing.TB) *Server {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("redistest: redis-server not found on PATH (CI is set, so it must be installed): %v", err)
		}
		t.Skipf("redistest: redis-server not found on PATH; install it (apt-get install redis-server) to run this test")
	}
	s := &Server{bin: bin, dir: t.TempDir()}
	t.Cleanup(s.cleanup)
	// A free port can be taken by someone else between our probe and redis-server's bind:
	// try a few.
	for attempt := 1; ; attempt++ {
		s.port = freePort(t)
		err := s.start()
		if err == nil {
			return s
		}
		if attempt == 3 {
			t.Fatalf("redistest: %v", err)
		}
	}
}

// Addr is the server's host:port.
func (s *Server) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)) }

// Client returns a client of the server, shared by the callers and closed in t.Cleanup. It
// keeps working across Restart (it reconnects).
func (s *Server) Client() *redis.Client {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.client == nil {
		s.client = s.NewClient()
	}
	return s.client
}

// NewClient returns a new client of the server with short timeouts; the caller closes it.
func (s *Server) NewClient() *redis.Client {
	return redis.NewClient(&redis.Options{
		Addr:         s.Addr(),
		DialTimeout:  time.Second,
		ReadTimeout:  2 * time.Second,
		WriteTimeout: 2 * time.Second,
		MaxRetries:   1,
	})
}

// Stop kills the server (SIGKILL: no shutdown save) and waits for it to exit.
func (s *Server) Stop(t testing.TB) {
	t.Helper()
	s.kill()
}

// Restart kills the server if it runs and starts a new one on the same port, with empty data.
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	s.kill()
	if err := s.start(); err != nil {
		t.Fatalf("redistest: restart: %v", err)
	}
}

// start runs redis-server on s.port and waits until it answers PING.
func (s *Server) start() error {
	cmd := exec.Command(s.bin,
		"--port", strconv.Itoa(s.port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", s.dir, "--loglevel", "warning",
	)
	out := new(bytes.Buffer)
	cmd.Stdout, cmd.Stderr = out, out
	setPdeathsig(cmd)
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", s.bin, err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	s.mu.Lock()
	s.proc, s.exited, s.out = cmd, exited, out
	s.mu.Unlock()
	if err := s.waitReady(exited); err != nil {
		s.kill()
		return fmt.Errorf("redis-server on port %d: %w; output:\n%s", s.port, err, out)
	}
	return nil
}

// waitReady polls PING until it answers, the process exits, or startTimeout passes.
func (s *Server) waitReady(exited <-chan struct{}) error {
	c := redis.NewClient(&redis.Options{Addr: s.Addr(), DialTimeout: 200 * time.Millisecond, MaxRetries: -1})
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		if c.Ping(ctx).Err() == nil {
			return nil
		}
		select {
		case <-exited:
			return fmt.Errorf("exited before answering PING")
		case <-ctx.Done():
			return fmt.Errorf("no answer to PING within %v", startTimeout)
		case <-tick.C:
		}
	}
}

// kill stops the process if it runs and waits for it.
func (s *Server) kill() {
	s.mu.Lock()
	proc, exited := s.proc, s.exited
	s.proc, s.exited = nil, nil
	s.mu.Unlock()
	if proc == nil {
		return
	}
	_ = proc.Process.Kill()
	<-exited
}

func (s *Server) cleanup() {
	s.kill()
	s.mu.Lock()
	c := s.client
	s.client = nil
	s.mu.Unlock()
	if c != nil {
		_ = c.Close()
	}
}

// freePort returns a loopback TCP port that was free a moment ago.
func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("redistest: find a free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
