package loadgen

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// Limits of a run.
const (
	MaxViewers    = 5000
	MaxPublishers = 50
	MaxRate       = 1000 // joins per second
	MaxDuration   = 24 * time.Hour
)

// Config describes one run.
type Config struct {
	// Server is the node's base URL (http:// or https://).
	Server string
	Room   string
	Source Source
	// Viewers to join (with FindMax: the most to try).
	Viewers    int
	Publishers int
	// Rate is joins per second.
	Rate float64
	// Duration is the steady window, measured once every viewer has joined.
	Duration time.Duration
	// WS makes viewers WebSocket participants instead of WHEP players.
	WS bool
	// Token mints a token for identity in Room: a publisher's (publish only) or a viewer's
	// (subscribe only); with admin, a cluster-admin token (for /debug/pprof).
	Token func(identity string, publish, admin bool) (string, error)
	// ServerPID, when not 0, is the server process whose CPU is read from /proc.
	ServerPID int
	// ProfileDir, when set, receives cpu.pprof, heap.pprof and allocs.pprof of the window.
	ProfileDir string
	// FindMax ramps viewers by Step every StepDuration until loss passes 1% or the time to
	// first packet degrades, and reports the knee.
	FindMax      bool
	Step         int
	StepDuration time.Duration
	// MediaTimeout is how long a viewer may wait for its first packet; default 15 s.
	MediaTimeout time.Duration
	// Progress receives a line a second while the run goes; nil for none.
	Progress io.Writer
	// HTTP is the client for WHIP/WHEP and pprof; nil for a default one.
	HTTP *http.Client
	// Target is the kind of server; nil for Cascade.
	Target Target
}

func (c *Config) check() error {
	u, err := url.Parse(c.Server)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Hostname() == "" {
		return fmt.Errorf("%w: server %q is not an http(s) URL", ErrConfig, c.Server)
	}
	if c.Room == "" || strings.ContainsAny(c.Room, "/?#") {
		return fmt.Errorf("%w: bad room %q", ErrConfig, c.Room)
	}
	switch {
	case c.Viewers < 1 || c.Viewers > MaxViewers:
		return fmt.Errorf("%w: viewers must be in 1..%d", ErrConfig, MaxViewers)
	case c.Publishers < 1 || c.Publishers > MaxPublishers:
		return fmt.Errorf("%w: publishers must be in 1..%d", ErrConfig, MaxPublishers)
	case c.Rate <= 0 || c.Rate > MaxRate:
		return fmt.Errorf("%w: rate must be in (0, %d] joins/s", ErrConfig, MaxRate)
	case c.Duration <= 0 || c.Duration > MaxDuration:
		return fmt.Errorf("%w: duration must be in (0, %v]", ErrConfig, MaxDuration)
	case c.Token == nil:
		return fmt.Errorf("%w: no token source", ErrConfig)
	case c.ServerPID < 0:
		return fmt.Errorf("%w: bad server pid %d", ErrConfig, c.ServerPID)
	}
	if _, ok := c.Target.(LiveKit); ok && (c.WS || c.ProfileDir != "") {
		return fmt.Errorf("%w: the livekit target has WHIP viewers only and no profile endpoint (no --ws, no --profile)", ErrConfig)
	}
	if c.FindMax && (c.Step < 1 || c.StepDuration <= 0) {
		return fmt.Errorf("%w: find-max needs a step of at least 1 viewer and a step duration", ErrConfig)
	}
	if c.ServerPID > 0 {
		if _, err := ReadProcCPU(c.ServerPID); err != nil {
			return fmt.Errorf("%w: server pid %d: %w", ErrConfig, c.ServerPID, err)
		}
	}
	return c.Source.check()
}

// Failure is one kind of failure with its count and first error.
type Failure struct {
	Kind  string `json:"kind"`
	Count int    `json:"count"`
	First string `json:"first_error"`
}

