package integration

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/pion/webrtc/v4"

	"github.com/cascade-sfu/cascade/pkg/client"
	"github.com/cascade-sfu/cascade/pkg/rtc"
	"github.com/cascade-sfu/cascade/pkg/signal"
)

func leftWith(t *testing.T, watcher *peer, identity, reason string) {
	t.Helper()
	waitMessage(t, watcher, "participant_left", func(d json.RawMessage) bool {
		var m signal.ParticipantLeftMsg
		return json.Unmarshal(d, &m) == nil && m.Identity == identity && m.Reason == reason
	})
}

// A participant whose PeerConnection dies is removed, and its socket is closed.
func TestSessionEndsWhenPeerConnectionFails(t *testing.T) {
	n := startNode(t, nodeOptions{rtc: func(c *rtc.Config) {
		c.ICEDisconnectedTimeout, c.ICEFailedTimeout = 500*time.Millisecond, time.Second
	}})
	watcher := n.join("pcfail", "watcher")
	p := n.join("pcfail", "alice")
	src := startSource(t)
	video := vp8Track(t, "cam", "s", "")
	if _, err := p.Publish(ctx10(t), video); err != nil {
		t.Fatal(err)
	}
	src.video([]*webrtc.TrackLocalStaticRTP{video}, []byte{'f'}, []int{500})
	publishedTrack(t, watcher, "video")
	// The client's media stack goes away while its socket stays open.
	pc, _ := p.Publisher()
	_ = pc.Close()
	leftWith(t, watcher, "alice", "disconnected")
	select {
	case <-p.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("the failed participant's socket was not closed")
	}
}

// A participant whose socket drops is removed.
func TestSessionEndsWhenSocketCloses(t *testing.T) {
	n := startNode(t)
	watcher := n.join("sockclose", "watcher")
	p := n.join("sockclose", "alice")
	p.Close()
	leftWith(t, watcher, "alice", "disconnected")
}

// A client that stops answering pings is removed after the ping timeout and the time it is
// given to resume its session.
func TestSessionEndsWhenPingsGoUnanswered(t *testing.T) {
	n := startNode(t, nodeOptions{signal: func(c *signal.Config) {
		c.PingInterval, c.PingTimeout = 200*time.Millisecond, 500*time.Millisecond
		c.ResumeGrace = 500 * time.Millisecond // then it may resume for this long
	}})
	watcher := n.join("ping", "watcher")
	ctx := ctx10(t)
	conn, _, err := websocket.Dial(ctx, n.wsURL(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.CloseNow()
	join, _ := json.Marshal(signal.Envelope{V: 1, Type: "join", Data: mustJSON(signal.JoinRequest{Token: n.token("ping", "silent", everything)})})
	if err := conn.Write(ctx, websocket.MessageText, join); err != nil {
		t.Fatal(err)
	}
	// This client never reads again, so it never answers a ping.
	waitMessage(t, watcher, "participant_joined", nil)
	leftWith(t, watcher, "silent", "disconnected")
}

func mustJSON(v any) json.RawMessage {
	b, _ := json.Marshal(v)
	return b
}

// Shutting the node down tells every client why before closing.
func TestShutdownTellsClients(t *testing.T) {
	n := startNode(t)
	a := n.join("shutdown", "alice")
	n.signal.Drain()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if _, err := dialRaw(ctx, n); err == nil {
		t.Fatal("a draining node accepted a new session")
	}
	n.rooms.Close()
	waitMessage(t, a, "leave", func(d json.RawMessage) bool {
		var m signal.LeaveMsg
		return json.Unmarshal(d, &m) == nil && m.Reason == "shutdown"
	})
	n.signal.Close()
	select {
	case <-a.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("socket not closed at shutdown")
	}
}

func dialRaw(ctx context.Context, n *node) (*websocket.Conn, error) {
	c, _, err := websocket.Dial(ctx, n.wsURL(), nil)
	return c, err
}

// A flood of joins from one address is refused with rate_limited; other sessions go on.
func TestJoinFloodIsRateLimited(t *testing.T) {
	n := startNode(t, nodeOptions{signal: func(c *signal.Config) { c.JoinRate, c.JoinBurst = 1, 3 }})
	first := n.join("flood", "first")
	limited := 0
	for i := range 6 {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		c, err := client.Dial(ctx, client.Options{URL: n.wsURL(), Token: n.token("flood", fmt.Sprintf("bot-%d", i), everything), API: loopbackAPI(t)})
		cancel()
		var se *signal.Error
		switch {
		case err == nil:
			c.Close()
		case errors.As(err, &se) && se.Code == signal.CodeRateLimited:
			limited++
		default:
			t.Fatalf("join %d: %v", i, err)
		}
	}
	if limited < 3 {
		t.Fatalf("only %d of 6 flooding joins were refused", limited)
	}
	if err := first.Send("ping", signal.PingMessage{TS: 7}); err != nil {
		t.Fatal(err)
	}
	waitMessage(t, first, "pong", nil)
}

// A client that never answers a subscriber offer is told why and its session ends; the room
// goes on for the others.
func TestUnansweredOfferEndsTheSession(t *testing.T) {
	n := startNode(t, nodeOptions{rtc: func(c *rtc.Config) { c.AnswerTimeout = 500 * time.Millisecond }})
	watcher := n.join("mute-client", "watcher")
	ctx := ctx10(t)
	conn, _, err := websocket.Dial(ctx, n.wsURL(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.CloseNow()
	join, _ := json.Marshal(signal.Envelope{V: 1, Type: "join", Data: mustJSON(signal.JoinRequest{Token: n.token("mute-client", "silent", everything)})})
	if err := conn.Write(ctx, websocket.MessageText, join); err != nil {
		t.Fatal(err)
	}
	// A publisher arrives: the silent client is offered its track and never answers.
	pub := n.join("mute-client", "pub")
	src := startSource(t)
	audio := opusTrack(t, "mic", "s")
	if _, err := pub.Publish(ctx, audio); err != nil {
		t.Fatal(err)
	}
	src.audio(audio)
	var gotError bool
	for {
		_, data, err := conn.Read(ctx)
		if err != nil {
			break // the server closed the socket
		}
		var env signal.Envelope
		if json.Unmarshal(data, &env) == nil && env.Type == "error" {
			var e signal.ErrorMsg
			gotError = json.Unmarshal(env.Data, &e) == nil && e.Code == signal.CodeNegotiationFailed
		}
	}
	if !gotError {
		t.Fatal("the silent client was not told that its offer went unanswered")
	}
	leftWith(t, watcher, "silent", "disconnected")
	tracks := n.rooms.Room("mute-client").Tracks()
	if len(tracks) != 1 {
		t.Fatalf("room has %d tracks", len(tracks))
	}
	id := string(tracks[0].ID())
	before := watcher.rx.packetsOf(id)
	eventually(t, 10*time.Second, "the watcher still receives", func() bool { return watcher.rx.packetsOf(id) > before+10 })
}
