package client

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func newPC(t *testing.T) *webrtc.PeerConnection {
	t.Helper()
	se := webrtc.SettingEngine{}
	se.SetIncludeLoopbackCandidate(true)
	se.SetInterfaceFilter(func(name string) bool { return name == "lo" })
	pc, err := webrtc.NewAPI(webrtc.WithSettingEngine(se)).NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pc.Close() })
	return pc
}

// A WHEP-like endpoint answered by a pion PeerConnection: the client applies the answer and
// gets the session's resource URL resolved against the endpoint.
func TestPostOfferAppliesAnswer(t *testing.T) {
	answerer := newPC(t)
	var auth string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		auth = r.Header.Get("Authorization")
		offer, _ := io.ReadAll(r.Body)
		if err := answerer.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: string(offer)}); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		ans, _ := answerer.CreateAnswer(nil)
		done := webrtc.GatheringCompletePromise(answerer)
		_ = answerer.SetLocalDescription(ans)
		<-done
		w.Header().Set("Location", "sessions/abc")
		w.WriteHeader(http.StatusCreated)
		_, _ = io.WriteString(w, answerer.LocalDescription().SDP)
	}))
	defer srv.Close()
	pc := newPC(t)
	if _, err := pc.AddTransceiverFromKind(webrtc.RTPCodecTypeVideo, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	loc, err := PostOffer(ctx, srv.Client(), pc, srv.URL+"/whep/room", "tok")
	if err != nil {
		t.Fatal(err)
	}
	if loc != srv.URL+"/whep/sessions/abc" || auth != "Bearer tok" {
		t.Fatalf("location %q, authorization %q", loc, auth)
	}
	if pc.RemoteDescription() == nil || pc.RemoteDescription().Type != webrtc.SDPTypeAnswer {
		t.Fatal("the answer was not applied")
	}
}

// A refusal comes back as an error carrying the server's status and message.
func TestPostOfferReportsRefusal(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "token expired", http.StatusUnauthorized)
	}))
	defer srv.Close()
	pc := newPC(t)
	if _, err := pc.AddTransceiverFromKind(webrtc.RTPCodecTypeAudio, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := PostOffer(ctx, srv.Client(), pc, srv.URL+"/whip/room", "tok")
	if err == nil || !strings.Contains(err.Error(), "401") || !strings.Contains(err.Error(), "token expired") {
		t.Fatalf("err = %v, want the 401 and its message", err)
	}
}

// DeleteResource sends DELETE with the token to the session's address, and nothing at all for
// a session that has none.
func TestDeleteResource(t *testing.T) {
	got := make(chan string, 2)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- r.Method + " " + r.URL.Path + " " + r.Header.Get("Authorization")
	}))
	defer srv.Close()
	DeleteResource(srv.Client(), "", "tok")
	DeleteResource(srv.Client(), srv.URL+"/whep/r/WH_1", "tok")
	if g := <-got; g != "DELETE /whep/r/WH_1 Bearer tok" {
		t.Fatalf("request %q", g)
	}
	if len(got) != 0 {
		t.Fatalf("a request for an empty resource: %q", <-got)
	}
}
