package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/cascade-sfu/cascade/pkg/auth"
	"github.com/cascade-sfu/cascade/pkg/loadgen"
)

// loadFlags holds the parsed flags of "relayctl load".
type loadFlags struct {
	room                string
	ivf, h264           string
	pattern             bool
	fps                 int
	viewers, publishers int
	rate                string
	duration            time.Duration
	ws, jsonOut         bool
	serverPID           int
	profile             string
	findMax             bool
	step                int
	stepDuration        time.Duration
	apiKey, apiSecret   string
	dev                 bool
	target              string
}

func newLoadFlagSet(f *loadFlags) *flag.FlagSet {
	fs := flag.NewFlagSet("relayctl load", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&f.room, "room", "", "room to load (required)")
	fs.StringVar(&f.ivf, "ivf", "", "publish this VP8/VP9 IVF file, looped at its frame rate")
	fs.StringVar(&f.h264, "h264", "", "publish this Annex B H.264 file, looped at --fps")
	fs.BoolVar(&f.pattern, "pattern", false, "publish synthetic VP8-shaped frames, 1.5 Mb/s at 30 fps")
	fs.IntVar(&f.fps, "fps", 30, "frame rate of an --h264 file")
	fs.IntVar(&f.viewers, "viewers", 0, fmt.Sprintf("viewers to join, 1..%d (with --find-max: the most to try)", loadgen.MaxViewers))
	fs.IntVar(&f.publishers, "publishers", 1, fmt.Sprintf("publishers, 1..%d", loadgen.MaxPublishers))
	fs.StringVar(&f.rate, "rate", "10/s", "viewer joins per second, N or N/s")
	fs.DurationVar(&f.duration, "duration", 60*time.Second, "steady window measured once every viewer has joined")
	fs.BoolVar(&f.ws, "ws", false, "viewers are WebSocket participants instead of WHEP players")
	fs.BoolVar(&f.jsonOut, "json", false, "print the summary as JSON")
	fs.IntVar(&f.serverPID, "server-pid", 0, "PID of the server process on this machine: report its CPU from /proc")
	fs.StringVar(&f.profile, "profile", "", "write the node's CPU, heap and allocs profiles of the window to DIR (node needs --pprof)")
	fs.BoolVar(&f.findMax, "find-max", false, "ramp viewers until loss passes 1% or time to first packet degrades; report the knee")
	fs.IntVar(&f.step, "step", 20, "with --find-max, viewers added per step")
	fs.DurationVar(&f.stepDuration, "step-duration", 5*time.Second, "with --find-max, how long each step is measured")
	fs.StringVar(&f.apiKey, "api-key", "", "API key (default $"+envAPIKey+")")
	fs.StringVar(&f.apiSecret, "api-secret", "", "API secret (default $"+envAPISecret+")")
	fs.StringVar(&f.target, "target", "cascade", "server kind: cascade, or livekit (WHIP at /whip/v1, viewers are receive-only WHIP with X-LiveKit-ClientInfo; key and secret are LiveKit's)")
	fs.BoolVar(&f.dev, "dev", false, "with no key or secret given, use the public dev pair (dev-mode servers only)")
	return fs
}

