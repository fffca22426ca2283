package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/cascade-sfu/cascade/pkg/lab/topology"
)

func TestExperimentBadCommandLines(t *testing.T) {
	env := func(string) string { return "" }
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--duration", "1s"}, "--duration 1s must be in"},
		{[]string{"--scenarios", "1,5"}, `"5" is not a scenario`},
		{[]string{"--publish-node", "http://127.0.0.1:1"}, "go together"},
		{[]string{"--publish-node", "http://127.0.0.1:1", "--subscribe-node", "http://127.0.0.1:2", "--scenarios", "1"}, "for the lab"},
		{[]string{"--publish-node", "ftp://x", "--subscribe-node", "http://127.0.0.1:2"}, "node URL"},
		{[]string{"--ivf", "a.ivf"}, "--ivf and --ogg go together"},
		{[]string{"extra"}, "unexpected argument"},
	} {
		var out, errb bytes.Buffer
		code := run(append([]string{"experiment"}, tc.args...), env, &out, &errb)
		if code != exitUsage || !strings.Contains(errb.String(), tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want exit %d and %q", tc.args, code, errb.String(), exitUsage, tc.want)
		}
	}
	// Live mode without credentials: a clear usage error before any traffic.
	var out, errb bytes.Buffer
	if code := run([]string{"experiment", "--publish-node", "http://127.0.0.1:1", "--subscribe-node", "http://127.0.0.1:2"}, env, &out, &errb); code != exitUsage ||
		!strings.Contains(errb.String(), "no API key and secret") {
		t.Errorf("no credentials: exit %d, %q", code, errb.String())
	}
}

// TestScenarioNeedsLinks: a topology without the sgp–hcm link cannot run scenario 1; the error
// names the link and the line.
func TestScenarioNeedsLinks(t *testing.T) {
	topo, err := topology.Parse("t.yaml", []byte(`sites:
  eu:      {node: {region: eu,  lat: 52.37, lon: 4.90}, redis: true}
  sgp:     {node: {region: sgp, lat: 1.35,  lon: 103.82}}
  hcm:     {node: {region: hcm, lat: 10.82, lon: 106.63}}
  eu-peer: {client: true}
  vn-peer: {client: true}
links:
  - {between: [eu, sgp],      delay: 80ms}
  - {between: [eu, hcm],      delay: 110ms}
  - {between: [eu-peer, eu],  delay: 2ms}
  - {between: [eu-peer, sgp], delay: 82ms}
  - {between: [eu-peer, hcm], delay: 112ms}
  - {between: [vn-peer, hcm], delay: 3ms}
`))
	if err != nil {
		t.Fatal(err)
	}
	all, err := pickScenarios("1,2,3,4")
	if err != nil {
		t.Fatal(err)
	}
	if err := checkScenarios(topo, all[1:2]); err != nil {
		t.Fatalf("scenario 2 refused: %v", err)
	}
	err = checkScenarios(topo, all[:1])
	if err == nil || !strings.Contains(err.Error(), "scenario 1") || !strings.Contains(err.Error(), "no link between sgp and hcm") {
		t.Fatalf("scenario 1 without sgp–hcm: %v", err)
	}
	if err := checkScenarios(topo, all[2:3]); err == nil || !strings.Contains(err.Error(), "vn-peer and sgp") {
		t.Fatalf("scenario 3 without vn-peer–sgp: %v", err)
	}
	if err := checkScenarios(topo, all[3:4]); err != nil {
		t.Fatalf("scenario 4 (eu–hcm direct exists): %v", err)
	}
}
