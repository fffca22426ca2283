// Package topology reads the latency lab's topology file: the sites of an
// emulated WAN (nodes, clients, the Redis site) and the links between them
// with their one-way delay, jitter, loss, loss burst length and rate.
//
// The format (every field strictly checked, errors name the file line and field):
//
//	sites:
//	  eu:      {node: {region: eu,  lat: 52.37, lon: 4.90}, redis: true}
//	  eu-peer: {client: true}
//	links:   # symmetric, one-way figures; pairs not listed cannot reach each other
//	  - {between: [eu, eu-peer], delay: 2ms, jitter: 1ms, loss: 0.1%, loss_burst: 3, rate: 20mbit}
package topology

import (
	"bytes"
	"fmt"
	"math"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Limits.
const (
	MaxSites     = 64
	MaxFileBytes = 1 << 20
	MaxDelay     = 10 * time.Second
	MaxBurst     = 1000
	MaxRateBits  = 100_000_000_000 // 100 Gbit/s
)

// Node is the SFU node run in a site.
type Node struct {
	Region string
	Lat    float64
	Lon    float64
}

// Site is one place of the lab: a network namespace.
type Site struct {
	Name   string
	Node   *Node // nil unless the site runs an SFU node (its node id is Name)
	Redis  bool  // the site runs the cluster's redis-server
	Client bool  // the site runs client agents (publishers, subscribers)
	Line   int   // line in the file
}

// Link is a symmetric link between two sites; the figures apply to each
// direction separately.
type Link struct {
	A, B      string
	Delay     time.Duration // one way
	Jitter    time.Duration // each packet's delay is uniform in Delay±Jitter (netem's convention), order kept
	Loss      float64       // fraction 0..1 of packets lost, each direction
	LossBurst float64       // mean length of a loss burst in packets (Gilbert–Elliott); 0 = independent losses
	RateBits  int64         // bits per second, 0 = unlimited
	Line      int
}

// Topology is a parsed topology file.
type Topology struct {
	Source string  // file name (or "" when parsed from bytes)
	Raw    []byte  // the file's content
	Sites  []*Site // in file order
	Links  []*Link // in file order
	bySite map[string]*Site
	byPair map[[2]string]*Link
}

var siteName = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,30}[a-z0-9])?$`)

// Load reads and parses a topology file.
func Load(path string) (*Topology, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(ioLimit(f)); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if buf.Len() > MaxFileBytes {
		return nil, fmt.Errorf("%s: %w: file over %d bytes", path, ErrInvalid, MaxFileBytes)
	}
	return Parse(path, buf.Bytes())
}

type parser struct {
	file string
}

func (p *parser) errf(n *yaml.Node, field, format string, args ...any) error {
	line := 0
	if n != nil {
		line = n.Line
	}
	name := p.file
	if name == "" {
		name = "topology"
	}
	return fmt.Errorf("%s:%d: %s: %w: %s", name, line, field, ErrInvalid, fmt.Sprintf(format, args...))
}

// Parse parses a topology file's content; name is used in error messages.
func Parse(name string, data []byte) (*Topology, error) {
	p := &parser{file: name}
	if len(data) > MaxFileBytes {
		return nil, p.errf(nil, "file", "over %d bytes", MaxFileBytes)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("%s: %w: %v", name, ErrInvalid, err)
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 {
		return nil, p.errf(&doc, "file", "empty document")
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return nil, p.errf(root, "file", "top level must be a mapping with sites and links")
	}
	t := &Topology{Source: name, Raw: append([]byte(nil), data...), bySite: map[string]*Site{}, byPair: map[[2]string]*Link{}}
	var sitesNode, linksNode *yaml.Node
	err := p.mapping(root, "", func(key string, k, v *yaml.Node) error {
		switch key {
		case "sites":
			sitesNode = v
		case "links":
			linksNode = v
		default:
			return p.errf(k, key, "unknown field (want sites, links)")
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if sitesNode == nil {
		return nil, p.errf(root, "sites", "missing")
	}
	if err := p.sites(t, sitesNode); err != nil {
		return nil, err
	}
	if linksNode != nil {
		if err := p.links(t, linksNode); err != nil {
			return nil, err
		}
	}
	redis, nodes := 0, 0
	for _, s := range t.Sites {
		if s.Redis {
			redis++
		}
		if s.Node != nil {
			nodes++
		}
	}
	if nodes == 0 {
		return nil, p.errf(sitesNode, "sites", "no site has a node")
	}
	if redis != 1 {
		return nil, p.errf(sitesNode, "sites", "exactly one site must have redis: true (found %d)", redis)
	}
	return t, nil
}

// mapping walks a mapping node, refusing duplicate keys.
func (p *parser) mapping(n *yaml.Node, field string, f func(key string, k, v *yaml.Node) error) error {
	if n.Kind != yaml.MappingNode {
		return p.errf(n, field, "must be a mapping")
	}
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			return p.errf(k, field, "key must be a plain name")
		}
		full := k.Value
		if field != "" {
			full = field + "." + k.Value
		}
		if seen[k.Value] {
			return p.errf(k, full, "duplicate field")
		}
		seen[k.Value] = true
		if err := f(k.Value, k, v); err != nil {
			return err
		}
	}
	return nil
}

func (p *parser) sites(t *Topology, n *yaml.Node) error {
	return p.mapping(n, "sites", func(name string, k, v *yaml.Node) error {
		field := "sites." + name
		if !siteName.MatchString(name) {
			return p.errf(k, field, "site name must be 1-32 of a-z, 0-9 and '-', not starting or ending with '-'")
		}
		if len(t.Sites) >= MaxSites {
			return p.errf(k, field, "more than %d sites", MaxSites)
		}
		s := &Site{Name: name, Line: k.Line}
		err := p.mapping(v, field, func(key string, fk, fv *yaml.Node) error {
			f := field + "." + key
			switch key {
			case "node":
				nd, err := p.node(fv, f)
				if err != nil {
					return err
				}
				s.Node = nd
			case "redis":
				b, err := p.boolean(fv, f)
				if err != nil {
					return err
				}
				s.Redis = b
			case "client":
				b, err := p.boolean(fv, f)
				if err != nil {
					return err
				}
				s.Client = b
			default:
				return p.errf(fk, f, "unknown field (want node, redis, client)")
			}
			return nil
		})
		if err != nil {
			return err
		}
		switch {
		case s.Node != nil && s.Client:
			return p.errf(v, field, "a site is either a node or a client, not both")
		case s.Node == nil && !s.Client:
			return p.errf(v, field, "a site needs node: {...} or client: true")
		case s.Redis && s.Node == nil:
			return p.errf(v, field+".redis", "redis must run in a node site")
		}
		t.Sites = append(t.Sites, s)
		t.bySite[name] = s
		return nil
	})
}

func (p *parser) node(n *yaml.Node, field string) (*Node, error) {
	nd := &Node{}
	var haveLat, haveLon bool
	err := p.mapping(n, field, func(key string, k, v *yaml.Node) error {
		f := field + "." + key
		switch key {
		case "region":
			if v.Kind != yaml.ScalarNode || v.Value == "" || len(v.Value) > 64 || strings.ContainsAny(v.Value, " \t\r\n") {
				return p.errf(v, f, "must be a non-empty word of at most 64 characters")
			}
			nd.Region = v.Value
		case "lat", "lon":
			x, err := strconv.ParseFloat(v.Value, 64)
			if v.Kind != yaml.ScalarNode || err != nil || math.IsNaN(x) {
				return p.errf(v, f, "must be a number")
			}
			if key == "lat" {
				if x < -90 || x > 90 {
					return p.errf(v, f, "must be within -90..90")
				}
				nd.Lat, haveLat = x, true
			} else {
				if x < -180 || x > 180 {
					return p.errf(v, f, "must be within -180..180")
				}
				nd.Lon, haveLon = x, true
			}
		default:
			return p.errf(k, f, "unknown field (want region, lat, lon)")
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if nd.Region == "" {
		return nil, p.errf(n, field+".region", "missing")
	}
	if !haveLat || !haveLon {
		return nil, p.errf(n, field, "lat and lon are required")
	}
	return nd, nil
}

func (p *parser) boolean(n *yaml.Node, field string) (bool, error) {
	if n.Kind != yaml.ScalarNode || (n.Value != "true" && n.Value != "false") {
		return false, p.errf(n, field, "must be true or false")
	}
	return n.Value == "true", nil
}

func (p *parser) links(t *Topology, n *yaml.Node) error {
	if n.Kind != yaml.SequenceNode {
		return p.errf(n, "links", "must be a list")
	}
	for i, ln := range n.Content {
		field := fmt.Sprintf("links[%d]", i)
		l := &Link{Line: ln.Line}
		var haveBetween, haveDelay bool
		err := p.mapping(ln, field, func(key string, k, v *yaml.Node) error {
			f := field + "." + key
			switch key {
			case "between":
				if v.Kind != yaml.SequenceNode || len(v.Content) != 2 {
					return p.errf(v, f, "must be a list of two sites")
				}
				for j, sn := range v.Content {
					if _, ok := t.bySite[sn.Value]; sn.Kind != yaml.ScalarNode || !ok {
						return p.errf(sn, f, "unknown site %q", sn.Value)
					}
					if j == 0 {
						l.A = sn.Value
					} else {
						l.B = sn.Value
					}
				}
				if l.A == l.B {
					return p.errf(v, f, "a link joins two different sites")
				}
				haveBetween = true
			case "delay", "jitter":
				d, err := time.ParseDuration(v.Value)
				if v.Kind != yaml.ScalarNode || err != nil {
					return p.errf(v, f, "must be a duration such as 80ms")
				}
				if d < 0 {
					return p.errf(v, f, "must not be negative")
				}
				if d > MaxDelay {
					return p.errf(v, f, "over %v", MaxDelay)
				}
				if key == "delay" {
					l.Delay, haveDelay = d, true
				} else {
					l.Jitter = d
				}
			case "loss":
				s := strings.TrimSpace(v.Value)
				pct := strings.HasSuffix(s, "%")
				x, err := strconv.ParseFloat(strings.TrimSuffix(s, "%"), 64)
				if v.Kind != yaml.ScalarNode || !pct || err != nil || math.IsNaN(x) {
					return p.errf(v, f, "must be a percentage such as 0.8%%")
				}
				if x < 0 || x > 100 {
					return p.errf(v, f, "must be within 0%%..100%%")
				}
				l.Loss = x / 100
			case "loss_burst":
				x, err := strconv.ParseFloat(v.Value, 64)
				if v.Kind != yaml.ScalarNode || err != nil || math.IsNaN(x) {
					return p.errf(v, f, "must be a number of packets")
				}
				if x < 1 || x > MaxBurst {
					return p.errf(v, f, "must be within 1..%d packets", MaxBurst)
				}
				l.LossBurst = x
			case "rate":
				r, err := ParseRate(v.Value)
				if v.Kind != yaml.ScalarNode || err != nil {
					return p.errf(v, f, "must be a rate such as 20mbit, 512kbit or 1gbit")
				}
				l.RateBits = r
			default:
				return p.errf(k, f, "unknown field (want between, delay, jitter, loss, loss_burst, rate)")
			}
			return nil
		})
		if err != nil {
			return err
		}
		if !haveBetween {
			return p.errf(ln, field+".between", "missing")
		}
		if !haveDelay {
			return p.errf(ln, field+".delay", "missing")
		}
		if l.Jitter > l.Delay {
			return p.errf(ln, field+".jitter", "jitter %v exceeds delay %v", l.Jitter, l.Delay)
		}
		if l.LossBurst > 0 && l.Loss >= 1 {
			return p.errf(ln, field+".loss_burst", "needs a loss below 100%%")
		}
		k := pairKey(l.A, l.B)
		if prev, dup := t.byPair[k]; dup {
			return p.errf(ln, field+".between", "duplicate link %s–%s (first at line %d)", l.A, l.B, prev.Line)
		}
		t.byPair[k] = l
		t.Links = append(t.Links, l)
	}
	return nil
}

// ParseRate parses "20mbit", "512kbit", "1gbit" or "1000bit" into bits per second.
func ParseRate(s string) (int64, error) {
	s = strings.ToLower(strings.TrimSpace(s))
	mult := int64(1)
	switch {
	case strings.HasSuffix(s, "gbit"):
		mult, s = 1_000_000_000, strings.TrimSuffix(s, "gbit")
	case strings.HasSuffix(s, "mbit"):
		mult, s = 1_000_000, strings.TrimSuffix(s, "mbit")
	case strings.HasSuffix(s, "kbit"):
		mult, s = 1_000, strings.TrimSuffix(s, "kbit")
	case strings.HasSuffix(s, "bit"):
		s = strings.TrimSuffix(s, "bit")
	default:
		return 0, fmt.Errorf("rate %q: want a unit bit, kbit, mbit or gbit", s)
	}
	x, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(x) || x <= 0 {
		return 0, fmt.Errorf("rate %q: want a positive number", s)
	}
	r := x * float64(mult)
	if r < 8000 || r > MaxRateBits {
		return 0, fmt.Errorf("rate %q: want 8kbit..100gbit", s)
	}
	return int64(r), nil
}

// FormatRate writes bits per second the way the file does.
func FormatRate(bits int64) string {
	switch {
	case bits == 0:
		return "-"
	case bits%1_000_000_000 == 0:
		return fmt.Sprintf("%dgbit", bits/1_000_000_000)
	case bits%1_000_000 == 0:
		return fmt.Sprintf("%dmbit", bits/1_000_000)
	case bits%1_000 == 0:
		return fmt.Sprintf("%dkbit", bits/1_000)
	}
	return fmt.Sprintf("%dbit", bits)
}

func pairKey(a, b string) [2]string {
	if a > b {
		a, b = b, a
	}
	return [2]string{a, b}
}

// Site returns the named site, or nil.
func (t *Topology) Site(name string) *Site { return t.bySite[name] }

// Link returns the link between a and b (either order), or nil.
func (t *Topology) Link(a, b string) *Link { return t.byPair[pairKey(a, b)] }

// Linked reports whether a and b can reach each other.
func (t *Topology) Linked(a, b string) bool { return t.Link(a, b) != nil }

// OneWay returns the configured one-way delay between a and b; ok is false
// when they are not linked.
func (t *Topology) OneWay(a, b string) (d time.Duration, ok bool) {
	l := t.Link(a, b)
	if l == nil {
		return 0, false
	}
	return l.Delay, true
}

// PathDelay sums the one-way delays along a path of sites.
func (t *Topology) PathDelay(path ...string) (time.Duration, error) {
	var sum time.Duration
	for i := 0; i+1 < len(path); i++ {
		d, ok := t.OneWay(path[i], path[i+1])
		if !ok {
			return 0, t.notLinked(path[i], path[i+1])
		}
		sum += d
	}
	return sum, nil
}

// CheckLinked returns an error naming the first pair of sites that is
// unknown or not linked (with the line of the site in the file).
func (t *Topology) CheckLinked(pairs ...[2]string) error {
	for _, p := range pairs {
		for _, s := range p {
			if t.bySite[s] == nil {
				return fmt.Errorf("%s: %w %q", t.name(), ErrUnknownSite, s)
			}
		}
		if !t.Linked(p[0], p[1]) {
			return t.notLinked(p[0], p[1])
		}
	}
	return nil
}

func (t *Topology) notLinked(a, b string) error {
	if t.bySite[a] == nil {
		return fmt.Errorf("%s: %w %q", t.name(), ErrUnknownSite, a)
	}
	if t.bySite[b] == nil {
		return fmt.Errorf("%s: %w %q", t.name(), ErrUnknownSite, b)
	}
	return fmt.Errorf("%s:%d: links: %w: no link between %s and %s (needed; add {between: [%s, %s], delay: ...})",
		t.name(), t.bySite[a].Line, ErrNotLinked, a, b, a, b)
}

func (t *Topology) name() string {
	if t.Source == "" {
		return "topology"
	}
	return t.Source
}

// Nodes returns the sites that run a node, in file order.
func (t *Topology) Nodes() []*Site {
	var out []*Site
	for _, s := range t.Sites {
		if s.Node != nil {
			out = append(out, s)
		}
	}
	return out
}

// RedisSite returns the site that runs Redis.
func (t *Topology) RedisSite() *Site {
	for _, s := range t.Sites {
		if s.Redis {
			return s
		}
	}
	return nil
}
