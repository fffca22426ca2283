package cluster

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cascade-sfu/cascade/pkg/cluster/redistest"
)

// The direct media path between eu and hcm is cut (their signalling, gossip and Redis go on;
// only their relay traffic is lost, through the sfu's test hook): within 5 s the room is
// routed through sgp, which reaches both, and a WHEP viewer on hcm of a WHIP publisher on eu
// gets video again.
func TestCutLinkIsRoutedAroundThroughThirdNode(t *testing.T) {
	redis := redistest.Start(t)
	dir := t.TempDir()
	cut := map[string]string{"eu": filepath.Join(dir, "eu.drop"), "hcm": filepath.Join(dir, "hcm.drop")}
	udp := map[string]int{"eu": freePort(t), "sgp": freePort(t), "hcm": freePort(t)}
	serf := map[string]int{"eu": freePort(t), "sgp": freePort(t), "hcm": freePort(t)}
	spec := func(id string, lat, lon float64, join string) nodeSpec {
		s := nodeSpec{id: id, lat: lat, lon: lon, serf: serf[id], udp: udp[id]}
		if join != "" {
			s.join = serf[join]
		}
		if f, ok := cut[id]; ok {
			s.env = []string{"CASCADE_TEST_DROP_UDP_FILE=" + f} // the sfu's test hook (cmd/sfu/testhook.go)
		}
		return s
	}
	eu := startNode(t, redis.Addr(), spec("eu", 52.37, 4.90, ""))
	sgp := startNode(t, redis.Addr(), spec("sgp", 1.35, 103.82, "eu"))
	hcm := startNode(t, redis.Addr(), spec("hcm", 10.82, 106.63, "eu"))

	rx := whipToWHEP(t, eu, hcm)
	relays := func(p *proc) string { out, _ := relayctl(t, p.url, "relays"); return out }
	if out := relays(sgp); strings.Contains(out, "open") {
		t.Fatalf("sgp relays before the cut:\n%s", out)
	}

	// Cut eu–hcm, both ways.
	write := func(path string, port int) {
		if err := os.WriteFile(path, []byte("127.0.0.1:"+strconv.Itoa(port)+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(cut["eu"], udp["hcm"])
	write(cut["hcm"], udp["eu"])
	cutAt := time.Now()
	time.Sleep(500 * time.Millisecond) // what was in flight arrives; then nothing crosses
	stalled := rx.count()
	time.Sleep(300 * time.Millisecond)
	if n := rx.count(); n > stalled+2 {
		t.Fatalf("video still arrives over the cut path (%d → %d)", stalled, n)
	}
	eventuallyT(t, 5*time.Second-time.Since(cutAt), "video again on hcm within 5 s of the cut", func() bool {
		return rx.count() > stalled+15
	}, func() string { return "sgp:\n" + relays(sgp) + "\neu:\n" + relays(eu) })
	t.Logf("video again on hcm %v after the cut, through sgp", time.Since(cutAt).Round(10*time.Millisecond))
	// It goes through sgp: sgp relays between both.
	out := relays(sgp)
	if !strings.Contains(out, "eu") || !strings.Contains(out, "hcm") {
		t.Fatalf("sgp does not relay between eu and hcm:\n%s", out)
	}
	// And it keeps flowing.
	before := rx.count()
	time.Sleep(time.Second)
	if rx.count() < before+20 {
		t.Fatalf("video stalled again through sgp: %d → %d in 1 s", before, rx.count())
	}
}
