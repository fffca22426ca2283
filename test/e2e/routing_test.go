package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/cascade-sfu/cascade/pkg/cluster"
	"github.com/cascade-sfu/cascade/pkg/cluster/redistest"
)

// routeAnswer is the JSON of GET /v1/route.
type routeAnswer struct {
	NodeID       string  `json:"node_id"`
	Region       string  `json:"region"`
	URL          string  `json:"url"`
	Source       string  `json:"source"`
	DistanceKm   float64 `json:"distance_km"`
	Alternatives []struct {
		NodeID string `json:"node_id"`
		URL    string `json:"url"`
	} `json:"alternatives"`
}

// pageRoute is what window.cascade.route() returns on the demo page.
type pageRoute struct {
	URL    string   `json:"url"`
	NodeID string   `json:"nodeId"`
	Region string   `json:"region"`
	Method string   `json:"method"`
	Source string   `json:"source"`
	RTTMs  *float64 `json:"rttMs"`
	WsURL  string   `json:"wsURL"`
	Error  string   `json:"error"`
	Probes []struct {
		NodeID string   `json:"nodeId"`
		URL    string   `json:"url"`
		RTTMs  *float64 `json:"rttMs"`
		Error  string   `json:"error"`
	} `json:"probes"`
}

// TestChromiumRoutesToNearestNode runs a cluster of two nodes, a in Amsterdam
// and b in Ho Chi Minh City, sharing one Redis and one gossip ring. A page
// served by node a for a client in Ho Chi Minh City must follow /v1/route and
// hold its session on node b. A second page with probe=1 must time both
// nodes from the browser (cross-origin) and hold its session on the node the
// probe chose. A third page whose route fails must fall back to its origin.
func TestChromiumRoutesToNearestNode(t *testing.T) {
	chromiumPath(t) // skip early, before building anything
	rdb := redistest.Start(t)
	redisURL := "redis://" + rdb.Addr() + "/0"
	gossipA, gossipB := freeGossipAddr(t), freeGossipAddr(t)
	a := startNode(t, "--node-id", "a", "--region", "a", "--lat", "52.37", "--lon", "4.90",
		"--redis", redisURL, "--serf-bind", gossipA)
	b := startNode(t, "--node-id", "b", "--region", "b", "--lat", "10.82", "--lon", "106.63",
		"--redis", redisURL, "--serf-bind", gossipB, "--join", gossipA)
	nodes := map[string]*node{"a": a, "b": b}
	// Where each page's session is held, read from the cluster's room state:
	// every node also shows the room's participants of the other node (as
	// relay proxies), so the nodes' own participant counts cannot tell.
	store := cluster.NewRedisStore(rdb.Client(), cluster.RedisStoreOptions{})

	// Both nodes must know each other before a client is routed.
	waitRoute(t, a, "lat=10.8&lon=106.7", b)
	waitRoute(t, b, "lat=52.37&lon=4.90", a)

	browserLog := &syncBuffer{}
	browser := startBrowser(t, browserLog)
	t.Cleanup(func() {
		if s := browserLog.String(); s != "" && (t.Failed() || os.Getenv("CASCADE_E2E_VERBOSE") == "1") {
			t.Logf("chromedp log:\n%s", s)
		}
	})
	room := fmt.Sprintf("e2e-route-%d", time.Now().UnixNano())
	pageURL := func(name string, extra url.Values) string {
		q := url.Values{"room": {room}, "name": {name}, "autojoin": {"1"}, "lat": {"10.8"}, "lon": {"106.7"}}
		for k, v := range extra {
			q[k] = v
		}
		return a.URL("/?" + q.Encode())
	}

	// 1. Geography: the page on node a's origin joins on node b.
	carol := openRoutedPage(t, browser, "carol", pageURL("carol", nil))
	waitJoined(t, carol, 20*time.Second)
	r, err := eval[pageRoute](carol, `window.cascade.route()`)
	if err != nil {
		t.Fatal(err)
	}
	if r.NodeID != "b" || r.Region != "b" || r.Method != "route" || r.Source != "explicit" || r.URL != b.URL("") {
		t.Errorf("carol's route = %+v, want node b (region b, %s) chosen by route from an explicit location", r, b.URL(""))
	}
	if want := "ws://" + b.addr + "/v1/rtc"; r.WsURL != want {
		t.Errorf("carol's WebSocket = %q, want %q (node b, not the page's origin %s)", r.WsURL, want, a.URL(""))
	}
	header := nodeLabel(t, carol)
	if header.Hidden || !strings.Contains(header.Text, "node b") || !strings.Contains(header.Text, "route") {
		t.Errorf("carol's header node label = %+v, want it to show node b and the method", header)
	}
	waitOccupants(t, store, room, map[string]string{"carol": "b"})

	// 2. Probing: the page times both nodes and joins the faster one. On
	// loopback either may win; what matters is that both were measured from
	// a page on a's origin and that the session is on the winner.
	dave := openRoutedPage(t, browser, "dave", pageURL("dave", url.Values{"probe": {"1"}}))
	waitJoined(t, dave, 20*time.Second)
	r, err = eval[pageRoute](dave, `window.cascade.route()`)
	if err != nil {
		t.Fatal(err)
	}
	chosen := nodes[r.NodeID]
	if r.Method != "probe" || r.RTTMs == nil || *r.RTTMs < 0 || chosen == nil || r.URL != chosen.URL("") {
		t.Fatalf("dave's route = %+v, want a probe choice of node a or b with its RTT", r)
	}
	if want := "ws://" + chosen.addr + "/v1/rtc"; r.WsURL != want {
		t.Errorf("dave's WebSocket = %q, want %q", r.WsURL, want)
	}
	probed := map[string]bool{}
	for _, p := range r.Probes {
		if p.RTTMs == nil || p.Error != "" {
			t.Errorf("dave's probe of %s (%s) failed: %s", p.NodeID, p.URL, p.Error)
			continue
		}
		probed[p.NodeID] = true
		if *p.RTTMs < *r.RTTMs {
			t.Errorf("dave chose %s (%v ms) though %s answered in %v ms", r.NodeID, *r.RTTMs, p.NodeID, *p.RTTMs)
		}
	}
	if !probed["a"] || !probed["b"] {
		t.Errorf("dave's probes = %+v, want both nodes measured", r.Probes)
	}
	header = nodeLabel(t, dave)
	if header.Hidden || !strings.Contains(header.Text, "node "+r.NodeID) || !strings.Contains(header.Text, "probe") || !strings.Contains(header.Text, "ms") {
		t.Errorf("dave's header node label = %+v, want node %s, probe and its RTT", header, r.NodeID)
	}
	want := map[string]string{"carol": "b", "dave": r.NodeID}
	waitOccupants(t, store, room, want)

	// 3. Fallback: when /v1/route fails (here 400, for coordinates out of
	// range) the page warns and joins on its own origin, node a.
	erin := openRoutedPage(t, browser, "erin", pageURL("erin", url.Values{"lat": {"999"}}))
	waitJoined(t, erin, 20*time.Second)
	r, err = eval[pageRoute](erin, `window.cascade.route()`)
	if err != nil {
		t.Fatal(err)
	}
	if r.Method != "fallback" || r.URL != a.URL("") || r.WsURL != "ws://"+a.addr+"/v1/rtc" || !strings.Contains(r.Error, "400") {
		t.Errorf("erin's route = %+v, want a fallback to node a after HTTP 400", r)
	}
	waitFor(t, 5*time.Second, "erin's console warns about the fallback", func() (bool, string, error) {
		c := erin.console.String()
		return strings.Contains(c, "warning") && strings.Contains(c, "connecting to "+a.URL("")+" itself"), c, nil
	})
	if header := nodeLabel(t, erin); header.Hidden || !strings.Contains(header.Text, "no route") {
		t.Errorf("erin's header node label = %+v, want the fallback shown", header)
	}
	want["erin"] = "a"
	waitOccupants(t, store, room, want)
}

