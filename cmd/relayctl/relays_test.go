package main

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/cascade-sfu/cascade/pkg/api"
	"github.com/cascade-sfu/cascade/pkg/auth"
	"github.com/cascade-sfu/cascade/pkg/cluster"
	"github.com/cascade-sfu/cascade/pkg/relay"
	"github.com/cascade-sfu/cascade/pkg/rtc"
)

type fakeRelays []relay.LinkInfo

func (f fakeRelays) Links() []relay.LinkInfo { return f }

// apiServer serves node "eu"'s API, which accepts tokens signed with testKey and testSecret,
// in process.
func apiServer(t *testing.T, links api.RelaySource) *httptest.Server {
	t.Helper()
	v, err := auth.NewVerifier(map[string]string{testKey: testSecret})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	api.New(api.Config{
		Self:     func() cluster.Node { return cluster.Node{ID: "eu", State: cluster.StateActive} },
		Verifier: v, Relays: links,
	}).Register(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

var testLinks = fakeRelays{
	{
		Peer: "hcm", ID: "abc", Offerer: true, State: relay.StateOpen, Created: time.Now().Add(-time.Minute),
		OpenedAfter: 412 * time.Millisecond, RTT: 181250 * time.Microsecond,
		BytesSent: 3 << 20, BytesReceived: 1536, SendBitrate: 2_500_000, RecvBitrate: 64_000, BandwidthEstimate: 3_000_000,
		PausedLayers: 2, LossOut: 0.031,
	},
	{Peer: "sgp", ID: "def", State: relay.StateConnecting, Created: time.Now(), BytesSent: 300},
	{Peer: "us", ID: "ghi", State: relay.StateOpen, BandwidthEstimate: rtc.RelayMaxBitrate},
}

func TestRelaysTable(t *testing.T) {
	srv := apiServer(t, testLinks)
	res := runArgs(t, nil, "--server", srv.URL, "relays", "--api-key", testKey, "--api-secret", testSecret)
	if res.code != exitOK {
		t.Fatalf("exit %d, stderr %q", res.code, res.stderr)
	}
	lines := strings.Split(strings.TrimRight(res.stdout, "\n"), "\n")
	if len(lines) != 4 {
		t.Fatalf("want a header and three links:\n%s", res.stdout)
	}
	t.Logf("\n%s", res.stdout)
	for i, want := range [][]string{
		{"PEER (FROM eu)", "STATE", "RTT", "OUT kbps", "IN kbps", "ESTIMATE kbps", "PAUSED", "LOSS OUT", "SENT", "RECEIVED", "SET-UP"},
		{"hcm", "open", "181.2 ms", "2500.0", "64.0", "3000", "2", "3.1%", "3.0 MiB", "1.5 KiB", "412 ms"},
		{"sgp", "connecting", "-", "0.0", "0.0", "-", "0", "0.0%", "300 B", "0 B", "-"},
		{"us", "open", "-", "0.0", "0.0", "unlimited", "0", "0.0%", "0 B", "0 B", "0 ms"},
	} {
		if !containsInOrder(lines[i], want) {
			t.Errorf("line %d = %q, want cells %q", i, lines[i], want)
		}
	}
}

// containsInOrder reports whether line has the cells in order, each followed by column padding.
func containsInOrder(line string, cells []string) bool {
	rest := line
	for i, c := range cells {
		j := strings.Index(rest, c)
		if j < 0 || (i == 0 && j != 0) {
			return false
		}
		rest = rest[j+len(c):]
		if i < len(cells)-1 && !strings.HasPrefix(rest, "  ") {
			return false
		}
	}
	return strings.TrimSpace(rest) == ""
}

func TestRelaysJSON(t *testing.T) {
	srv := apiServer(t, testLinks)
	env := map[string]string{envServer: srv.URL, envAPIKey: testKey, envAPISecret: testSecret}
	res := runArgs(t, env, "relays", "--json")
	if res.code != exitOK {
		t.Fatalf("exit %d, stderr %q", res.code, res.stderr)
	}
	var out api.Relays
	if err := json.Unmarshal([]byte(res.stdout), &out); err != nil {
		t.Fatalf("--json printed %q: %v", res.stdout, err)
	}
	if out.From != "eu" || len(out.Links) != 3 || out.Links[0].EstimateBps != 3_000_000 || out.Links[0].PausedLayers != 2 || out.Links[1].RTTMs != nil {
		t.Fatalf("--json: %+v", out)
	}
}

func TestRelaysWithoutLinks(t *testing.T) {
	srv := apiServer(t, nil)
	res := runArgs(t, nil, "--server", srv.URL, "relays", "--api-key", testKey, "--api-secret", testSecret)
	if res.code != exitOK || strings.Count(res.stdout, "\n") != 1 || !strings.HasPrefix(res.stdout, "PEER (FROM eu)") {
		t.Fatalf("exit %d, stdout %q, stderr %q; want the header only", res.code, res.stdout, res.stderr)
	}
}

func TestRelaysErrors(t *testing.T) {
	srv := apiServer(t, testLinks)
	// A key the server does not know: 401, reported on stderr.
	res := runArgs(t, nil, "--server", srv.URL, "relays", "--api-key", "other", "--api-secret", "another-long-enough-secret")
	if res.code != exitError || res.stdout != "" || !strings.Contains(res.stderr, "401") {
		t.Errorf("unknown key: exit %d, stdout %q, stderr %q", res.code, res.stdout, res.stderr)
	}
	res = runArgs(t, nil, "--server", srv.URL, "relays", "--dev", "extra")
	if res.code != exitUsage || !strings.Contains(res.stderr, "unexpected arguments") {
		t.Errorf("extra argument: exit %d, stderr %q", res.code, res.stderr)
	}
	res = runArgs(t, nil, "relays", "--help")
	if res.code != exitOK || !strings.Contains(res.stdout, "relayctl [--server URL] relays [--json]") {
		t.Errorf("help: exit %d, stdout %q", res.code, res.stdout)
	}
	if res = runArgs(t, nil, "--help"); !strings.Contains(res.stdout, "relays") {
		t.Errorf("global help does not list relays:\n%s", res.stdout)
	}
}

func TestByteSize(t *testing.T) {
	for n, want := range map[uint64]string{
		0: "0 B", 1023: "1023 B", 1024: "1.0 KiB", 1536: "1.5 KiB", 5 << 20: "5.0 MiB", 3 << 30: "3.0 GiB",
		1 << 40: "1.0 TiB", 1 << 50: "1.0 PiB", 1 << 60: "1024.0 PiB",
	} {
		if got := byteSize(n); got != want {
			t.Errorf("byteSize(%d) = %q, want %q", n, got, want)
		}
	}
}
