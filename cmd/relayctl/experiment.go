package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/cascade-sfu/cascade/pkg/api"
	"github.com/cascade-sfu/cascade/pkg/auth"
	"github.com/cascade-sfu/cascade/pkg/lab"
	"github.com/cascade-sfu/cascade/pkg/lab/agent"
	"github.com/cascade-sfu/cascade/pkg/lab/measure"
)

// Limits of "relayctl experiment".
const (
	minExpDuration = 5 * time.Second
	maxExpDuration = time.Hour
)

type experimentFlags struct {
	topology                 string
	duration                 time.Duration
	scenarios                string
	out                      string
	publishNode, subscribeNd string
	ivf, ogg                 string
	apiKey, apiSecret        string
	dev                      bool
	labPrefix, labStateDir   string
}

func newExperimentFlagSet(f *experimentFlags) *flag.FlagSet {
	fs := flag.NewFlagSet("relayctl experiment", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&f.topology, "topology", "deploy/lab/eu-sgp-hcm.yaml", "lab topology file")
	fs.DurationVar(&f.duration, "duration", 60*time.Second, "measured time per scenario (5s to 1h)")
	fs.StringVar(&f.scenarios, "scenarios", "1,2,3,4", "lab scenarios to run (comma-separated ids 1-4)")
	fs.StringVar(&f.out, "out", "experiment-results", "directory for results.json, results.csv and chart.svg")
	fs.StringVar(&f.publishNode, "publish-node", "", "live mode: base URL of the node the publisher joins")
	fs.StringVar(&f.subscribeNd, "subscribe-node", "", "live mode: base URL of the node the subscriber joins")
	fs.StringVar(&f.ivf, "ivf", "", "VP8 IVF file to publish (default: made with ffmpeg, 1280x720 30 fps ~1.5 Mb/s)")
	fs.StringVar(&f.ogg, "ogg", "", "Opus Ogg file to publish (default: made with ffmpeg)")
	fs.StringVar(&f.apiKey, "api-key", "", "API key (default $"+envAPIKey+")")
	fs.StringVar(&f.apiSecret, "api-secret", "", "API secret (default $"+envAPISecret+")")
	fs.BoolVar(&f.dev, "dev", false, "with no key or secret given, use the public dev pair (dev-mode servers only)")
	fs.StringVar(&f.labPrefix, "lab-prefix", "", "lab: namespace prefix of a lab this run brings up (default "+lab.DefaultPrefix+"; tests use their own)")
	fs.StringVar(&f.labStateDir, "lab-state-dir", lab.DefaultStateDir, "lab: state directory of a lab 'relayctl lab up' started")
	return fs
}

func experimentUsage(w io.Writer, fs *flag.FlagSet) {
	fmt.Fprint(w, `Usage:
  relayctl experiment [--topology FILE] [--duration 60s] [--scenarios 1,2,3,4] [--out DIR]
  relayctl experiment --publish-node URL --subscribe-node URL [--duration 60s] [--out DIR]

The first form (as root) brings up the emulated-WAN lab (or uses the one
'relayctl lab up' started), runs each scenario with a publisher in eu-peer and
a subscriber in vn-peer, prints a table and writes DIR/results.json,
DIR/results.csv and DIR/chart.svg; it tears down the lab it brought up.
  1  eu-peer > sgp > relay > hcm > vn-peer
  2  eu-peer > hcm > vn-peer
  3  eu-peer > sgp > vn-peer
  4  eu-peer > eu > (cluster's choice) > hcm > vn-peer

The second form measures between real nodes, publisher and subscriber in this
process (one clock), with tokens signed from $`+envAPIKey+`/$`+envAPISecret+`.

Latency is one way, from the abs-capture-time the publisher stamps on every
packet. Files are made with ffmpeg unless --ivf and --ogg are given.

Flags:
`)
	printFlags(w, fs)
}

