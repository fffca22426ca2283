package main

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"regexp"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/cascade-sfu/cascade/pkg/auth"
	"github.com/cascade-sfu/cascade/pkg/client"
)

// While a node drains (SIGTERM, a participant still connected), /healthz answers 503 so that a
// readiness probe takes the node out of rotation, and /livez keeps answering 200 so that a
// liveness probe does not restart it.
func TestLivezStaysUpWhileDraining(t *testing.T) {
	pr, pw := io.Pipe()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	exit := make(chan int, 1)
	go func() {
		exit <- run(ctx, []string{"--dev", "--http", "127.0.0.1:0", "--udp-port", "0", "--node-id", "livez-node", "--drain-timeout", "30s"},
			func(string) string { return "" }, pw, io.Discard)
		pw.Close()
	}()
	addr := ""
	sc := bufio.NewScanner(pr)
	re := regexp.MustCompile(`listening on http://(\S+)`)
	for sc.Scan() {
		if m := re.FindStringSubmatch(sc.Text()); m != nil {
			addr = m[1]
			break
		}
	}
	go func() { _, _ = io.Copy(io.Discard, pr) }()
	if addr == "" {
		t.Fatal("node did not print its address")
	}
	status := func(path string) int {
		resp, err := http.Get("http://" + addr + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if h, l := status("/healthz"), status("/livez"); h != 200 || l != 200 {
		t.Fatalf("before draining: healthz %d, livez %d; want 200, 200", h, l)
	}

	// A participant keeps the node draining instead of stopping at once.
	tok, err := auth.Sign(auth.DevAPIKey, auth.DevAPISecret, auth.Grants{Room: "r", Identity: "alice", CanSubscribe: true}, time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	m := &webrtc.MediaEngine{}
	_ = m.RegisterDefaultCodecs()
	se := webrtc.SettingEngine{}
	se.SetIncludeLoopbackCandidate(true)
	se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	dctx, dcancel := context.WithTimeout(context.Background(), 10*time.Second)
	c, err := client.Dial(dctx, client.Options{URL: "ws://" + addr + "/v1/rtc", Token: tok,
		API: webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithSettingEngine(se))})
	dcancel()
	if err != nil {
		t.Fatal(err)
	}

	cancel() // what SIGTERM does
	deadline := time.Now().Add(10 * time.Second)
	for status("/healthz") != http.StatusServiceUnavailable {
		if time.Now().After(deadline) {
			t.Fatal("healthz did not turn 503 while draining")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if l := status("/livez"); l != 200 {
		t.Fatalf("livez %d while draining, want 200", l)
	}

	_ = c.Leave() // the last participant leaves: the drain ends and the node stops
	c.Close()
	select {
	case code := <-exit:
		if code != 0 {
			t.Fatalf("exit code %d after shutdown", code)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("node did not stop after its last participant left")
	}
}
