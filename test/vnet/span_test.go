package vnet

import (
	"testing"
	"time"

	"github.com/cascade-sfu/cascade/pkg/cluster"
	"github.com/cascade-sfu/cascade/pkg/room"
)

// Addresses on the virtual network: the nodes, and one client machine near each.
const (
	euIP         = "198.51.100.1"
	hcmIP        = "198.51.100.2"
	sgpIP        = "198.51.100.3"
	euClientsIP  = "198.51.100.11"
	hcmClientsIP = "198.51.100.12"
	sgpClientsIP = "198.51.100.13"
)

// oneWay is every hop's delay on the virtual network.
const oneWay = 40 * time.Millisecond

// Generous waits: -race on two cores, every hop 40 ms, links set up on demand.
const (
	mediaWait = 20 * time.Second
	leaveWait = 10 * time.Second
)

// WHIP publish on eu, two WHEP viewers on hcm: both receive the video, starting at a keyframe,
// and the audio. hcm has no source of that media but its relay link from eu: the viewers' first
// packets of it prove the relay, and their least one-way delay (publisher → eu → hcm → viewer,
// three hops of the virtual network) shows it crossed the WAN between the nodes. The publisher's
// abs-capture-time reaches the viewers across the relay and gives that same delay.
func TestWHIPOnOneNodeWHEPOnAnother(t *testing.T) {
	c := newCluster(t, oneWay)
	eu, hcm := c.startNode("eu", euIP), c.startNode("hcm", hcmIP)
	euClients, hcmClients := c.wan.host(t, euClientsIP), c.wan.host(t, hcmClientsIP)

	start := time.Now()
	c.publishWHIP(eu, euClients, "live", "obs", newVideo(t, 'E', 30), true)
	viewers := []*whepViewer{
		c.watchWHEP(hcm, hcmClients, "live", "viewer-1", 1, true),
		c.watchWHEP(hcm, hcmClients, "live", "viewer-2", 1, true),
	}
	for i, v := range viewers {
		eventually(t, mediaWait, "WHEP viewer on hcm receives the WHIP stream from eu", func() bool {
			return v.count("video") > 60 && v.count("audio") > 60
		}, func() string { return string(rune('1' + i)) }, eu.stats, hcm.stats)
		saw, firstIsKey, firstKey := v.start()
		if !saw || !firstIsKey {
			t.Fatalf("viewer-%d: the first video packet was not a keyframe: a decoder would start on deltas", i+1)
		}
		if n := v.from('E'); n == 0 {
			t.Fatalf("viewer-%d received video that is not the publisher's", i+1)
		}
		t.Logf("viewer-%d: first keyframe %v after the WHIP POST; least one-way delay %v (3 hops of %v)",
			i+1, firstKey.Sub(start).Round(time.Millisecond), v.delay().Round(time.Millisecond), oneWay)
		if d := v.delay(); d < 3*oneWay {
			t.Fatalf("viewer-%d: video arrived in %v, faster than three hops of the virtual network allow", i+1, d)
		}
		// The publisher's abs-capture-time crosses both nodes and the relay link unchanged: the
		// delay it gives is the same three hops.
		n, d := v.capture()
		if video := v.count("video"); n < video*9/10 {
			t.Fatalf("viewer-%d: %d of %d video packets carried abs-capture-time", i+1, n, video)
		}
		if d < 3*oneWay || d > v.delay()+20*time.Millisecond {
			t.Fatalf("viewer-%d: abs-capture-time gives a least delay of %v; the payload's clock gives %v (3 hops of %v)", i+1, d, v.delay(), oneWay)
		}
	}
	if px := hcm.remote("live", "eu"); len(px) != 1 || px[0].Identity() != "obs" {
		t.Fatalf("hcm shows %d proxies of eu's participants, want obs alone", len(px))
	}
}

