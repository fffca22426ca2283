// Package lab brings up the latency lab: one network namespace per site of a
// topology file, an emulated WAN between them (a userspace switch, package
// wan), a real redis-server and a real sfu process per node site, the
// cluster formed across the emulated WAN.
//
// Safety: every namespace is named Options.Prefix+site (default
// "cascade-lab-"); no interface of the root namespace joins the lab (the
// switch holds one TAP per site namespace and no interface of its own);
// addresses are 198.51.100.0/24 only. Close, a failed Up and Down remove
// everything; Down also removes leftovers of an earlier run (every namespace
// with the prefix and every process inside them, found with `ip netns pids`).
//
// The switch runs inside the calling process by default (Close stops it).
// With Options.Detach it runs as its own process (Options.SwitchCommand, e.g.
// `relayctl lab switch`, run in namespace Prefix+"switch") and the sfu and
// redis processes in their own process groups, so that `relayctl lab up` can
// return with the lab still up; Attach re-attaches to it from the state file.
package lab

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/cascade-sfu/cascade/pkg/lab/topology"
)

// Topology is a parsed topology file.
type Topology = topology.Topology

// Fixed ports inside every namespace (namespaces do not share ports).
const (
	HTTPPort  = 7880
	UDPPort   = 7882
	SerfPort  = 7946
	RedisPort = 6379
	tapName   = "lab0"
	stateFile = "state.json"
)

// DefaultPrefix names every namespace of the lab.
const DefaultPrefix = "cascade-lab-"

// DefaultStateDir holds the state file of a lab started by `relayctl lab up`.
const DefaultStateDir = "/run/cascade-lab"

// Options configure a lab.
type Options struct {
	SFUBinary   string       // path of the sfu binary (default "sfu" on PATH)
	RedisServer string       // path of redis-server (default "redis-server" on PATH)
	StateDir    string       // state file directory (default DefaultStateDir)
	LogDir      string       // process logs (default StateDir/logs)
	Logger      *slog.Logger // default: discard
	// Prefix of every namespace; must start with DefaultPrefix (default DefaultPrefix).
	// Tests use their own, so that labs of parallel tests never meet.
	Prefix string
	// ExtraSFUFlags are appended to every sfu command line.
	ExtraSFUFlags []string
	// NoRelayDefaults leaves out the default --relay-via auto --relay-prewarm.
	NoRelayDefaults bool
	// NetworkOnly brings up the namespaces and the emulated WAN only: no
	// redis-server, no sfu (tests of the emulator, custom experiments).
	NetworkOnly bool
	// ReadyTimeout bounds the wait for the cluster to form (default 90s).
	ReadyTimeout time.Duration
	// Detach runs the switch as its own process (SwitchCommand) and leaves the
	// lab up when the calling process exits.
	Detach bool
	// SwitchCommand is the command that runs the switch when Detach is set;
	// "--state DIR" is appended. It must call RunSwitch (relayctl: "lab switch").
	SwitchCommand []string
}