// Window is what the viewers received over a measuring window.
type Window struct {
	Viewers       int           `json:"viewers"`        // connected at the window's end
	Failed        int           `json:"failed"`         // failed so far
	Seconds       float64       `json:"seconds"`        // window length
	Packets       uint64        `json:"packets"`        // egress packets counted at the viewers
	PacketsPerSec float64       `json:"packets_per_s"`  // egress
	BitsPerSec    float64       `json:"bits_per_s"`     // egress RTP bits
	Loss          float64       `json:"loss"`           // 0..1, after NACK repair
	TTFPP50       time.Duration `json:"ttfp_p50_ns"`    // time to first packet of the viewers joined for it
	TTFPP95       time.Duration `json:"ttfp_p95_ns"`    //
	ServerCPU     float64       `json:"server_cpu"`     // cores used by the server; with ServerPID
	GeneratorCPU  float64       `json:"generator_cpu"`  // cores used by this load generator
	CPUPerMillion float64       `json:"cpu_s_per_mpkt"` // server CPU-seconds per million egress packets
}

// Report is a run's result.
type Report struct {
	Server     string    `json:"server"`
	Room       string    `json:"room"`
	Target     string    `json:"target"` // cascade or livekit
	Mode       string    `json:"mode"`   // whep, ws or whip-recv (livekit)
	Source     string    `json:"source"`
	Publishers int       `json:"publishers"`
	Requested  int       `json:"viewers_requested"`
	Connected  int       `json:"viewers_connected"`
	Failed     int       `json:"viewers_failed"`
	Failures   []Failure `json:"failures,omitempty"`
	Steady     Window    `json:"steady"`
	// Steps are find-max's steps, Knee the viewers of the last good one (0: not even the first).
	Steps   []Window `json:"steps,omitempty"`
	Knee    int      `json:"knee,omitempty"`
	KneeWhy string   `json:"knee_reason,omitempty"`
	// Profiles are the files written to ProfileDir.
	Profiles []string `json:"profiles,omitempty"`
}

// run is the state of one Run.
type run struct {
	cfg  Config
	hc   *http.Client
	apis *apis
	ws   string       // signalling URL
	vhc  *http.Client // viewers' client: hc plus the target's viewer headers
	view string       // viewers' endpoint

	mu       sync.Mutex // guards the fields below
	viewers  []*viewer
	ttfp     []time.Duration // per connected viewer, in join order
	failures map[string]*Failure
	order    []string // failure kinds in order of first appearance
	failed   int
}

// Run runs the load and returns its report. It ends early, with what it measured, when ctx
// ends.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if cfg.MediaTimeout <= 0 {
		cfg.MediaTimeout = 15 * time.Second
	}
	if cfg.Target == nil {
		cfg.Target = Cascade{}
	}
	if err := cfg.check(); err != nil {
		return nil, err
	}
	u, _ := url.Parse(cfg.Server)
	a, err := newAPIs(u.Hostname())
	if err != nil {
		return nil, err
	}
	defer a.close()
	r := &run{cfg: cfg, hc: cfg.HTTP, apis: a, failures: map[string]*Failure{}}
	if r.hc == nil {
		r.hc = &http.Client{Timeout: 30 * time.Second}
	}
	r.ws = "ws" + strings.TrimPrefix(strings.TrimSuffix(cfg.Server, "/"), "http") + "/v1/rtc"
	base := strings.TrimSuffix(cfg.Server, "/")

	rep := &Report{Server: cfg.Server, Target: cfg.Target.Name(), Room: cfg.Room, Mode: "whep", Source: cfg.Source.Kind, Publishers: cfg.Publishers, Requested: cfg.Viewers}
	if cfg.WS {
		rep.Mode = "ws"
	}
	if _, ok := cfg.Target.(LiveKit); ok {
		rep.Mode = "whip-recv"
	}

	// Publishers first, so that every viewer finds the tracks.
	pubCtx, stopPubs := context.WithCancel(context.Background())
	var pubWG sync.WaitGroup
	var pubs []*publisher
	var pubTokens, pubIDs []string
	defer func() {
		stopPubs()
		pubWG.Wait()
		for i, p := range pubs {
			p.close(r.hc, pubTokens[i])
		}
	}()
	for i := range cfg.Publishers {
		id := fmt.Sprintf("load-pub-%d", i)
		tok, err := cfg.Token(id, true, false)
		if err != nil {
			return nil, err
		}
		sctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		p, err := startPublisher(sctx, a.publisher, r.hc, cfg.Source, cfg.Target.PublishURL(base, cfg.Room), tok, id)
		cancel()
		if err != nil {
			return nil, fmt.Errorf("%w: publisher %d: %w", ErrNoPublisher, i, err)
		}
		pubs, pubTokens, pubIDs = append(pubs, p), append(pubTokens, tok), append(pubIDs, id)
		pubWG.Add(1)
		go func() {
			defer pubWG.Done()
			if err := p.run(pubCtx, cfg.Source); err != nil {
				r.fail(&ViewerError{Kind: "publisher", Err: err})
			}
		}()
	}

	view, hdr, err := cfg.Target.ViewURL(base, cfg.Room, pubIDs)
	if err != nil {
		return nil, err
	}
	r.view, r.vhc = view, r.hc
	if len(hdr) > 0 {
		tr := r.hc.Transport
		if tr == nil {
			tr = http.DefaultTransport
		}
		vhc := *r.hc
		vhc.Transport = headerTransport{base: tr, h: hdr}
		r.vhc = &vhc
	}

	progCtx, stopProg := context.WithCancel(ctx)
	progDone := make(chan struct{})
	go r.progress(progCtx, progDone)
	defer func() { stopProg(); <-progDone }()
	defer r.closeViewers()

	if cfg.FindMax {
		err = r.findMax(ctx, rep)
	} else {
		err = r.steady(ctx, rep, base)
	}
	r.fillFailures(rep)
	return rep, err
}