// runExperiment implements "relayctl experiment".
func runExperiment(g globals, args []string) int {
	if len(args) > 0 && args[0] == "agent" {
		return runExperimentAgent(g, args[1:])
	}
	var f experimentFlags
	fs := newExperimentFlagSet(&f)
	if err := fs.Parse(args); err != nil {
		return parseFailure(err, "relayctl experiment", g.stdout, g.stderr, func(w io.Writer) { experimentUsage(w, fs) })
	}
	set := map[string]bool{}
	fs.Visit(func(fl *flag.Flag) { set[fl.Name] = true })
	err := f.check(fs.Args(), set)
	if err == nil {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		if f.publishNode != "" {
			err = f.runLive(ctx, g)
		} else {
			err = f.runLab(ctx, g)
		}
	}
	if err != nil {
		fmt.Fprintf(g.stderr, "relayctl experiment: %v\n", err)
		if errors.Is(err, errUsage) {
			fmt.Fprintln(g.stderr, "run 'relayctl experiment --help' for usage")
			return exitUsage
		}
		return exitError
	}
	return exitOK
}

func (f *experimentFlags) check(extra []string, set map[string]bool) error {
	if len(extra) > 0 {
		return fmt.Errorf("%w: unexpected argument %q", errUsage, extra[0])
	}
	if f.duration < minExpDuration || f.duration > maxExpDuration {
		return fmt.Errorf("%w: --duration %v must be in [%v, %v]", errUsage, f.duration, minExpDuration, maxExpDuration)
	}
	if (f.publishNode == "") != (f.subscribeNd == "") {
		return fmt.Errorf("%w: --publish-node and --subscribe-node go together", errUsage)
	}
	if f.publishNode != "" {
		if set["topology"] || set["scenarios"] {
			return fmt.Errorf("%w: --topology and --scenarios are for the lab, not with --publish-node", errUsage)
		}
		for _, u := range []string{f.publishNode, f.subscribeNd} {
			if err := checkServer(u); err != nil {
				return fmt.Errorf("%w: node URL %q: %w", errUsage, u, err)
			}
		}
	}
	if (f.ivf == "") != (f.ogg == "") {
		return fmt.Errorf("%w: --ivf and --ogg go together", errUsage)
	}
	return nil
}

func (f *experimentFlags) credentials(getenv func(string) string) (string, string, error) {
	tf := tokenFlags{apiKey: f.apiKey, apiSecret: f.apiSecret, dev: f.dev}
	return tf.credentials(getenv)
}

// makeMedia makes the VP8 and Opus files with ffmpeg into dir.
func makeMedia(ctx context.Context, dir string) (ivf, ogg string, err error) {
	ivf, ogg = filepath.Join(dir, "video.ivf"), filepath.Join(dir, "audio.ogg")
	for _, args := range [][]string{
		{"-f", "lavfi", "-i", "testsrc=size=1280x720:rate=30", "-t", "10", "-c:v", "libvpx", "-b:v", "1500k", "-g", "60",
			"-deadline", "realtime", "-cpu-used", "8", ivf},
		{"-f", "lavfi", "-i", "sine=f=440", "-t", "10", "-c:a", "libopus", ogg},
	} {
		cmd := exec.CommandContext(ctx, "ffmpeg", append([]string{"-y", "-nostdin", "-loglevel", "error"}, args...)...)
		if out, err := cmd.CombinedOutput(); err != nil {
			return "", "", fmt.Errorf("making the test media with ffmpeg (or pass --ivf and --ogg): %w: %s", err, strings.TrimSpace(string(out)))
		}
	}
	return ivf, ogg, nil
}

// media returns the files to publish, making them when not given; cleanup removes made files.
func (f *experimentFlags) media(ctx context.Context) (ivf, ogg string, cleanup func(), err error) {
	if f.ivf != "" {
		return f.ivf, f.ogg, func() {}, nil
	}
	dir, err := os.MkdirTemp("", "cascade-lab-media-")
	if err != nil {
		return "", "", nil, err
	}
	if err := os.Chmod(dir, 0o755); err != nil { // agents may run as another user
		os.RemoveAll(dir)
		return "", "", nil, err
	}
	ivf, ogg, err = makeMedia(ctx, dir)
	if err != nil {
		os.RemoveAll(dir)
		return "", "", nil, err
	}
	return ivf, ogg, func() { os.RemoveAll(dir) }, nil
}

