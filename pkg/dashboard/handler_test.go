package dashboard

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/cascade-sfu/cascade/pkg/auth"
	"github.com/cascade-sfu/cascade/pkg/cluster"
)

const (
	testKey    = "APIdash"
	testSecret = "dashboard-test-secret-0123456789abcdef"
)

func token(t *testing.T, g auth.Grants) string {
	t.Helper()
	tok, err := auth.Sign(testKey, testSecret, g, time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func startServer(t *testing.T, reg *cluster.MemoryRegistry, maxStreams int, interval time.Duration) (*Dashboard, *httptest.Server, string) {
	t.Helper()
	v, err := auth.NewVerifier(map[string]string{testKey: testSecret})
	if err != nil {
		t.Fatal(err)
	}
	d := New(Config{
		Self:     func() cluster.Node { return cluster.Node{ID: "a", State: cluster.StateActive} },
		Registry: reg, Verifier: v, Interval: interval, MaxStreams: maxStreams,
	})
	mux := http.NewServeMux()
	d.Register(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(func() { d.Close(); srv.Close() })
	return d, srv, token(t, auth.Grants{Identity: "ops", ClusterAdmin: true})
}

func get(t *testing.T, ctx context.Context, url, tok string) *http.Response {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func TestEndpointsNeedClusterAdmin(t *testing.T) {
	_, srv, _ := startServer(t, cluster.NewMemoryRegistry(), 4, 20*time.Millisecond)
	room := token(t, auth.Grants{Room: "r", Identity: "u", CanPublish: true})
	for _, path := range []string{"/v1/cluster", "/v1/cluster/events"} {
		res := get(t, context.Background(), srv.URL+path, "")
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != http.StatusUnauthorized || len(strings.TrimSpace(string(body))) == 0 {
			t.Fatalf("%s without a token: %d %q", path, res.StatusCode, body)
		}
		res = get(t, context.Background(), srv.URL+path, room)
		body, _ = io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != http.StatusForbidden || !strings.Contains(string(body), "cluster admin") {
			t.Fatalf("%s with a room token: %d %q", path, res.StatusCode, body)
		}
		res = get(t, context.Background(), srv.URL+path, "not-a-token")
		res.Body.Close()
		if res.StatusCode != http.StatusUnauthorized {
			t.Fatalf("%s with a bad token: %d", path, res.StatusCode)
		}
	}
	res := get(t, context.Background(), srv.URL+"/dashboard", "")
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || !strings.Contains(string(body), "/dashboard/app.js") || res.Header.Get("Content-Security-Policy") == "" {
		t.Fatalf("page: %d %q", res.StatusCode, body)
	}
}

// events reads snapshots from a stream.
func events(t *testing.T, body io.Reader) <-chan Snapshot {
	out := make(chan Snapshot, 16)
	go func() {
		defer close(out)
		sc := bufio.NewScanner(body)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			if data, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
				var s Snapshot
				if json.Unmarshal([]byte(data), &s) == nil {
					out <- s
				}
			}
		}
	}()
	return out
}

func next(t *testing.T, ch <-chan Snapshot, what string, cond func(Snapshot) bool) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case s, ok := <-ch:
			if !ok {
				t.Fatalf("stream ended waiting for %s", what)
			}
			if cond(s) {
				return
			}
		case <-deadline:
			t.Fatalf("no snapshot with %s", what)
		}
	}
}

// A stream starts with the view and gets each change; a client that reads nothing does not
// hold the others back; the stream limit answers 429.
func TestEventsPushChangesAndLimitStreams(t *testing.T) {
	reg := cluster.NewMemoryRegistry()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	_, srv, tok := startServer(t, reg, 2, 20*time.Millisecond)

	// A stalled client: connects, never reads (its socket buffers fill).
	conn, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_, _ = conn.Write([]byte("GET /v1/cluster/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + tok + "\r\n\r\n"))
	// Its stream is counted once the server answered it: read the status line only, so that the
	// next requests are the second and third streams whatever the scheduling.
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	status, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil || !strings.Contains(status, "200") {
		t.Fatalf("the stalled client's stream: %q %v", status, err)
	}

	res := get(t, ctx, srv.URL+"/v1/cluster/events", tok)
	defer res.Body.Close()
	if res.StatusCode != 200 || res.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("events: %d %s", res.StatusCode, res.Header.Get("Content-Type"))
	}
	ch := events(t, res.Body)
	next(t, ch, "the view on connect", func(s Snapshot) bool { return stateOf(s, "a") == StateActive })

	// The limit is 2: the stalled client and this one.
	tctx, tcancel := context.WithTimeout(ctx, 10*time.Second) // a wrongly accepted stream ends
	defer tcancel()
	third := get(t, tctx, srv.URL+"/v1/cluster/events", tok)
	body, _ := io.ReadAll(third.Body)
	third.Body.Close()
	if third.StatusCode != http.StatusTooManyRequests || len(body) == 0 {
		t.Fatalf("third stream: %d %q", third.StatusCode, body)
	}

	// Many changes while one client stalls: the reader sees them.
	for i := range 20 {
		if _, err := reg.Register(ctx, cluster.Node{ID: "b", State: cluster.StateActive, Participants: i}, time.Hour); err != nil {
			t.Fatal(err)
		}
		time.Sleep(30 * time.Millisecond)
	}
	next(t, ch, "b with 19 participants", func(s Snapshot) bool {
		for _, n := range s.Nodes {
			if n.ID == "b" && n.Participants == 19 {
				return true
			}
		}
		return false
	})

	// The JSON snapshot is the same view.
	js := get(t, ctx, srv.URL+"/v1/cluster", tok)
	var s Snapshot
	err = json.NewDecoder(js.Body).Decode(&s)
	js.Body.Close()
	if err != nil || stateOf(s, "b") != StateActive || s.From != "a" {
		t.Fatalf("json view: %+v %v", s, err)
	}
}

// A subscriber that never reads does not hold up the producer nor another subscriber: it keeps
// only the newest snapshot.
func TestStalledSubscriberKeepsOnlyTheNewest(t *testing.T) {
	reg := cluster.NewMemoryRegistry()
	d, _, _ := startServer(t, reg, 4, time.Hour) // the test steps the producer itself
	stalled, err := d.subscribe()
	if err != nil {
		t.Fatal(err)
	}
	defer d.unsubscribe(stalled)
	reader, err := d.subscribe()
	if err != nil {
		t.Fatal(err)
	}
	defer d.unsubscribe(reader)
	ctx := context.Background()
	for i := range 50 {
		if _, err := reg.Register(ctx, cluster.Node{ID: "b", State: cluster.StateActive, Participants: i}, time.Hour); err != nil {
			t.Fatal(err)
		}
		d.step(ctx) // returns although one subscriber never reads
		<-reader.notify
		var s Snapshot
		if err := json.Unmarshal(reader.take(), &s); err != nil || !hasParticipants(s, "b", i) {
			t.Fatalf("reader missed change %d: %+v %v", i, s, err)
		}
	}
	var s Snapshot
	if err := json.Unmarshal(stalled.take(), &s); err != nil || !hasParticipants(s, "b", 49) {
		t.Fatalf("the stalled subscriber should hold the newest view: %+v %v", s, err)
	}
}

func hasParticipants(s Snapshot, id string, n int) bool {
	for _, v := range s.Nodes {
		if v.ID == id && v.Participants == n {
			return true
		}
	}
	return false
}
