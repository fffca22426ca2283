package cluster

import (
	"regexp"
	"testing"
	"time"
)

// With --relay-prewarm, nodes keep a link to each other before any room needs one, and it does
// not linger-close.
func TestRelayPrewarm(t *testing.T) {
	eu, _ := twoNodes(t, "--relay-prewarm", "--relay-linger", "1s")
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
