package cluster

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestExperimentLive runs "relayctl experiment" in its live mode against two real nodes on
// loopback: the publisher joins eu, the subscriber hcm, the media crosses the eu–hcm relay link.
// The figures are those of loopback (no emulated delay): the test checks that they are measured
// (latency from abs-capture-time forwarded through the relay, frames, bitrate) and that the
// path is the one the nodes report.
func TestExperimentLive(t *testing.T) {
	eu, hcm := twoNodes(t)
	out := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bins.relayctl, "experiment", "--publish-node", eu.url, "--subscribe-node", hcm.url, "--duration", "8s", "--out", out)
	cmd.Env = append(os.Environ(), "CASCADE_API_KEY="+apiKey, "CASCADE_API_SECRET="+apiSecret)
	var so, se bytes.Buffer
	cmd.Stdout, cmd.Stderr = &so, &se
	if err := cmd.Run(); err != nil {
		t.Fatalf("experiment: %v\n%s\n%s", err, so.String(), se.String())
	}
	stdout := so.String()
	t.Logf("table:\n%s", stdout)
	var res struct {
		Topology  string  `json:"topology"`
		DurationS float64 `json:"duration_s"`
		Scenarios []struct {
			Name         string                                `json:"name"`
			Path         []string                              `json:"path"`
			BitrateMbps  float64                               `json:"bitrate_mbps"`
			Latency      struct{ P50, P95, P99, Mean float64 } `json:"latency_ms"`
			LossPct      float64                               `json:"loss_pct"`
			FirstFrameMs float64                               `json:"first_frame_ms"`
			Frames       int                                   `json:"frames"`
			PathError    string                                `json:"path_error"`
		} `json:"scenarios"`
	}
	b, err := os.ReadFile(filepath.Join(out, "results.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &res); err != nil {
		t.Fatalf("results.json: %v\n%s", err, b)
	}
	if len(res.Scenarios) != 1 || res.DurationS != 8 {
		t.Fatalf("results.json: %s", b)
	}
	s := res.Scenarios[0]
	if s.Name != "live" || !slices.Equal(s.Path, []string{"publisher", "eu", "hcm", "subscriber"}) {
		t.Errorf("scenario %q path %v (%s), want live publisher>eu>hcm>subscriber", s.Name, s.Path, s.PathError)
	}
	// 8 s at 30 fps is 240 frames; a loaded machine and the first keyframe's wait cost some.
	if s.Frames < 100 || s.FirstFrameMs <= 0 || s.BitrateMbps < 0.5 {
		t.Errorf("frames %d, first frame %v ms, %v Mb/s: the video did not flow", s.Frames, s.FirstFrameMs, s.BitrateMbps)
	}
	if s.Latency.P50 <= 0 || s.Latency.P50 > 500 || s.LossPct > 5 {
		t.Errorf("latency %+v, loss %v%% on loopback", s.Latency, s.LossPct)
	}
	csv, err := os.ReadFile(filepath.Join(out, "results.csv"))
	if err != nil || !strings.Contains(string(csv), ",live,publisher>eu>hcm>subscriber,") {
		t.Errorf("results.csv: %v\n%s", err, csv)
	}
	svg, err := os.Open(filepath.Join(out, "chart.svg"))
	if err != nil {
		t.Fatal(err)
	}
	defer svg.Close()
	d := xml.NewDecoder(svg)
	for {
		if _, err := d.Token(); err == io.EOF {
			break
		} else if err != nil {
			t.Fatalf("chart.svg is not well-formed: %v", err)
		}
	}
}