// openRoutedPage opens a page and, when the test fails, reports its state,
// route and console before the tab closes.
func openRoutedPage(t *testing.T, browser context.Context, name, pageURL string) *page {
	t.Helper()
	p := openPage(t, browser, name, pageURL)
	t.Cleanup(func() { // runs before openPage's cleanup closes the tab
		p.screenshot(t, "end")
		if t.Failed() || os.Getenv("CASCADE_E2E_VERBOSE") == "1" {
			t.Log("\n" + p.describe())
		}
	})
	return p
}

// waitRoute polls GET /v1/route?query on from until it names want.
func waitRoute(t *testing.T, from *node, query string, want *node) {
	t.Helper()
	client := &http.Client{Timeout: 2 * time.Second}
	waitFor(t, 15*time.Second, fmt.Sprintf("%s routes ?%s to %s", from.addr, query, want.addr), func() (bool, string, error) {
		res, err := client.Get(from.URL("/v1/route?" + query))
		if err != nil {
			return false, err.Error(), nil
		}
		defer res.Body.Close()
		body, _ := io.ReadAll(res.Body)
		if res.StatusCode != http.StatusOK {
			return false, fmt.Sprintf("HTTP %d: %s", res.StatusCode, body), nil
		}
		if res.Header.Get("Access-Control-Allow-Origin") != "*" {
			return false, "", fmt.Errorf("/v1/route without CORS: %v", res.Header)
		}
		var r routeAnswer
		if err := json.Unmarshal(body, &r); err != nil {
			return false, "", fmt.Errorf("/v1/route: %w: %s", err, body)
		}
		return r.URL == want.URL(""), string(body), nil
	})
}

// nodeLabel returns the node shown in the page's header.
func nodeLabel(t *testing.T, p *page) (label struct {
	Hidden bool   `json:"hidden"`
	Text   string `json:"text"`
}) {
	t.Helper()
	label, err := eval[struct {
		Hidden bool   `json:"hidden"`
		Text   string `json:"text"`
	}](p, `(() => { const el = document.getElementById('node-label'); return el ? {hidden: el.hidden, text: el.textContent} : {hidden: true, text: ''}; })()`)
	if err != nil {
		t.Fatal(err)
	}
	return label
}

// freeGossipAddr returns a loopback address whose port was free for both TCP
// and UDP a moment ago (the gossip layer listens on both).
func freeGossipAddr(t *testing.T) string {
	t.Helper()
	for range 20 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		u, err := net.ListenPacket("udp", addr)
		l.Close()
		if err == nil {
			u.Close()
			return addr
		}
	}
	t.Fatal("no port free for both TCP and UDP")
	return ""
}
