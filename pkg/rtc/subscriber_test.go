package rtc

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"

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

// The subscriber's offer carries its ICE candidates and says that gathering ended, and none of
// them is trickled again: a client answering it has no candidate to add one by one (Chromium
// spent 50–70 ms of a join's time to first frame adding trickled ones).
func TestSubscriberOfferCarriesItsCandidates(t *testing.T) {
	e, err := NewEngine(Config{UDPAddr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	rooms := room.NewManager(room.DefaultConfig())
	defer rooms.Close()
	pub, err := rooms.Join("r", room.JoinParams{Identity: "pub", Session: "pub", Permissions: room.Permissions{Publish: true}, Sink: nopSink{}})
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Leave(room.ReasonLeft)
	if _, err := pub.Publish(room.TrackInfo{Kind: room.KindVideo, Source: room.SourceCamera,
		Codec: room.CodecParams{MimeType: "video/VP8", ClockRate: 90000}}); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var trickled []*webrtc.ICECandidateInit
	offers := make(chan string, 1)
	sub, err := e.NewSubscriber(PeerEvents{Candidate: func(c *webrtc.ICECandidateInit) {
		mu.Lock()
		trickled = append(trickled, c)
		mu.Unlock()
	}}, func(sdp string) { offers <- sdp })
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	part, err := rooms.Join("r", room.JoinParams{Identity: "sub", Session: "sub", Permissions: room.Permissions{Subscribe: true}, Sink: nopSink{}, Transport: sub})
	if err != nil {
		t.Fatal(err)
	}
	defer part.Leave(room.ReasonLeft)
	var offer string
	select {
	case offer = <-offers:
	case <-time.After(5 * time.Second):
		t.Fatal("no subscriber offer")
	}
	if !strings.Contains(offer, "a=candidate:") || !strings.Contains(offer, "a=end-of-candidates") {
		t.Fatalf("offer without its candidates:\n%s", offer)
	}
	time.Sleep(100 * time.Millisecond) // anything trickled late would be here by now
	mu.Lock()
	defer mu.Unlock()
	if len(trickled) != 0 {
		t.Fatalf("%d candidates trickled after an offer that carries them all: %v", len(trickled), trickled)
	}
}
