package signal_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/pion/webrtc/v4"

	"github.com/cascade-sfu/cascade/pkg/auth"
	"github.com/cascade-sfu/cascade/pkg/room"
	"github.com/cascade-sfu/cascade/pkg/signal"
)

type discardSink struct{}

// publishVideo joins a publisher of one VP8 track to testRoom, directly in the room manager.
func publishVideo(t *testing.T, rooms *room.Manager) {
	t.Helper()
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
}

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

	publishVideo(t, rooms)

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

// A join that asks for inline_offer gets the subscriber's first offer inside joined (the first
// frame on the socket) and no offer message for it; the answer to it is taken as usual.
func TestJoinedCarriesTheSubscriberOfferWhenAsked(t *testing.T) {
	var rooms *room.Manager
	n := newTestNode(t, func(c *signal.Config) { rooms = c.Rooms })
	publishVideo(t, rooms)

	c := dialWS(t, n)
	c.send(t, `{"v":1,"type":"join","id":"j1","data":{"token":"`+token(t, testRoom, "viewer", nil)+`","inline_offer":true}}`)
	first := c.read(t)
	if first.Type != "joined" || first.ID != "j1" {
		t.Fatalf("first frame %q (id %q), want joined", first.Type, first.ID)
	}
	var j signal.Joined
	if err := json.Unmarshal(first.Data, &j); err != nil {
		t.Fatal(err)
	}
	if !j.SubOffer || !strings.Contains(j.SubOfferSDP, "m=video") || !strings.Contains(j.SubOfferSDP, "a=candidate:") {
		t.Fatalf("joined: sub_offer %v, offer %q", j.SubOffer, j.SubOfferSDP)
	}

	pc, err := webrtc.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pc.Close() })
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: j.SubOfferSDP}); err != nil {
		t.Fatal(err)
	}
	ans, err := pc.CreateAnswer(nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := pc.SetLocalDescription(ans); err != nil {
		t.Fatal(err)
	}
	data, _ := json.Marshal(signal.SDPMessage{PC: "sub", SDP: ans.SDP})
	c.send(t, `{"v":1,"type":"answer","id":"a1","data":`+string(data)+`}`)
	c.send(t, `{"v":1,"type":"ping","id":"p1","data":{"ts":1}}`)
	for {
		env := c.read(t)
		switch env.Type {
		case "offer", "error":
			t.Fatalf("after an inline offer and its answer: %s %s", env.Type, env.Data)
		case "pong":
			return // the answer was handled before the ping: no offer, no error
		}
	}
}
