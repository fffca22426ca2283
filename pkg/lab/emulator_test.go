package lab

import (
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/cascade-sfu/cascade/pkg/lab/topology"
)

// needLab skips with a clear message where namespaces cannot be made (not
// root, no ip, no /dev/net/tun). CI runs as root: there these tests run.
func needLab(t testing.TB) {
	t.Helper()
	if err := Preflight(); err != nil {
		t.Skipf("SKIP: the lab cannot run here: %v", err)
	}
}

// testOpts returns options with a prefix of the test's own, so labs of
// parallel test runs never meet, and tears down leftovers at the end.
func testOpts(t testing.TB) Options {
	t.Helper()
	prefix := fmt.Sprintf("%st%d-", DefaultPrefix, os.Getpid()%100000)
	dir := t.TempDir()
	t.Cleanup(func() {
		if err := Down(context.Background(), Options{Prefix: prefix, StateDir: dir}); err != nil {
			t.Errorf("down: %v", err)
		}
	})
	return Options{Prefix: prefix, StateDir: dir}
}

// assertNothingLeft fails if a namespace with the prefix or a TAP remains.
func assertNothingLeft(t testing.TB, prefix string) {
	t.Helper()
	nss, err := listNetns(prefix)
	if err != nil {
		t.Fatal(err)
	}
	if len(nss) > 0 {
		t.Errorf("namespaces left after teardown: %v", nss)
	}
	ents, _ := os.ReadDir("/proc/self/fd")
	for _, e := range ents {
		if l, _ := os.Readlink("/proc/self/fd/" + e.Name()); l == "/dev/net/tun" {
			t.Errorf("a TAP file descriptor is left open (fd %s)", e.Name())
		}
	}
}

func parseTopo(t testing.TB, text string) *Topology {
	t.Helper()
	top, err := topology.Parse("test.yaml", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	return top
}

// listenIn opens a UDP socket inside site's namespace.
func listenIn(t testing.TB, l *Lab, site string) *net.UDPConn {
	t.Helper()
	var c net.PacketConn
	err := inNetns(l.Namespace(site), func() error {
		var err error
		c, err = net.ListenPacket("udp4", l.Addr(site).String()+":0")
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return c.(*net.UDPConn)
}

const twoSites = `sites:
  a: {node: {region: a, lat: 0, lon: 0}, redis: true}
  b: {node: {region: b, lat: 0, lon: 1}}
  c: {client: true}
links:
  - {between: [a, b], delay: 40ms, loss: 1%}
  - {between: [b, c], delay: 1ms, rate: 5mbit}
`

// TestEmulatorDelayAndLoss measures UDP round trips across a link of 40 ms
// one way and 1% loss each way.
//
// Tolerances: median RTT in [80 ms, 88 ms] (the switch adds its timer
// latency, the kernel a little; it can never be early). 4000 probes: loss
// one way p=1% has σ≈0.16%, the tolerance ±0.7% is over 4σ; round trip
// 1.99% has σ≈0.22%, tolerance ±1%.
func TestEmulatorDelayAndLoss(t *testing.T) {
	needLab(t)
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	opts := testOpts(t)
	opts.NetworkOnly = true
	l, err := Up(context.Background(), parseTopo(t, twoSites), opts)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()

	echo := listenIn(t, l, "b")
	received := make(chan int, 1)
	go func() { // echo server: counts and returns probes
		buf := make([]byte, 1500)
		n := 0
		for {
			k, from, err := echo.ReadFromUDP(buf)
			if err != nil {
				received <- n
				return
			}
			n++
			_, _ = echo.WriteToUDP(buf[:k], from)
		}
	}()
	cli := listenIn(t, l, "a")
	const probes = 4000
	sent := make([]time.Time, probes)
	rtts := make([]time.Duration, 0, probes)
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 1500)
		for {
			cli.SetReadDeadline(time.Now().Add(2 * time.Second))
			k, _, err := cli.ReadFromUDP(buf)
			if err != nil {
				return
			}
			if k >= 4 {
				i := binary.BigEndian.Uint32(buf)
				if int(i) < probes {
					rtts = append(rtts, time.Since(sent[i]))
				}
			}
		}
	}()
	dst := net.UDPAddrFromAddrPort(echo.LocalAddr().(*net.UDPAddr).AddrPort())
	pkt := make([]byte, 200)
	for i := range probes {
		binary.BigEndian.PutUint32(pkt, uint32(i))
		sent[i] = time.Now()
		if _, err := cli.WriteToUDP(pkt, dst); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Millisecond)
	}
	<-done
	echo.Close()
	cli.Close()
	atB := <-received

	slices.Sort(rtts)
	if len(rtts) == 0 {
		t.Fatal("no probe came back")
	}
	med := rtts[len(rtts)/2]
	oneWay := 1 - float64(atB)/probes
	round := 1 - float64(len(rtts))/probes
	t.Logf("RTT median %v p99 %v; loss a→b %.2f%%, round trip %.2f%%", med, rtts[len(rtts)*99/100], 100*oneWay, 100*round)
	if med < 80*time.Millisecond || med > 88*time.Millisecond {
		t.Errorf("median RTT %v, want 80–88 ms", med)
	}
	if oneWay < 0.003 || oneWay > 0.017 {
		t.Errorf("one-way loss %.2f%%, want 1%% ± 0.7%%", 100*oneWay)
	}
	if round < 0.0099 || round > 0.0299 {
		t.Errorf("round-trip loss %.2f%%, want 1.99%% ± 1%%", 100*round)
	}

	// a and c are not linked: nothing crosses (ARP neither).
	ca := listenIn(t, l, "c")
	ac := listenIn(t, l, "a")
	ac.WriteToUDP([]byte("x"), net.UDPAddrFromAddrPort(ca.LocalAddr().(*net.UDPAddr).AddrPort()))
	ca.SetReadDeadline(time.Now().Add(1500 * time.Millisecond))
	if _, _, err := ca.ReadFromUDP(make([]byte, 10)); err == nil {
		t.Error("a frame crossed between unlinked sites a and c")
	}
	ca.Close()
	ac.Close()

	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	assertNothingLeft(t, opts.Prefix)
}

