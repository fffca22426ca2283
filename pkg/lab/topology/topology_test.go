package topology

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestDefaultFileParses(t *testing.T) {
	top, err := Load("../../../deploy/lab/eu-sgp-hcm.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(top.Sites) != 5 || len(top.Links) != 9 || len(top.Nodes()) != 3 {
		t.Fatalf("sites %d links %d nodes %d", len(top.Sites), len(top.Links), len(top.Nodes()))
	}
	if top.RedisSite().Name != "eu" {
		t.Fatalf("redis site %q", top.RedisSite().Name)
	}
	if d, ok := top.OneWay("hcm", "eu"); !ok || d != 110*time.Millisecond {
		t.Fatalf("eu–hcm %v %v", d, ok)
	}
	l := top.Link("hcm", "eu")
	if l.Jitter != 8*time.Millisecond || l.Loss != 0.008 || l.LossBurst != 3 {
		t.Fatalf("eu–hcm link %+v", l)
	}
	if d, err := top.PathDelay("eu-peer", "sgp", "hcm", "vn-peer"); err != nil || d != 100*time.Millisecond {
		t.Fatalf("path delay %v %v", d, err)
	}
	if err := top.CheckLinked([2]string{"eu-peer", "sgp"}, [2]string{"sgp", "hcm"}); err != nil {
		t.Fatal(err)
	}
	err = top.CheckLinked([2]string{"eu-peer", "vn-peer"})
	if !errors.Is(err, ErrNotLinked) || !strings.Contains(err.Error(), "eu-peer and vn-peer") {
		t.Fatalf("unlinked pair: %v", err)
	}
	if err := top.CheckLinked([2]string{"eu", "mars"}); !errors.Is(err, ErrUnknownSite) {
		t.Fatalf("unknown site: %v", err)
	}
}

func TestRateParses(t *testing.T) {
	top, err := Parse("r.yaml", []byte(good+"  - {between: [a, c], delay: 1ms, rate: 20mbit}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if r := top.Link("a", "c").RateBits; r != 20_000_000 {
		t.Fatalf("rate %d", r)
	}
}

const good = `sites:
  a: {node: {region: x, lat: 1, lon: 2}, redis: true}
  b: {node: {region: y, lat: 1, lon: 2}}
  c: {client: true}
links:
  - {between: [a, b], delay: 10ms}
`

func TestBadFilesRefused(t *testing.T) {
	cases := []struct {
		name, text, want string
	}{
		{"unknown top field", good + "extra: 1\n", "bad.yaml:7: extra: "},
		{"unknown site field", strings.Replace(good, "redis: true", "redis: true, color: red", 1), "bad.yaml:2: sites.a.color: "},
		{"unknown node field", strings.Replace(good, "lon: 2}, redis", "lon: 2, alt: 3}, redis", 1), "bad.yaml:2: sites.a.node.alt: "},
		{"unknown site in link", good + "  - {between: [a, z], delay: 1ms}\n", "bad.yaml:7: links[1].between: "},
		{"negative delay", good + "  - {between: [a, c], delay: -5ms}\n", "bad.yaml:7: links[1].delay: invalid topology: must not be negative"},
		{"loss over 100", good + "  - {between: [a, c], delay: 5ms, loss: 101%}\n", "bad.yaml:7: links[1].loss: "},
		{"loss without %", good + "  - {between: [a, c], delay: 5ms, loss: 0.5}\n", "bad.yaml:7: links[1].loss: "},
		{"duplicate link", good + "  - {between: [b, a], delay: 5ms}\n", "bad.yaml:7: links[1].between: invalid topology: duplicate link"},
		{"self link", good + "  - {between: [a, a], delay: 5ms}\n", "bad.yaml:7: links[1].between: "},
		{"no delay", good + "  - {between: [a, c]}\n", "bad.yaml:7: links[1].delay: invalid topology: missing"},
		{"bad rate", good + "  - {between: [a, c], delay: 1ms, rate: fast}\n", "bad.yaml:7: links[1].rate: "},
		{"burst below 1", good + "  - {between: [a, c], delay: 1ms, loss: 1%, loss_burst: 0.5}\n", "bad.yaml:7: links[1].loss_burst: "},
		{"jitter over delay", good + "  - {between: [a, c], delay: 1ms, jitter: 2ms}\n", "bad.yaml:7: links[1].jitter: "},
		{"node and client", strings.Replace(good, "lon: 2}}", "lon: 2}, client: true}", 1), "bad.yaml:3: sites.b: invalid topology: a site is either a node or a client"},
		{"no redis", strings.Replace(good, ", redis: true", "", 1), "bad.yaml:2: sites: invalid topology: exactly one site must have redis"},
		{"two redis", strings.Replace(good, "lon: 2}}", "lon: 2}, redis: true}", 1), "exactly one site must have redis: true (found 2)"},
		{"redis on client", strings.Replace(good, "c: {client: true}", "c: {client: true, redis: true}", 1), "bad.yaml:4: sites.c.redis: "},
		{"bad lat", strings.Replace(good, "lat: 1, lon: 2}, redis", "lat: 91, lon: 2}, redis", 1), "bad.yaml:2: sites.a.node.lat: "},
		{"bad site name", strings.Replace(good, "  c: {client", "  C_1: {client", 1), "bad.yaml:4: sites.C_1: "},
		{"neither node nor client", strings.Replace(good, "c: {client: true}", "c: {}", 1), "bad.yaml:4: sites.c: "},
		{"redis not bool", strings.Replace(good, "redis: true", "redis: yes", 1), "bad.yaml:2: sites.a.redis: "},
		{"links not list", strings.Replace(good, "links:\n  - {between: [a, b], delay: 10ms}\n", "links: {}\n", 1), "bad.yaml:5: links: "},
		{"no sites", "links: []\n", "bad.yaml:1: sites: invalid topology: missing"},
		{"not yaml", "sites: [\n", "bad.yaml: invalid topology"},
	}
	for _, c := range cases {
		if c.want == "" {
			continue
		}
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse("bad.yaml", []byte(c.text))
			if err == nil {
				t.Fatalf("accepted:\n%s", c.text)
			}
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %q, want it to contain %q", err, c.want)
			}
		})
	}
	dup := "sites:\n  a: {node: {region: x, lat: 1, lon: 2}, redis: true}\n  a: {client: true}\n"
	if _, err := Parse("bad.yaml", []byte(dup)); err == nil || !strings.Contains(err.Error(), "bad.yaml:3: sites.a: invalid topology: duplicate field") {
		t.Fatalf("duplicate site: %v", err)
	}
}
