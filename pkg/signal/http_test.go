package signal_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/pion/ice/v4"
	"github.com/pion/webrtc/v4"
	"go.uber.org/goleak"

	"github.com/cascade-sfu/cascade/pkg/auth"
	"github.com/cascade-sfu/cascade/pkg/room"
	"github.com/cascade-sfu/cascade/pkg/rtc"
	"github.com/cascade-sfu/cascade/pkg/signal"
)

// Every test here closes what it opens: PeerConnections on both sides, WebSockets, the media
// port and the HTTP server. No goroutine may outlive the tests.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const (
	testKey    = "k"
	testSecret = "a-secret-of-at-least-16"
	testRoom   = "demo"
)

// testNode is a signalling server in-process: real engine, rooms, verifier and HTTP stack.
type testNode struct {
	url      string
	client   *http.Client
	verifier *auth.Verifier
}

func newTestNode(t *testing.T, tweak func(*signal.Config)) *testNode {
	t.Helper()
	engine, err := rtc.NewEngine(rtc.Config{UDPAddr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	rooms := room.NewManager(room.DefaultConfig())
	verifier, err := auth.NewVerifier(map[string]string{testKey: testSecret})
	if err != nil {
		t.Fatal(err)
	}
	cfg := signal.Config{
		Rooms: rooms, Engine: engine, Verifier: verifier,
		Dev: true, DevKey: testKey, DevSecret: testSecret,
		// The bad-input tables start many sessions from 127.0.0.1; only the flood test limits.
		JoinRate: 1000, JoinBurst: 1000, FailedJoinRate: 1000, FailedJoinBurst: 1000,
		JoinTimeout: time.Minute,
	}
	if tweak != nil {
		tweak(&cfg)
	}
	srv := signal.NewServer(cfg)
	mux := http.NewServeMux()
	srv.Register(mux)
	ts := httptest.NewServer(mux)
	t.Cleanup(func() {
		// The order of a node's shutdown: stop admitting, tell participants, end sessions,
		// then the HTTP server (which waits for handlers) and the media port.
		srv.Drain()
		rooms.Close()
		srv.Close()
		ts.Close()
		if err := engine.Close(); err != nil {
			t.Errorf("engine close: %v", err)
		}
	})
	return &testNode{url: ts.URL, client: ts.Client(), verifier: verifier}
}

// token signs a token for identity in room; edit adjusts the grants (nil: publish, subscribe
// and data).
func token(t *testing.T, roomName, identity string, edit func(*auth.Grants)) string {
	t.Helper()
	g := auth.Grants{Room: roomName, Identity: identity, CanPublish: true, CanSubscribe: true, CanPublishData: true}
	if edit != nil {
		edit(&g)
	}
	tok, err := auth.Sign(testKey, testSecret, g, time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func expiredToken(t *testing.T, roomName, identity string) string {
	t.Helper()
	g := auth.Grants{Room: roomName, Identity: identity, CanPublish: true, CanSubscribe: true}
	tok, err := auth.Sign(testKey, testSecret, g, time.Hour, time.Now().Add(-2*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

type response struct {
	status int
	header http.Header
	body   string
}

// request sends one HTTP request; authz is the whole Authorization value ("" for none).
func (n *testNode) request(t *testing.T, method, path, authz, ctype, body string) response {
	t.Helper()
	return doRequest(t, n.client, n.url, method, path, authz, ctype, body)
}

func doRequest(t *testing.T, c *http.Client, base, method, path, authz, ctype, body string) response {
	t.Helper()
	req, err := http.NewRequest(method, base+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if authz != "" {
		req.Header.Set("Authorization", authz)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading body: %v", method, path, err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: string(b)}
}

// clientOffer returns a complete (gathered) offer from a real pion PeerConnection, closed
// before returning. A publisher sends VP8 and Opus; a viewer only receives.
func clientOffer(t *testing.T, viewer bool) string {
	t.Helper()
	var se webrtc.SettingEngine
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	se.SetIncludeLoopbackCandidate(true)
	se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
	m := &webrtc.MediaEngine{}
	if err := m.RegisterDefaultCodecs(); err != nil {
		t.Fatal(err)
	}
	pc, err := webrtc.NewAPI(webrtc.WithSettingEngine(se), webrtc.WithMediaEngine(m)).NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := pc.Close(); err != nil {
			t.Error(err)
		}
	}()
	if viewer {
		for _, k := range []webrtc.RTPCodecType{webrtc.RTPCodecTypeAudio, webrtc.RTPCodecTypeVideo} {
			if _, err := pc.AddTransceiverFromKind(k, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
				t.Fatal(err)
			}
		}
	} else {
		for _, c := range []webrtc.RTPCodecCapability{{MimeType: webrtc.MimeTypeOpus}, {MimeType: webrtc.MimeTypeVP8}} {
			tr, err := webrtc.NewTrackLocalStaticSample(c, strings.ToLower(strings.Split(c.MimeType, "/")[0]), "cascade-test")
			if err != nil {
				t.Fatal(err)
			}
			if _, err := pc.AddTransceiverFromTrack(tr, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly}); err != nil {
				t.Fatal(err)
			}
		}
	}
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(offer); err != nil {
		t.Fatal(err)
	}
	select {
	case <-gathered:
	case <-time.After(10 * time.Second):
		t.Fatal("ICE gathering did not complete")
	}
	return pc.LocalDescription().SDP
}

var locationRE = regexp.MustCompile(`^/(whip|whep)/demo/[A-Za-z0-9_-]+$`)

// startSession POSTs a good offer and checks the 201 answer; it returns the Location.
func (n *testNode) startSession(t *testing.T, kind, offer, tok string) string {
	t.Helper()
	r := n.request(t, http.MethodPost, "/"+kind+"/"+testRoom, "Bearer "+tok, "application/sdp", offer)
	if r.status != http.StatusCreated {
		t.Fatalf("POST /%s: %d %q, want 201", kind, r.status, r.body)
	}
	loc := r.header.Get("Location")
	if !locationRE.MatchString(loc) || !strings.HasPrefix(loc, "/"+kind+"/") {
		t.Fatalf("Location %q", loc)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/sdp" {
		t.Fatalf("answer Content-Type %q, want application/sdp", ct)
	}
	if !strings.HasPrefix(r.body, "v=0") || !strings.Contains(r.body, "a=candidate:") {
		t.Fatalf("answer is not a complete SDP:\n%s", r.body)
	}
	return loc
}

// goodRoundTrip proves the server still works: a session starts and is deleted.
func (n *testNode) goodRoundTrip(t *testing.T, kind, offer string) {
	t.Helper()
	tok := token(t, testRoom, "checker-"+kind, nil)
	loc := n.startSession(t, kind, offer, tok)
	if r := n.request(t, http.MethodDelete, loc, "Bearer "+tok, "", ""); r.status != http.StatusOK {
		t.Fatalf("DELETE %s: %d %q, want 200", loc, r.status, r.body)
	}
}

func TestWHIPAndWHEPBadInput(t *testing.T) {
	n := newTestNode(t, nil)
	offers := map[string]string{"whip": clientOffer(t, false), "whep": clientOffer(t, true)}
	const noMedia = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"
	const disabledMedia = noMedia + "m=video 0 UDP/TLS/RTP/SAVPF 96\r\na=rtpmap:96 VP8/90000\r\na=mid:0\r\n"
	huge := offers["whip"] + strings.Repeat("a=x-pad:0123456789abcdef0123456789abcdef0123456789abcdef\r\n", 1200)

	type tc struct {
		name   string
		path   string // default /KIND/demo
		authz  string // default a full-grant token
		ctype  string // default application/sdp
		body   string // default the good offer of the kind
		status int
		want   string // substring of the plain-text answer
	}
	for _, kind := range []string{"whip", "whep"} {
		bearer := func(edit func(*auth.Grants)) string { return "Bearer " + token(t, testRoom, "user-"+kind, edit) }
		cases := []tc{
			{name: "no authorization", authz: "-", status: 401, want: "missing token"},
			{name: "garbage token", authz: "Bearer not.a.jwt", status: 401, want: "malformed"},
			{name: "basic scheme", authz: "Basic dXNlcjpwYXNz", status: 401, want: "not Bearer"},
			{name: "expired token", authz: "Bearer " + expiredToken(t, testRoom, "late"), status: 401, want: "expired"},
			{name: "token for another room", authz: "Bearer " + token(t, "elsewhere", "u", nil), status: 403, want: "another room"},
			{name: "wrong content type", ctype: "text/plain", status: 415, want: "application/sdp"},
			{name: "unparsable content type", ctype: "application/sdp; =", status: 415, want: "application/sdp"},
			{name: "empty body", body: "-", status: 400, want: "empty body"},
			{name: "body over 64 KiB", body: huge, status: 413, want: "64 KiB"},
			{name: "unparsable SDP", body: "this is not an SDP offer", status: 400, want: "invalid_sdp"},
			{name: "SDP without m-lines", body: noMedia, status: 400, want: "invalid_sdp"},
			{name: "SDP with only a disabled m-line", body: disabledMedia, status: 400, want: "invalid_sdp"},
			{name: "invalid room name", path: "/" + kind + "/bad!room", status: 400, want: "room name"},
			{name: "room name starting with a dot", path: "/" + kind + "/.hidden", status: 400, want: "room name"},
			{name: "room name too long", path: "/" + kind + "/" + strings.Repeat("r", 65), status: 400, want: "room name"},
		}
		if kind == "whip" {
			cases = append(cases, tc{name: "token without publish grant", authz: bearer(func(g *auth.Grants) { g.CanPublish = false }), status: 403, want: "publish"})
		} else {
			cases = append(cases,
				tc{name: "token without subscribe grant", authz: bearer(func(g *auth.Grants) { g.CanSubscribe = false }), status: 403, want: "subscrib"},
				tc{name: "offer that only sends", body: offers["whip"], status: 400, want: "invalid_sdp"},
			)
		}
		for _, c := range cases {
			t.Run(kind+"/"+c.name, func(t *testing.T) {
				path, authz, ctype, body := "/"+kind+"/"+testRoom, bearer(nil), "application/sdp", offers[kind]
				if c.path != "" {
					path = c.path
				}
				if c.authz == "-" {
					authz = ""
				} else if c.authz != "" {
					authz = c.authz
				}
				if c.ctype != "" {
					ctype = c.ctype
				}
				if c.body == "-" {
					body = ""
				} else if c.body != "" {
					body = c.body
				}
				r := n.request(t, http.MethodPost, path, authz, ctype, body)
				if r.status != c.status {
					t.Fatalf("status %d, want %d; body %q", r.status, c.status, r.body)
				}
				if !strings.Contains(r.body, c.want) {
					t.Errorf("body %q does not say %q", r.body, c.want)
				}
				if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
					t.Errorf("error Content-Type %q, want text/plain", ct)
				}
				if r.header.Get("Location") != "" {
					t.Errorf("an error answer has a Location: %q", r.header.Get("Location"))
				}
				if c.status == http.StatusUnauthorized && !strings.HasPrefix(r.header.Get("WWW-Authenticate"), "Bearer") {
					t.Errorf("401 without a Bearer challenge: WWW-Authenticate %q", r.header.Get("WWW-Authenticate"))
				}
				n.goodRoundTrip(t, kind, offers[kind])
			})
		}
	}
}

func TestWHIPAndWHEPSessions(t *testing.T) {
	n := newTestNode(t, nil)
	for _, kind := range []string{"whip", "whep"} {
		t.Run(kind, func(t *testing.T) {
			offer := clientOffer(t, kind == "whep")
			tok := token(t, testRoom, "owner-"+kind, nil)
			loc := n.startSession(t, kind, offer, tok)
			r := n.request(t, http.MethodOptions, "/"+kind+"/"+testRoom, "", "", "")
			if r.status != http.StatusNoContent || r.header.Get("Accept-Post") != "application/sdp" {
				t.Errorf("OPTIONS: %d, Accept-Post %q", r.status, r.header.Get("Accept-Post"))
			}
			// A trickled candidate (RFC 8840 fragment with the session's ufrag).
			frag := "a=ice-ufrag:" + rtc.ICEUfrag(offer) + "\r\na=mid:0\r\n" +
				"a=candidate:1 1 udp 2130706431 127.0.0.1 9 typ host\r\n"
			if r := n.request(t, http.MethodPatch, loc, "Bearer "+tok, "application/trickle-ice-sdpfrag", frag); r.status != http.StatusNoContent {
				t.Errorf("PATCH candidate: %d %q, want 204", r.status, r.body)
			}
			bad := []struct {
				name, method, path, authz, ctype, body string
				status                                 int
				want                                   string
			}{
				{"PATCH with the wrong content type", http.MethodPatch, loc, "Bearer " + tok, "application/sdp", frag, 415, "trickle-ice-sdpfrag"},
				{"PATCH with no token", http.MethodPatch, loc, "", "application/trickle-ice-sdpfrag", frag, 401, "unauthorized"},
				{"PATCH over 64 KiB", http.MethodPatch, loc, "Bearer " + tok, "application/trickle-ice-sdpfrag", strings.Repeat("a=x\r\n", 14000), 413, "64 KiB"},
				{"PATCH with over 64 candidates", http.MethodPatch, loc, "Bearer " + tok, "application/trickle-ice-sdpfrag",
					strings.Repeat("a=candidate:1 1 udp 1 127.0.0.1 9 typ host\r\n", 65), 413, "64 candidates"},
				{"PATCH with a broken candidate", http.MethodPatch, loc, "Bearer " + tok, "application/trickle-ice-sdpfrag",
					"a=mid:0\r\na=candidate:garbage\r\n", 400, "candidate rejected"},
				{"DELETE by another identity", http.MethodDelete, loc, "Bearer " + token(t, testRoom, "intruder", nil), "", "", 403, "another identity"},
				{"DELETE with a token for another room", http.MethodDelete, loc, "Bearer " + token(t, "elsewhere", "owner-"+kind, nil), "", "", 403, "another room"},
				{"DELETE with an expired token", http.MethodDelete, loc, "Bearer " + expiredToken(t, testRoom, "owner-"+kind), "", "", 401, "expired"},
			}
			for _, c := range bad {
				r := n.request(t, c.method, c.path, c.authz, c.ctype, c.body)
				if r.status != c.status || !strings.Contains(r.body, c.want) {
					t.Errorf("%s: %d %q, want %d and %q", c.name, r.status, r.body, c.status, c.want)
				}
			}
			// The session survived all of that.
			if r := n.request(t, http.MethodDelete, loc, "Bearer "+tok, "", ""); r.status != http.StatusOK {
				t.Fatalf("DELETE: %d %q, want 200", r.status, r.body)
			}
			if r := n.request(t, http.MethodDelete, loc, "Bearer "+tok, "", ""); r.status != http.StatusNotFound {
				t.Errorf("second DELETE: %d %q, want 404", r.status, r.body)
			}
		})
	}
}

func TestUnknownHTTPSession(t *testing.T) {
	n := newTestNode(t, nil)
	tok := "Bearer " + token(t, testRoom, "alice", nil)
	whip := n.startSession(t, "whip", clientOffer(t, false), token(t, testRoom, "pub", nil))
	id := whip[strings.LastIndex(whip, "/")+1:]
	paths := []string{
		"/whip/demo/WH_doesnotexist",
		"/whep/demo/WH_doesnotexist",
		"/whep/demo/" + id,      // a WHIP session is not reachable as WHEP
		"/whip/elsewhere/" + id, // nor under another room
	}
	for _, p := range paths {
		for _, method := range []string{http.MethodDelete, http.MethodPatch} {
			r := n.request(t, method, p, tok, "application/trickle-ice-sdpfrag", "a=mid:0\r\n")
			if r.status != http.StatusNotFound || !strings.Contains(r.body, "no such session") {
				t.Errorf("%s %s: %d %q, want 404", method, p, r.status, r.body)
			}
		}
	}
}

func TestDevToken(t *testing.T) {
	n := newTestNode(t, nil)
	bad := []struct{ name, body string }{
		{"truncated JSON", `{"room":`},
		{"not an object", `["demo","alice"]`},
		{"unknown field", `{"room":"demo","identity":"alice","admin":true}`},
		{"empty body", ``},
		{"invalid room", `{"room":"no spaces","identity":"alice"}`},
		{"no identity", `{"room":"demo"}`},
		{"over 4 KiB", `{"room":"demo","identity":"` + strings.Repeat("a", 5000) + `"}`},
	}
	for _, c := range bad {
		r := n.request(t, http.MethodPost, "/v1/dev/token", "", "application/json", c.body)
		if r.status != http.StatusBadRequest || !strings.Contains(r.body, "bad_request") {
			t.Errorf("%s: %d %q, want 400 bad_request", c.name, r.status, r.body)
		}
	}
	r := n.request(t, http.MethodPost, "/v1/dev/token", "", "application/json", `{"room":"demo","identity":"alice","name":"Alice"}`)
	if r.status != http.StatusOK {
		t.Fatalf("good request: %d %q", r.status, r.body)
	}
	var out struct{ Token string }
	if err := json.Unmarshal([]byte(r.body), &out); err != nil {
		t.Fatalf("answer %q: %v", r.body, err)
	}
	g, err := n.verifier.Verify(out.Token)
	if err != nil {
		t.Fatalf("the dev token does not verify: %v", err)
	}
	if g.Room != "demo" || g.Identity != "alice" || g.Name != "Alice" || !g.CanPublish || !g.CanSubscribe || !g.CanPublishData || g.RoomAdmin {
		t.Errorf("grants %+v", g)
	}
}

func TestJoinFloodIsLimitedPerAddress(t *testing.T) {
	const burst = 3
	n := newTestNode(t, func(c *signal.Config) { c.FailedJoinRate, c.FailedJoinBurst = 0.001, burst })
	offer := clientOffer(t, false)
	limited := 0
	for i := range burst + 2 {
		r := n.request(t, http.MethodPost, "/whip/demo", "", "application/sdp", offer)
		switch {
		case i < burst && r.status != http.StatusUnauthorized:
			t.Fatalf("request %d: %d %q, want 401 (within the burst)", i, r.status, r.body)
		case i >= burst && r.status == http.StatusTooManyRequests:
			limited++
			if !strings.Contains(r.body, "rate_limited") {
				t.Errorf("429 body %q", r.body)
			}
		case i >= burst:
			t.Errorf("request %d: %d %q, want 429", i, r.status, r.body)
		}
	}
	if limited == 0 {
		t.Fatal("no request was limited")
	}
	// WHEP shares the budget, and WebSocket joins too.
	if r := n.request(t, http.MethodPost, "/whep/demo", "", "application/sdp", offer); r.status != http.StatusTooManyRequests {
		t.Errorf("WHEP from a flooding address: %d %q, want 429", r.status, r.body)
	}
	ws := dialWS(t, n)
	ws.send(t, `{"v":1,"type":"join","id":"j","data":{"token":"`+token(t, testRoom, "flooder", nil)+`"}}`)
	ws.expectError(t, "rate_limited", "join", "j")
	ws.close()

	// Endpoints that start no session still answer the limited address.
	if r := n.request(t, http.MethodPost, "/v1/dev/token", "", "application/json", `{"room":"demo","identity":"x"}`); r.status != http.StatusOK {
		t.Errorf("dev token from the limited address: %d %q", r.status, r.body)
	}

	// Another address is not affected: the loopback network is 127/8 on Linux (not on macOS).
	probe, err := net.Listen("tcp", "127.0.0.2:0")
	if err != nil {
		t.Skipf("127.0.0.2 is not a local address here (%v); per-address check skipped", err)
	}
	_ = probe.Close()
	other := &http.Client{Transport: &http.Transport{DialContext: (&net.Dialer{
		LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)},
	}).DialContext}}
	defer other.CloseIdleConnections()
	tok := token(t, testRoom, "neighbour", nil)
	r := doRequest(t, other, n.url, http.MethodPost, "/whip/demo", "Bearer "+tok, "application/sdp", offer)
	if r.status != http.StatusCreated {
		t.Fatalf("POST from 127.0.0.2: %d %q, want 201", r.status, r.body)
	}
	if r := doRequest(t, other, n.url, http.MethodDelete, r.header.Get("Location"), "Bearer "+tok, "", ""); r.status != http.StatusOK {
		t.Errorf("DELETE from 127.0.0.2: %d %q", r.status, r.body)
	}
}

// wsClient is a test WebSocket client of the signalling protocol.
type wsClient struct {
	c *websocket.Conn
}

func dialWS(t *testing.T, n *testNode) *wsClient {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(n.url, "http")+"/v1/rtc", &websocket.DialOptions{HTTPClient: n.client})
	if err != nil {
		t.Fatal(err)
	}
	c.SetReadLimit(1 << 20)
	w := &wsClient{c: c}
	t.Cleanup(w.close)
	return w
}

func (w *wsClient) close() { _ = w.c.CloseNow() }

func (w *wsClient) send(t *testing.T, frame string) {
	t.Helper()
	w.write(t, websocket.MessageText, []byte(frame))
}

func (w *wsClient) write(t *testing.T, typ websocket.MessageType, b []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := w.c.Write(ctx, typ, b); err != nil {
		t.Fatalf("write: %v", err)
	}
}

// read returns the next frame, whatever its type.
func (w *wsClient) read(t *testing.T) signal.Envelope {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, b, err := w.c.Read(ctx)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	var env signal.Envelope
	if err := json.Unmarshal(b, &env); err != nil {
		t.Fatalf("server frame %q: %v", b, err)
	}
	return env
}

// next returns the next frame of type typ, skipping others (room events, candidates).
func (w *wsClient) next(t *testing.T, typ string) signal.Envelope {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for {
		mt, b, err := w.c.Read(ctx)
		if err != nil {
			t.Fatalf("waiting for %q: %v", typ, err)
		}
		if mt != websocket.MessageText {
			t.Fatalf("server sent a binary frame")
		}
		var env signal.Envelope
		if err := json.Unmarshal(b, &env); err != nil {
			t.Fatalf("server frame %q: %v", b, err)
		}
		if env.V != signal.ProtocolVersion {
			t.Fatalf("server frame with version %d", env.V)
		}
		if env.Type == typ {
			return env
		}
		if env.Type == "error" && typ != "error" {
			t.Fatalf("waiting for %q, got error %s", typ, env.Data)
		}
	}
}

// expectError reads the next error frame and checks its code, ref and request id.
func (w *wsClient) expectError(t *testing.T, code, ref, id string) {
	t.Helper()
	env := w.next(t, "error")
	var e signal.ErrorMsg
	if err := json.Unmarshal(env.Data, &e); err != nil {
		t.Fatal(err)
	}
	if e.Code != code || e.Ref != ref || env.ID != id {
		t.Fatalf("error code %q ref %q id %q (%q), want %q %q %q", e.Code, e.Ref, env.ID, e.Message, code, ref, id)
	}
	if e.Message == "" {
		t.Fatalf("error %q without a message", code)
	}
}

// ping checks that the session still answers.
func (w *wsClient) ping(t *testing.T, id string) {
	t.Helper()
	w.send(t, `{"v":1,"type":"ping","id":"`+id+`","data":{"ts":42}}`)
	env := w.next(t, "pong")
	var p signal.PingMessage
	if err := json.Unmarshal(env.Data, &p); err != nil || p.TS != 42 || env.ID != id {
		t.Fatalf("pong %s id %q, want ts 42 id %q", env.Data, env.ID, id)
	}
}

func (w *wsClient) join(t *testing.T, tok string) signal.Joined {
	t.Helper()
	w.send(t, `{"v":1,"type":"join","id":"join","data":{"token":"`+tok+`"}}`)
	env := w.next(t, "joined")
	var j signal.Joined
	if err := json.Unmarshal(env.Data, &j); err != nil {
		t.Fatal(err)
	}
	if env.ID != "join" {
		t.Fatalf("joined echoes id %q", env.ID)
	}
	return j
}

func TestWebSocketBadInput(t *testing.T) {
	n := newTestNode(t, nil)
	bob := dialWS(t, n)
	bob.join(t, token(t, testRoom, "bob", nil))

	alice := dialWS(t, n)
	before := []struct {
		name, frame, code, ref, id string
	}{
		{"malformed JSON", `{"v":1,"type":`, signal.CodeBadRequest, "", ""},
		{"not an object", `[1,2,3]`, signal.CodeBadRequest, "", ""},
		{"unknown type", `{"v":1,"type":"frobnicate","id":"u1"}`, signal.CodeUnknownType, "frobnicate", "u1"},
		{"wrong version", `{"v":2,"type":"ping","id":"u2"}`, signal.CodeUnsupportedVersion, "ping", "u2"},
		{"no version", `{"type":"ping","id":"u3"}`, signal.CodeUnsupportedVersion, "ping", "u3"},
		{"message before join", `{"v":1,"type":"chat","id":"u4","data":{"text":"hi"}}`, signal.CodeNotJoined, "chat", "u4"},
		{"offer before join", `{"v":1,"type":"offer","id":"u5","data":{"pc":"pub","sdp":"v=0"}}`, signal.CodeNotJoined, "offer", "u5"},
		{"join without data", `{"v":1,"type":"join","id":"u6"}`, signal.CodeBadRequest, "join", "u6"},
		{"join with a garbage token", `{"v":1,"type":"join","id":"u7","data":{"token":"garbage"}}`, signal.CodeUnauthorized, "join", "u7"},
		{"join with an expired token", `{"v":1,"type":"join","id":"u8","data":{"token":"` + expiredToken(t, testRoom, "alice") + `"}}`, signal.CodeUnauthorized, "join", "u8"},
		{"join with a token signed by another secret", `{"v":1,"type":"join","id":"u9","data":{"token":"` + foreignToken(t) + `"}}`, signal.CodeUnauthorized, "join", "u9"},
		{"join with a wrong payload type", `{"v":1,"type":"join","id":"u10","data":{"token":42}}`, signal.CodeBadRequest, "join", "u10"},
	}
	for i, c := range before {
		alice.send(t, c.frame)
		alice.expectError(t, c.code, c.ref, c.id)
		alice.ping(t, "p"+string(rune('a'+i))) // the socket stays open and usable
	}
	alice.write(t, websocket.MessageBinary, []byte{1, 2, 3})
	alice.expectError(t, signal.CodeBadRequest, "", "")
	alice.ping(t, "after-binary")

	j := alice.join(t, token(t, testRoom, "alice", nil))
	if j.Room != testRoom || j.Participant.Identity != "alice" || len(j.Participants) != 1 || j.Participants[0].Identity != "bob" {
		t.Fatalf("joined %+v", j)
	}
	after := []struct {
		name, frame, code, ref, id string
	}{
		{"second join", `{"v":1,"type":"join","id":"v1","data":{"token":"` + token(t, testRoom, "alice", nil) + `"}}`, signal.CodeAlreadyJoined, "join", "v1"},
		{"mute of an unknown track", `{"v":1,"type":"mute","id":"v2","data":{"track_id":"TR_nope","muted":true}}`, signal.CodeNotFound, "mute", "v2"},
		{"chat over 4 KiB", `{"v":1,"type":"chat","id":"v3","data":{"text":"` + strings.Repeat("x", 5000) + `"}}`, signal.CodeBadRequest, "chat", "v3"},
		{"unparsable offer", `{"v":1,"type":"offer","id":"v4","data":{"pc":"pub","sdp":"nonsense"}}`, signal.CodeInvalidSDP, "offer", "v4"},
		{"offer on the wrong pc", `{"v":1,"type":"offer","id":"v5","data":{"pc":"sub","sdp":"v=0"}}`, signal.CodeBadRequest, "offer", "v5"},
		{"candidate for no pc", `{"v":1,"type":"candidate","id":"v6","data":{"pc":"x","candidate":{"candidate":"candidate:1"}}}`, signal.CodeBadRequest, "candidate", "v6"},
		{"kick without the admin grant", `{"v":1,"type":"kick","id":"v7","data":{"identity":"bob"}}`, signal.CodeForbidden, "kick", "v7"},
	}
	for i, c := range after {
		alice.send(t, c.frame)
		alice.expectError(t, c.code, c.ref, c.id)
		alice.ping(t, "q"+string(rune('a'+i)))
	}

	// A frame over 64 KiB ends the session with 1009; bob sees alice leave and goes on.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// The server may close while the frame is still being written; what counts is the close.
	_ = alice.c.Write(ctx, websocket.MessageText, []byte(`{"v":1,"type":"chat","data":{"text":"`+strings.Repeat("x", signal.MaxFrameSize)+`"}}`))
	for {
		_, _, err := alice.c.Read(ctx)
		if err == nil {
			continue // frames queued before the close
		}
		if s := websocket.CloseStatus(err); s != websocket.StatusMessageTooBig {
			t.Fatalf("after an oversized frame: %v (close status %d), want 1009", err, s)
		}
		break
	}
	left := bob.next(t, "participant_left")
	var pl signal.ParticipantLeftMsg
	if err := json.Unmarshal(left.Data, &pl); err != nil || pl.Identity != "alice" {
		t.Fatalf("participant_left %s", left.Data)
	}
	bob.ping(t, "bob-still-here")
}

// foreignToken is well formed but signed by a key the node does not know.
func foreignToken(t *testing.T) string {
	t.Helper()
	tok, err := auth.Sign("other", "another-secret-of-16-bytes", auth.Grants{Room: testRoom, Identity: "alice"}, time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// A WHIP request whose offer is unusable must leave the room alone: no participant appears and
// leaves, and a session of the same identity is not replaced by the failed one.
func TestBadWHIPOfferDoesNotDisturbTheRoom(t *testing.T) {
	n := newTestNode(t, nil)
	bob := dialWS(t, n)
	bob.join(t, token(t, testRoom, "bob", nil))
	carol := dialWS(t, n)
	carol.join(t, token(t, testRoom, "carol", nil))
	bob.next(t, "participant_joined") // carol

	for _, offer := range []string{"garbage", "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"} {
		for _, identity := range []string{"bob", "mallory"} {
			r := n.request(t, http.MethodPost, "/whip/demo", "Bearer "+token(t, testRoom, identity, nil), "application/sdp", offer)
			if r.status != http.StatusBadRequest {
				t.Fatalf("%s: %d %q, want 400", identity, r.status, r.body)
			}
		}
	}
	for _, w := range []*wsClient{bob, carol} {
		for _, env := range w.until(t, "pong") {
			switch env.Type {
			case "leave", "participant_joined", "participant_left":
				t.Errorf("a failed WHIP request caused %s %s", env.Type, env.Data)
			}
		}
	}
}

// until pings and returns every frame received before the pong.
func (w *wsClient) until(t *testing.T, typ string) []signal.Envelope {
	t.Helper()
	w.send(t, `{"v":1,"type":"ping","id":"until"}`)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var seen []signal.Envelope
	for {
		_, b, err := w.c.Read(ctx)
		if err != nil {
			t.Fatalf("waiting for %q: %v", typ, err)
		}
		var env signal.Envelope
		if err := json.Unmarshal(b, &env); err != nil {
			t.Fatal(err)
		}
		if env.Type == typ && env.ID == "until" {
			return seen
		}
		seen = append(seen, env)
	}
}

// With the default limits, a town hall filling up from one address (a NAT, a load balancer, a
// load test) is not refused: 100 joins with valid tokens in well under 10 s all pass. Bad
// tokens from that address are still cut off after a few, and then the address is refused
// before any work until its failure budget refills, valid token or not.
func TestTownHallFromOneAddress(t *testing.T) {
	n := newTestNode(t, func(c *signal.Config) { c.JoinRate, c.JoinBurst, c.FailedJoinRate, c.FailedJoinBurst = 0, 0, 0, 0 }) // the defaults
	start := time.Now()
	for i := range 100 {
		ws := dialWS(t, n)
		hall := []string{"hall-a", "hall-b"}[i%2]
		ws.join(t, token(t, hall, fmt.Sprintf("guest-%d", i), func(g *auth.Grants) { g.CanSubscribe = false }))
		ws.close()
	}
	t.Logf("100 joins from one address in %v", time.Since(start).Round(time.Millisecond))

	offer := clientOffer(t, false)
	refused := -1
	for i := range signal.DefaultFailedJoinBurst + 2 {
		r := n.request(t, http.MethodPost, "/whip/demo", "Bearer not-a-token", "application/sdp", offer)
		if r.status == http.StatusTooManyRequests {
			refused = i
			break
		}
		if r.status != http.StatusUnauthorized {
			t.Fatalf("bad token %d: %d %q, want 401", i, r.status, r.body)
		}
	}
	if refused != signal.DefaultFailedJoinBurst {
		t.Fatalf("the bad-token flood was refused from attempt %d, want %d", refused, signal.DefaultFailedJoinBurst)
	}
	ws := dialWS(t, n)
	ws.send(t, `{"v":1,"type":"join","id":"j","data":{"token":"`+token(t, testRoom, "late", nil)+`"}}`)
	ws.expectError(t, "rate_limited", "join", "j")
}
