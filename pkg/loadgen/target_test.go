package loadgen

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

const lkKey, lkSecret = "lkkey", "livekit-test-secret-0123456789abcdef"

func TestLiveKitTokenClaims(t *testing.T) {
	tok, err := LiveKitToken(lkKey, lkSecret, "hall", "viewer-1", false, time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	var c LiveKitClaims
	if _, err := jwt.ParseWithClaims(tok, &c, func(*jwt.Token) (any, error) { return []byte(lkSecret), nil },
		jwt.WithValidMethods([]string{"HS256"}), jwt.WithIssuer(lkKey)); err != nil {
		t.Fatal(err)
	}
	if c.Subject != "viewer-1" || !c.Video.RoomJoin || c.Video.Room != "hall" ||
		c.Video.CanPublish == nil || *c.Video.CanPublish || c.Video.CanSubscribe == nil || !*c.Video.CanSubscribe {
		t.Fatalf("claims %+v video %+v", c.RegisteredClaims, c.Video)
	}
	if _, err := LiveKitToken(lkKey, "", "hall", "x", true, time.Hour, time.Now()); err == nil {
		t.Fatal("a token without a secret was signed")
	}
}

// TestLiveKitTargetRequests runs the tool against a fake LiveKit WHIP endpoint that checks what
// LiveKit checks: POST /whip/v1, application/sdp, a valid token, and for a viewer a recvonly
// offer with the subscription header naming the publisher's track.
func TestLiveKitTargetRequests(t *testing.T) {
	var mu sync.Mutex
	var pubs, views int
	var problems []string
	bad := func(s string) { mu.Lock(); problems = append(problems, s); mu.Unlock() }
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodDelete {
			w.WriteHeader(http.StatusOK)
			return
		}
		if r.Method != http.MethodPost || r.URL.Path != "/whip/v1" || r.Header.Get("Content-Type") != "application/sdp" {
			bad(r.Method + " " + r.URL.Path + " " + r.Header.Get("Content-Type"))
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		var c LiveKitClaims
		_, err := jwt.ParseWithClaims(strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer "), &c,
			func(*jwt.Token) (any, error) { return []byte(lkSecret), nil }, jwt.WithIssuer(lkKey))
		if err != nil || c.Video.Room != "hall" || !c.Video.RoomJoin {
			bad("token: " + r.Header.Get("Authorization"))
			http.Error(w, "bad token", http.StatusUnauthorized)
			return
		}
		if *c.Video.CanPublish {
			mu.Lock()
			pubs++
			mu.Unlock()
		} else {
			var ci struct {
				Subs map[string][]string `json:"subscribedParticipantTrackNames"`
			}
			if err := json.Unmarshal([]byte(r.Header.Get("X-LiveKit-ClientInfo")), &ci); err != nil ||
				len(ci.Subs["load-pub-0"]) != 1 || ci.Subs["load-pub-0"][0] != LiveKitVideoTrackName {
				bad("client info: " + r.Header.Get("X-LiveKit-ClientInfo"))
			}
			mu.Lock()
			views++
			mu.Unlock()
		}
		http.Error(w, "no media here", http.StatusServiceUnavailable) // no SDP answer: the fake stops at the request
	}))
	defer srv.Close()
	cfg := Config{
		Server: srv.URL, Room: "hall", Source: Source{Kind: "pattern"}, Viewers: 2, Publishers: 1,
		Rate: 50, Duration: time.Second, Target: LiveKit{}, MediaTimeout: 5 * time.Second,
		Token: func(id string, publish, _ bool) (string, error) {
			return LiveKitToken(lkKey, lkSecret, "hall", id, publish, time.Hour, time.Now())
		},
	}
	// The publisher is refused (503), so the run ends there; then check a viewer's request alone.
	if _, err := Run(context.Background(), cfg); err == nil || !strings.Contains(err.Error(), "503") {
		t.Fatalf("run against a refusing server: %v", err)
	}
	view, hdr, err := LiveKit{}.ViewURL(srv.URL, "hall", []string{"load-pub-0"})
	if err != nil || view != srv.URL+"/whip/v1" {
		t.Fatalf("view url %q %v", view, err)
	}
	a, err := newAPIs("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	hc := &http.Client{Transport: headerTransport{base: http.DefaultTransport, h: hdr}}
	tok, _ := cfg.Token("load-viewer-0", false, false)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := startWHEP(ctx, a.viewer, hc, view, tok); err == nil || !strings.Contains(err.Error(), "503") {
		t.Fatalf("viewer against a refusing server: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if pubs != 1 || views != 1 || len(problems) > 0 {
		t.Fatalf("publishers %d, viewers %d, problems %q", pubs, views, problems)
	}
}

func TestLiveKitRefusesWSAndProfile(t *testing.T) {
	cfg := smallConfig("http://127.0.0.1:1", true)
	cfg.Target = LiveKit{}
	if err := cfg.check(); err == nil {
		t.Fatal("--ws accepted for livekit")
	}
}
