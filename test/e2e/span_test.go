package e2e

import (
	"context"
	"fmt"
	"maps"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cascade-sfu/cascade/pkg/cluster"
	"github.com/cascade-sfu/cascade/pkg/cluster/redistest"
)

// site is one node of a test cluster and where it stands.
type site struct {
	id       string
	lat, lon float64
}

// The places of the span tests' nodes, far enough apart that a client at one
// of them is routed to its own node whatever room affinity says.
var (
	amsterdam   = site{id: "a", lat: 52.37, lon: 4.90}
	hoChiMinh   = site{id: "b", lat: 10.82, lon: 106.63}
	saoPaulo    = site{id: "c", lat: -23.55, lon: -46.63}
	spanTimeout = 30 * time.Second // for every page to decode every other page's video
)

// location returns the site's coordinates as /v1/route and the demo page take them.
func (s site) location() url.Values {
	return url.Values{
		"lat": {strconv.FormatFloat(s.lat, 'f', -1, 64)},
		"lon": {strconv.FormatFloat(s.lon, 'f', -1, 64)},
	}
}

// testCluster is a set of dev-mode nodes sharing one Redis and one gossip ring.
type testCluster struct {
	sites []site
	nodes map[string]*node
	store *cluster.RedisStore // the cluster's room state, read-only here
}

