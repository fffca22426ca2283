package rtc

import (
	"fmt"
	"sync"
	"testing"

	"go.uber.org/goleak"

	"github.com/cascade-sfu/cascade/pkg/room"
)

// A subscriber closed while the room is adding a track to it (a participant leaving as
// someone publishes) must not leave that track's RTCP reader behind: pion's Close can stop the
// transceivers before the new one is added, and nothing else would stop its sender.
func TestSubscriberClosedWhileAddingTrackLeavesNoReader(t *testing.T) {
	leaks := goleak.IgnoreCurrent()
	e, err := NewEngine(Config{UDPAddr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	rooms := room.NewManager(room.DefaultConfig())
	pub, err := rooms.Join("r", room.JoinParams{Identity: "pub", Session: "pub", Permissions: room.Permissions{Publish: true}, Sink: nopSink{}})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if _, err := pub.Publish(room.TrackInfo{Kind: room.KindVideo, Source: room.SourceCamera,
			Codec: room.CodecParams{MimeType: "video/VP8", ClockRate: 90000}}); err != nil {
			t.Fatalf("track %d: %v", i, err)
		}
	}
	for i := range 40 {
		sub, err := e.NewSubscriber(PeerEvents{}, func(string) {})
		if err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		wg.Add(2)
		var part *room.Participant
		go func() {
			defer wg.Done()
			part, _ = rooms.Join("r", room.JoinParams{Identity: room.Identity(fmt.Sprint("sub-", i)), Session: room.SessionID(fmt.Sprint("s-", i)),
				Permissions: room.Permissions{Subscribe: true}, Sink: nopSink{}, Transport: sub})
		}()
		go func() {
			defer wg.Done()
			_ = sub.Close()
		}()
		wg.Wait()
		if part != nil {
			part.Leave(room.ReasonLeft)
		}
		_ = sub.Close()
	}
	pub.Leave(room.ReasonLeft)
	rooms.Close()
	_ = e.Close()
	goleak.VerifyNone(t, leaks)
}
