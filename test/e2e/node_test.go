package e2e

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// nodeBuild is the node binary, built at most once per test binary and
// removed by TestMain.
var nodeBuild struct {
	once sync.Once
	dir  string
	path string
	err  error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if nodeBuild.dir != "" {
		os.RemoveAll(nodeBuild.dir)
	}
	os.Exit(code)
}

// nodeBinary returns the path of the node binary: $CASCADE_E2E_NODE_BIN if
// set, else ./cmd/sfu built the first time it is called.
func nodeBinary(t *testing.T) string {
	t.Helper()
	nodeBuild.once.Do(func() {
		if bin := os.Getenv("CASCADE_E2E_NODE_BIN"); bin != "" {
			nodeBuild.path = bin
			return
		}
		nodeBuild.path, nodeBuild.err = buildNode()
	})
	if nodeBuild.err != nil {
		t.Fatalf("building the node: %v", nodeBuild.err)
	}
	return nodeBuild.path
}

func buildNode() (string, error) {
	root, err := moduleRoot()
	if err != nil {
		return "", err
	}
	if _, err := os.Stat(filepath.Join(root, "cmd", "sfu")); err != nil {
		return "", fmt.Errorf("no ./cmd/sfu in %s: %w", root, err)
	}
	dir, err := os.MkdirTemp("", "cascade-e2e-")
	if err != nil {
		return "", err
	}
	nodeBuild.dir = dir
	bin := filepath.Join(dir, "sfu")
	args := []string{"build", "-o", bin}
	if os.Getenv("CASCADE_E2E_NODE_RACE") == "1" {
		args = append(args, "-race")
	}
	args = append(args, "./cmd/sfu")
	cmd := exec.Command(goTool(), args...)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go %s: %w\n%s", strings.Join(args, " "), err, out)
	}
	return bin, nil
}

// moduleRoot finds the directory of go.mod, by asking the go command and
// falling back to the path relative to this package.
func moduleRoot() (string, error) {
	out, err := exec.Command(goTool(), "env", "GOMOD").Output()
	if gomod := strings.TrimSpace(string(out)); err == nil && gomod != "" && gomod != os.DevNull {
		return filepath.Dir(gomod), nil
	}
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		return "", err
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		return "", fmt.Errorf("cannot find the module root: %w", err)
	}
	return root, nil
}

func goTool() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	if root := os.Getenv("GOROOT"); root != "" {
		return filepath.Join(root, "bin", "go")
	}
	return "go"
}

// node is one running node process.
type node struct {
	addr string // host:port of its HTTP listener
	out  *syncBuffer
	cmd  *exec.Cmd
	done chan struct{} // closed when the process has exited
	err  error         // the result of Wait, valid after done
}

// URL returns the node's HTTP URL for path.
func (n *node) URL(path string) string { return "http://" + n.addr + path }

// startNode starts the node in dev mode on a free loopback port, waits until
// /healthz answers 200, and stops it when the test ends. Its output goes to
// the test log when the test fails.
func startNode(t *testing.T, extraArgs ...string) *node {
	t.Helper()
	bin := nodeBinary(t)
	n := &node{addr: freeAddr(t), out: &syncBuffer{}, done: make(chan struct{})}
	args := append([]string{"--dev", "--http", n.addr, "--udp-port", "0"}, extraArgs...)
	n.cmd = exec.Command(bin, args...)
	n.cmd.Stdout = n.out
	n.cmd.Stderr = n.out
	n.cmd.SysProcAttr = nodeSysProcAttr()
	// Start and wait on one locked OS thread: Pdeathsig (see nodeSysProcAttr)
	// follows the thread that started the process, not the whole test binary.
	started := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		if err := n.cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		n.err = n.cmd.Wait()
		close(n.done)
	}()
	if err := <-started; err != nil {
		t.Fatalf("starting the node: %v", err)
	}
	t.Cleanup(func() {
		n.stop(t)
		if strings.Contains(n.out.String(), "WARNING: DATA RACE") { // a node built with -race
			t.Errorf("node %s reported a data race", n.addr)
		}
		if t.Failed() || os.Getenv("CASCADE_E2E_VERBOSE") == "1" {
			t.Logf("node %s %s exited (%v); its output:\n%s", bin, strings.Join(args, " "), n.err, n.out.String())
		}
	})
	if err := n.waitHealthy(t.Context(), 30*time.Second); err != nil {
		t.Fatalf("node not healthy: %v", err)
	}
	return n
}

// stop asks the node to shut down, and kills it if it has not exited after a
// few seconds.
func (n *node) stop(t *testing.T) {
	select {
	case <-n.done:
		return
	default:
	}
	_ = n.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-n.done:
		return
	case <-time.After(10 * time.Second):
	}
	t.Errorf("node did not exit 10 s after SIGTERM; killing it")
	_ = n.cmd.Process.Kill()
	<-n.done
}

func (n *node) waitHealthy(ctx context.Context, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	client := &http.Client{Timeout: time.Second}
	var last error
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, n.URL("/healthz"), nil)
		if err != nil {
			return err
		}
		res, err := client.Do(req)
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("GET /healthz: %s", res.Status)
		}
		last = err
		select {
		case <-n.done:
			return fmt.Errorf("the node exited: %v", n.err)
		case <-ctx.Done():
			return fmt.Errorf("%w; last error: %v", ctx.Err(), last)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// freeAddr returns a loopback address with a port that was free a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return addr
}

// syncBuffer is a bytes.Buffer safe for concurrent writers and readers.
type syncBuffer struct {
	mu  sync.Mutex // guards buf
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) Printf(format string, args ...any) {
	b.mu.Lock()
	defer b.mu.Unlock()
	fmt.Fprintf(&b.buf, format, args...)
	if !strings.HasSuffix(format, "\n") {
		b.buf.WriteByte('\n')
	}
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
