package main

import (
	"bufio"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cascade-sfu/cascade/pkg/loadgen"
)

// startSFU builds cmd/sfu and runs it in dev mode with --pprof; it returns the base URL and
// the process id.
func startSFU(t *testing.T) (string, int) {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "sfu")
	build := exec.Command("go", "build", "-o", bin, "../sfu")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building the sfu: %v\n%s", err, out)
	}
	cmd := exec.Command(bin, "--dev", "--pprof", "--http", "127.0.0.1:0", "--udp-port", "0", "--log-level", "warn")
	cmd.Env = append(os.Environ(), "CASCADE_API_KEY=", "CASCADE_API_SECRET=")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})
	sc := bufio.NewScanner(out)
	re := regexp.MustCompile(`listening on (http://\S+)`)
	base := ""
	for sc.Scan() {
		if m := re.FindStringSubmatch(sc.Text()); m != nil {
			base = m[1]
			break
		}
	}
	go func() { _, _ = io.Copy(io.Discard, out) }()
	if base == "" {
		t.Fatal("the sfu did not print its address")
	}
	resp, err := http.Get(base + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return base, cmd.Process.Pid
}

func TestLoadAgainstNodeJSON(t *testing.T) {
	base, pid := startSFU(t)
	prof := filepath.Join(t.TempDir(), "prof")
	res := runArgs(t, nil, "--server", base, "load", "--dev", "--room", "loadtest", "--pattern",
		"--viewers", "5", "--rate", "20/s", "--duration", "3s", "--json",
		"--server-pid", strconv.Itoa(pid), "--profile", prof)
	if res.code != exitOK {
		t.Fatalf("exit %d\nstdout: %s\nstderr: %s", res.code, res.stdout, res.stderr)
	}
	var rep loadgen.Report
	if err := json.Unmarshal([]byte(res.stdout), &rep); err != nil {
		t.Fatalf("--json output does not parse: %v\n%s", err, res.stdout)
	}
	s := rep.Steady
	if rep.Connected != 5 || rep.Failed != 0 || s.Viewers != 5 {
		t.Fatalf("connected %d failed %d (%+v)", rep.Connected, rep.Failed, rep.Failures)
	}
	if s.Packets == 0 || s.PacketsPerSec <= 0 || s.Loss > 0.05 {
		t.Fatalf("steady window %+v: want packets and under 5%% loss on loopback", s)
	}
	if s.ServerCPU <= 0 || s.CPUPerMillion <= 0 {
		t.Fatalf("server CPU %v, %v CPU-s per million packets: want figures from /proc", s.ServerCPU, s.CPUPerMillion)
	}
	if s.TTFPP50 <= 0 || s.TTFPP95 < s.TTFPP50 {
		t.Fatalf("time to first packet p50 %v p95 %v", s.TTFPP50, s.TTFPP95)
	}
	for _, f := range []string{"cpu.pprof", "heap.pprof", "allocs.pprof"} {
		if st, err := os.Stat(filepath.Join(prof, f)); err != nil || st.Size() == 0 {
			t.Fatalf("profile %s: %v", f, err)
		}
	}
	if !strings.Contains(res.stderr, "viewers 5/5") {
		t.Fatalf("no progress line with every viewer on stderr:\n%s", res.stderr)
	}
}

func TestLoadAgainstNodeWebSocketTable(t *testing.T) {
	base, _ := startSFU(t)
	res := runArgs(t, nil, "--server", base, "load", "--dev", "--room", "loadtest", "--pattern",
		"--viewers", "5", "--rate", "20", "--duration", "3s", "--ws")
	if res.code != exitOK {
		t.Fatalf("exit %d\nstdout: %s\nstderr: %s", res.code, res.stdout, res.stderr)
	}
	for _, want := range []string{"ws viewers", "viewers connected  ", "5 of 5", "viewers failed", "egress packets", "loss after NACK", "time to first packet"} {
		if !strings.Contains(res.stdout, want) {
			t.Fatalf("table lacks %q:\n%s", want, res.stdout)
		}
	}
	m := regexp.MustCompile(`egress packets\s+(\d+)`).FindStringSubmatch(res.stdout)
	if m == nil || m[1] == "0" {
		t.Fatalf("no egress packets:\n%s", res.stdout)
	}
}

func TestLoadUsageErrors(t *testing.T) {
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"load", "--dev", "--pattern", "--viewers", "1"}, "--room is required"},
		{[]string{"load", "--dev", "--room", "r", "--viewers", "1"}, "exactly one of"},
		{[]string{"load", "--dev", "--room", "r", "--pattern", "--ivf", "x.ivf", "--viewers", "1"}, "exactly one of"},
		{[]string{"load", "--dev", "--room", "r", "--pattern"}, "--viewers must be"},
		{[]string{"load", "--dev", "--room", "r", "--pattern", "--viewers", "999999"}, "--viewers must be"},
		{[]string{"load", "--dev", "--room", "r", "--pattern", "--viewers", "1", "--rate", "fast"}, "--rate"},
		{[]string{"load", "--dev", "--room", "r", "--pattern", "--viewers", "1", "--rate", "0/s"}, "--rate"},
		{[]string{"load", "--dev", "--room", "r", "--pattern", "--viewers", "1", "--duration", "-1s"}, "--duration"},
		{[]string{"load", "--dev", "--room", "r", "--pattern", "--viewers", "1", "--publishers", "0"}, "--publishers"},
		{[]string{"load", "--room", "r", "--pattern", "--viewers", "1"}, "no API key"},
		{[]string{"load", "--dev", "--room", "r", "--pattern", "--viewers", "1", "--find-max", "--step", "0"}, "--step"},
		{[]string{"load", "--dev", "--room", "r", "--ivf", "/nonexistent.ivf", "--viewers", "1"}, "nonexistent"},
		{[]string{"load", "--dev", "--room", "r", "--pattern", "--viewers", "1", "extra"}, "unexpected argument"},
		{[]string{"load", "--nope"}, "flag provided but not defined"},
		{[]string{"load", "--dev", "--room", "r", "--pattern", "--viewers", "1", "--target", "janus"}, "--target"},
		{[]string{"load", "--dev", "--room", "r", "--pattern", "--viewers", "1", "--target", "livekit", "--ws"}, "no --ws"},
	}
	for _, c := range cases {
		res := runArgs(t, nil, c.args...)
		if res.code != exitUsage || !strings.Contains(res.stderr, c.want) {
			t.Errorf("%v: exit %d, stderr %q; want usage error with %q", c.args, res.code, res.stderr, c.want)
		}
	}
}