// TestEmulatorRate offers 8 Mb/s to a 5 Mb/s link and measures what arrives.
func TestEmulatorRate(t *testing.T) {
	needLab(t)
	opts := testOpts(t)
	opts.NetworkOnly = true
	l, err := Up(context.Background(), parseTopo(t, twoSites), opts)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	rx := listenIn(t, l, "c")
	tx := listenIn(t, l, "b")
	type result struct {
		bytes       int
		first, last time.Time
	}
	res := make(chan result, 1)
	go func() {
		var r result
		buf := make([]byte, 1500)
		for {
			rx.SetReadDeadline(time.Now().Add(time.Second))
			k, _, err := rx.ReadFromUDP(buf)
			if err != nil {
				res <- r
				return
			}
			if r.bytes == 0 {
				r.first = time.Now()
			} else {
				r.bytes += k
			}
			if r.bytes == 0 {
				r.bytes = 1 // first packet marks the start only
			}
			r.last = time.Now()
		}
	}()
	const payload = 1000 // frame: 1000 + 8 UDP + 20 IP + 14 Ethernet = 1042 bytes
	dst := net.UDPAddrFromAddrPort(rx.LocalAddr().(*net.UDPAddr).AddrPort())
	pkt := make([]byte, payload)
	start := time.Now()
	for i := 0; time.Since(start) < 4*time.Second; i++ {
		// 8 Mb/s offered: one packet per 1 ms.
		for time.Since(start) < time.Duration(i)*time.Millisecond {
			time.Sleep(200 * time.Microsecond)
		}
		tx.WriteToUDP(pkt, dst)
	}
	r := <-res
	rx.Close()
	tx.Close()
	got := float64(r.bytes-1) * 8 / r.last.Sub(r.first).Seconds()
	want := 5e6 * payload / 1042
	t.Logf("goodput %.2f Mb/s, expected %.2f Mb/s", got/1e6, want/1e6)
	if got < want*0.9 || got > want*1.05 {
		t.Errorf("goodput %.2f Mb/s at rate 5mbit, want %.2f Mb/s −10%%/+5%%", got/1e6, want/1e6)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	assertNothingLeft(t, opts.Prefix)
}

func TestUpRefusesExisting(t *testing.T) {
	needLab(t)
	opts := testOpts(t)
	opts.NetworkOnly = true
	l, err := Up(context.Background(), parseTopo(t, twoSites), opts)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	_, err = Up(context.Background(), parseTopo(t, twoSites), opts)
	if err == nil || !strings.Contains(err.Error(), "already up") {
		t.Fatalf("second Up: %v", err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	assertNothingLeft(t, opts.Prefix)
}
