package lab

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cascade-sfu/cascade/pkg/lab/topology"
)

// TestUpDefaultTopology brings up the default topology with the real sfu
// binary and redis-server, checks that the three nodes form a cluster over
// the emulated WAN (each lists all three active, the relay links' RTTs
// reflect the topology), then closes it and checks nothing is left.
func TestUpDefaultTopology(t *testing.T) {
	needLab(t)
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Fatalf("redis-server is needed (apt-get install redis-server): %v", err)
	}
	sfu := filepath.Join(t.TempDir(), "sfu")
	if out, err := exec.Command("go", "build", "-o", sfu, "../../cmd/sfu").CombinedOutput(); err != nil {
		t.Fatalf("build sfu: %v\n%s", err, out)
	}
	top, err := topology.Load("../../deploy/lab/eu-sgp-hcm.yaml")
	if err != nil {
		t.Fatal(err)
	}
	opts := testOpts(t)
	opts.SFUBinary = sfu
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	l, err := Up(ctx, top, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()

	// Every node sees all three active (Up waited for it); check it from a client site across the WAN.
	var nl NodeList
	if err := l.GetJSON(ctx, "vn-peer", "hcm", "/v1/nodes", &nl); err != nil {
		t.Fatal(err)
	}
	if nl.From != "hcm" || len(nl.Nodes) != 3 {
		t.Fatalf("hcm's view from vn-peer: %+v", nl)
	}
	// vn-peer reaches eu over its direct link too.
	if err := l.GetJSON(ctx, "vn-peer", "eu", "/v1/nodes", &nl); err != nil {
		t.Fatalf("vn-peer → eu is linked but failed: %v", err)
	}
	// Relay links are prewarmed: eu measures about 160 ms to sgp and 220 ms to hcm.
	var full struct {
		Nodes []struct {
			ID        string             `json:"id"`
			LinkRTTMs map[string]float64 `json:"link_rtt_ms"`
		} `json:"nodes"`
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		if err := l.GetJSON(ctx, "eu", "eu", "/v1/nodes", &full); err != nil {
			t.Fatal(err)
		}
		var rtt map[string]float64
		for _, n := range full.Nodes {
			if n.ID == "eu" {
				rtt = n.LinkRTTMs
			}
		}
		if rtt["sgp"] > 0 && rtt["hcm"] > 0 {
			t.Logf("eu's relay link RTTs: %v", rtt)
			if rtt["sgp"] < 150 || rtt["sgp"] > 200 || rtt["hcm"] < 195 || rtt["hcm"] > 270 {
				t.Errorf("relay RTTs %v, want sgp ≈160 ms and hcm ≈220 ms", rtt)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("eu has no measured relay links after 60 s: %v", rtt)
		}
		time.Sleep(time.Second)
	}
	// Command runs inside a site's namespace.
	out, err := l.Command(ctx, "vn-peer", "ip", "-4", "-o", "addr", "show", "dev", "lab0").Output()
	if err != nil || !strings.Contains(string(out), l.Addr("vn-peer").String()+"/24") {
		t.Fatalf("Command in vn-peer: %v %s", err, out)
	}

	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	assertNothingLeft(t, opts.Prefix)
	for _, p := range l.st.Procs {
		if alive(p.PID) {
			t.Errorf("%s of %s (pid %d) still runs", p.Name, p.Site, p.PID)
		}
	}
	if _, err := os.Stat(filepath.Join(opts.StateDir, stateFile)); !os.IsNotExist(err) {
		t.Errorf("state file left: %v", err)
	}
}
