package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/cascade-sfu/cascade/pkg/api"
	"github.com/cascade-sfu/cascade/pkg/lab"
	"github.com/cascade-sfu/cascade/pkg/lab/agent"
	"github.com/cascade-sfu/cascade/pkg/lab/measure"
	"github.com/cascade-sfu/cascade/pkg/lab/topology"
)

// The client sites of the lab scenarios.
const (
	pubSite = "eu-peer"
	subSite = "vn-peer"
)

// labScenario is one of issue #8's scenarios: where the publisher and the subscriber join.
type labScenario struct {
	id               int
	name             string
	pubNode, subNode string
	// needs are the links the scenario cannot run without.
	needs [][2]string
}

var labScenarios = []labScenario{
	{1, "eu-peer > sgp > relay > hcm > vn-peer", "sgp", "hcm", [][2]string{{pubSite, "sgp"}, {"sgp", "hcm"}, {subSite, "hcm"}}},
	{2, "eu-peer > hcm > vn-peer", "hcm", "hcm", [][2]string{{pubSite, "hcm"}, {subSite, "hcm"}}},
	{3, "eu-peer > sgp > vn-peer", "sgp", "sgp", [][2]string{{pubSite, "sgp"}, {subSite, "sgp"}}},
	{4, "eu-peer > eu > auto > hcm > vn-peer", "eu", "hcm", [][2]string{{pubSite, "eu"}, {subSite, "hcm"}}},
}

// pickScenarios parses --scenarios.
func pickScenarios(s string) ([]labScenario, error) {
	var out []labScenario
	seen := map[int]bool{}
	for _, f := range strings.Split(s, ",") {
		id, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || id < 1 || id > len(labScenarios) {
			return nil, fmt.Errorf("%w: --scenarios: %q is not a scenario (1 to %d)", errUsage, f, len(labScenarios))
		}
		if !seen[id] {
			seen[id] = true
			out = append(out, labScenarios[id-1])
		}
	}
	return out, nil
}

// checkScenarios refuses scenarios the topology cannot run, naming the missing link.
func checkScenarios(topo *topology.Topology, scs []labScenario) error {
	for _, sc := range scs {
		if err := topo.CheckLinked(sc.needs...); err != nil {
			return fmt.Errorf("scenario %d (%s) cannot run on this topology: %w", sc.id, sc.name, err)
		}
		if sc.id == 4 && !topo.Linked("eu", "hcm") && !(topo.Linked("eu", "sgp") && topo.Linked("sgp", "hcm")) {
			return fmt.Errorf("scenario 4 cannot run on this topology: no link eu–hcm and no path eu–sgp–hcm")
		}
	}
	return nil
}