func (o *Options) fill() error {
	if o.Prefix == "" {
		o.Prefix = DefaultPrefix
	}
	if !strings.HasPrefix(o.Prefix, DefaultPrefix) || len(o.Prefix) > 40 || strings.ContainsAny(o.Prefix, "/ \t\n") {
		return fmt.Errorf("%w: prefix %q must start with %q", ErrBadOptions, o.Prefix, DefaultPrefix)
	}
	if o.StateDir == "" {
		o.StateDir = DefaultStateDir
	}
	if o.LogDir == "" {
		o.LogDir = filepath.Join(o.StateDir, "logs")
	}
	if o.SFUBinary == "" {
		o.SFUBinary = "sfu"
	}
	if o.RedisServer == "" {
		o.RedisServer = "redis-server"
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.ReadyTimeout <= 0 {
		o.ReadyTimeout = 90 * time.Second
	}
	return nil
}

// SiteState is one site of a running lab.
type SiteState struct {
	Name string     `json:"name"`
	NS   string     `json:"netns"`
	Addr netip.Addr `json:"addr"`
	MAC  string     `json:"mac"`
}

// ProcState is one process of a running lab.
type ProcState struct {
	Name string `json:"name"` // "switch", "redis", "sfu"
	Site string `json:"site"`
	PID  int    `json:"pid"`
	Log  string `json:"log"`
}

// state is the lab's state file.
type state struct {
	Prefix       string      `json:"prefix"`
	TopologyFile string      `json:"topology_file"`
	TopologyYAML string      `json:"topology_yaml"`
	Sites        []SiteState `json:"sites"`
	Procs        []ProcState `json:"procs"`
	APIKey       string      `json:"api_key"`
	APISecret    string      `json:"api_secret"`
	LogDir       string      `json:"log_dir"`
	Started      time.Time   `json:"started"`
}

// Lab is a running lab.
type Lab struct {
	opts  Options
	topo  *Topology
	st    state
	sites map[string]SiteState
	owned bool // Close tears it down (false for an attached lab)

	mu     sync.Mutex // guards the fields below
	procs  []*proc
	sw     *inProcSwitch
	closed bool
}

// Topology returns the lab's topology.
func (l *Lab) Topology() *Topology { return l.topo }

// APIKey returns the API key the nodes accept.
func (l *Lab) APIKey() string { return l.st.APIKey }

// APISecret returns the API secret the nodes accept.
func (l *Lab) APISecret() string { return l.st.APISecret }

// LogDir returns the directory of the processes' logs.
func (l *Lab) LogDir() string { return l.st.LogDir }

// Namespace returns the network namespace of site ("" if unknown).
func (l *Lab) Namespace(site string) string { return l.sites[site].NS }

// Addr returns site's lab address (invalid if the site is unknown).
func (l *Lab) Addr(site string) netip.Addr { return l.sites[site].Addr }

// NodeURL returns the HTTP base URL of the node of site ("" if none).
func (l *Lab) NodeURL(site string) string {
	s := l.topo.Site(site)
	if s == nil || s.Node == nil {
		return ""
	}
	return "http://" + netip.AddrPortFrom(l.Addr(site), HTTPPort).String()
}

// Command returns a command that runs name inside site's namespace (through
// `ip netns exec`). It is nil for an unknown site.
func (l *Lab) Command(ctx context.Context, site, name string, args ...string) *exec.Cmd {
	s, ok := l.sites[site]
	if !ok {
		return nil
	}
	return exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", s.NS, name}, args...)...)
}

// HTTPClient returns an HTTP client whose connections start inside site's
// namespace (nil for an unknown site).
func (l *Lab) HTTPClient(site string) *http.Client {
	s, ok := l.sites[site]
	if !ok {
		return nil
	}
	return &http.Client{Transport: &http.Transport{DialContext: dialIn(s.NS), DisableKeepAlives: true}, Timeout: 10 * time.Second}
}

// DialContext returns a dialer whose connections start inside site's namespace.
func (l *Lab) DialContext(site string) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return dialIn(l.sites[site].NS)
}

// Up brings a lab up for topo. On any failure it tears down what it made.
func Up(ctx context.Context, topo *Topology, opts Options) (*Lab, error) {
	if err := opts.fill(); err != nil {
		return nil, err
	}
	if err := Preflight(); err != nil {
		return nil, err
	}
	if existing, err := listNetns(opts.Prefix); err != nil {
		return nil, err
	} else if len(existing) > 0 {
		return nil, fmt.Errorf("%w: namespaces %s", ErrExists, strings.Join(existing, ", "))
	}
	if len(topo.Sites) > 200 {
		return nil, fmt.Errorf("%w: at most 200 sites", ErrBadOptions)
	}
	for _, s := range topo.Sites {
		if s.Name == "switch" {
			return nil, fmt.Errorf("%w: a site may not be named \"switch\" (the switch's namespace)", ErrBadOptions)
		}
	}
	for _, d := range []string{opts.StateDir, opts.LogDir} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, err
		}
	}
	l := &Lab{opts: opts, topo: topo, owned: !opts.Detach, sites: map[string]SiteState{}}
	l.st = state{Prefix: opts.Prefix, TopologyFile: topo.Source, TopologyYAML: string(topo.Raw), LogDir: opts.LogDir,
		Started: time.Now().UTC(), APIKey: "lab", APISecret: randomSecret()}
	for i, s := range topo.Sites {
		ss := SiteState{Name: s.Name, NS: opts.Prefix + s.Name, Addr: siteAddr(i), MAC: macString(siteMAC(i))}
		l.st.Sites = append(l.st.Sites, ss)
		l.sites[s.Name] = ss
	}
	if err := l.up(ctx); err != nil {
		cerr := l.teardown()
		return nil, errors.Join(err, cerr)
	}
	return l, nil
}