func signToken(key, secret, room, identity string, pub bool) (string, error) {
	return auth.Sign(key, secret, auth.Grants{Room: room, Identity: identity, CanPublish: pub, CanSubscribe: !pub}, time.Hour+maxExpDuration, time.Now())
}

func adminToken(key, secret string) (string, error) {
	return auth.Sign(key, secret, auth.Grants{Identity: "relayctl-experiment", ClusterAdmin: true}, time.Hour+maxExpDuration, time.Now())
}

func nodeEndpoint(base, kind, room string) string {
	return strings.TrimRight(base, "/") + "/" + kind + "/" + url.PathEscape(room)
}

// progressLine writes one progress line (carriage return, no newline).
func progressLine(w io.Writer, name string, elapsed, total time.Duration, r measure.Result) {
	fmt.Fprintf(w, "\r[%s] %3.0fs/%.0fs  p50 %6.1f ms  jitter %5.2f ms  loss %5.2f%%  %5.2f Mb/s  frames %5d  freezes %d   ",
		name, elapsed.Seconds(), total.Seconds(), r.Latency.P50, r.JitterMs, r.LossPct, r.BitrateMbps, r.Frames, r.Freezes)
}

// probePath asks the nodes which relay links carry media (two readings a second and a half
// apart: a link's bitrate needs two samples) and returns the node ids from pubNode to subNode.
func probePath(ctx context.Context, pubNode, subNode string, urls map[string]string, tok string) ([]string, error) {
	if pubNode == subNode {
		return []string{pubNode}, nil
	}
	var last error
	for attempt := 0; attempt < 10; attempt++ {
		links := map[string]api.Relays{}
		for round := 0; round < 2; round++ {
			for id, u := range urls {
				r, err := agent.Links(ctx, u, tok)
				if err != nil {
					last = err
					continue
				}
				links[id] = r
			}
			if round == 0 {
				select {
				case <-ctx.Done():
					return nil, ctx.Err()
				case <-time.After(1500 * time.Millisecond):
				}
			}
		}
		if p := agent.Path(pubNode, subNode, links); p != nil {
			return p, nil
		}
		last = fmt.Errorf("no chain of relay links carrying media from %s to %s (links: %s)", pubNode, subNode, describeLinks(links))
	}
	return nil, last
}

