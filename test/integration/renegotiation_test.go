package integration

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/cascade-sfu/cascade/pkg/auth"
	"github.com/cascade-sfu/cascade/pkg/client"
	"github.com/cascade-sfu/cascade/pkg/rtc"
	"github.com/cascade-sfu/cascade/pkg/signal"
)

// A publisher adds a second track later (a new offer on the publisher PeerConnection); the
// server re-offers the subscriber, which then receives both.
func TestPublisherAddsTrackLater(t *testing.T) {
	n := startNode(t)
	pub := n.join("reneg", "alice")
	sub := n.join("reneg", "bob")
	src := startSource(t)
	audio := opusTrack(t, "mic", "s")
	if _, err := pub.Publish(ctx10(t), audio); err != nil {
		t.Fatal(err)
	}
	src.audio(audio)
	at := publishedTrack(t, sub, "audio")
	eventually(t, 10*time.Second, "audio", func() bool { return sub.rx.packetsOf(at.ID) > 10 })
	video := vp8Track(t, "cam", "s", "")
	if _, err := pub.Publish(ctx10(t), video); err != nil {
		t.Fatal(err)
	}
	src.video([]*webrtc.TrackLocalStaticRTP{video}, []byte{'f'}, []int{800})
	vt := publishedTrack(t, sub, "video")
	eventually(t, 10*time.Second, "audio and the later video", func() bool {
		return sub.rx.packetsOf(vt.ID) > 20 && sub.rx.packetsOf(at.ID) > 30
	}, n.statsString)
}

// The subscriber asks for an ICE restart; the server re-offers with new credentials and media
// keeps flowing.
func TestSubscriberICERestart(t *testing.T) {
	n := startNode(t)
	pub := n.join("icerestart", "alice")
	sub := n.join("icerestart", "bob")
	src := startSource(t)
	audio := opusTrack(t, "mic", "s")
	if _, err := pub.Publish(ctx10(t), audio); err != nil {
		t.Fatal(err)
	}
	src.audio(audio)
	at := publishedTrack(t, sub, "audio")
	eventually(t, 10*time.Second, "audio", func() bool { return sub.rx.packetsOf(at.ID) > 10 })
	before := rtc.ICEUfrag(sub.Subscriber().RemoteDescription().SDP)
	if err := sub.Send("ice_restart", signal.ICERestartRequest{PC: "sub"}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "a re-offer with new ICE credentials", func() bool {
		d := sub.Subscriber().RemoteDescription()
		return d != nil && rtc.ICEUfrag(d.SDP) != before
	})
	got := sub.rx.packetsOf(at.ID)
	eventually(t, 10*time.Second, "audio after the restart", func() bool { return sub.rx.packetsOf(at.ID) > got+20 })
}

// A host removes a participant; a participant cannot.
func TestHostKicks(t *testing.T) {
	n := startNode(t)
	watcher := n.join("kick", "watcher")
	bob := n.join("kick", "bob")
	ctx := ctx10(t)
	host, err := client.Dial(ctx, client.Options{
		URL: n.wsURL(), API: loopbackAPI(t),
		Token: n.token("kick", "host", auth.Grants{CanPublish: true, CanSubscribe: true, RoomAdmin: true}),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer host.Close()
	if host.Joined.Participant.Role != "host" {
		t.Fatalf("role %q", host.Joined.Participant.Role)
	}
	if err := watcher.Send("kick", signal.KickRequest{Identity: "bob"}); err != nil {
		t.Fatal(err)
	}
	waitMessage(t, watcher, "error", func(d json.RawMessage) bool {
		var e signal.ErrorMsg
		return json.Unmarshal(d, &e) == nil && e.Code == signal.CodeForbidden && e.Ref == "kick"
	})
	if err := host.Send("kick", signal.KickRequest{Identity: "bob"}); err != nil {
		t.Fatal(err)
	}
	waitMessage(t, bob, "leave", func(d json.RawMessage) bool {
		var m signal.LeaveMsg
		return json.Unmarshal(d, &m) == nil && m.Reason == "kicked"
	})
	leftWith(t, watcher, "bob", "kicked")
}