func (l *Lab) log() *slog.Logger { return l.opts.Logger }

func (l *Lab) up(ctx context.Context) error {
	for _, s := range l.st.Sites {
		if err := ipCmd(ctx, "netns", "add", s.NS); err != nil {
			return err
		}
		if err := ipCmd(ctx, "-n", s.NS, "link", "set", "lo", "up"); err != nil {
			return err
		}
		// No IPv6 in the lab: its link-local chatter would cross the emulated WAN.
		if out, err := exec.CommandContext(ctx, "ip", "netns", "exec", s.NS, "sysctl", "-qw",
			"net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1").CombinedOutput(); err != nil {
			l.log().Warn("lab: could not disable IPv6", "netns", s.NS, "err", err, "out", string(out))
		}
	}
	if err := l.writeState(); err != nil {
		return err
	}
	if err := l.startSwitch(ctx); err != nil {
		return err
	}
	for _, s := range l.st.Sites {
		for _, args := range [][]string{
			{"-n", s.NS, "link", "set", "dev", tapName, "address", s.MAC},
			{"-n", s.NS, "addr", "add", s.Addr.String() + "/24", "dev", tapName},
			{"-n", s.NS, "link", "set", "dev", tapName, "up"},
		} {
			if err := ipCmd(ctx, args...); err != nil {
				return err
			}
		}
	}
	if l.opts.NetworkOnly {
		return l.writeState()
	}
	rs := l.topo.RedisSite()
	if err := l.start(ctx, "redis", rs.Name, nil, l.opts.RedisServer,
		"--port", strconv.Itoa(RedisPort), "--bind", l.Addr(rs.Name).String(),
		"--save", "", "--appendonly", "no", "--protected-mode", "no"); err != nil {
		return err
	}
	if err := l.waitTCP(ctx, rs.Name, netip.AddrPortFrom(l.Addr(rs.Name), RedisPort).String()); err != nil {
		return err
	}
	nodes := l.topo.Nodes()
	redisURL := "redis://" + netip.AddrPortFrom(l.Addr(rs.Name), RedisPort).String() + "/0"
	first := netip.AddrPortFrom(l.Addr(nodes[0].Name), SerfPort).String()
	env := append(os.Environ(), "CASCADE_API_KEY="+l.st.APIKey, "CASCADE_API_SECRET="+l.st.APISecret)
	for i, n := range nodes {
		a := l.Addr(n.Name)
		args := []string{
			"--node-id", n.Name, "--region", n.Node.Region,
			"--lat", strconv.FormatFloat(n.Node.Lat, 'f', -1, 64), "--lon", strconv.FormatFloat(n.Node.Lon, 'f', -1, 64),
			"--http", netip.AddrPortFrom(a, HTTPPort).String(), "--udp-port", strconv.Itoa(UDPPort), "--public-ip", a.String(),
			"--serf-bind", netip.AddrPortFrom(a, SerfPort).String(), "--redis", redisURL,
		}
		if i > 0 {
			args = append(args, "--join", first)
		}
		if !l.opts.NoRelayDefaults {
			args = append(args, "--relay-via", "auto", "--relay-prewarm")
		}
		args = append(args, l.opts.ExtraSFUFlags...)
		if err := l.start(ctx, "sfu", n.Name, env, l.opts.SFUBinary, args...); err != nil {
			return err
		}
	}
	if err := l.writeState(); err != nil {
		return err
	}
	return l.waitCluster(ctx)
}