// runLoad implements "relayctl load".
func runLoad(g globals, args []string) int {
	var f loadFlags
	fs := newLoadFlagSet(&f)
	if err := fs.Parse(args); err != nil {
		return parseFailure(err, "relayctl load", g.stdout, g.stderr, func(w io.Writer) { loadUsage(w, fs) })
	}
	cfg, err := f.config(g, fs.Args())
	if err != nil {
		fmt.Fprintf(g.stderr, "relayctl load: %v\n", err)
		fmt.Fprintln(g.stderr, "run 'relayctl load --help' for usage")
		return exitUsage
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	rep, err := loadgen.Run(ctx, cfg)
	if errors.Is(err, loadgen.ErrConfig) {
		fmt.Fprintf(g.stderr, "relayctl load: %v\n", err)
		return exitUsage
	}
	if rep != nil {
		if f.jsonOut {
			enc := json.NewEncoder(g.stdout)
			enc.SetIndent("", "  ")
			_ = enc.Encode(rep)
		} else {
			printLoadReport(g.stdout, rep)
		}
	}
	if err != nil {
		fmt.Fprintf(g.stderr, "relayctl load: %v\n", err)
		return exitError
	}
	if rep.Connected == 0 {
		fmt.Fprintln(g.stderr, "relayctl load: no viewer connected")
		return exitError
	}
	return exitOK
}

// config checks the flags and builds the run's configuration.
func (f *loadFlags) config(g globals, extra []string) (loadgen.Config, error) {
	if len(extra) > 0 {
		return loadgen.Config{}, fmt.Errorf("%w: unexpected argument %q", errUsage, extra[0])
	}
	if f.room == "" {
		return loadgen.Config{}, fmt.Errorf("%w: --room is required", errUsage)
	}
	if err := auth.ValidRoomName(f.room); err != nil {
		return loadgen.Config{}, fmt.Errorf("%w: --room: %w", errUsage, err)
	}
	var src loadgen.Source
	n := 0
	if f.ivf != "" {
		src, n = loadgen.Source{Kind: "ivf", Path: f.ivf}, n+1
	}
	if f.h264 != "" {
		src, n = loadgen.Source{Kind: "h264", Path: f.h264, FPS: f.fps}, n+1
	}
	if f.pattern {
		src, n = loadgen.Source{Kind: "pattern"}, n+1
	}
	if n != 1 {
		return loadgen.Config{}, fmt.Errorf("%w: give exactly one of --ivf FILE, --h264 FILE or --pattern", errUsage)
	}
	if f.fps < 1 || f.fps > 240 {
		return loadgen.Config{}, fmt.Errorf("%w: --fps must be in 1..240", errUsage)
	}
	if f.viewers < 1 || f.viewers > loadgen.MaxViewers {
		return loadgen.Config{}, fmt.Errorf("%w: --viewers must be in 1..%d", errUsage, loadgen.MaxViewers)
	}
	if f.publishers < 1 || f.publishers > loadgen.MaxPublishers {
		return loadgen.Config{}, fmt.Errorf("%w: --publishers must be in 1..%d", errUsage, loadgen.MaxPublishers)
	}
	rate, err := parseRate(f.rate)
	if err != nil {
		return loadgen.Config{}, err
	}
	if f.duration <= 0 || f.duration > loadgen.MaxDuration {
		return loadgen.Config{}, fmt.Errorf("%w: --duration must be in (0, %v]", errUsage, loadgen.MaxDuration)
	}
	if f.serverPID < 0 {
		return loadgen.Config{}, fmt.Errorf("%w: --server-pid must be a process id", errUsage)
	}
	if f.findMax && (f.step < 1 || f.step > loadgen.MaxViewers || f.stepDuration <= 0 || f.stepDuration > time.Hour) {
		return loadgen.Config{}, fmt.Errorf("%w: --step must be in 1..%d and --step-duration in (0, 1h]", errUsage, loadgen.MaxViewers)
	}
	tf := tokenFlags{apiKey: f.apiKey, apiSecret: f.apiSecret, dev: f.dev}
	key, secret, err := tf.credentials(g.getenv)
	if err != nil {
		return loadgen.Config{}, err
	}
	room := f.room
	var target loadgen.Target = loadgen.Cascade{}
	token := func(identity string, publish, admin bool) (string, error) {
		gr := auth.Grants{Room: room, Identity: identity, CanPublish: publish, CanSubscribe: !publish && !admin}
		if admin {
			gr = auth.Grants{Identity: identity, ClusterAdmin: true}
		}
		return auth.Sign(key, secret, gr, 24*time.Hour+f.duration, time.Now())
	}
	switch f.target {
	case "cascade":
	case "livekit":
		if f.ws || f.profile != "" {
			return loadgen.Config{}, fmt.Errorf("%w: --target livekit has no --ws or --profile", errUsage)
		}
		target = loadgen.LiveKit{}
		token = func(identity string, publish, _ bool) (string, error) {
			return loadgen.LiveKitToken(key, secret, room, identity, publish, 24*time.Hour+f.duration, time.Now())
		}
	default:
		return loadgen.Config{}, fmt.Errorf("%w: --target %q: want cascade or livekit", errUsage, f.target)
	}
	var progress io.Writer = g.stderr
	return loadgen.Config{
		Server: g.server, Room: f.room, Source: src, Viewers: f.viewers, Publishers: f.publishers,
		Rate: rate, Duration: f.duration, WS: f.ws, Token: token, ServerPID: f.serverPID,
		ProfileDir: f.profile, FindMax: f.findMax, Step: f.step, StepDuration: f.stepDuration,
		Progress: progress, Target: target,
	}, nil
}

// parseRate reads "N" or "N/s" joins per second.
func parseRate(s string) (float64, error) {
	v, err := strconv.ParseFloat(strings.TrimSuffix(s, "/s"), 64)
	if err != nil || v <= 0 || v > loadgen.MaxRate {
		return 0, fmt.Errorf("%w: --rate %q: want joins per second in (0, %d], e.g. 10/s", errUsage, s, loadgen.MaxRate)
	}
	return v, nil
}

func printLoadReport(w io.Writer, r *loadgen.Report) {
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	s := r.Steady
	fmt.Fprintf(tw, "server\t%s %s (room %s, %s viewers, %d publisher(s) of %s)\n", r.Target, r.Server, r.Room, r.Mode, r.Publishers, r.Source)
	fmt.Fprintf(tw, "viewers connected\t%d of %d\n", r.Connected, r.Requested)
	fmt.Fprintf(tw, "viewers failed\t%d\n", r.Failed)
	for _, f := range r.Failures {
		fmt.Fprintf(tw, "  %s\t%d, first: %s\n", f.Kind, f.Count, f.First)
	}
	fmt.Fprintf(tw, "window\t%.1f s with %d viewers\n", s.Seconds, s.Viewers)
	fmt.Fprintf(tw, "egress packets\t%d (%.0f/s)\n", s.Packets, s.PacketsPerSec)
	fmt.Fprintf(tw, "egress bitrate\t%.2f Mb/s\n", s.BitsPerSec/1e6)
	fmt.Fprintf(tw, "loss after NACK\t%.3f%%\n", 100*s.Loss)
	fmt.Fprintf(tw, "time to first packet\tp50 %v, p95 %v\n", s.TTFPP50.Round(time.Millisecond), s.TTFPP95.Round(time.Millisecond))
	if s.ServerCPU > 0 {
		fmt.Fprintf(tw, "server CPU\t%.1f%% of a core\n", 100*s.ServerCPU)
		fmt.Fprintf(tw, "CPU-s per million egress packets\t%.2f\n", s.CPUPerMillion)
	}
	fmt.Fprintf(tw, "generator CPU\t%.1f%% of a core (near 100%% per core it has, the generator is the limit)\n", 100*s.GeneratorCPU)
	if len(r.Steps) > 0 {
		fmt.Fprintf(tw, "find-max knee\t%d viewers (%s)\n", r.Knee, r.KneeWhy)
	}
	for _, p := range r.Profiles {
		fmt.Fprintf(tw, "profile\t%s\n", p)
	}
	tw.Flush()
	if len(r.Steps) > 0 {
		fmt.Fprintln(w)
		tw = tabwriter.NewWriter(w, 0, 8, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "viewers\tpkt/s\tMb/s\tloss %\tTTFP p50\tTTFP p95\tserver cpu %\tCPU-s/Mpkt\tgenerator cpu %\t")
		for _, st := range r.Steps {
			fmt.Fprintf(tw, "%d\t%.0f\t%.2f\t%.3f\t%v\t%v\t%.0f\t%.2f\t%.0f\t\n", st.Viewers, st.PacketsPerSec, st.BitsPerSec/1e6, 100*st.Loss,
				st.TTFPP50.Round(time.Millisecond), st.TTFPP95.Round(time.Millisecond), 100*st.ServerCPU, st.CPUPerMillion, 100*st.GeneratorCPU)
		}
		tw.Flush()
	}
}

func loadUsage(w io.Writer, fs *flag.FlagSet) {
	fmt.Fprint(w, `Usage: relayctl [--server URL] load --room ROOM (--ivf FILE | --h264 FILE | --pattern) --viewers N [flags]

Publishes over WHIP, joins N viewers (WHEP, or WebSocket participants with --ws)
at --rate, measures a steady window of --duration and prints a summary: viewers
connected and failed (first error of each kind), egress packets/s and bits/s
counted at the viewers, loss after NACK repair (sequence gaps), time to first
packet p50/p95, and with --server-pid the server's CPU per million egress
packets. A progress line a second goes to stderr. Tokens are signed with
$`+envAPIKey+`/$`+envAPISecret+` (or --dev) like 'relayctl token'.

With --find-max, viewers are added --step at a time, each step measured for
--step-duration, until loss passes 1%, time to first packet p95 exceeds 3x the
first step's (and 750 ms), or a viewer fails; the knee is the last good step.

Flags:
`)
	printFlags(w, fs)
}
