package e2e

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/cascade-sfu/cascade/pkg/auth"
	"github.com/cascade-sfu/cascade/pkg/cluster/redistest"
)

// dashboardTTL is the nodes' --health-ttl in the dashboard test: a killed node must show
// failed within it plus 2 s.
const dashboardTTL = 3 * time.Second

// artifactsDir is where tests keep what outlives them (screenshots): $CASCADE_TEST_ARTIFACTS,
// else <tmp>/cascade-artifacts.
func artifactsDir(t *testing.T) string {
	dir := os.Getenv("CASCADE_TEST_ARTIFACTS")
	if dir == "" {
		dir = filepath.Join(os.TempDir(), "cascade-artifacts")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatalf("artifacts dir: %v", err)
	}
	return dir
}

// dashState is what the page shows, read from its data attributes.
type dashState struct {
	Conn  string            `json:"conn"`
	Nodes map[string]string `json:"nodes"` // data-node → data-state (table rows)
	Links []string          `json:"links"` // data-link
}

const readDashboard = `(() => {
	const nodes = {};
	document.querySelectorAll("#nodes [data-node]").forEach(e => { nodes[e.dataset.node] = e.dataset.state; });
	const links = [...document.querySelectorAll("[data-link]")].map(e => e.dataset.link);
	const c = document.getElementById("conn");
	return {conn: c ? c.dataset.conn : "", nodes, links};
})()`

// TestChromiumDashboardShowsFailedNode runs three nodes with Redis and Serf, opens /dashboard
// on a (logging in with ?token=), and checks what an operator sees without reloading: three
// active nodes; a relay link once a room spans a and b; c draining after SIGTERM while it holds
// a session, then gone once it has left; b failed within the health TTL + 2 s of kill -9.
func TestChromiumDashboardShowsFailedNode(t *testing.T) {
	chromiumPath(t) // skip early, before building anything
	rdb := redistest.Start(t)
	redisURL := "redis://" + rdb.Addr() + "/0"
	sites := []site{amsterdam, hoChiMinh, saoPaulo}
	c := &testCluster{sites: sites, nodes: map[string]*node{}}
	var seed string
	for _, s := range sites {
		gossip := freeGossipAddr(t)
		args := []string{"--node-id", s.id, "--region", s.id,
			"--lat", strconv.FormatFloat(s.lat, 'f', -1, 64), "--lon", strconv.FormatFloat(s.lon, 'f', -1, 64),
			"--redis", redisURL, "--serf-bind", gossip, "--health-ttl", dashboardTTL.String(),
			"--drain-timeout", "6s", "--log-level", "info"}
		if seed == "" {
			seed = gossip
		} else {
			args = append(args, "--join", seed)
		}
		c.nodes[s.id] = startNode(t, args...)
	}
	for _, from := range sites {
		for _, to := range sites {
			if from.id != to.id {
				waitRoute(t, c.nodes[from.id], to.location().Encode(), c.nodes[to.id])
			}
		}
	}
	browser := startSpanBrowser(t)
	tok, err := auth.Sign(auth.DevAPIKey, auth.DevAPISecret, auth.Grants{Identity: "operator", ClusterAdmin: true}, time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	dash := openPage(t, browser, "dashboard", c.nodes["a"].URL("/dashboard?"+url.Values{"token": {tok}}.Encode()))
	shots := artifactsDir(t)
	shot := func(label string) {
		ctx, cancel := context.WithTimeout(dash.ctx, 10*time.Second)
		defer cancel()
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Logf("screenshot: %v", err)
			return
		}
		file := filepath.Join(shots, fmt.Sprintf("%s-%s-%d.png", strings.ReplaceAll(t.Name(), "/", "_"), label, time.Now().UnixNano()))
		if err := os.WriteFile(file, png, 0o644); err != nil {
			t.Logf("screenshot: %v", err)
			return
		}
		t.Logf("dashboard screenshot (%s): %s", label, file)
	}
	t.Cleanup(func() {
		if t.Failed() {
			shot("failure")
			t.Log("\n" + dash.console.String())
		}
	})
	read := func() dashState {
		s, err := eval[dashState](dash, readDashboard)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	waitDash := func(timeout time.Duration, what string, ok func(dashState) bool) dashState {
		t.Helper()
		var s dashState
		waitFor(t, timeout, what, func() (bool, string, error) {
			s = read()
			return ok(s), fmt.Sprintf("%+v", s), nil
		})
		return s
	}

	waitDash(20*time.Second, "three active nodes", func(s dashState) bool {
		return s.Conn == "connected" && s.Nodes["a"] == "active" && s.Nodes["b"] == "active" && s.Nodes["c"] == "active"
	})
	if href, err := eval[string](dash, `location.href`); err != nil || strings.Contains(href, "token") {
		t.Fatalf("the token stays in the address bar: %q %v", href, err)
	}

	// A room spanning a and b: a relay link shows.
	room := fmt.Sprintf("e2e-dash-%d", time.Now().UnixNano())
	c.openOnSite(t, browser, amsterdam, room, "alice")
	c.openOnSite(t, browser, hoChiMinh, room, "bob")
	waitDash(30*time.Second, "a relay link between a and b", func(s dashState) bool {
		for _, l := range s.Links {
			if l == "a>b" || l == "b>a" {
				return true
			}
		}
		return false
	})

	// c drains while carol's session lives on: draining; after its drain timeout it leaves.
	c.openOnSite(t, browser, saoPaulo, room+"-c", "carol")
	if err := c.nodes["c"].cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	waitDash(10*time.Second, "c draining", func(s dashState) bool { return s.Nodes["c"] == "draining" })
	shot("draining")

	// kill -9 b: failed within the health TTL + 2 s, without a reload.
	killed := time.Now()
	if err := c.nodes["b"].cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	s := waitDash(30*time.Second, "b failed", func(s dashState) bool { return s.Nodes["b"] == "failed" })
	took := time.Since(killed)
	t.Logf("b shown failed %v after kill -9 (health TTL %v)", took.Round(10*time.Millisecond), dashboardTTL)
	if took > dashboardTTL+2*time.Second {
		t.Errorf("b shown failed after %v, want within %v", took, dashboardTTL+2*time.Second)
	}
	if s.Nodes["a"] != "active" {
		t.Errorf("a is %q once b failed", s.Nodes["a"])
	}
	shot("failed")

	// c left gracefully: it goes from the view, not failed; b stays failed meanwhile.
	waitDash(30*time.Second, "c gone after draining, b still failed", func(s dashState) bool {
		_, hasC := s.Nodes["c"]
		return !hasC && s.Nodes["b"] == "failed"
	})

	// On a phone-sized screen the page does not scroll sideways (wide tables scroll in place)
	// and the state is still written out.
	ctx, cancel := context.WithTimeout(dash.ctx, 10*time.Second)
	_, err = chromedp.Run(ctx, chromedp.EmulateViewport(375, 800))
	cancel()
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "no sideways scrolling at 375 px", func() (bool, string, error) {
		w, err := eval[int](dash, `document.documentElement.scrollWidth`)
		return err == nil && w <= 375, fmt.Sprintf("scrollWidth %d", w), err
	})
	if txt, err := eval[string](dash, `document.querySelector('#nodes [data-node="b"]').innerText`); err != nil || !strings.Contains(txt, "failed") {
		t.Errorf("b's row does not say failed: %q %v", txt, err)
	}
	shot("phone")
}