// start runs name in site's namespace with its output in the log directory.
func (l *Lab) start(ctx context.Context, what, site string, env []string, name string, args ...string) error {
	path, err := exec.LookPath(name)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	logPath := filepath.Join(l.opts.LogDir, site+"-"+what+".log")
	lf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	defer lf.Close()
	cmd := exec.Command("ip", append([]string{"netns", "exec", l.sites[site].NS, path}, args...)...)
	cmd.Stdout, cmd.Stderr, cmd.Env = lf, lf, env
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if !l.opts.Detach {
		cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s in %s: %w", what, site, err)
	}
	p := &proc{cmd: cmd, st: ProcState{Name: what, Site: site, PID: cmd.Process.Pid, Log: logPath}, done: make(chan struct{})}
	go func() { p.err = cmd.Wait(); close(p.done) }()
	l.mu.Lock()
	l.procs = append(l.procs, p)
	l.st.Procs = append(l.st.Procs, p.st)
	l.mu.Unlock()
	l.log().Info("lab: started", "what", what, "site", site, "pid", cmd.Process.Pid, "log", logPath)
	return nil
}

// waitCluster waits until every node lists every node as active.
func (l *Lab) waitCluster(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, l.opts.ReadyTimeout)
	defer cancel()
	nodes := l.topo.Nodes()
	var last error
	for {
		last = nil
		for _, n := range nodes {
			if err := l.checkNode(ctx, n.Name, len(nodes)); err != nil {
				last = fmt.Errorf("node %s: %w", n.Name, err)
				break
			}
		}
		if last == nil {
			l.log().Info("lab: cluster formed", "nodes", len(nodes))
			return nil
		}
		if err := l.exited(); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w: %v (logs in %s)", ErrNotReady, last, l.st.LogDir)
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// exited reports a lab process that has already exited.
func (l *Lab) exited() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, p := range l.procs {
		select {
		case <-p.done:
			return fmt.Errorf("%w: %s in %s exited (%v), see %s", ErrNotReady, p.st.Name, p.st.Site, p.err, p.st.Log)
		default:
		}
	}
	return nil
}

// proc is a process the lab started, waited for by its own goroutine.
type proc struct {
	cmd  *exec.Cmd
	st   ProcState
	done chan struct{}
	err  error // valid after done
}

