package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cascade-sfu/cascade/pkg/lab"
)

func TestLabUsage(t *testing.T) {
	if r := runArgs(t, nil, "lab"); r.code != exitUsage || !strings.Contains(r.stderr, "up|down|status") {
		t.Fatalf("lab without command: %d %q", r.code, r.stderr)
	}
	if r := runArgs(t, nil, "lab", "sideways"); r.code != exitUsage || !strings.Contains(r.stderr, `unknown command "sideways"`) {
		t.Fatalf("unknown lab command: %d %q", r.code, r.stderr)
	}
	if r := runArgs(t, nil, "lab", "up", "--help"); r.code != exitOK || !strings.Contains(r.stdout, "-topology") {
		t.Fatalf("lab up --help: %d %q", r.code, r.stdout)
	}
	if r := runArgs(t, nil, "lab", "up", "--prefix", "mine-"); r.code == exitOK {
		t.Fatalf("a prefix outside cascade-lab- accepted: %q", r.stdout)
	}
}

// TestLabUpStatusDown runs the real relayctl binary: lab up returns with the
// lab still up (detached switch), status shows it, down removes everything.
func TestLabUpStatusDown(t *testing.T) {
	if err := lab.Preflight(); err != nil {
		t.Skipf("SKIP: the lab cannot run here: %v", err)
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "relayctl")
	for out, pkg := range map[string]string{bin: ".", filepath.Join(dir, "sfu"): "../sfu"} {
		if b, err := exec.Command("go", "build", "-o", out, pkg).CombinedOutput(); err != nil {
			t.Fatalf("build %s: %v\n%s", pkg, err, b)
		}
	}
	prefix := fmt.Sprintf("%sr%d-", lab.DefaultPrefix, os.Getpid()%100000)
	state := filepath.Join(dir, "state")
	common := []string{"--prefix", prefix, "--state", state}
	relayctl := func(args ...string) (string, error) {
		out, err := exec.Command(bin, args...).CombinedOutput()
		return string(out), err
	}
	t.Cleanup(func() {
		if out, err := relayctl(append([]string{"lab", "down"}, common...)...); err != nil {
			t.Errorf("lab down (cleanup): %v\n%s", err, out)
		}
	})
	out, err := relayctl(append([]string{"lab", "up", "--topology", "../../deploy/lab/eu-sgp-hcm.yaml"}, common...)...)
	if err != nil {
		t.Fatalf("lab up: %v\n%s", err, out)
	}
	if !strings.Contains(out, "http://198.51.100.12:7880") {
		t.Fatalf("lab up output lacks hcm's URL:\n%s", out)
	}
	out, err = relayctl(append([]string{"lab", "status"}, common...)...)
	if err != nil {
		t.Fatalf("lab status: %v\n%s", err, out)
	}
	for _, want := range []string{"switch pid", "eu       node+redis  198.51.100.10", "sfu(", "eu–hcm       110ms  8ms     0.80%  3"} {
		if !strings.Contains(out, want) {
			t.Errorf("status lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "DEAD") {
		t.Errorf("a lab process is dead:\n%s", out)
	}
	if out, err = relayctl(append([]string{"lab", "down"}, common...)...); err != nil {
		t.Fatalf("lab down: %v\n%s", err, out)
	}
	ents, _ := os.ReadDir("/run/netns")
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), prefix) {
			t.Errorf("namespace %s left after lab down", e.Name())
		}
	}
	if out, err := relayctl(append([]string{"lab", "status"}, common...)...); err == nil || !strings.Contains(out, "no lab is up") {
		t.Errorf("status after down: %v\n%s", err, out)
	}
}