// A publisher that sends a keyframe only first and then when asked (PLI). A WHEP viewer joining
// hcm after the stream has run keyframe-less for a while gets a decodable start only if its
// keyframe request crosses the relay to eu and the publisher: once when the track starts
// crossing for it, once more for a second late viewer while the track already crosses.
func TestLateWHEPViewerGetsKeyframeAcrossNodes(t *testing.T) {
	c := newCluster(t, oneWay)
	eu, hcm := c.startNode("eu", euIP), c.startNode("hcm", hcmIP)
	euClients, hcmClients := c.wan.host(t, euClientsIP), c.wan.host(t, hcmClientsIP)

	v := newVideo(t, 'E', 0)
	c.publishWHIP(eu, euClients, "kf", "obs", v, false)
	eventually(t, mediaWait, "eu receives the publisher", func() bool { return eu.rooms.Stats().PacketsIn.Load() > 30 }, eu.stats)
	time.Sleep(2 * time.Second) // the stream runs on deltas only

	for _, name := range []string{"late-1", "late-2"} {
		plis, keys := v.plis.Load(), v.keys.Load()
		late := c.watchWHEP(hcm, hcmClients, "kf", name, 1, false)
		eventually(t, mediaWait, name+" on hcm receives the stream", func() bool { return late.count("video") > 10 },
			eu.stats, hcm.stats)
		_, firstIsKey, firstKey := late.start()
		if !firstIsKey {
			t.Fatalf("%s: the first video packet was not a keyframe", name)
		}
		if v.plis.Load() == plis || v.keys.Load() == keys {
			t.Fatalf("%s: no keyframe request reached the publisher on eu (PLIs %d → %d, keyframes %d → %d)",
				name, plis, v.plis.Load(), keys, v.keys.Load())
		}
		t.Logf("%s: keyframe %v after the WHEP POST (publisher got %d PLI)", name,
			firstKey.Sub(late.joined).Round(time.Millisecond), v.plis.Load()-plis)
		time.Sleep(time.Second) // the track now crosses: the next viewer's request must cross too
	}
}

// A room spanning eu and hcm; then a participant joins it on a third node, sgp. Each of the
// three participants (WebSocket clients that publish and subscribe) receives the two others.
func TestThirdNodeJoinsRoom(t *testing.T) {
	c := newCluster(t, oneWay)
	eu, hcm := c.startNode("eu", euIP), c.startNode("hcm", hcmIP)
	alice := c.participant(eu, c.wan.host(t, euClientsIP), "trio", "alice", newVideo(t, 'A', 30))
	bob := c.participant(hcm, c.wan.host(t, hcmClientsIP), "trio", "bob", newVideo(t, 'B', 30))
	eventually(t, mediaWait, "alice (eu) and bob (hcm) receive each other", func() bool {
		return alice.from('B') > 30 && bob.from('A') > 30
	}, eu.stats, hcm.stats)

	joined := time.Now()
	sgp := c.startNode("sgp", sgpIP)
	carol := c.participant(sgp, c.wan.host(t, sgpClientsIP), "trio", "carol", newVideo(t, 'C', 30))
	peers := map[string]*receiver{"alice": alice, "bob": bob, "carol": carol}
	others := map[string][]byte{"alice": []byte("BC"), "bob": []byte("AC"), "carol": []byte("AB")}
	for name, rx := range peers {
		eventually(t, mediaWait, name+" receives both others", func() bool {
			return rx.from(others[name][0]) > 30 && rx.from(others[name][1]) > 30
		}, eu.stats, hcm.stats, sgp.stats)
		if own := name[0] - 'a' + 'A'; rx.from(own) != 0 {
			t.Fatalf("%s received its own video", name)
		}
	}
	t.Logf("all three see each other %v after sgp started", time.Since(joined).Round(time.Millisecond))
	if len(sgp.remote("trio", "eu")) != 1 || len(sgp.remote("trio", "hcm")) != 1 {
		t.Fatalf("sgp shows %d participants of eu and %d of hcm, want 1 and 1", len(sgp.remote("trio", "eu")), len(sgp.remote("trio", "hcm")))
	}
}

