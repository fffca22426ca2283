package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/cascade-sfu/cascade/pkg/auth"
)

func TestNodeServesAndShutsDownCleanly(t *testing.T) {
	pr, pw := io.Pipe()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	env := map[string]string{}
	exit := make(chan int, 1)
	go func() {
		exit <- run(ctx, []string{"--dev", "--http", "127.0.0.1:0", "--udp-port", "0", "--node-id", "test-node"},
			func(k string) string { return env[k] }, pw, io.Discard)
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
	base := "http://" + addr
	get := func(path string) (int, string) {
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, _ := get("/healthz"); code != 200 {
		t.Fatalf("healthz %d", code)
	}
	code, body := get("/metrics")
	for _, series := range []string{
		"cascade_rooms", "cascade_participants", "cascade_tracks", "cascade_rtp_packets_total",
		"cascade_rtp_bytes_total", "cascade_nacks_received_total", "cascade_plis_received_total",
		`cascade_dropped_packets_total{node="test-node",reason="wait_keyframe"}`,
	} {
		if code != 200 || !strings.Contains(body, series) {
			t.Fatalf("metrics (%d) lack %s", code, series)
		}
	}
	if code, body := get("/"); code != 200 || !strings.Contains(body, "<html") {
		t.Fatalf("demo page: %d", code)
	}
	if code, body := get("/sdk/cascade.js"); code != 200 || !strings.Contains(body, "export") {
		t.Fatalf("sdk: %d", code)
	}
	resp, err := http.Post(base+"/v1/dev/token", "application/json", strings.NewReader(`{"room":"demo","identity":"alice"}`))
	if err != nil {
		t.Fatal(err)
	}
	var tok struct{ Token string }
	_ = json.NewDecoder(resp.Body).Decode(&tok)
	resp.Body.Close()
	v, _ := auth.NewVerifier(map[string]string{auth.DevAPIKey: auth.DevAPISecret})
	if g, err := v.Verify(tok.Token); err != nil || g.Room != "demo" || g.Identity != "alice" || !g.CanPublish {
		t.Fatalf("dev token: %+v %v", g, err)
	}
	cancel()
	select {
	case code := <-exit:
		if code != 0 {
			t.Fatalf("exit code %d after shutdown", code)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("node did not stop")
	}
}

func TestDevTokenEndpointIsOffUnlessDev(t *testing.T) {
	pr, pw := io.Pipe()
	ctx, cancel := context.WithCancel(context.Background())
	env := map[string]string{"CASCADE_API_KEY": "prod", "CASCADE_API_SECRET": "a-production-secret-123"}
	exit := make(chan int, 1)
	go func() {
		exit <- run(ctx, []string{"--http", "127.0.0.1:0", "--udp-port", "0"}, func(k string) string { return env[k] }, pw, io.Discard)
		pw.Close()
	}()
	sc := bufio.NewScanner(pr)
	re := regexp.MustCompile(`listening on http://(\S+)`)
	addr := ""
	for sc.Scan() {
		if m := re.FindStringSubmatch(sc.Text()); m != nil {
			addr = m[1]
			break
		}
	}
	go func() { _, _ = io.Copy(io.Discard, pr) }()
	resp, err := http.Post("http://"+addr+"/v1/dev/token", "application/json", strings.NewReader(`{"room":"demo","identity":"alice"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode < 400 || resp.StatusCode >= 500 {
		t.Fatalf("dev token without --dev: %d", resp.StatusCode)
	}
	cancel()
	if code := <-exit; code != 0 {
		t.Fatalf("exit %d", code)
	}
}

func TestMissingCredentialsOutsideDevFails(t *testing.T) {
	code := run(context.Background(), []string{"--http", "127.0.0.1:0"}, func(string) string { return "" }, io.Discard, io.Discard)
	if code != 2 {
		t.Fatalf("exit %d, want 2", code)
	}
}