// steady joins every viewer, then measures the steady window.
func (r *run) steady(ctx context.Context, rep *Report, base string) error {
	r.join(ctx, 0, r.cfg.Viewers)
	if ctx.Err() != nil {
		return nil
	}
	var prof *profiler
	if r.cfg.ProfileDir != "" {
		prof = startProfile(ctx, r.hc, base, r.cfg.ProfileDir, r.cfg.Duration, r.cfg.Token)
	}
	w := r.measure(ctx, r.cfg.Duration, 0)
	rep.Steady = w
	if prof != nil {
		files, err := prof.finish(ctx)
		rep.Profiles = files
		if err != nil {
			return err
		}
	}
	return nil
}

// findMax adds Step viewers at a time and measures each step.
func (r *run) findMax(ctx context.Context, rep *Report) error {
	var firstP95 time.Duration
	joined := 0
	for joined < r.cfg.Viewers && ctx.Err() == nil {
		n := min(r.cfg.Step, r.cfg.Viewers-joined)
		r.join(ctx, joined, n)
		if ctx.Err() != nil {
			break
		}
		w := r.measure(ctx, r.cfg.StepDuration, joined)
		joined += n
		rep.Steps = append(rep.Steps, w)
		if len(rep.Steps) == 1 {
			// A degradation users notice: 3x the first step's, and never below 750 ms (a first
			// step of a few tens of ms would make 150 ms, well within what a viewer accepts,
			// a knee).
			firstP95 = max(w.TTFPP95, 250*time.Millisecond)
		}
		why := ""
		switch {
		case w.Loss > 0.01:
			why = fmt.Sprintf("loss %.2f%% > 1%% at %d viewers", 100*w.Loss, joined)
		case w.TTFPP95 > 3*firstP95:
			why = fmt.Sprintf("time to first packet p95 %v > 3x the first step's at %d viewers", w.TTFPP95.Round(time.Millisecond), joined)
		case w.Failed > 0:
			why = fmt.Sprintf("%d viewers failed by %d viewers", w.Failed, joined)
		}
		if why != "" {
			rep.KneeWhy = why
			rep.Steady = w
			return nil
		}
		rep.Knee = joined
		rep.Steady = w
	}
	rep.KneeWhy = fmt.Sprintf("no limit reached up to %d viewers", joined)
	return nil
}

