package lab

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/cascade-sfu/cascade/pkg/auth"
	"github.com/cascade-sfu/cascade/pkg/lab/topology"
)

// AdminToken signs a short-lived cluster admin token for the lab's nodes.
func (l *Lab) AdminToken() (string, error) {
	return auth.Sign(l.st.APIKey, l.st.APISecret, auth.Grants{Identity: "lab", ClusterAdmin: true}, 5*time.Minute, time.Now())
}

// Down removes a lab and every leftover of an earlier run: every process
// inside a namespace named with opts.Prefix (the detached switch included),
// those namespaces, and the state file in opts.StateDir.
func Down(ctx context.Context, opts Options) error {
	if err := opts.fill(); err != nil {
		return err
	}
	if err := Preflight(); err != nil {
		return err
	}
	err := down(ctx, opts.Prefix)
	if rerr := os.Remove(filepath.Join(opts.StateDir, stateFile)); rerr != nil && !os.IsNotExist(rerr) {
		err = errors.Join(err, rerr)
	}
	return err
}

// down kills every process in the prefix's namespaces, then deletes them.
func down(ctx context.Context, prefix string) error {
	nss, err := listNetns(prefix)
	if err != nil {
		return err
	}
	return downNS(ctx, nss)
}

// downNS kills every process in the namespaces nss, then deletes them.
func downNS(ctx context.Context, nss []string) error {
	var pids []int
	for _, ns := range nss {
		pids = append(pids, netnsPIDs(ctx, ns)...)
	}
	for _, p := range pids {
		_ = syscall.Kill(p, syscall.SIGTERM)
	}
	deadline := time.Now().Add(15 * time.Second)
	for _, p := range pids {
		for alive(p) && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
		}
		if alive(p) {
			_ = syscall.Kill(p, syscall.SIGKILL)
		}
	}
	var errs []error
	for _, ns := range nss {
		// A killed process's namespace reference can linger a moment.
		var derr error
		for range 20 {
			if derr = ipCmd(ctx, "netns", "del", ns); derr == nil {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		if derr != nil {
			errs = append(errs, derr)
		}
	}
	return errors.Join(errs...)
}

// netnsPIDs lists the processes inside namespace ns.
func netnsPIDs(ctx context.Context, ns string) []int {
	out, err := exec.CommandContext(ctx, "ip", "netns", "pids", ns).Output()
	if err != nil {
		return nil
	}
	var pids []int
	for _, f := range strings.Fields(string(out)) {
		if p, err := strconv.Atoi(f); err == nil && p > 1 && p != os.Getpid() {
			pids = append(pids, p)
		}
	}
	return pids
}

// alive reports whether pid exists and is not a zombie.
func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	s := string(b)
	if i := strings.LastIndexByte(s, ')'); i >= 0 && i+2 < len(s) {
		return s[i+2] != 'Z'
	}
	return true
}

// ProcStatus is one process of the lab and whether it runs.
type ProcStatus struct {
	ProcState
	Alive bool
}

// SiteStatus is one site of the lab.
type SiteStatus struct {
	SiteState
	Role      string // "node", "node+redis", "client"
	NSPresent bool
	Procs     []ProcStatus
}

// StatusReport describes a lab started by a detached Up.
type StatusReport struct {
	TopologyFile string
	Started      time.Time
	LogDir       string
	Sites        []SiteStatus
	Switch       *ProcStatus
	Links        []*topology.Link
	Leftovers    []string // namespaces with the prefix that the state file does not name
}

// Status reads the lab's state file and checks its namespaces and processes.
func Status(ctx context.Context, opts Options) (*StatusReport, error) {
	if err := opts.fill(); err != nil {
		return nil, err
	}
	st, err := readState(opts.StateDir)
	if err != nil {
		if nss, lerr := listNetns(opts.Prefix); lerr == nil && len(nss) > 0 {
			return nil, fmt.Errorf("%w; leftover namespaces %s (run 'relayctl lab down')", err, strings.Join(nss, ", "))
		}
		return nil, err
	}
	topo, err := topology.Parse(st.TopologyFile, []byte(st.TopologyYAML))
	if err != nil {
		return nil, err
	}
	r := &StatusReport{TopologyFile: st.TopologyFile, Started: st.Started, LogDir: st.LogDir, Links: topo.Links}
	known := map[string]bool{SwitchNS(st.Prefix): true}
	for _, s := range st.Sites {
		known[s.NS] = true
		ss := SiteStatus{SiteState: s, Role: "client"}
		if ts := topo.Site(s.Name); ts != nil && ts.Node != nil {
			ss.Role = "node"
			if ts.Redis {
				ss.Role = "node+redis"
			}
		}
		_, serr := os.Stat(filepath.Join(netnsDir, s.NS))
		ss.NSPresent = serr == nil
		for _, p := range st.Procs {
			if p.Site == s.Name {
				ss.Procs = append(ss.Procs, ProcStatus{ProcState: p, Alive: alive(p.PID)})
			}
		}
		r.Sites = append(r.Sites, ss)
	}
	for _, p := range st.Procs {
		if p.Name == "switch" {
			r.Switch = &ProcStatus{ProcState: p, Alive: alive(p.PID)}
		}
	}
	if nss, err := listNetns(st.Prefix); err == nil {
		for _, ns := range nss {
			if !known[ns] {
				r.Leftovers = append(r.Leftovers, ns)
			}
		}
	}
	return r, nil
}