// startCluster starts a node at each site: all share a Redis and join the
// first node's gossip ring, and all run in --dev mode, so they share the dev
// API key and secret (which also sign the node-to-node bus). It returns once
// every node routes a client standing at any site to that site's node, so
// every node knows every other one. The nodes log at
// $CASCADE_E2E_LOG_LEVEL (default debug), shown when the test fails.
func startCluster(t *testing.T, sites ...site) *testCluster {
	t.Helper()
	rdb := redistest.Start(t)
	redisURL := "redis://" + rdb.Addr() + "/0"
	level := os.Getenv("CASCADE_E2E_LOG_LEVEL")
	if level == "" {
		level = "debug"
	}
	c := &testCluster{sites: sites, nodes: map[string]*node{}}
	var seed string
	for _, s := range sites {
		gossip := freeGossipAddr(t)
		args := []string{"--node-id", s.id, "--region", s.id,
			"--lat", strconv.FormatFloat(s.lat, 'f', -1, 64), "--lon", strconv.FormatFloat(s.lon, 'f', -1, 64),
			"--redis", redisURL, "--serf-bind", gossip, "--log-level", level}
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
	c.store = cluster.NewRedisStore(rdb.Client(), cluster.RedisStoreOptions{}) // the nodes' default prefix
	return c
}

// openOnSite opens the demo page on the site's node for a client standing at
// the site, joining room as name, and checks that the page routed itself to
// that node and holds its WebSocket there.
func (c *testCluster) openOnSite(t *testing.T, browser context.Context, s site, room, name string) *page {
	t.Helper()
	n := c.nodes[s.id]
	q := s.location()
	q.Set("room", room)
	q.Set("name", name)
	q.Set("autojoin", "1")
	p := openRoutedPage(t, browser, name, n.URL("/?"+q.Encode()))
	waitJoined(t, p, 20*time.Second)
	r, err := eval[pageRoute](p, `window.cascade.route()`)
	if err != nil {
		t.Fatal(err)
	}
	if r.NodeID != s.id || r.Method != "route" || r.Source != "explicit" || r.URL != n.URL("") {
		t.Fatalf("%s's route = %+v, want node %s (%s) chosen by route from an explicit location", name, r, s.id, n.URL(""))
	}
	if want := "ws://" + n.addr + "/v1/rtc"; r.WsURL != want {
		t.Fatalf("%s's WebSocket = %q, want %q (node %s)", name, r.WsURL, want, s.id)
	}
	return p
}

// waitOccupants waits until the cluster's room state holds exactly the wanted
// sessions of room: identity → the node that holds the session.
func waitOccupants(t *testing.T, store *cluster.RedisStore, room string, want map[string]string) {
	t.Helper()
	waitFor(t, 10*time.Second, fmt.Sprintf("room %s's sessions are on nodes %v", room, want), func() (bool, string, error) {
		ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
		defer cancel()
		occ, err := store.Occupants(ctx, room)
		if err != nil {
			return false, err.Error(), nil
		}
		got := map[string]string{}
		for _, o := range occ {
			got[o.Identity] = string(o.Node)
		}
		return maps.Equal(got, want), fmt.Sprintf("got %v", got), nil
	})
}

// waitDecodesEachOther waits until every page decodes the video of every
// other page's participant (named as the page is), reporting every page's
// stats when it times out.
func waitDecodesEachOther(t *testing.T, timeout time.Duration, pages ...*page) {
	t.Helper()
	names := make([]string, len(pages))
	for i, p := range pages {
		names[i] = p.name
	}
	waitFor(t, timeout, strings.Join(names, ", ")+" decode each other's video", func() (bool, string, error) {
		var report, missing []string
		for _, p := range pages {
			s, err := eval[stats](p, `window.cascade.stats()`)
			if err != nil {
				return false, "", err
			}
			for _, other := range pages {
				if other != p && !s.decodesVideoFrom(other.name) {
					missing = append(missing, p.name+" ← "+other.name)
				}
			}
			report = append(report, fmt.Sprintf("%s: %+v", p.name, s))
		}
		return len(missing) == 0, fmt.Sprintf("not decoded yet: %v\n%s", missing, strings.Join(report, "\n")), nil
	})
}

// checkChatAcrossNodes has each page send a message in turn, and waits until
// it reaches every page, its sender's included, before the next one is sent.
// Messages cross nodes through the relay; each node numbers what it delivers
// in its own order, which for messages sent one after the other is the same
// order everywhere. So every page must end with the same log: each message
// once, in sending order, in increasing seq.
func checkChatAcrossNodes(t *testing.T, pages ...*page) {
	t.Helper()
	type line struct{ From, Text string }
	var sent []line
	for _, from := range pages {
		text := "hello from " + from.name
		sendChat(t, from, text)
		for _, to := range pages {
			waitChat(t, to, from.name, text)
		}
		sent = append(sent, line{from.name, text})
	}
	for _, p := range pages {
		log, err := eval[[]chatEntry](p, `window.cascade.chatLog()`)
		if err != nil {
			t.Fatal(err)
		}
		var got []line
		for i, e := range log {
			got = append(got, line{e.From, e.Text})
			if i > 0 && log[i-1].Seq >= e.Seq {
				t.Errorf("%s's chat log is not in seq order: %+v", p.name, log)
			}
		}
		if !slices.Equal(got, sent) {
			t.Errorf("%s's chat log = %+v, want each message once, in sending order: %+v", p.name, log, sent)
		}
	}
}

// startSpanBrowser starts the browser for a span test, logging chromedp's
// output when the test fails.
func startSpanBrowser(t *testing.T) context.Context {
	t.Helper()
	browserLog := &syncBuffer{}
	browser := startBrowser(t, browserLog)
	t.Cleanup(func() {
		if s := browserLog.String(); s != "" && (t.Failed() || os.Getenv("CASCADE_E2E_VERBOSE") == "1") {
			t.Logf("chromedp log:\n%s", s)
		}
	})
	return browser
}

// TestChromiumPagesOnTwoNodesSeeEachOther runs nodes a (Amsterdam) and b (Ho
// Chi Minh City) in one cluster. alice's page is served by a for a client in
// Amsterdam and bob's by b for a client in Ho Chi Minh City, so each holds
// its session on its own node; both join one room, which therefore spans the
// two nodes. Each page must decode the other's video, relayed between the
// nodes, and chat messages must reach both pages, in one order.
func TestChromiumPagesOnTwoNodesSeeEachOther(t *testing.T) {
	chromiumPath(t) // skip early, before building anything
	c := startCluster(t, amsterdam, hoChiMinh)
	browser := startSpanBrowser(t)
	room := fmt.Sprintf("e2e-span2-%d", time.Now().UnixNano())

	alice := c.openOnSite(t, browser, amsterdam, room, "alice")
	bob := c.openOnSite(t, browser, hoChiMinh, room, "bob")
	waitOccupants(t, c.store, room, map[string]string{"alice": "a", "bob": "b"})

	waitDecodesEachOther(t, spanTimeout, alice, bob)
	for _, p := range []*page{alice, bob} {
		p.screenshot(t, "media")
	}
	checkChatAcrossNodes(t, alice, bob)
}

// TestChromiumThreePagesOnThreeNodes runs nodes a, b and c (Amsterdam, Ho Chi
// Minh City, São Paulo) with one page on each, all in one room: every page
// must decode both others' video, each relayed from another node, and chat
// messages must reach every page once (a relayed message is never relayed on).
func TestChromiumThreePagesOnThreeNodes(t *testing.T) {
	chromiumPath(t) // skip early, before building anything
	c := startCluster(t, amsterdam, hoChiMinh, saoPaulo)
	browser := startSpanBrowser(t)
	room := fmt.Sprintf("e2e-span3-%d", time.Now().UnixNano())

	alice := c.openOnSite(t, browser, amsterdam, room, "alice")
	bob := c.openOnSite(t, browser, hoChiMinh, room, "bob")
	carol := c.openOnSite(t, browser, saoPaulo, room, "carol")
	waitOccupants(t, c.store, room, map[string]string{"alice": "a", "bob": "b", "carol": "c"})

	waitDecodesEachOther(t, spanTimeout, alice, bob, carol)
	for _, p := range []*page{alice, bob, carol} {
		p.screenshot(t, "media")
	}
	checkChatAcrossNodes(t, alice, bob, carol)
}
