package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/cascade-sfu/cascade/pkg/lab"
	"github.com/cascade-sfu/cascade/pkg/lab/topology"
)

const defaultTopology = "deploy/lab/eu-sgp-hcm.yaml"

// runLab is "relayctl lab up|down|status": the latency lab on an emulated WAN
// (see pkg/lab). "lab up" starts the WAN switch as a detached
// "relayctl lab switch --state DIR" process (a hidden subcommand, run inside
// namespace cascade-lab-switch) so that it returns with the lab still up.
func runLab(g globals, args []string) int {
	labUsage := func(w io.Writer) {
		fmt.Fprint(w, "Usage: relayctl lab up|down|status [flags] (as root)\n\n"+
			"  up      bring the lab up: namespaces cascade-lab-<site>, the emulated WAN, redis-server\n"+
			"          and an sfu per node site; the cluster forms over the emulated WAN\n"+
			"  down    tear the lab down, with any leftovers of an earlier run\n"+
			"  status  sites, addresses, processes alive, links and their figures\n\n"+
			"Run 'relayctl lab COMMAND --help' for its flags.\n")
	}
	if len(args) == 0 {
		labUsage(g.stderr)
		return exitUsage
	}
	switch args[0] {
	case "-h", "--help", "-help":
		labUsage(g.stdout)
		return exitOK
	case "up", "down", "status", "switch":
	default:
		fmt.Fprintf(g.stderr, "relayctl lab: unknown command %q\n", args[0])
		labUsage(g.stderr)
		return exitUsage
	}
	sub := args[0]
	fs := flag.NewFlagSet("relayctl lab "+sub, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	topo := fs.String("topology", defaultTopology, "topology file")
	stateDir := fs.String("state", lab.DefaultStateDir, "state directory of the lab")
	logDir := fs.String("log-dir", "", "process logs (default STATE/logs)")
	sfuBin := fs.String("sfu", "", "sfu binary (default: sfu next to relayctl, else on PATH)")
	redisBin := fs.String("redis-server", "redis-server", "redis-server binary")
	prefix := fs.String("prefix", lab.DefaultPrefix, "name prefix of the lab's namespaces (must start with "+lab.DefaultPrefix+")")
	timeout := fs.Duration("timeout", 2*time.Minute, "time allowed for the cluster to form")
	if sub == "switch" { // hidden: the detached switch process
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		if err := lab.SwitchMain(ctx, args[1:], g.stdout, g.stderr); err != nil {
			fmt.Fprintf(g.stderr, "relayctl lab switch: %v\n", err)
			return exitError
		}
		return exitOK
	}
	if err := fs.Parse(args[1:]); err != nil {
		return parseFailure(err, "relayctl lab "+sub, g.stdout, g.stderr, func(w io.Writer) {
			fmt.Fprintf(w, "Usage: relayctl lab %s [flags]\n\nFlags:\n", sub)
			printFlags(w, fs)
		})
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(g.stderr, "relayctl lab %s: unexpected argument %q\n", sub, fs.Arg(0))
		return exitUsage
	}
	if err := lab.Preflight(); err != nil {
		fmt.Fprintf(g.stderr, "relayctl lab %s: %v\n", sub, err)
		return exitError
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	opts := lab.Options{Prefix: *prefix, StateDir: *stateDir, LogDir: *logDir, RedisServer: *redisBin, ReadyTimeout: *timeout}
	switch sub {
	case "up":
		return labUp(ctx, g, *topo, *sfuBin, opts)
	case "down":
		if err := lab.Down(ctx, opts); err != nil {
			fmt.Fprintf(g.stderr, "relayctl lab down: %v\n", err)
			return exitError
		}
		fmt.Fprintln(g.stdout, "lab down")
		return exitOK
	default:
		return labStatus(ctx, g, opts)
	}
}

func labUp(ctx context.Context, g globals, topoPath, sfuBin string, opts lab.Options) int {
	top, err := topology.Load(topoPath)
	if err != nil {
		fmt.Fprintf(g.stderr, "relayctl lab up: %v\n", err)
		return exitError
	}
	self, err := os.Executable()
	if err != nil {
		fmt.Fprintf(g.stderr, "relayctl lab up: %v\n", err)
		return exitError
	}
	if sfuBin == "" {
		sfuBin = "sfu"
		if p := filepath.Join(filepath.Dir(self), "sfu"); fileExists(p) {
			sfuBin = p
		}
	}
	opts.SFUBinary = sfuBin
	opts.Detach = true
	opts.SwitchCommand = []string{self, "lab", "switch"}
	opts.Logger = slog.New(slog.NewTextHandler(g.stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	fmt.Fprintf(g.stderr, "bringing the lab up from %s (%d sites, %d links)...\n", topoPath, len(top.Sites), len(top.Links))
	l, err := lab.Up(ctx, top, opts)
	if err != nil {
		fmt.Fprintf(g.stderr, "relayctl lab up: %v\n", err)
		return exitError
	}
	defer l.Close()
	fmt.Fprintf(g.stdout, "lab up: API key %q, secret in %s; logs in %s\n", l.APIKey(), filepath.Join(opts.StateDir, "state.json"), l.LogDir())
	for _, s := range top.Sites {
		line := fmt.Sprintf("  %-8s %-15s netns %s", s.Name, l.Addr(s.Name), l.Namespace(s.Name))
		if u := l.NodeURL(s.Name); u != "" {
			line += "  " + u
		}
		fmt.Fprintln(g.stdout, line)
	}
	fmt.Fprintln(g.stdout, "run a command in a site: ip netns exec "+l.Namespace(top.Sites[0].Name)+" CMD; 'relayctl lab down' removes it")
	return exitOK
}

func labStatus(ctx context.Context, g globals, opts lab.Options) int {
	r, err := lab.Status(ctx, opts)
	if err != nil {
		fmt.Fprintf(g.stderr, "relayctl lab status: %v\n", err)
		return exitError
	}
	fmt.Fprintf(g.stdout, "topology %s, up since %s, logs in %s\n", r.TopologyFile, r.Started.Format(time.RFC3339), r.LogDir)
	if r.Switch != nil {
		fmt.Fprintf(g.stdout, "switch pid %d %s\n", r.Switch.PID, aliveWord(r.Switch.Alive))
	}
	tw := tabwriter.NewWriter(g.stdout, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "SITE\tROLE\tADDRESS\tNETNS\tPROCESSES")
	ok := true
	for _, s := range r.Sites {
		var ps []string
		for _, p := range s.Procs {
			ps = append(ps, fmt.Sprintf("%s(%d) %s", p.Name, p.PID, aliveWord(p.Alive)))
			ok = ok && p.Alive
		}
		ns := s.NS
		if !s.NSPresent {
			ns += " (missing)"
			ok = false
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", s.Name, s.Role, s.Addr, ns, strings.Join(ps, ", "))
	}
	tw.Flush()
	tw = tabwriter.NewWriter(g.stdout, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "\nLINK\tDELAY\tJITTER\tLOSS\tBURST\tRATE")
	for _, l := range r.Links {
		burst := "-"
		if l.LossBurst > 0 {
			burst = fmt.Sprint(l.LossBurst)
		}
		fmt.Fprintf(tw, "%s–%s\t%v\t%v\t%.2f%%\t%s\t%s\n", l.A, l.B, l.Delay, l.Jitter, 100*l.Loss, burst, topology.FormatRate(l.RateBits))
	}
	tw.Flush()
	if len(r.Leftovers) > 0 {
		fmt.Fprintf(g.stdout, "leftover namespaces: %s (relayctl lab down removes them)\n", strings.Join(r.Leftovers, ", "))
	}
	if !ok || (r.Switch != nil && !r.Switch.Alive) {
		return exitError
	}
	return exitOK
}

func aliveWord(b bool) string {
	if b {
		return "alive"
	}
	return "DEAD"
}

func fileExists(p string) bool {
	st, err := os.Stat(p)
	return err == nil && !st.IsDir()
}
