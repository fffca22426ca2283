package cluster

import (
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/cascade-sfu/cascade/pkg/cluster/redistest"
)

// While Redis is down, go-redis's own complaints (a failed dial, ~20 a second) reach the node's
// log only as structured, rate-limited lines: no raw "redis: ... pool.go:..." line, at most one
// line per message pattern per 10 s.
func TestRedisOutageLogsAreStructuredAndRateLimited(t *testing.T) {
	redis := redistest.Start(t)
	eu := startNode(t, redis.Addr(), nodeSpec{id: "eu", serf: freePort(t)})
	before := len(eu.out.String())
	redis.Stop(t)
	time.Sleep(5 * time.Second)
	out := eu.out.String()[before:]

	raw := regexp.MustCompile(`(?m)^redis: |\.go:\d+: connection pool`)
	if m := raw.FindString(out); m != "" {
		t.Fatalf("unstructured go-redis line in the node's log (%q):\n%s", m, out)
	}
	var lines []string
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, "component=redis") {
			lines = append(lines, l)
			if !strings.Contains(l, "node=eu") || !strings.Contains(l, "level=WARN") {
				t.Errorf("go-redis line without the node field or not a warning: %s", l)
			}
		}
	}
	if len(lines) == 0 {
		t.Fatalf("no go-redis line in 5 s without Redis (is its logger routed through slog?):\n%s", out)
	}
	t.Logf("go-redis lines while Redis was down:\n%s", strings.Join(lines, "\n"))
	// One per pattern and 10 s: go-redis has a handful of patterns on this path.
	if len(lines) > 3 {
		t.Fatalf("%d go-redis lines in 5 s; want at most 3 (rate-limited):\n%s", len(lines), strings.Join(lines, "\n"))
	}
}
