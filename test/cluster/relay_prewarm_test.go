package cluster

import (
	"regexp"
	"testing"
	"time"

	"github.com/cascade-sfu/cascade/pkg/cluster/redistest"
)

// With --relay-prewarm, nodes keep a link to each other before any room needs one, and it does
// not linger-close.
func TestRelayPrewarm(t *testing.T) {
	redis := redistest.Start(t)
	s1, s2 := freePort(t), freePort(t)
	opts := []string{"--relay-prewarm", "--relay-linger", "1s"}
	eu := startNode(t, redis.Addr(), nodeSpec{id: "eu", lat: 52.37, lon: 4.90, serf: s1, join: s2, extra: opts})
	startNode(t, redis.Addr(), nodeSpec{id: "hcm", lat: 10.82, lon: 106.63, serf: s2, join: s1, extra: opts})
	open := regexp.MustCompile(`(?m)^hcm\s+open\s`)
	eventuallyT(t, 10*time.Second, "a link to hcm with no room", func() bool {
		out, err := relayctl(t, eu.url, "relays")
		return err == nil && open.MatchString(out)
	}, func() string { out, _ := relayctl(t, eu.url, "relays"); return out })
	time.Sleep(2 * time.Second) // longer than the linger
	if out, err := relayctl(t, eu.url, "relays"); err != nil || !open.MatchString(out) {
		t.Fatalf("the prewarmed link closed:\n%s %v", out, err)
	}
}
