package cluster

import (
	"strings"
	"testing"
	"time"

	"github.com/cascade-sfu/cascade/pkg/cluster/redistest"
)

// A call across two nodes goes on through a Redis outage and a restart that empties it: a
// WHEP viewer on hcm keeps receiving a WHIP publisher on eu without a gap, and once Redis is
// back the shared state (both nodes, the room's occupants) is rebuilt.
func TestMediaGoesOnThroughRedisRestart(t *testing.T) {
	redis := redistest.Start(t)
	s1, s2 := freePort(t), freePort(t)
	eu := startNode(t, redis.Addr(), nodeSpec{id: "eu", lat: 52.37, lon: 4.90, serf: s1, join: s2})
	hcm := startNode(t, redis.Addr(), nodeSpec{id: "hcm", lat: 10.82, lon: 106.63, serf: s2, join: s1})

	rx := whipToWHEP(t, eu, hcm)

	// watch samples the viewer's packet count every 50 ms for d and returns the longest time
	// without a new packet (the stream runs at 30 packets/s).
	watch := func(d time.Duration) time.Duration {
		var longest time.Duration
		last, since := rx.count(), time.Now()
		for end := time.Now().Add(d); time.Now().Before(end); {
			time.Sleep(50 * time.Millisecond)
			if n := rx.count(); n > last {
				longest = max(longest, time.Since(since))
				last, since = n, time.Now()
			}
		}
		return max(longest, time.Since(since))
	}
	baseline := watch(2 * time.Second)

	redis.Stop(t) // down for 3 s, then back empty
	down := watch(3 * time.Second)
	redis.Restart(t)
	after := watch(4 * time.Second)
	t.Logf("longest gap at the viewer: %v before, %v while Redis was down, %v after it came back empty", baseline, down, after)
	if limit := 500 * time.Millisecond; down > limit || after > limit {
		t.Fatalf("the viewer's video stopped for %v (Redis down) / %v (Redis back empty); want no gap over %v", down, after, limit)
	}

	// The shared state comes back within 10 s: both nodes registered, the room's occupants on both.
	eventuallyT(t, 10*time.Second, "the rebuilt room state lists both nodes' occupants", func() bool {
		out, err := relayctl(t, eu.url, "rooms")
		return err == nil && strings.Contains(out, "live") && strings.Contains(out, "eu") && strings.Contains(out, "hcm")
	}, func() string { out, _ := relayctl(t, eu.url, "rooms"); return out })
	eventuallyT(t, 10*time.Second, "both nodes registered again", func() bool {
		out, err := relayctl(t, hcm.url, "nodes")
		return err == nil && strings.Contains(out, "eu") && strings.Contains(out, "hcm")
	}, func() string { out, _ := relayctl(t, hcm.url, "nodes"); return out })
	if gap := watch(time.Second); gap > 500*time.Millisecond {
		t.Fatalf("video gap of %v after the state was rebuilt", gap)
	}
}
