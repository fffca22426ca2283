// Package labexp holds the acceptance test of the latency lab (issue #8): the real relayctl and
// sfu binaries run a short experiment on the emulated WAN of the default topology. It needs
// root (network namespaces, TAP devices); elsewhere it skips, saying why. CI runs as root, so
// it runs there, as part of `make test`.
package labexp

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cascade-sfu/cascade/pkg/lab"
)

type scenario struct {
	ID                 int      `json:"id"`
	Name               string   `json:"name"`
	Path               []string `json:"path"`
	ConfiguredOneWayMs float64  `json:"configured_one_way_ms"`
	BitrateMbps        float64  `json:"bitrate_mbps"`
	Latency            struct {
		P50, P95, P99, Mean float64
	} `json:"latency_ms"`
	JitterMs     float64 `json:"jitter_ms"`
	LossPct      float64 `json:"loss_pct"`
	Freezes      int     `json:"freezes"`
	FirstFrameMs float64 `json:"first_frame_ms"`
	Frames       int     `json:"frames"`
	AudioPackets int     `json:"audio_packets"`
}

// TestExperimentDefaultTopology runs all four scenarios for 10 s each and checks the figures
// against the topology: p50 latency within ±15% of the configured one-way delay of the path
// the nodes report; scenario 4 relayed through sgp, its p50 at most 1.1× the better of
// scenarios 1 and 2; nothing of the lab left afterwards.
func TestExperimentDefaultTopology(t *testing.T) {
	if err := lab.Preflight(); err != nil {
		t.Skipf("SKIP: the lab cannot run here (namespaces need root, ip and /dev/net/tun): %v", err)
	}
	bin := t.TempDir()
	for out, pkg := range map[string]string{"sfu": "../../cmd/sfu", "relayctl": "../../cmd/relayctl"} {
		if b, err := exec.Command("go", "build", "-o", filepath.Join(bin, out), pkg).CombinedOutput(); err != nil {
			t.Fatalf("build %s: %v\n%s", pkg, err, b)
		}
	}
	prefix := fmt.Sprintf("cascade-lab-x%d-", os.Getpid()%100000)
	out := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	state := t.TempDir()
	cmd := exec.CommandContext(ctx, filepath.Join(bin, "relayctl"), "experiment", "--topology", "../../deploy/lab/eu-sgp-hcm.yaml",
		"--duration", "10s", "--out", out, "--lab-prefix", prefix, "--lab-state-dir", state)
	var so, se bytes.Buffer
	cmd.Stdout, cmd.Stderr = &so, &se
	err := cmd.Run()
	t.Logf("stdout:\n%s", so.String())
	if err != nil {
		t.Fatalf("relayctl experiment: %v\n%s", err, se.String())
	}
	// Nothing left: no namespace with the prefix, no process started from our binaries.
	if b, err := exec.Command("ip", "netns", "list").Output(); err != nil || strings.Contains(string(b), prefix) {
		t.Errorf("namespaces left after the experiment (%v):\n%s", err, b)
	}
	if left := procsUnder(bin); len(left) > 0 {
		t.Errorf("processes left after the experiment: %v", left)
	}

	var res struct {
		Scenarios []scenario `json:"scenarios"`
	}
	b, err := os.ReadFile(filepath.Join(out, "results.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &res); err != nil {
		t.Fatalf("results.json: %v", err)
	}
	if len(res.Scenarios) != 4 {
		t.Fatalf("%d scenarios in results.json, want 4", len(res.Scenarios))
	}
	by := map[int]scenario{}
	for _, s := range res.Scenarios {
		by[s.ID] = s
		if s.Frames < 100 || s.BitrateMbps < 0.5 || s.FirstFrameMs <= 0 {
			t.Errorf("scenario %d: frames %d, %v Mb/s, first frame %v ms: no figures", s.ID, s.Frames, s.BitrateMbps, s.FirstFrameMs)
			continue
		}
		if s.AudioPackets < 250 { // 50 a second for over 10 s
			t.Errorf("scenario %d: %d audio packets: the Opus stream did not get through", s.ID, s.AudioPackets)
		}
		if math.Abs(s.Latency.P50-s.ConfiguredOneWayMs) > 0.15*s.ConfiguredOneWayMs {
			t.Errorf("scenario %d (%v): p50 %.1f ms, configured %.0f ms: off by more than 15%%", s.ID, s.Path, s.Latency.P50, s.ConfiguredOneWayMs)
		}
	}
	want := map[int][]string{1: {"eu-peer", "sgp", "hcm", "vn-peer"}, 2: {"eu-peer", "hcm", "vn-peer"}, 3: {"eu-peer", "sgp", "vn-peer"}}
	for id, p := range want {
		if !slices.Equal(by[id].Path, p) {
			t.Errorf("scenario %d path %v, want %v", id, by[id].Path, p)
		}
	}
	s4 := by[4]
	if !slices.Equal(s4.Path, []string{"eu-peer", "eu", "sgp", "hcm", "vn-peer"}) {
		t.Errorf("scenario 4 went %v, want through sgp (eu-peer eu sgp hcm vn-peer); the nodes' path decisions:\n%s", s4.Path, pathDecisions(state))
	}
	if best := math.Min(by[1].Latency.P50, by[2].Latency.P50); s4.Latency.P50 > 1.1*best {
		t.Errorf("scenario 4 p50 %.1f ms over 1.1× the better of scenarios 1 and 2 (%.1f ms)", s4.Latency.P50, best)
	}
	for _, f := range []string{"results.csv", "chart.svg"} {
		if st, err := os.Stat(filepath.Join(out, f)); err != nil || st.Size() == 0 {
			t.Errorf("%s: %v", f, err)
		}
	}
}

// pathDecisions returns the nodes' "relay path chosen" log lines from a lab's state directory.
func pathDecisions(state string) string {
	var b strings.Builder
	logs, _ := filepath.Glob(filepath.Join(state, "logs", "*-sfu.log"))
	for _, f := range logs {
		data, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(data), "\n") {
			if strings.Contains(line, "relay path chosen") {
				b.WriteString(filepath.Base(f) + ": " + line + "\n")
			}
		}
	}
	if b.Len() == 0 {
		return "(none logged)"
	}
	return b.String()
}

// procsUnder lists the processes whose executable lies in dir.
func procsUnder(dir string) []string {
	var out []string
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		exe, err := os.Readlink(filepath.Join("/proc", e.Name(), "exe"))
		if err == nil && strings.HasPrefix(exe, dir+string(filepath.Separator)) {
			out = append(out, e.Name()+" "+exe)
		}
	}
	return out
}
