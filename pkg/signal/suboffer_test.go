package signal_test

import (
	"encoding/json"
	"testing"

	"github.com/cascade-sfu/cascade/pkg/auth"
	"github.com/cascade-sfu/cascade/pkg/room"
	"github.com/cascade-sfu/cascade/pkg/signal"
)

type discardSink struct{}

func (discardSink) Deliver(room.Event) {}

// joined says whether a subscriber offer follows (sub_offer): it does when the room already has
// tracks and the participant may subscribe, and that offer is the next offer on the socket.
// Without tracks, or without the right to subscribe, joined says no offer follows.
func TestJoinedSaysASubscriberOfferFollows(t *testing.T) {
	var rooms *room.Manager
	n := newTestNode(t, func(c *signal.Config) { rooms = c.Rooms })

	first := dialWS(t, n)
	if j := first.join(t, token(t, testRoom, "first", nil)); j.SubOffer {
		t.Fatal("joined an empty room with sub_offer set")
	}

	pub, err := rooms.Join(testRoom, room.JoinParams{
		Identity: "publisher", Session: room.SessionID(room.NewID("SE")),
		Permissions: room.Permissions{Publish: true}, Sink: discardSink{},
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pub.Publish(room.TrackInfo{Kind: room.KindVideo, Source: room.SourceCamera,
		Codec: room.CodecParams{MimeType: "video/VP8", ClockRate: 90000}}); err != nil {
		t.Fatal(err)
	}

	second := dialWS(t, n)
	if j := second.join(t, token(t, testRoom, "second", nil)); !j.SubOffer {
		t.Fatal("joined a room with a track: sub_offer not set")
	}
	var offer signal.SDPMessage
	if err := json.Unmarshal(second.next(t, "offer").Data, &offer); err != nil {
		t.Fatal(err)
	}
	if offer.PC != "sub" || offer.SDP == "" {
		t.Fatalf("offer after joined: pc %q, %d bytes of SDP", offer.PC, len(offer.SDP))
	}

	third := dialWS(t, n)
	noSub := token(t, testRoom, "third", func(g *auth.Grants) { g.CanSubscribe = false })
	if j := third.join(t, noSub); j.SubOffer {
		t.Fatal("a participant that may not subscribe was told a subscriber offer follows")
	}
}
