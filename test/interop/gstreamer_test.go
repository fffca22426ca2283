package interop

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cascade-sfu/cascade/pkg/auth"
)

const (
	nodeIP   = "198.51.100.1"
	nodeHTTP = nodeIP + ":7880"
	python   = "/usr/bin/python3" // Debian's, with python3-gi (a pyenv python lacks it)
)

var sfuBin string

func TestMain(m *testing.M) {
	if spec := os.Getenv(envPionPublisher); spec != "" { // a helper process, not a test run
		url, token, _ := strings.Cut(spec, " ")
		if err := publishPion(url, token); err != nil {
			fmt.Fprintln(os.Stderr, "pion publisher:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	dir, err := os.MkdirTemp("", "cascade-interop-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	sfuBin = filepath.Join(dir, "sfu")
	out, err := exec.Command("go", "build", "-o", sfuBin, "github.com/cascade-sfu/cascade/cmd/sfu").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "build sfu: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// netns is a network namespace of the test's own with lo and a veth pair, one end on nodeIP.
type netns struct{ name string }

func newNetns(t *testing.T) *netns {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("interop tests need root to create a network namespace (CI runs as root)")
	}
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	ns := &netns{name: "cascade-interop-" + hex.EncodeToString(b)}
	if out, err := exec.Command("ip", "netns", "add", ns.name).CombinedOutput(); err != nil {
		t.Skipf("cannot create a network namespace here: %v %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", ns.name).Run() })
	for _, args := range [][]string{
		{"link", "set", "lo", "up"},
		{"link", "add", "lab0", "type", "veth", "peer", "name", "lab1"}, // both ends in the namespace
		{"addr", "add", nodeIP + "/24", "dev", "lab0"},
		{"link", "set", "lab0", "up"},
		{"link", "set", "lab1", "up"},
	} {
		if out, err := exec.Command("ip", append([]string{"-n", ns.name}, args...)...).CombinedOutput(); err != nil {
			t.Fatalf("ip %v: %v %s", args, err, out)
		}
	}
	return ns
}

func (ns *netns) command(ctx context.Context, name string, args ...string) *exec.Cmd {
	return exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", ns.name, name}, args...)...)
}

// syncBuffer is an io.Writer safe for a process's output and the test reading it.
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

// startNode runs the sfu in development mode inside ns and waits until it is healthy.
func startNode(t *testing.T, ns *netns) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	out := &syncBuffer{}
	cmd := ns.command(ctx, sfuBin, "--dev", "--http", nodeHTTP, "--udp-port", "7882")
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		cancel()
		<-done
		if t.Failed() {
			t.Logf("--- sfu output ---\n%s", out.String())
		}
	})
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		if strings.Contains(out.String(), "listening on http://"+nodeHTTP) {
			return
		}
		select {
		case <-done:
			t.Fatalf("sfu exited:\n%s", out.String())
		case <-time.After(100 * time.Millisecond):
		}
	}
	t.Fatalf("sfu not healthy:\n%s", out.String())
}