// A WHIP publisher on eu ends its publication (DELETE): on hcm its proxy participant and track
// go away and the WHEP viewer there stops receiving. eu keeps another participant in the room,
// so eu still hosts it: the removal comes from eu's state, not from the room emptying there.
func TestPublisherLeavingDisappearsOnOtherNode(t *testing.T) {
	c := newCluster(t, oneWay)
	eu, hcm := c.startNode("eu", euIP), c.startNode("hcm", hcmIP)
	euClients, hcmClients := c.wan.host(t, euClientsIP), c.wan.host(t, hcmClientsIP)

	pub := c.publishWHIP(eu, euClients, "live", "obs", newVideo(t, 'E', 30), false)
	c.watchWHEP(eu, euClients, "live", "eu-viewer", 1, false)
	v := c.watchWHEP(hcm, hcmClients, "live", "viewer", 1, false)
	eventually(t, mediaWait, "the viewer on hcm receives obs", func() bool { return v.from('E') > 30 }, eu.stats, hcm.stats)
	if hcm.tracksFrom("live", "eu") != 1 {
		t.Fatalf("hcm has %d tracks of eu, want 1", hcm.tracksFrom("live", "eu"))
	}

	left := time.Now()
	pub.stop()
	eventually(t, leaveWait, "obs and its track gone from hcm", func() bool {
		return !hasIdentity(hcm.remote("live", "eu"), "obs") && hcm.tracksFrom("live", "eu") == 0
	}, hcm.stats)
	t.Logf("obs gone from hcm %v after the DELETE", time.Since(left).Round(time.Millisecond))
	before := v.count("video")
	time.Sleep(time.Second)
	if after := v.count("video"); after > before+3 {
		t.Fatalf("the viewer on hcm still receives after obs left: %d → %d packets", before, after)
	}
	if eu.rooms.Room("live") == nil {
		t.Fatal("eu-viewer's room on eu went away with obs")
	}
}

// eu is killed (no leave, no goodbye on the bus or the links): hcm's own publisher and viewer
// go on, and once the cluster reaps eu's occupants from the room state, eu's participant and
// track are removed on hcm.
func TestNodeKilledOthersGoOn(t *testing.T) {
	c := newCluster(t, oneWay)
	eu, hcm := c.startNode("eu", euIP), c.startNode("hcm", hcmIP)
	euClients, hcmClients := c.wan.host(t, euClientsIP), c.wan.host(t, hcmClientsIP)

	c.publishWHIP(eu, euClients, "live", "obs", newVideo(t, 'E', 30), false)
	c.publishWHIP(hcm, hcmClients, "live", "erin", newVideo(t, 'H', 30), false)
	frank := c.watchWHEP(hcm, hcmClients, "live", "frank", 2, false)
	eventually(t, mediaWait, "frank on hcm receives obs (eu) and erin (hcm)", func() bool {
		return frank.from('E') > 30 && frank.from('H') > 30
	}, eu.stats, hcm.stats)

	killed := time.Now()
	eu.kill()
	before := frank.from('H')
	eventually(t, mediaWait, "frank still receives erin after eu died", func() bool { return frank.from('H') > before+30 }, hcm.stats)

	t.Logf("%v after the kill, before the reap, hcm still shows %d participant(s) of eu (a silent death; its link fails only after ICE's timeouts)",
		time.Since(killed).Round(time.Millisecond), len(hcm.remote("live", "eu")))
	removed := c.reap("eu")
	if !hasOccupant(removed["live"], "obs") {
		t.Fatalf("the room state had lost obs before the reaper ran (a killed node leaves nothing): %+v", removed)
	}
	reaped := time.Now()
	eventually(t, leaveWait, "eu's participant and track gone from hcm", func() bool {
		return len(hcm.remote("live", "eu")) == 0 && hcm.tracksFrom("live", "eu") == 0
	}, hcm.stats)
	t.Logf("eu's tracks removed on hcm %v after the reap (%v after the kill)",
		time.Since(reaped).Round(time.Millisecond), time.Since(killed).Round(time.Millisecond))
	before = frank.from('H')
	eventually(t, mediaWait, "frank still receives erin after eu's tracks were removed", func() bool { return frank.from('H') > before+30 }, hcm.stats)
}

func hasIdentity(ps []*room.Participant, identity string) bool {
	for _, p := range ps {
		if string(p.Identity()) == identity {
			return true
		}
	}
	return false
}

func hasOccupant(os []cluster.Occupant, identity string) bool {
	for _, o := range os {
		if o.Identity == identity {
			return true
		}
	}
	return false
}
