package signal

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"testing"

	"github.com/cascade-sfu/cascade/pkg/room"
)

// queueSession is a session with an outbound queue of n and nothing writing it.
func queueSession(n int) *wsSession {
	ctx, cancel := context.WithCancel(context.Background())
	return &wsSession{ctx: ctx, cancel: cancel, out: make(chan outbound, n), joinID: "j1",
		log: slog.New(slog.NewTextHandler(io.Discard, nil))}
}

func (ss *wsSession) queuedTypes(t *testing.T) []string {
	t.Helper()
	var types []string
	for len(ss.out) > 0 {
		var env Envelope
		if err := json.Unmarshal((<-ss.out).data, &env); err != nil {
			t.Fatal(err)
		}
		types = append(types, env.Type)
	}
	return types
}

// While joined waits for the subscriber's offer, the messages queued meanwhile wait behind it,
// and go out after it, in order, once the offer comes; joined carries the offer.
func TestHeldJoinedGoesFirst(t *testing.T) {
	ss := queueSession(8)
	ss.heldJoined = &Joined{SessionID: "SE_1", SubOffer: true}
	ss.send("participant_joined", "", struct{}{})
	ss.send("chat", "", struct{}{})
	if len(ss.out) != 0 {
		t.Fatalf("%d messages went out before joined", len(ss.out))
	}
	if !ss.releaseJoined("v=0 offer") {
		t.Fatal("no held joined was released")
	}
	var first Envelope
	_ = json.Unmarshal((<-ss.out).data, &first)
	var j Joined
	if err := json.Unmarshal(first.Data, &j); err != nil || first.Type != "joined" || first.ID != "j1" || j.SubOfferSDP != "v=0 offer" || !j.SubOffer {
		t.Fatalf("first message %s %s %s, want joined (j1) with the offer", first.Type, first.ID, first.Data)
	}
	if got := ss.queuedTypes(t); len(got) != 2 || got[0] != "participant_joined" || got[1] != "chat" {
		t.Fatalf("after joined: %v, want [participant_joined chat]", got)
	}
	if ss.releaseJoined("v=0 again") {
		t.Fatal("released a joined twice")
	}
}

// A final message while joined is held releases joined first (without the offer, which
// sub_offer then does not announce) and the held messages, then goes.
func TestFinalMessageReleasesHeldJoined(t *testing.T) {
	ss := queueSession(8)
	ss.heldJoined = &Joined{SessionID: "SE_1", SubOffer: true}
	ss.send("chat", "", struct{}{})
	ss.sendFinal("session_ended", struct{}{}, room.ReasonKicked)
	var first Envelope
	_ = json.Unmarshal((<-ss.out).data, &first)
	var j Joined
	if err := json.Unmarshal(first.Data, &j); err != nil || first.Type != "joined" || j.SubOffer || j.SubOfferSDP != "" {
		t.Fatalf("first message %s %s, want joined without an offer", first.Type, first.Data)
	}
	if got := ss.queuedTypes(t); len(got) != 2 || got[0] != "chat" || got[1] != "session_ended" {
		t.Fatalf("after joined: %v, want [chat session_ended]", got)
	}
	if !ss.closing || ss.endCause != room.ReasonKicked {
		t.Fatalf("closing %v cause %q, want the final message's", ss.closing, ss.endCause)
	}
}

// A client whose queue is full is disconnected, whether joined is held or not.
func TestFullQueueDisconnects(t *testing.T) {
	for _, held := range []bool{false, true} {
		ss := queueSession(2)
		if held {
			ss.heldJoined = &Joined{SessionID: "SE_1"}
		}
		for range 3 {
			ss.send("chat", "", struct{}{})
		}
		if !ss.closing || ss.endCause != room.ReasonDisconnected || ss.ctx.Err() == nil {
			t.Fatalf("held %v: after 3 messages on a queue of 2: closing %v, cause %q, ctx %v; want disconnected", held, ss.closing, ss.endCause, ss.ctx.Err())
		}
	}
}