func describeLinks(links map[string]api.Relays) string {
	var parts []string
	for id, r := range links {
		for _, l := range r.Links {
			parts = append(parts, fmt.Sprintf("%s>%s %s %d b/s", id, l.Peer, l.State, l.BitrateOut))
		}
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}

// runLive measures between two real nodes, publisher and subscriber in this process.
func (f *experimentFlags) runLive(ctx context.Context, g globals) error {
	key, secret, err := f.credentials(g.getenv)
	if err != nil {
		return err
	}
	admin, err := adminToken(key, secret)
	if err != nil {
		return fmt.Errorf("%w: %w", errUsage, err)
	}
	// Which nodes are these, and where are the others (for a relay through a third node)?
	pubRel, err := agent.Links(ctx, f.publishNode, admin)
	if err != nil {
		return fmt.Errorf("asking the publish node who it is: %w", err)
	}
	subRel, err := agent.Links(ctx, f.subscribeNd, admin)
	if err != nil {
		return fmt.Errorf("asking the subscribe node who it is: %w", err)
	}
	urls := map[string]string{pubRel.From: f.publishNode, subRel.From: f.subscribeNd}
	var nodes api.Nodes
	if err := agent.GetJSON(ctx, f.subscribeNd, admin, "/v1/nodes", &nodes); err == nil {
		for _, n := range nodes.Nodes {
			if _, ok := urls[n.ID]; !ok && n.URL != "" {
				urls[n.ID] = n.URL
			}
		}
	}
	ivf, ogg, cleanup, err := f.media(ctx)
	if err != nil {
		return err
	}
	defer cleanup()
	room := fmt.Sprintf("experiment-live-%d", time.Now().UnixNano())
	pubTok, err := signToken(key, secret, room, "lab-publisher", true)
	if err != nil {
		return err
	}
	subTok, err := signToken(key, secret, room, "lab-subscriber", false)
	if err != nil {
		return err
	}
	pctx, cancelPub := context.WithCancel(ctx)
	defer cancelPub()
	ready := make(chan struct{})
	pubErr := make(chan error, 1)
	go func() {
		pubErr <- agent.Publish(pctx, agent.PublishConfig{WHIP: nodeEndpoint(f.publishNode, "whip", room), Token: pubTok, IVF: ivf, Ogg: ogg,
			Ready: func() { close(ready) }})
	}()
	stopPub := func() error { cancelPub(); return <-pubErr }
	select {
	case <-ready:
	case err := <-pubErr:
		return fmt.Errorf("publisher: %w", err)
	case <-ctx.Done():
		_ = stopPub()
		return ctx.Err()
	}
	time.Sleep(time.Second) // let the room see the track before the subscriber asks
	var (
		pathOnce sync.Once
		path     []string
		pathErr  error
		wg       sync.WaitGroup
	)
	res, err := agent.Subscribe(ctx, agent.SubscribeConfig{WHEP: nodeEndpoint(f.subscribeNd, "whep", room), Token: subTok, Duration: f.duration,
		Progress: func(el time.Duration, r measure.Result) {
			progressLine(g.stderr, "live", el, f.duration, r)
			if el > f.duration/3 {
				pathOnce.Do(func() {
					wg.Add(1)
					go func() {
						defer wg.Done()
						path, pathErr = probePath(ctx, pubRel.From, subRel.From, urls, admin)
					}()
				})
			}
		}})
	wg.Wait()
	fmt.Fprintln(g.stderr)
	if perr := stopPub(); perr != nil && err == nil {
		err = fmt.Errorf("publisher: %w", perr)
	}
	if err != nil {
		return err
	}
	sc := expResult{ID: 0, Name: "live", Room: room, PubNode: pubRel.From, SubNode: subRel.From}
	fromMeasure(&sc, res)
	if pathErr != nil || path == nil {
		sc.PathError = fmt.Sprint(pathErr)
		path = []string{pubRel.From, subRel.From}
	}
	sc.Path = append(append([]string{"publisher"}, path...), "subscriber")
	out := expResults{Topology: "live", DurationS: f.duration.Seconds(), Date: time.Now().UTC().Format(time.RFC3339), Scenarios: []expResult{sc}}
	printTable(g.stdout, out)
	if err := writeResults(f.out, out); err != nil {
		return err
	}
	fmt.Fprintf(g.stdout, "results in %s\n", f.out)
	return nil
}

// runExperimentAgent is the hidden "relayctl experiment agent": one publisher or subscriber,
// run by the lab inside a client site's namespace. Credentials come from the environment.
// The publisher prints "ready" on stdout once media flows and runs until --duration or a
// signal; the subscriber prints its figures as one JSON object on stdout.
func runExperimentAgent(g globals, args []string) int {
	fs := flag.NewFlagSet("relayctl experiment agent", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	role := fs.String("role", "", "pub or sub")
	node := fs.String("node", "", "base URL of the node to join")
	room := fs.String("room", "", "room")
	duration := fs.Duration("duration", time.Minute, "how long to run")
	ivf := fs.String("ivf", "", "pub: VP8 IVF file")
	ogg := fs.String("ogg", "", "pub: Opus Ogg file")
	pathFrom := fs.String("path-from", "", "sub: the publisher's node id")
	nodes := fs.String("nodes", "", "sub: id=URL,... of the nodes to ask for the path")
	if err := fs.Parse(args); err != nil {
		fmt.Fprintf(g.stderr, "relayctl experiment agent: %v\n", err)
		return exitUsage
	}
	key, secret, err := (&experimentFlags{}).credentials(g.getenv)
	if err == nil && (*node == "" || *room == "") {
		err = fmt.Errorf("%w: --node and --room are required", errUsage)
	}
	if err == nil && (*duration <= 0 || *duration > maxExpDuration+time.Hour) {
		err = fmt.Errorf("%w: bad --duration", errUsage)
	}
	if err != nil {
		fmt.Fprintf(g.stderr, "relayctl experiment agent: %v\n", err)
		return exitUsage
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	switch *role {
	case "pub":
		tok, err := signToken(key, secret, *room, "lab-publisher", true)
		if err == nil {
			ctx, cancel := context.WithTimeout(ctx, *duration)
			defer cancel()
			err = agent.Publish(ctx, agent.PublishConfig{WHIP: nodeEndpoint(*node, "whip", *room), Token: tok, IVF: *ivf, Ogg: *ogg,
				Ready: func() { fmt.Fprintln(g.stdout, "ready") }})
		}
		if err != nil {
			fmt.Fprintf(g.stderr, "relayctl experiment agent: %v\n", err)
			return exitError
		}
		return exitOK
	case "sub":
		return runSubAgent(ctx, g, key, secret, *node, *room, *duration, *pathFrom, *nodes)
	default:
		fmt.Fprintf(g.stderr, "relayctl experiment agent: --role must be pub or sub\n")
		return exitUsage
	}
}

// agentResult is the subscriber agent's JSON output.
type agentResult struct {
	Result    measure.Result `json:"result"`
	SubNode   string         `json:"subscribe_node"`
	Path      []string       `json:"path"`
	PathError string         `json:"path_error,omitempty"`
}

func runSubAgent(ctx context.Context, g globals, key, secret, node, room string, d time.Duration, pathFrom, nodeList string) int {
	fail := func(err error) int {
		fmt.Fprintf(g.stderr, "relayctl experiment agent: %v\n", err)
		return exitError
	}
	tok, err := signToken(key, secret, room, "lab-subscriber", false)
	if err != nil {
		return fail(err)
	}
	admin, err := adminToken(key, secret)
	if err != nil {
		return fail(err)
	}
	urls := map[string]string{}
	for _, kv := range strings.Split(nodeList, ",") {
		if id, u, ok := strings.Cut(kv, "="); ok {
			urls[id] = u
		}
	}
	self, err := agent.Links(ctx, node, admin)
	if err != nil {
		return fail(fmt.Errorf("asking the node who it is: %w", err))
	}
	var (
		once    sync.Once
		wg      sync.WaitGroup
		path    []string
		pathErr error
	)
	res, err := agent.Subscribe(ctx, agent.SubscribeConfig{WHEP: nodeEndpoint(node, "whep", room), Token: tok, Duration: d,
		Progress: func(el time.Duration, r measure.Result) {
			line, _ := json.Marshal(struct {
				ElapsedS float64        `json:"elapsed_s"`
				Result   measure.Result `json:"result"`
			}{el.Seconds(), r})
			fmt.Fprintf(g.stderr, "progress %s\n", line)
			if el > d/3 && pathFrom != "" {
				once.Do(func() {
					wg.Add(1)
					go func() {
						defer wg.Done()
						path, pathErr = probePath(ctx, pathFrom, self.From, urls, admin)
					}()
				})
			}
		}})
	wg.Wait()
	if err != nil {
		return fail(err)
	}
	out := agentResult{Result: res, SubNode: self.From, Path: path}
	if pathErr != nil {
		out.PathError = pathErr.Error()
	}
	js, _ := json.Marshal(out)
	fmt.Fprintln(g.stdout, string(js))
	return exitOK
}
