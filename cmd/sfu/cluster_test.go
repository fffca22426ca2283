package main

import (
	"testing"
	"time"

	"github.com/cascade-sfu/cascade/pkg/cluster"
)

func TestCheapestHop(t *testing.T) {
	ms := time.Millisecond
	cases := []struct {
		name    string
		direct  time.Duration
		through map[cluster.NodeID]time.Duration
		want    cluster.NodeID
	}{
		{"no third node", 200 * ms, nil, "hcm"},
		// Europe → Singapore → Ho Chi Minh City (160 + 30 ms) beats a 260 ms direct path.
		{"through sgp is shorter", 260 * ms, map[cluster.NodeID]time.Duration{"sgp": 190 * ms}, "sgp"},
		{"not 20% shorter", 220 * ms, map[cluster.NodeID]time.Duration{"sgp": 190 * ms}, "hcm"},
		{"the shortest of several", 400 * ms, map[cluster.NodeID]time.Duration{"sgp": 250 * ms, "hkg": 230 * ms, "bom": 300 * ms}, "hkg"},
	}
	for _, c := range cases {
		if got := cheapestHop("hcm", c.direct, c.through); got != c.want {
			t.Errorf("%s: %s, want %s", c.name, got, c.want)
		}
	}
}

func TestRelayViaParsing(t *testing.T) {
	got, err := parseRelayVia("hcm=sgp, eu=sgp")
	if err != nil || got["hcm"] != "sgp" || got["eu"] != "sgp" {
		t.Fatalf("%v %v", got, err)
	}
	for _, bad := range []string{"hcm", "hcm=hcm", "=sgp", "hcm=s g", "hcm=sgp,"} {
		if _, err := parseRelayVia(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	if checkRelayVia("auto") != nil {
		t.Error("auto refused")
	}
}