// join starts n viewers numbered from first, paced at the rate, and returns when each has
// received its first packet or failed.
func (r *run) join(ctx context.Context, first, n int) {
	interval := time.Duration(float64(time.Second) / r.cfg.Rate)
	tick := time.NewTicker(interval)
	defer tick.Stop()
	var wg sync.WaitGroup
	defer wg.Wait()
	for i := first; i < first+n; i++ {
		if i > first {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.startViewer(ctx, i)
		}()
	}
}

func (r *run) startViewer(ctx context.Context, i int) {
	id := fmt.Sprintf("load-viewer-%d", i)
	tok, err := r.cfg.Token(id, false, false)
	if err != nil {
		r.fail(&ViewerError{Kind: "token", Err: err})
		return
	}
	vctx, cancel := context.WithTimeout(ctx, r.cfg.MediaTimeout)
	defer cancel()
	var v *viewer
	if r.cfg.WS {
		v, err = startWS(vctx, r.apis.viewer, r.ws, tok, id)
	} else {
		v, err = startWHEP(vctx, r.apis.viewer, r.vhc, r.view, tok)
	}
	if err != nil {
		r.fail(err)
		return
	}
	if err := v.waitMedia(vctx); err != nil {
		v.close(r.hc)
		if ctx.Err() == nil {
			r.fail(err)
		}
		return
	}
	r.mu.Lock()
	r.viewers = append(r.viewers, v)
	r.ttfp = append(r.ttfp, time.Duration(v.firstNS.Load()))
	r.mu.Unlock()
}

func (r *run) fail(err error) {
	kind := "error"
	var ve *ViewerError
	if errors.As(err, &ve) {
		kind = ve.Kind
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.failed++
	f := r.failures[kind]
	if f == nil {
		f = &Failure{Kind: kind, First: err.Error()}
		r.failures[kind] = f
		r.order = append(r.order, kind)
	}
	f.Count++
}

func (r *run) fillFailures(rep *Report) {
	r.mu.Lock()
	defer r.mu.Unlock()
	rep.Connected, rep.Failed = len(r.viewers), r.failed
	for _, k := range r.order {
		rep.Failures = append(rep.Failures, *r.failures[k])
	}
}

// totals sums all viewers' counters.
type totals struct {
	viewers, failed    int
	packets, bytes     uint64
	expected, received uint64
	at                 time.Time
	cpu                CPUSample
	cpuOK              bool
	self               CPUSample // this process
	selfOK             bool
}

func (r *run) snapshot() totals {
	r.mu.Lock()
	vs := append([]*viewer(nil), r.viewers...)
	t := totals{viewers: len(vs), failed: r.failed}
	r.mu.Unlock()
	for _, v := range vs {
		t.packets += v.packets.Load()
		t.bytes += v.bytes.Load()
		e, rc := v.counts()
		t.expected += e
		t.received += rc
	}
	t.at = time.Now()
	if s, err := ReadProcCPU(os.Getpid()); err == nil {
		t.self, t.selfOK = s, true
	}
	if r.cfg.ServerPID > 0 {
		if s, err := ReadProcCPU(r.cfg.ServerPID); err == nil {
			t.cpu, t.cpuOK = s, true
		}
	}
	return t
}

// measure waits d and returns the window's figures; ttfpFrom selects the viewers (by join
// order) whose time to first packet the window reports.
func (r *run) measure(ctx context.Context, d time.Duration, ttfpFrom int) Window {
	a := r.snapshot()
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
	b := r.snapshot()
	w := window(a, b)
	r.mu.Lock()
	if ttfpFrom < len(r.ttfp) {
		w.TTFPP50 = Percentile(r.ttfp[ttfpFrom:], 50)
		w.TTFPP95 = Percentile(r.ttfp[ttfpFrom:], 95)
	}
	r.mu.Unlock()
	return w
}

// since returns b - a, or 0 when the total fell (viewers closed and left the sum: at the end of
// a run or a --find-max step) rather than wrapping around.
func since(a, b uint64) uint64 {
	if b < a {
		return 0
	}
	return b - a
}

func window(a, b totals) Window {
	w := Window{Viewers: b.viewers, Failed: b.failed, Seconds: b.at.Sub(a.at).Seconds()}
	w.Packets = since(a.packets, b.packets)
	if w.Seconds > 0 {
		w.PacketsPerSec = float64(w.Packets) / w.Seconds
		w.BitsPerSec = float64(8*since(a.bytes, b.bytes)) / w.Seconds
	}
	// Viewers that joined during the window count from zero in a: still consistent deltas.
	w.Loss = LossRatio(since(a.expected, b.expected), since(a.received, b.received))
	if a.selfOK && b.selfOK {
		w.GeneratorCPU = Utilization(a.self, b.self)
	}
	if a.cpuOK && b.cpuOK {
		w.ServerCPU = Utilization(a.cpu, b.cpu)
		w.CPUPerMillion = CPUPerMillion(a.cpu, b.cpu, w.Packets)
	}
	return w
}

// progress writes a line a second until ctx ends.
func (r *run) progress(ctx context.Context, done chan<- struct{}) {
	defer close(done)
	if r.cfg.Progress == nil {
		return
	}
	start := time.Now()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	last := r.snapshot()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		cur := r.snapshot()
		w := window(last, cur)
		line := fmt.Sprintf("%4.0fs  viewers %d/%d  failed %d  egress %.0f pkt/s %.2f Mb/s  loss %.2f%%",
			time.Since(start).Seconds(), cur.viewers, r.cfg.Viewers, cur.failed, w.PacketsPerSec, w.BitsPerSec/1e6, 100*w.Loss)
		if cur.cpuOK && last.cpuOK {
			line += fmt.Sprintf("  server cpu %.0f%%", 100*w.ServerCPU)
		}
		line += fmt.Sprintf("  generator cpu %.0f%%", 100*w.GeneratorCPU)
		fmt.Fprintln(r.cfg.Progress, line)
		last = cur
	}
}

