package cluster

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/cascade-sfu/cascade/pkg/cluster/redistest"
)

const (
	apiKey    = "cluster-test"
	apiSecret = "cluster-test-secret-0123"
)

// bins are the binaries under test, built once by TestMain.
var bins struct{ sfu, relayctl string }

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "cascade-cluster-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	bins.sfu, bins.relayctl = filepath.Join(dir, "sfu"), filepath.Join(dir, "relayctl")
	for out, pkg := range map[string]string{bins.sfu: "../../cmd/sfu", bins.relayctl: "../../cmd/relayctl"} {
		if b, err := exec.Command("go", "build", "-o", out, pkg).CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "build %s: %v\n%s", pkg, err, b)
			os.Exit(1)
		}
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// proc is a node process with its output.
type proc struct {
	name string
	cmd  *exec.Cmd
	out  *syncBuffer
	done chan struct{}
	err  error
	url  string
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// freePort returns a port free for TCP and UDP on 127.0.0.1 at the time of the call.
func freePort(t testing.TB) int {
	t.Helper()
	for range 20 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		u, err := net.ListenPacket("udp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		l.Close()
		if err == nil {
			u.Close()
			return port
		}
	}
	t.Fatal("no free port")
	return 0
}

// nodeSpec describes one node of the test cluster.
type nodeSpec struct {
	id       string
	lat, lon float64
	serf     int
	join     int // serf port of a node to join, 0 for none
	udp      int // media port, 0 for any
	env      []string
	extra    []string
}

func startNode(t testing.TB, redisAddr string, s nodeSpec) *proc {
	t.Helper()
	httpPort := freePort(t)
	args := []string{
		"--http", "127.0.0.1:" + strconv.Itoa(httpPort), "--udp-port", strconv.Itoa(s.udp),
		"--node-id", s.id, "--region", s.id,
		"--lat", strconv.FormatFloat(s.lat, 'f', 4, 64), "--lon", strconv.FormatFloat(s.lon, 'f', 4, 64),
		"--redis", "redis://" + redisAddr + "/0", "--redis-prefix", "t:" + t.Name() + ":",
		"--serf-bind", "127.0.0.1:" + strconv.Itoa(s.serf), "--health-ttl", "3s", "--log-level", "debug",
	}
	if s.join != 0 {
		args = append(args, "--join", "127.0.0.1:"+strconv.Itoa(s.join))
	}
	args = append(args, s.extra...)
	p := &proc{name: s.id, out: &syncBuffer{}, done: make(chan struct{}), url: "http://127.0.0.1:" + strconv.Itoa(httpPort)}
	p.cmd = exec.Command(bins.sfu, args...)
	p.cmd.Env = append(os.Environ(), "CASCADE_API_KEY="+apiKey, "CASCADE_API_SECRET="+apiSecret)
	p.cmd.Env = append(p.cmd.Env, s.env...)
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.kill()
		if t.Failed() {
			t.Logf("--- %s output ---\n%s", p.name, p.out.String())
		}
	})
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(p.url + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p
			}
		}
		select {
		case <-p.done:
			t.Fatalf("%s exited: %v\n%s", s.id, p.err, p.out.String())
		case <-time.After(50 * time.Millisecond):
		}
	}
	t.Fatalf("%s did not become healthy\n%s", s.id, p.out.String())
	return nil
}

func (p *proc) kill() {
	select {
	case <-p.done:
	default:
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// relayctl runs the CLI against a node and returns its stdout.
func relayctl(t *testing.T, server string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bins.relayctl, append([]string{"--server", server}, args...)...)
	cmd.Env = append(os.Environ(), "CASCADE_API_KEY="+apiKey, "CASCADE_API_SECRET="+apiSecret)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("%v: %s", err, stderr.String())
	}
	return stdout.String(), nil
}

func eventually(t *testing.T, timeout time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	last := ""
	for time.Now().Before(deadline) {
		ok, state := cond()
		if ok {
			return
		}
		last = state
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("timed out after %v waiting for %s; last: %s", timeout, what, last)
}

// twoNodes starts Redis and two nodes, eu (Amsterdam) and hcm (Ho Chi Minh City), that gossip
// with each other; extra flags go to both.
func twoNodes(t testing.TB, extra ...string) (eu, hcm *proc) {
	t.Helper()
	redis := redistest.Start(t)
	s1, s2 := freePort(t), freePort(t)
	eu = startNode(t, redis.Addr(), nodeSpec{id: "eu", lat: 52.37, lon: 4.90, serf: s1, join: s2, extra: extra})
	hcm = startNode(t, redis.Addr(), nodeSpec{id: "hcm", lat: 10.82, lon: 106.63, serf: s2, join: s1, extra: extra})
	return eu, hcm
}

// newVP8 returns a VP8 track for a test publisher.
func newVP8(t testing.TB, stream string, opts ...func(*webrtc.TrackLocalStaticRTP)) *webrtc.TrackLocalStaticRTP {
	t.Helper()
	tr, err := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000}, "cam", stream, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return tr
}
