package main

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"regexp"
	"testing"
	"time"

	"github.com/cascade-sfu/cascade/pkg/auth"
)

// startRun runs the node with args in dev mode and returns its base URL.
func startRun(t *testing.T, args ...string) string {
	t.Helper()
	pr, pw := io.Pipe()
	ctx, cancel := context.WithCancel(context.Background())
	exit := make(chan int, 1)
	go func() {
		exit <- run(ctx, append([]string{"--dev", "--http", "127.0.0.1:0", "--udp-port", "0"}, args...),
			func(string) string { return "" }, pw, io.Discard)
		pw.Close()
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-exit:
		case <-time.After(15 * time.Second):
			t.Error("node did not stop")
		}
	})
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
	if addr == "" {
		t.Fatal("node did not print its address")
	}
	return "http://" + addr
}

func getWith(t *testing.T, url, token string) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func devToken(t *testing.T, g auth.Grants) string {
	t.Helper()
	tok, err := auth.Sign(auth.DevAPIKey, auth.DevAPISecret, g, time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func TestPprofOnlyWithFlagAndAdminToken(t *testing.T) {
	admin := devToken(t, auth.Grants{Identity: "ops", ClusterAdmin: true})
	user := devToken(t, auth.Grants{Room: "r", Identity: "u", CanSubscribe: true})

	off := startRun(t)
	if code, body := getWith(t, off+"/debug/pprof/heap", admin); code == http.StatusOK && len(body) > 2 && body[0] == 0x1f && body[1] == 0x8b {
		t.Fatal("a heap profile was served without --pprof")
	}

	on := startRun(t, "--pprof")
	if code, _ := getWith(t, on+"/debug/pprof/heap", ""); code != http.StatusUnauthorized {
		t.Fatalf("no token: %d, want 401", code)
	}
	if code, _ := getWith(t, on+"/debug/pprof/heap", "not-a-token"); code != http.StatusUnauthorized {
		t.Fatalf("bad token: %d, want 401", code)
	}
	if code, _ := getWith(t, on+"/debug/pprof/heap", user); code != http.StatusForbidden {
		t.Fatalf("room token: %d, want 403", code)
	}
	code, body := getWith(t, on+"/debug/pprof/heap", admin)
	if code != http.StatusOK || len(body) < 2 || body[0] != 0x1f || body[1] != 0x8b {
		t.Fatalf("admin heap profile: %d, %d bytes (want a gzipped profile)", code, len(body))
	}
	if code, body := getWith(t, on+"/debug/pprof/profile?seconds=1", admin); code != http.StatusOK || len(body) < 2 || body[0] != 0x1f {
		t.Fatalf("admin CPU profile: %d, %d bytes", code, len(body))
	}
}