func (r *run) closeViewers() {
	r.mu.Lock()
	vs := r.viewers
	r.viewers = nil
	r.mu.Unlock()
	var wg sync.WaitGroup
	sem := make(chan struct{}, 32)
	for _, v := range vs {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			v.close(r.hc)
		}()
	}
	wg.Wait()
}

// profiler collects the node's CPU profile over the window, then heap and allocs.
type profiler struct {
	dir, base, token string
	hc               *http.Client
	done             chan error
}

func startProfile(ctx context.Context, hc *http.Client, base, dir string, d time.Duration, token func(string, bool, bool) (string, error)) *profiler {
	p := &profiler{dir: dir, base: base, hc: hc, done: make(chan error, 1)}
	tok, err := token("load-profiler", false, true)
	if err != nil {
		p.done <- err
		return p
	}
	p.token = tok
	secs := max(int(d.Round(time.Second)/time.Second), 1)
	go func() {
		p.done <- p.fetch(ctx, fmt.Sprintf("/debug/pprof/profile?seconds=%d", secs), "cpu.pprof", d+30*time.Second)
	}()
	return p
}

func (p *profiler) finish(ctx context.Context) ([]string, error) {
	var files []string
	err := <-p.done
	if err == nil {
		files = append(files, filepath.Join(p.dir, "cpu.pprof"))
	}
	for _, name := range []string{"heap", "allocs"} {
		e := p.fetch(ctx, "/debug/pprof/"+name, name+".pprof", 30*time.Second)
		if e == nil {
			files = append(files, filepath.Join(p.dir, name+".pprof"))
		}
		err = errors.Join(err, e)
	}
	return files, err
}

// maxProfile bounds a profile's size.
const maxProfile = 256 << 20

func (p *profiler) fetch(ctx context.Context, path, file string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.base+path, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+p.token)
	hc := *p.hc
	hc.Timeout = 0 // the context bounds it
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("profile %s: %w", path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("profile %s: %s: %s (does the node run with --pprof?)", path, resp.Status, strings.TrimSpace(string(msg)))
	}
	if err := os.MkdirAll(p.dir, 0o755); err != nil {
		return err
	}
	f, err := os.Create(filepath.Join(p.dir, file))
	if err != nil {
		return err
	}
	_, err = io.Copy(f, io.LimitReader(resp.Body, maxProfile))
	return errors.Join(err, f.Close())
}