// runLab runs the lab scenarios: on the lab 'relayctl lab up' left running, else on one it
// brings up and tears down (also on Ctrl-C and failure).
func (f *experimentFlags) runLab(ctx context.Context, g globals) error {
	scs, err := pickScenarios(f.scenarios)
	if err != nil {
		return err
	}
	if err := lab.Preflight(); err != nil {
		return fmt.Errorf("the lab mode needs root: %w (or measure real nodes with --publish-node/--subscribe-node)", err)
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	opts := lab.Options{StateDir: f.labStateDir, Prefix: f.labPrefix}
	l, err := lab.Attach(ctx, opts)
	switch {
	case err == nil:
		fmt.Fprintf(g.stderr, "using the lab that is up (topology %s)\n", l.Topology().Source)
	case errors.Is(err, lab.ErrNoLab):
		topo, err := topology.Load(f.topology)
		if err != nil {
			return err
		}
		if err := checkScenarios(topo, scs); err != nil { // before spending a minute on Up
			return err
		}
		opts.SFUBinary = "sfu"
		if p := filepath.Join(filepath.Dir(self), "sfu"); fileExists(p) {
			opts.SFUBinary = p
		}
		opts.Logger = slog.New(slog.NewTextHandler(g.stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
		fmt.Fprintf(g.stderr, "bringing the lab up from %s (%d sites, %d links)...\n", f.topology, len(topo.Sites), len(topo.Links))
		if l, err = lab.Up(ctx, topo, opts); err != nil {
			return fmt.Errorf("bringing the lab up: %w", err)
		}
	default:
		return fmt.Errorf("the lab that is up: %w", err)
	}
	defer l.Close() // tears down a lab this run brought up; leaves an attached one
	topo := l.Topology()
	if err := checkScenarios(topo, scs); err != nil {
		return err
	}
	ivf, ogg, cleanup, err := f.media(ctx)
	if err != nil {
		return err
	}
	defer cleanup()
	res := expResults{Topology: topo.Source, DurationS: f.duration.Seconds(), Date: time.Now().UTC().Format(time.RFC3339)}
	for _, sc := range scs {
		r, err := f.runScenario(ctx, g, l, self, sc, ivf, ogg)
		if err != nil {
			return fmt.Errorf("scenario %d (%s): %w (node logs in %s)", sc.id, sc.name, err, l.LogDir())
		}
		res.Scenarios = append(res.Scenarios, r)
	}
	printTable(g.stdout, res)
	if err := writeResults(f.out, res); err != nil {
		return err
	}
	fmt.Fprintf(g.stdout, "results in %s\n", f.out)
	return nil
}

// agentCmd starts "relayctl experiment agent" inside site's namespace.
func agentCmd(ctx context.Context, l *lab.Lab, self, site string, args ...string) *exec.Cmd {
	cmd := l.Command(ctx, site, self, append([]string{"experiment", "agent"}, args...)...)
	cmd.Env = append(os.Environ(), envAPIKey+"="+l.APIKey(), envAPISecret+"="+l.APISecret())
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	cmd.WaitDelay = 5 * time.Second
	return cmd
}

// stopProc asks a process to end and kills it if it does not within 5 s.
func stopProc(cmd *exec.Cmd, done <-chan error) {
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		_ = cmd.Process.Kill()
		<-done
	}
}

func (f *experimentFlags) runScenario(ctx context.Context, g globals, l *lab.Lab, self string, sc labScenario, ivf, ogg string) (expResult, error) {
	room := fmt.Sprintf("experiment-%d-%d", sc.id, time.Now().UnixNano())
	out := expResult{ID: sc.id, Name: sc.name, Room: room, PubNode: sc.pubNode, SubNode: sc.subNode}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	// The publisher, until told to stop.
	pub := agentCmd(ctx, l, self, pubSite, "--role", "pub", "--node", l.NodeURL(sc.pubNode), "--room", room,
		"--duration", (f.duration + 2*time.Minute).String(), "--ivf", ivf, "--ogg", ogg)
	var pubErr syncBuf
	pub.Stderr = &pubErr
	pubOut, err := pub.StdoutPipe()
	if err != nil {
		return out, err
	}
	if err := pub.Start(); err != nil {
		return out, fmt.Errorf("starting the publisher: %w", err)
	}
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(pubOut)
		for sc.Scan() {
			if sc.Text() == "ready" {
				close(ready)
				break
			}
		}
		_, _ = io.Copy(io.Discard, pubOut)
	}()
	pubDone := make(chan error, 1)
	go func() { pubDone <- pub.Wait() }()
	defer stopProc(pub, pubDone)
	select {
	case <-ready:
	case err := <-pubDone:
		pubDone <- err
		return out, fmt.Errorf("publisher exited: %v: %s", err, strings.TrimSpace(pubErr.String()))
	case <-time.After(45 * time.Second):
		return out, fmt.Errorf("publisher not connected after 45s: %s", strings.TrimSpace(pubErr.String()))
	case <-ctx.Done():
		return out, ctx.Err()
	}
	time.Sleep(time.Second) // the room sees the track before the subscriber asks

	// The subscriber, for the duration; the path is read from the nodes while it runs.
	sub := agentCmd(ctx, l, self, subSite, "--role", "sub", "--node", l.NodeURL(sc.subNode), "--room", room,
		"--duration", f.duration.String())
	var subOut syncBuf
	sub.Stdout = &subOut
	subErrPipe, err := sub.StderrPipe()
	if err != nil {
		return out, err
	}
	if err := sub.Start(); err != nil {
		return out, fmt.Errorf("starting the subscriber: %w", err)
	}
	var subErr syncBuf
	var wg sync.WaitGroup
	var path []string
	var pathErr error
	wg.Add(2)
	go func() {
		defer wg.Done()
		s := bufio.NewScanner(subErrPipe)
		for s.Scan() {
			line := s.Text()
			if js, ok := strings.CutPrefix(line, "progress "); ok {
				var p agentProgress
				if json.Unmarshal([]byte(js), &p) == nil {
					progressLine(g.stderr, "scenario "+strconv.Itoa(sc.id), time.Duration(p.ElapsedS*float64(time.Second)), f.duration, p.Result)
				}
				continue
			}
			subErr.Write([]byte(line + "\n"))
		}
	}()
	go func() {
		defer wg.Done()
		select {
		case <-ctx.Done():
			return
		case <-time.After(f.duration / 3):
		}
		path, pathErr = labPath(ctx, l, sc)
	}()
	err = sub.Wait()
	wg.Wait()
	fmt.Fprintln(g.stderr)
	if err != nil {
		return out, fmt.Errorf("subscriber: %v: %s", err, strings.TrimSpace(subErr.String()))
	}
	var ar agentResult
	if err := json.Unmarshal([]byte(subOut.String()), &ar); err != nil {
		return out, fmt.Errorf("subscriber output: %w: %q", err, subOut.String())
	}
	fromMeasure(&out, ar.Result)
	if pathErr != nil {
		return out, fmt.Errorf("finding the path the media took: %w", pathErr)
	}
	out.Path = append(append([]string{pubSite}, path...), subSite)
	d, err := l.Topology().PathDelay(out.Path...)
	if err != nil {
		return out, fmt.Errorf("path %v: %w", out.Path, err)
	}
	out.ConfiguredOneWayMs = float64(d.Microseconds()) / 1000
	return out, nil
}

type agentProgress struct {
	ElapsedS float64        `json:"elapsed_s"`
	Result   measure.Result `json:"result"`
}

// labPath asks every node, from inside its own namespace, for its relay links and follows the
// ones carrying media from the publisher's node to the subscriber's.
func labPath(ctx context.Context, l *lab.Lab, sc labScenario) ([]string, error) {
	if sc.pubNode == sc.subNode {
		return []string{sc.pubNode}, nil
	}
	var last error
	for attempt := 0; attempt < 10; attempt++ {
		links := map[string]api.Relays{}
		for round := 0; round < 2; round++ { // a link's bitrate needs two samples
			for _, n := range l.Topology().Nodes() {
				var r api.Relays
				if err := l.GetJSON(ctx, n.Name, n.Name, "/v1/relays", &r); err != nil {
					last = fmt.Errorf("node %s: %w", n.Name, err)
					continue
				}
				links[n.Name] = r
			}
			if round == 0 {
				select {
				case <-ctx.Done():
					return nil, ctx.Err()
				case <-time.After(1500 * time.Millisecond):
				}
			}
		}
		if p := agent.Path(sc.pubNode, sc.subNode, links); p != nil {
			return p, nil
		}
		last = fmt.Errorf("no chain of relay links carrying media from %s to %s (links: %s)", sc.pubNode, sc.subNode, describeLinks(links))
	}
	return nil, last
}

// syncBuf is a bytes buffer safe for a writer and a reader.
type syncBuf struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.b.Len() > 1<<20 {
		return len(p), nil // bounded
	}
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