func devToken(t *testing.T, roomName, identity string, g auth.Grants) string {
	t.Helper()
	g.Room, g.Identity = roomName, identity
	tok, err := auth.Sign(auth.DevAPIKey, auth.DevAPISecret, g, time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// gst runs testdata/gst_webrtc.py in ns: "publish" or "play" for the given time.
type gst struct {
	out, errOut *syncBuffer
	done        chan error
}

func runGst(t *testing.T, ns *netns, mode, url, token string, seconds int) *gst {
	t.Helper()
	script, err := filepath.Abs("testdata/gst_webrtc.py")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(seconds+40)*time.Second)
	g := &gst{out: &syncBuffer{}, errOut: &syncBuffer{}, done: make(chan error, 1)}
	cmd := ns.command(ctx, python, script, mode, url, token, fmt.Sprint(seconds))
	cmd.Stdout, cmd.Stderr = g.out, g.errOut
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	go func() { g.done <- cmd.Wait(); cancel() }()
	t.Cleanup(func() {
		cancel()
		if t.Failed() {
			t.Logf("--- gst %s ---\n%s\n%s", mode, g.out.String(), g.errOut.String())
		}
	})
	return g
}

// result waits for the script and returns the RTP packets it counted per kind.
func (g *gst) result(t *testing.T) map[string]int {
	t.Helper()
	if err := <-g.done; err != nil {
		t.Fatalf("gst: %v\n%s\n%s", err, g.out.String(), g.errOut.String())
	}
	var counts map[string]int
	line := strings.TrimSpace(g.out.String())
	if i := strings.LastIndex(line, "\n"); i >= 0 {
		line = line[i+1:]
	}
	if err := json.Unmarshal([]byte(line), &counts); err != nil {
		t.Fatalf("gst output %q: %v", g.out.String(), err)
	}
	return counts
}

// GStreamer publishes VP8 and Opus over WHIP; a GStreamer player receives both over WHEP.
// Both offer max-bundle, so their audio sections are "m=audio 0 ... a=bundle-only": a player
// got no audio at all while the node took such a section for a rejected one.
func TestGStreamerPublishesAndPlays(t *testing.T) {
	if _, err := exec.LookPath(python); err != nil {
		t.Fatalf("%s is missing: .ci/run installs python3-gi and GStreamer", python)
	}
	ns := newNetns(t)
	startNode(t, ns)
	base := "http://" + nodeHTTP
	pub := runGst(t, ns, "publish", base+"/whip/gst", devToken(t, "gst", "gst-publisher", auth.Grants{CanPublish: true}), 15)
	time.Sleep(3 * time.Second) // the publisher's tracks are up
	play := runGst(t, ns, "play", base+"/whep/gst", devToken(t, "gst", "gst-player", auth.Grants{CanSubscribe: true}), 6)
	counts := play.result(t)
	t.Logf("GStreamer WHEP player received %d video and %d audio RTP packets in 6 s", counts["video"], counts["audio"])
	// 6 s of 30 fps VP8 and 50 packets/s of Opus.
	if counts["video"] < 60 || counts["audio"] < 100 {
		t.Fatalf("the GStreamer player received %d video and %d audio packets, want both", counts["video"], counts["audio"])
	}
	_ = pub.result(t) // ends after its 15 s and a DELETE
}

// envPionPublisher makes the test binary a pion WHIP publisher (VP8 and Opus) for the URL and
// token it names, instead of running tests (see TestMain): how the pion side runs inside the
// test's namespace.
const envPionPublisher = "CASCADE_INTEROP_PION_WHIP"

// A pion publisher's VP8 and Opus reach a GStreamer WHEP player, audio included.
func TestPionPublishesGStreamerPlays(t *testing.T) {
	ns := newNetns(t)
	startNode(t, ns)
	base := "http://" + nodeHTTP
	ctx, cancel := context.WithCancel(context.Background())
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	pub := ns.command(ctx, self)
	pub.Env = append(os.Environ(), envPionPublisher+"="+base+"/whip/pion "+devToken(t, "pion", "pion-publisher", auth.Grants{CanPublish: true}))
	pubOut := &syncBuffer{}
	pub.Stdout, pub.Stderr = pubOut, pubOut
	if err := pub.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		_ = pub.Wait()
		if t.Failed() {
			t.Logf("--- pion publisher ---\n%s", pubOut.String())
		}
	})
	time.Sleep(3 * time.Second)
	counts := runGst(t, ns, "play", base+"/whep/pion", devToken(t, "pion", "gst-player", auth.Grants{CanSubscribe: true}), 6).result(t)
	t.Logf("GStreamer WHEP player received %d video and %d audio RTP packets of the pion publisher in 6 s", counts["video"], counts["audio"])
	if counts["video"] < 60 || counts["audio"] < 100 {
		t.Fatalf("the GStreamer player received %d video and %d audio packets, want both", counts["video"], counts["audio"])
	}
}
