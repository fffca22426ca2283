package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/cascade-sfu/cascade/pkg/api"
	"github.com/cascade-sfu/cascade/pkg/auth"
	"github.com/cascade-sfu/cascade/pkg/client"
	"github.com/cascade-sfu/cascade/pkg/cluster/redistest"
	"github.com/cascade-sfu/cascade/pkg/signal"
)

func nodesOf(t *testing.T, p *proc) (api.Nodes, error) {
	out, err := relayctl(t, p.url, "nodes", "--json")
	if err != nil {
		return api.Nodes{}, err
	}
	var n api.Nodes
	return n, json.Unmarshal([]byte(out), &n)
}

func ids(n api.Nodes) string {
	var s []string
	for _, x := range n.Nodes {
		s = append(s, x.ID+"/"+x.State)
	}
	sort.Strings(s)
	return strings.Join(s, ",")
}

func roomsOf(t *testing.T, p *proc) (api.Rooms, error) {
	out, err := relayctl(t, p.url, "rooms", "--json")
	if err != nil {
		return api.Rooms{}, err
	}
	var r api.Rooms
	return r, json.Unmarshal([]byte(out), &r)
}

func routeOf(t *testing.T, p *proc, query string) api.Route {
	t.Helper()
	resp, err := http.Get(p.url + "/v1/route?" + query)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var r api.Route
	if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&r) != nil {
		t.Fatalf("route %s: %s", query, resp.Status)
	}
	return r
}

func loopbackAPI() *webrtc.API {
	m := &webrtc.MediaEngine{}
	_ = m.RegisterDefaultCodecs()
	se := webrtc.SettingEngine{}
	se.SetIncludeLoopbackCandidate(true)
	se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	return webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithSettingEngine(se))
}

