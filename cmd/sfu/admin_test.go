package main

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/cascade-sfu/cascade/pkg/auth"
)

// A node without Redis is a cluster of one: the admin API acts locally, and a drain request
// makes the node shut down as SIGTERM does, with nobody sending a signal.
func TestSingleNodeAdminAndDrain(t *testing.T) {
	pr, pw := io.Pipe()
	exit := make(chan int, 1)
	go func() {
		exit <- run(context.Background(), []string{"--dev", "--http", "127.0.0.1:0", "--udp-port", "0", "--node-id", "solo", "--drain-timeout", "30s"},
			func(string) string { return "" }, pw, io.Discard)
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
	if addr == "" {
		t.Fatal("node did not print its address")
	}
	tok, err := auth.Sign(auth.DevAPIKey, auth.DevAPISecret, auth.Grants{Identity: "ops", ClusterAdmin: true}, time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	call := func(method, path, body string) int {
		req, _ := http.NewRequest(method, "http://"+addr+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := call("POST", "/v1/rooms", `{"name":"solo-room","max_participants":2}`); code != 201 {
		t.Fatalf("create: %d", code)
	}
	if code := call("GET", "/v1/rooms/solo-room/participants", ""); code != 200 {
		t.Fatalf("participants: %d", code)
	}
	if code := call("DELETE", "/v1/rooms/solo-room/participants/nobody", ""); code != 404 {
		t.Fatalf("evict nobody: %d", code)
	}
	if code := call("DELETE", "/v1/rooms/solo-room", ""); code != 200 {
		t.Fatalf("delete: %d", code)
	}
	if code := call("POST", "/v1/nodes/elsewhere/drain", ""); code != 404 {
		t.Fatalf("drain an unknown node: %d", code)
	}
	if code := call("POST", "/v1/nodes/solo/drain", ""); code != 202 {
		t.Fatalf("drain: %d", code)
	}
	select {
	case code := <-exit:
		if code != 0 {
			t.Fatalf("exit code %d after drain", code)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("an empty node did not exit after a drain request")
	}
}
