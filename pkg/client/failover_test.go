package client

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestDialFailoverNeedsARoute(t *testing.T) {
	if _, err := DialFailover(t.Context(), FailoverOptions{}); err == nil {
		t.Fatal("DialFailover without Route succeeded")
	}
}

// route asks /v1/route with the room, the location and every excluded node, and refuses
// answers a Session could not follow.
func TestSessionRoute(t *testing.T) {
	var status int
	var body, query string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		query = r.URL.RawQuery
		w.WriteHeader(status)
		fmt.Fprint(w, body)
	}))
	defer srv.Close()
	s := &Session{opts: FailoverOptions{Room: "r", RouteQuery: map[string][]string{"lat": {"1"}}}, http: srv.Client()}

	status, body = 200, `{"node_id":"b","url":"http://127.0.0.1:2","alternatives":[{"node_id":"c","url":"http://127.0.0.1:3"}]}`
	r, err := s.route(context.Background(), srv.URL, []string{"a", "x"})
	if err != nil || r.NodeID != "b" || len(r.Alternatives) != 1 {
		t.Fatalf("route = %+v, %v", r, err)
	}
	if query != "exclude=a&exclude=x&lat=1&room=r" {
		t.Fatalf("query = %q", query)
	}
	for _, c := range []struct {
		status int
		body   string
		want   string
	}{
		{503, "no node can take a client now", "503"},
		{200, `{"node_id":"b","url":"ftp://x"}`, "not http"},
		{200, `not json`, "invalid character"},
	} {
		status, body = c.status, c.body
		if _, err := s.route(context.Background(), srv.URL, nil); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("route with %d %q: err %v, want one mentioning %q", c.status, c.body, err, c.want)
		}
	}
}

// remember keeps the chosen node and its alternatives first, each URL once, at most
// maxKnownNodes.
func TestSessionRemember(t *testing.T) {
	s := &Session{}
	s.remember(routeAnswer{NodeID: "a", URL: "http://a/", Alternatives: []struct {
		NodeID string `json:"node_id"`
		URL    string `json:"url"`
	}{{"b", "http://b"}}}, "http://a")
	if len(s.known) != 2 || s.known[0] != (knownNode{"a", "http://a"}) || s.known[1] != (knownNode{"b", "http://b"}) {
		t.Fatalf("known = %+v", s.known)
	}
	for i := range 20 {
		s.remember(routeAnswer{NodeID: fmt.Sprint(i), URL: fmt.Sprintf("http://n%d", i)}, "http://a")
	}
	if len(s.known) != maxKnownNodes || s.known[0].id != "19" {
		t.Fatalf("known = %+v", s.known)
	}
}

func TestWSURL(t *testing.T) {
	for in, want := range map[string]string{
		"http://h:1/":      "ws://h:1/v1/rtc",
		"https://sfu.test": "wss://sfu.test/v1/rtc",
	} {
		if got := wsURL(in); got != want {
			t.Errorf("wsURL(%q) = %q, want %q", in, got, want)
		}
	}
}