func dial(t *testing.T, p *proc, roomName, identity string) (*client.Client, error) {
	tok, err := auth.Sign(apiKey, apiSecret, auth.Grants{Room: roomName, Identity: identity, CanPublish: true, CanSubscribe: true, CanPublishData: true}, time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return client.Dial(ctx, client.Options{URL: "ws" + strings.TrimPrefix(p.url, "http") + "/v1/rtc", Token: tok, API: loopbackAPI()})
}

// Three nodes (eu, sgp, hcm) as processes with real Redis and Serf on 127.0.0.1.
func TestThreeNodeCluster(t *testing.T) {
	redis := redistest.Start(t)
	euSerf, sgpSerf, hcmSerf := freePort(t), freePort(t), freePort(t)
	common := []string{"--max-participants", "3", "--drain-timeout", "20s"}
	eu := startNode(t, redis.Addr(), nodeSpec{id: "eu", lat: 52.37, lon: 4.90, serf: euSerf, join: sgpSerf, extra: common})
	sgp := startNode(t, redis.Addr(), nodeSpec{id: "sgp", lat: 1.35, lon: 103.82, serf: sgpSerf, join: euSerf, extra: common})
	hcm := startNode(t, redis.Addr(), nodeSpec{id: "hcm", lat: 10.82, lon: 106.63, serf: hcmSerf, join: euSerf, extra: common})
	all := []*proc{eu, sgp, hcm}

	t.Run("members", func(t *testing.T) {
		for _, p := range all {
			eventually(t, 10*time.Second, p.name+" lists three active nodes", func() (bool, string) {
				n, err := nodesOf(t, p)
				return err == nil && ids(n) == "eu/active,hcm/active,sgp/active", fmt.Sprint(ids(n), err)
			})
		}
		// Gossip coordinates give an RTT estimate to every other node.
		eventually(t, 15*time.Second, "RTT estimates from eu", func() (bool, string) {
			n, err := nodesOf(t, eu)
			if err != nil {
				return false, err.Error()
			}
			for _, x := range n.Nodes {
				if x.RTTMs == nil {
					return false, "no RTT for " + x.ID
				}
			}
			return true, ""
		})
		out, err := relayctl(t, eu.url, "nodes")
		if err != nil || !strings.Contains(out, "RTT FROM eu") || strings.Count(out, "\n") != 4 {
			t.Fatalf("table:\n%s %v", out, err)
		}
	})

	t.Run("route", func(t *testing.T) {
		for _, p := range all {
			if r := routeOf(t, p, "lat=10.8&lon=106.7"); r.NodeID != "hcm" || r.URL != hcm.url || r.Source != "explicit" {
				t.Fatalf("Vietnamese client from %s routed to %+v", p.name, r)
			}
			if r := routeOf(t, p, "lat=48.8&lon=2.3"); r.NodeID != "eu" {
				t.Fatalf("Paris client from %s routed to %+v", p.name, r)
			}
		}
		if r := routeOf(t, eu, "region=sgp"); r.NodeID != "sgp" || r.Source != "region" {
			t.Fatalf("region hint: %+v", r)
		}
		if r := routeOf(t, sgp, ""); r.NodeID != "sgp" || r.Source != "node" {
			t.Fatalf("no hint falls back to the receiving node: %+v", r)
		}
	})

	t.Run("capacity across nodes", func(t *testing.T) {
		// Six identities race for three places, half through eu and half through sgp.
		var wg sync.WaitGroup
		var mu sync.Mutex
		var joined []*client.Client
		var joinedIDs []string
		full := 0
		for i := range 6 {
			p := []*proc{eu, sgp}[i%2]
			wg.Add(1)
			go func() {
				defer wg.Done()
				c, err := dial(t, p, "cap", fmt.Sprintf("user-%d", i))
				mu.Lock()
				defer mu.Unlock()
				var se *signal.Error
				switch {
				case err == nil:
					joined = append(joined, c)
					joinedIDs = append(joinedIDs, fmt.Sprintf("user-%d", i))
				case errors.As(err, &se) && se.Code == signal.CodeRoomFull:
					full++
				default:
					t.Errorf("join %d: %v", i, err)
				}
			}()
		}
		wg.Wait()
		if len(joined) != 3 || full != 3 {
			t.Fatalf("%d joined and %d refused as full, want 3 and 3", len(joined), full)
		}
		t.Cleanup(func() {
			for _, c := range joined {
				c.Close()
			}
		})
		eventually(t, 5*time.Second, "rooms to show the occupants", func() (bool, string) {
			r, err := roomsOf(t, hcm)
			if err != nil {
				return false, err.Error()
			}
			for _, x := range r.Rooms {
				if x.Name == "cap" {
					return x.Occupants == 3 && x.Nodes["eu"]+x.Nodes["sgp"] == 3, fmt.Sprint(x)
				}
			}
			return false, "no room cap"
		})
		// A refresh of a present identity, even through the other node, needs no free place.
		c, err := dial(t, sgp, "cap", joinedIDs[0])
		if err != nil {
			t.Fatalf("refresh of a present identity refused: %v", err)
		}
		c.Close()
	})

	t.Run("refresh across nodes", func(t *testing.T) {
		old, err := dial(t, eu, "refresh", "alice")
		if err != nil {
			t.Fatal(err)
		}
		defer old.Close()
		neu, err := dial(t, hcm, "refresh", "alice")
		if err != nil {
			t.Fatal(err)
		}
		defer neu.Close()
		deadline := time.After(5 * time.Second)
		for replaced := false; !replaced; {
			select {
			case env := <-old.Messages():
				var m signal.LeaveMsg
				replaced = env.Type == "leave" && json.Unmarshal(env.Data, &m) == nil && m.Reason == "replaced"
			case <-deadline:
				t.Fatal("the old session on eu was not told it was replaced")
			}
		}
		<-old.Done() // eu closed it, and its cleanup ran
		r, err := roomsOf(t, sgp)
		if err != nil {
			t.Fatal(err)
		}
		for _, x := range r.Rooms {
			if x.Name == "refresh" && (x.Occupants != 1 || x.Nodes["hcm"] != 1) {
				t.Fatalf("after the refresh: %+v (the old session's cleanup must not remove the new one)", x)
			}
		}
	})

	t.Run("kill -9 removes a node and its occupants", func(t *testing.T) {
		c, err := dial(t, sgp, "ghosts", "on-sgp")
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		eventually(t, 5*time.Second, "occupant on sgp", func() (bool, string) {
			r, err := roomsOf(t, eu)
			for _, x := range r.Rooms {
				if x.Name == "ghosts" && x.Nodes["sgp"] == 1 {
					return true, ""
				}
			}
			return false, fmt.Sprint(r, err)
		})
		killed := time.Now()
		if err := sgp.cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		eventually(t, 6*time.Second, "sgp gone from relayctl nodes (health TTL 3 s)", func() (bool, string) {
			n, err := nodesOf(t, eu)
			return err == nil && ids(n) == "eu/active,hcm/active", fmt.Sprint(ids(n), err)
		})
		t.Logf("sgp disappeared %v after kill -9", time.Since(killed).Round(100*time.Millisecond))
		eventually(t, 6*time.Second, "sgp's occupants removed by the survivors", func() (bool, string) {
			r, err := roomsOf(t, hcm)
			if err != nil {
				return false, err.Error()
			}
			for _, x := range r.Rooms {
				if x.Nodes["sgp"] > 0 {
					return false, fmt.Sprint(x)
				}
			}
			return true, ""
		})
		if r := routeOf(t, eu, "lat=1.3&lon=103.8"); r.NodeID != "hcm" {
			t.Fatalf("a Singapore client is routed to %s after sgp died, want hcm", r.NodeID)
		}
	})

	t.Run("redis restart", func(t *testing.T) {
		live, err := dial(t, eu, "survivor", "bob")
		if err != nil {
			t.Fatal(err)
		}
		defer live.Close()
		redis.Restart(t)
		for _, p := range []*proc{eu, hcm} {
			eventually(t, 10*time.Second, p.name+" re-registered after the Redis restart", func() (bool, string) {
				n, err := nodesOf(t, p)
				return err == nil && ids(n) == "eu/active,hcm/active", fmt.Sprint(ids(n), err)
			})
		}
		for _, p := range []*proc{eu, hcm} {
			select {
			case <-p.done:
				t.Fatalf("%s exited during the Redis restart: %v", p.name, p.err)
			default:
			}
		}
		c, err := dial(t, eu, "after-restart", "alice")
		if err != nil {
			t.Fatalf("join after the Redis restart: %v", err)
		}
		c.Close()
		// Redis kept nothing, but eu re-asserted its live session.
		eventually(t, 10*time.Second, "the live session listed again", func() (bool, string) {
			r, err := roomsOf(t, hcm)
			for _, x := range r.Rooms {
				if x.Name == "survivor" && x.Nodes["eu"] == 1 {
					return true, ""
				}
			}
			return false, fmt.Sprint(r, err)
		})
	})

	t.Run("SIGTERM drains", func(t *testing.T) {
		c, err := dial(t, hcm, "drain", "last-user")
		if err != nil {
			t.Fatal(err)
		}
		if err := hcm.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		eventually(t, 3*time.Second, "hcm draining at once", func() (bool, string) {
			n, err := nodesOf(t, eu)
			return err == nil && ids(n) == "eu/active,hcm/draining", fmt.Sprint(ids(n), err)
		})
		if r := routeOf(t, eu, "lat=10.8&lon=106.7"); r.NodeID != "eu" {
			t.Fatalf("a client was routed to draining hcm: %+v", r)
		}
		// hcm waits for its last session; when it leaves, hcm goes.
		_ = c.Leave()
		select {
		case <-hcm.done:
			if hcm.err != nil {
				t.Fatalf("hcm exit: %v", hcm.err)
			}
		case <-time.After(15 * time.Second):
			t.Fatal("hcm did not exit after its last session ended")
		}
		c.Close()
		eventually(t, 3*time.Second, "hcm gone from relayctl nodes", func() (bool, string) {
			n, err := nodesOf(t, eu)
			return err == nil && ids(n) == "eu/active", fmt.Sprint(ids(n), err)
		})
	})
}
