package loadgen

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func smallConfig(server string, ws bool) Config {
	return Config{
		Server: server, Room: "bench", Source: Source{Kind: "pattern"},
		Viewers: 5, Publishers: 1, Rate: 20, Duration: 3 * time.Second, WS: ws,
		ServerPID: os.Getpid(), // the node runs in this process
		Token:     testToken("bench"),
	}
}

func checkReport(t *testing.T, rep *Report, viewers int) {
	t.Helper()
	if rep.Connected != viewers || rep.Failed != 0 {
		t.Fatalf("connected %d, failed %d (%+v), want %d connected", rep.Connected, rep.Failed, rep.Failures, viewers)
	}
	w := rep.Steady
	if w.Viewers != viewers || w.Packets == 0 || w.PacketsPerSec <= 0 || w.BitsPerSec <= 0 {
		t.Fatalf("steady window %+v: want %d viewers receiving packets", w, viewers)
	}
	// The pattern is 1.5 Mb/s per viewer: well above 100 kb/s each even on a loaded machine.
	if w.BitsPerSec < float64(viewers)*100e3 {
		t.Fatalf("egress %.0f b/s for %d viewers of a 1.5 Mb/s stream", w.BitsPerSec, viewers)
	}
	if w.Loss > 0.05 {
		t.Fatalf("loss %.2f%% on loopback", 100*w.Loss)
	}
	if w.TTFPP50 <= 0 || w.TTFPP95 < w.TTFPP50 {
		t.Fatalf("time to first packet p50 %v p95 %v", w.TTFPP50, w.TTFPP95)
	}
	if w.ServerCPU <= 0 || w.CPUPerMillion <= 0 {
		t.Fatalf("server CPU %v, per million %v: the node in this process did work", w.ServerCPU, w.CPUPerMillion)
	}
}

func TestRunWHEP(t *testing.T) {
	server := startNode(t)
	var progress bytes.Buffer
	cfg := smallConfig(server, false)
	cfg.Progress = &progress
	rep, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	checkReport(t, rep, 5)
	if !strings.Contains(progress.String(), "viewers 5/5") {
		t.Fatalf("progress lines never showed every viewer:\n%s", progress.String())
	}
}

func TestRunWebSocket(t *testing.T) {
	server := startNode(t)
	rep, err := Run(context.Background(), smallConfig(server, true))
	if err != nil {
		t.Fatal(err)
	}
	if rep.Mode != "ws" {
		t.Fatalf("mode %q", rep.Mode)
	}
	checkReport(t, rep, 5)
}

func TestRunFindMax(t *testing.T) {
	server := startNode(t)
	cfg := smallConfig(server, false)
	cfg.FindMax, cfg.Viewers, cfg.Step, cfg.StepDuration = true, 6, 3, 2*time.Second
	rep, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Steps) == 0 || rep.KneeWhy == "" {
		t.Fatalf("no steps or no reason: %+v", rep)
	}
	// Six viewers on loopback stay far below any limit: both steps are good.
	if rep.Knee != 6 || len(rep.Steps) != 2 || rep.Steps[1].Viewers != 6 {
		t.Fatalf("knee %d after %d steps (%s), want 6 after 2", rep.Knee, len(rep.Steps), rep.KneeWhy)
	}
}

// A viewer refused by the server is counted as failed with its first error, not as connected.
func TestRunCountsRefusedViewers(t *testing.T) {
	server := startNode(t)
	cfg := smallConfig(server, false)
	cfg.Viewers, cfg.Duration = 2, time.Second
	good := testToken("bench")
	cfg.Token = func(id string, publish, admin bool) (string, error) {
		if !publish {
			return good(id, true, false) // a publish-only token cannot watch
		}
		return good(id, publish, admin)
	}
	rep, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Connected != 0 || rep.Failed != 2 || len(rep.Failures) != 1 || rep.Failures[0].Count != 2 {
		t.Fatalf("report %+v: want both viewers failed, one kind", rep)
	}
	if f := rep.Failures[0]; f.Kind != "whep 403" || !strings.Contains(f.First, "subscrib") {
		t.Fatalf("failure %+v", f)
	}
}

func TestRunProfileNeedsPprof(t *testing.T) {
	server := startNode(t) // no /debug/pprof here
	cfg := smallConfig(server, false)
	cfg.Viewers, cfg.Duration, cfg.ProfileDir = 1, time.Second, filepath.Join(t.TempDir(), "prof")
	_, err := Run(context.Background(), cfg)
	if err == nil || !strings.Contains(err.Error(), "--pprof") {
		t.Fatalf("err %v: want a hint about --pprof", err)
	}
}

func TestConfigRefused(t *testing.T) {
	base := Config{Server: "http://127.0.0.1:1", Room: "r", Source: Source{Kind: "pattern"}, Viewers: 1, Publishers: 1, Rate: 1, Duration: time.Second, Token: testToken("r")}
	cases := map[string]func(*Config){
		"server":     func(c *Config) { c.Server = "ftp://x" },
		"room":       func(c *Config) { c.Room = "a/b" },
		"viewers":    func(c *Config) { c.Viewers = 0 },
		"too many":   func(c *Config) { c.Viewers = MaxViewers + 1 },
		"publishers": func(c *Config) { c.Publishers = 0 },
		"rate":       func(c *Config) { c.Rate = 0 },
		"duration":   func(c *Config) { c.Duration = 0 },
		"source":     func(c *Config) { c.Source = Source{Kind: "mp4"} },
		"no file":    func(c *Config) { c.Source = Source{Kind: "ivf"} },
		"bad file":   func(c *Config) { c.Source = Source{Kind: "ivf", Path: "/nonexistent.ivf"} },
		"pid":        func(c *Config) { c.ServerPID = 1 << 30 },
		"find-max":   func(c *Config) { c.FindMax = true },
	}
	for name, mod := range cases {
		c := base
		mod(&c)
		if _, err := Run(context.Background(), c); !errors.Is(err, ErrConfig) {
			t.Errorf("%s: err %v, want ErrConfig", name, err)
		}
	}
}