// waitTCP waits until addr accepts TCP connections from inside site.
func (l *Lab) waitTCP(ctx context.Context, site, addr string) error {
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	dial := dialIn(l.sites[site].NS)
	for {
		c, err := dial(ctx, "tcp", addr)
		if err == nil {
			c.Close()
			return nil
		}
		if xerr := l.exited(); xerr != nil {
			return xerr
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w: %s: %v", ErrNotReady, addr, err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// NodeList is what a node's /v1/nodes answers (the fields the lab reads).
type NodeList struct {
	From  string `json:"from"`
	Nodes []struct {
		ID    string `json:"id"`
		State string `json:"state"`
	} `json:"nodes"`
}

func (l *Lab) checkNode(ctx context.Context, site string, want int) error {
	var nl NodeList
	if err := l.GetJSON(ctx, site, site, "/v1/nodes", &nl); err != nil {
		return err
	}
	active := 0
	for _, n := range nl.Nodes {
		if n.State == "active" {
			active++
		}
	}
	if active < want {
		return fmt.Errorf("%d of %d nodes active", active, want)
	}
	return nil
}

// GetJSON fetches path from the node of nodeSite with a cluster admin token,
// connecting from inside fromSite's namespace, and decodes the JSON answer.
func (l *Lab) GetJSON(ctx context.Context, fromSite, nodeSite, path string, v any) error {
	tok, err := l.AdminToken()
	if err != nil {
		return err
	}
	c := l.HTTPClient(fromSite)
	if c == nil || l.NodeURL(nodeSite) == "" {
		return fmt.Errorf("%w: %s or %s", ErrUnknownSite, fromSite, nodeSite)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, l.NodeURL(nodeSite)+path, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", path, resp.Status)
	}
	return json.NewDecoder(http.MaxBytesReader(nil, resp.Body, 16<<20)).Decode(v)
}

// Close tears the lab down and waits. For an attached lab, or one started
// with Detach, it only lets go of it: Down removes it. Calling it twice is safe.
func (l *Lab) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	l.mu.Unlock()
	if !l.owned {
		return nil
	}
	return l.teardown()
}

// teardown stops the processes, the switch and removes the namespaces and the state file.
func (l *Lab) teardown() error {
	l.mu.Lock()
	procs := l.procs
	l.procs = nil
	sw := l.sw
	l.sw = nil
	l.mu.Unlock()
	for _, p := range procs {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
	}
	for _, p := range procs {
		select {
		case <-p.done:
		case <-time.After(15 * time.Second):
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	}
	var err error
	if sw != nil {
		err = sw.Close()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	nss := []string{SwitchNS(l.opts.Prefix)}
	for _, s := range l.st.Sites {
		nss = append(nss, s.NS)
	}
	var present []string
	for _, ns := range nss {
		if _, serr := os.Stat(filepath.Join(netnsDir, ns)); serr == nil {
			present = append(present, ns)
		}
	}
	if derr := downNS(ctx, present); derr != nil {
		err = errors.Join(err, derr)
	}
	if rerr := os.Remove(filepath.Join(l.opts.StateDir, stateFile)); rerr != nil && !os.IsNotExist(rerr) {
		err = errors.Join(err, rerr)
	}
	return err
}

func waitOrKill(c *exec.Cmd, d time.Duration) {
	done := make(chan struct{})
	go func() { _ = c.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(d):
		_ = c.Process.Kill()
		<-done
	}
}

func (l *Lab) writeState() error {
	l.mu.Lock()
	b, err := json.MarshalIndent(l.st, "", "  ")
	l.mu.Unlock()
	if err != nil {
		return err
	}
	tmp := filepath.Join(l.opts.StateDir, stateFile+".tmp")
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(l.opts.StateDir, stateFile))
}

func readState(dir string) (*state, error) {
	b, err := os.ReadFile(filepath.Join(dir, stateFile))
	if os.IsNotExist(err) {
		return nil, fmt.Errorf("%w (no %s)", ErrNoLab, filepath.Join(dir, stateFile))
	}
	if err != nil {
		return nil, err
	}
	var st state
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, stateFile), err)
	}
	return &st, nil
}

// Attach returns the lab a detached Up (relayctl lab up) left running, from
// the state file in opts.StateDir. Its Close leaves the lab up.
func Attach(ctx context.Context, opts Options) (*Lab, error) {
	if err := opts.fill(); err != nil {
		return nil, err
	}
	st, err := readState(opts.StateDir)
	if err != nil {
		return nil, err
	}
	topo, err := topology.Parse(st.TopologyFile, []byte(st.TopologyYAML))
	if err != nil {
		return nil, err
	}
	opts.Prefix = st.Prefix
	l := &Lab{opts: opts, topo: topo, st: *st, sites: map[string]SiteState{}}
	for _, s := range st.Sites {
		if _, err := os.Stat(filepath.Join(netnsDir, s.NS)); err != nil {
			return nil, fmt.Errorf("%w: namespace %s is gone (run 'relayctl lab down' and up again)", ErrNoLab, s.NS)
		}
		l.sites[s.Name] = s
	}
	for _, n := range topo.Nodes() {
		if err := l.checkNode(ctx, n.Name, len(topo.Nodes())); err != nil {
			return nil, fmt.Errorf("%w: node %s: %v", ErrNotReady, n.Name, err)
		}
	}
	return l, nil
}

// siteAddr is the lab address of the i-th site: 198.51.100.(10+i).
func siteAddr(i int) netip.Addr { return netip.AddrFrom4([4]byte{198, 51, 100, byte(10 + i)}) }

// siteMAC is the MAC of the i-th site's TAP (locally administered).
func siteMAC(i int) [6]byte { return [6]byte{0x02, 0xca, 0x5c, 0x1a, 0xb0, byte(i)} }

func macString(m [6]byte) string { return net.HardwareAddr(m[:]).String() }

func randomSecret() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return "lab-" + hex.EncodeToString(b)
}
