package lab

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/cascade-sfu/cascade/pkg/lab/topology"
	"github.com/cascade-sfu/cascade/pkg/lab/wan"
)

// SwitchNS returns the namespace the detached switch process runs in.
func SwitchNS(prefix string) string { return prefix + "switch" }

// inProcSwitch is a switch run by this process, or the handle of a detached one.
type inProcSwitch struct {
	sw  *wan.Switch
	cmd *exec.Cmd
}

func (s *inProcSwitch) Close() error {
	if s.sw != nil {
		return s.sw.Close()
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	waitOrKill(s.cmd, 10*time.Second)
	return nil
}

// buildSwitch opens one TAP per site (inside the site's namespace) and
// returns the switch over them, not yet started.
func buildSwitch(topo *topology.Topology, sites []SiteState, log *slog.Logger) (*wan.Switch, error) {
	idx := map[string]int{}
	ports := make([]wan.Port, 0, len(sites))
	closeAll := func() {
		for _, p := range ports {
			p.Dev.Close()
		}
	}
	for i, s := range sites {
		f, err := openTAP(s.NS, tapName)
		if err != nil {
			closeAll()
			return nil, err
		}
		ports = append(ports, wan.Port{Name: s.Name, MAC: siteMAC(i), Dev: f})
		idx[s.Name] = i
	}
	pipes := make([][]*wan.Pipe, len(sites))
	for i := range pipes {
		pipes[i] = make([]*wan.Pipe, len(sites))
	}
	var seed [8]byte
	_, _ = rand.Read(seed[:])
	base := binary.LittleEndian.Uint64(seed[:])
	for k, ln := range topo.Links {
		a, aok := idx[ln.A]
		b, bok := idx[ln.B]
		if !aok || !bok {
			closeAll()
			return nil, fmt.Errorf("%w: link %s–%s", ErrUnknownSite, ln.A, ln.B)
		}
		p := wan.Params{Delay: ln.Delay, Jitter: ln.Jitter, Loss: ln.Loss, LossBurst: ln.LossBurst, RateBits: ln.RateBits}
		pipes[a][b] = wan.NewPipe(p, base+uint64(2*k))
		pipes[b][a] = wan.NewPipe(p, base+uint64(2*k+1))
	}
	sw, err := wan.New(ports, pipes, log)
	if err != nil {
		closeAll()
		return nil, err
	}
	return sw, nil
}

// startSwitch starts the switch in this process, or as its own process with Detach.
func (l *Lab) startSwitch(ctx context.Context) error {
	if !l.opts.Detach {
		sw, err := buildSwitch(l.topo, l.st.Sites, l.log())
		if err != nil {
			return err
		}
		sw.Start()
		l.mu.Lock()
		l.sw = &inProcSwitch{sw: sw}
		l.mu.Unlock()
		return nil
	}
	if len(l.opts.SwitchCommand) == 0 {
		return fmt.Errorf("%w: Detach needs SwitchCommand", ErrBadOptions)
	}
	ns := SwitchNS(l.opts.Prefix)
	if err := ipCmd(ctx, "netns", "add", ns); err != nil {
		return err
	}
	logPath := filepath.Join(l.opts.LogDir, "switch.log")
	lf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	defer lf.Close()
	args := append([]string{"netns", "exec", ns}, l.opts.SwitchCommand...)
	args = append(args, "--state", l.opts.StateDir)
	cmd := exec.Command("ip", args...)
	cmd.Stderr = lf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start switch: %w", err)
	}
	l.mu.Lock()
	l.sw = &inProcSwitch{cmd: cmd}
	l.st.Procs = append(l.st.Procs, ProcState{Name: "switch", Site: "", PID: cmd.Process.Pid, Log: logPath})
	l.mu.Unlock()
	ready := make(chan error, 1)
	go func() {
		line, err := bufio.NewReader(out).ReadString('\n')
		if err == nil && strings.TrimSpace(line) != "ready" {
			err = fmt.Errorf("switch said %q", line)
		}
		ready <- err
	}()
	select {
	case err := <-ready:
		if err != nil {
			return fmt.Errorf("%w: switch: %v (see %s)", ErrNotReady, err, logPath)
		}
		return nil
	case <-time.After(30 * time.Second):
		return fmt.Errorf("%w: switch silent for 30s (see %s)", ErrNotReady, logPath)
	case <-ctx.Done():
		return ctx.Err()
	}
}

// RunSwitch is the detached switch process (relayctl lab switch --state DIR):
// it reads the lab's state file, opens the TAPs, writes "ready" on ready and
// forwards frames until ctx ends (SIGINT/SIGTERM) or a port fails.
func RunSwitch(ctx context.Context, stateDir string, ready io.Writer, log *slog.Logger) error {
	st, err := readState(stateDir)
	if err != nil {
		return err
	}
	topo, err := topology.Parse(st.TopologyFile, []byte(st.TopologyYAML))
	if err != nil {
		return err
	}
	sw, err := buildSwitch(topo, st.Sites, log)
	if err != nil {
		return err
	}
	sw.Start()
	if _, err := fmt.Fprintln(ready, "ready"); err != nil {
		sw.Close()
		return err
	}
	log.Info("lab switch: running", "sites", len(st.Sites), "links", len(topo.Links))
	var ferr error
	select {
	case <-ctx.Done():
	case <-sw.Failed():
		ferr = sw.Err()
	}
	log.Info("lab switch: stopping", "no_route", sw.NoRoute.Load(), "spoofed", sw.Spoofed.Load(),
		"out_drops", sw.OutDrops.Load(), "write_errors", sw.WriteErr.Load())
	return errors.Join(ferr, sw.Close())
}

// SwitchMain parses "--state DIR" and runs the switch; for a hidden CLI subcommand.
func SwitchMain(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("lab switch", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("state", DefaultStateDir, "lab state directory")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return errors.New("lab switch: unexpected arguments")
	}
	return RunSwitch(ctx, *dir, stdout, slog.New(slog.NewTextHandler(stderr, nil)))
}
