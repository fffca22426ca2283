package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/cascade-sfu/cascade/pkg/api"
	"github.com/cascade-sfu/cascade/pkg/auth"
	"github.com/cascade-sfu/cascade/pkg/cluster"
)

// nodesServer serves node "eu"'s API over a registry that also holds sgp, which measured its
// links to eu and hcm, and hcm, which has no link.
func nodesServer(t *testing.T) *httptest.Server {
	t.Helper()
	reg := cluster.NewMemoryRegistry()
	for _, n := range []cluster.Node{
		{ID: "sgp", Region: "sgp", State: cluster.StateActive, LinkRTT: map[cluster.NodeID]time.Duration{
			"hcm": 30250 * time.Microsecond, "eu": 160 * time.Millisecond,
		}},
		{ID: "hcm", Region: "hcm", State: cluster.StateDraining},
	} {
		if _, err := reg.Register(context.Background(), n, time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	v, err := auth.NewVerifier(map[string]string{testKey: testSecret})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	api.New(api.Config{
		Self: func() cluster.Node {
			return cluster.Node{ID: "eu", Region: "eu", State: cluster.StateActive, LinkRTT: map[cluster.NodeID]time.Duration{"sgp": 161 * time.Millisecond}}
		},
		Registry: reg, Verifier: v,
	}).Register(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

func TestNodesTableShowsLinkRTT(t *testing.T) {
	srv := nodesServer(t)
	res := runArgs(t, nil, "--server", srv.URL, "nodes", "--api-key", testKey, "--api-secret", testSecret)
	if res.code != exitOK {
		t.Fatalf("exit %d, stderr %q", res.code, res.stderr)
	}
	t.Logf("\n%s", res.stdout)
	lines := strings.Split(strings.TrimRight(res.stdout, "\n"), "\n")
	if len(lines) != 4 || !strings.HasSuffix(lines[0], "RTT FROM eu  LINK RTT") {
		t.Fatalf("want a header ending in LINK RTT and three nodes:\n%s", res.stdout)
	}
	for _, want := range []string{"eu .* sgp=161.0ms$", "hcm .*draining.* -$", "sgp .* eu=160.0ms hcm=30.2ms$"} {
		found := false
		for _, l := range lines[1:] {
			if regexp.MustCompile(want).MatchString(l) {
				found = true
			}
		}
		if !found {
			t.Errorf("no line matches %q:\n%s", want, res.stdout)
		}
	}
}

func TestNodesJSONHasLinkRTT(t *testing.T) {
	srv := nodesServer(t)
	res := runArgs(t, nil, "--server", srv.URL, "nodes", "--json", "--api-key", testKey, "--api-secret", testSecret)
	var out api.Nodes
	if res.code != exitOK || json.Unmarshal([]byte(res.stdout), &out) != nil {
		t.Fatalf("exit %d, stdout %q, stderr %q", res.code, res.stdout, res.stderr)
	}
	got := map[string]map[string]float64{}
	for _, n := range out.Nodes {
		got[n.ID] = n.LinkRTTMs
	}
	if got["eu"]["sgp"] != 161 || got["sgp"]["hcm"] != 30.25 || got["sgp"]["eu"] != 160 || got["hcm"] == nil || len(got["hcm"]) != 0 {
		t.Fatalf("link_rtt_ms: %v\n%s", got, res.stdout)
	}
}
