package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"
	"go.uber.org/goleak"

	"github.com/cascade-sfu/cascade/pkg/signal"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func ctx10(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// One publisher, ten subscribers and a late joiner all receive audio and video.
func TestOnePublisherTenSubscribers(t *testing.T) {
	n := startNode(t)
	pub := n.join("fanout", "publisher")
	var subs []*peer
	for i := range 10 {
		subs = append(subs, n.join("fanout", fmt.Sprintf("viewer-%d", i)))
	}
	src := startSource(t)
	video, audio := vp8Track(t, "cam", "s", ""), opusTrack(t, "mic", "s")
	if _, err := pub.Publish(ctx10(t), video, audio); err != nil {
		t.Fatal(err)
	}
	src.video([]*webrtc.TrackLocalStaticRTP{video}, []byte{'f'}, []int{1200})
	src.audio(audio)
	tracks := publishedTracks(t, subs[0], "video", "audio")
	vt, at := tracks["video"], tracks["audio"]
	for i, s := range subs {
		eventually(t, 20*time.Second, fmt.Sprintf("subscriber %d receives audio and video", i), func() bool {
			return s.rx.packetsOf(vt.ID) > 30 && s.rx.packetsOf(at.ID) > 30
		}, n.statsString)
		t.Log(n.statsString())
		got, _ := s.rx.snapshot(vt.ID)
		if got.stream != vt.SID {
			t.Fatalf("subscriber %d: msid stream %q, want the publisher's sid %q", i, got.stream, vt.SID)
		}
	}
	late := n.join("fanout", "late")
	eventually(t, 20*time.Second, "late joiner receives", func() bool {
		return late.rx.packetsOf(vt.ID) > 30 && late.rx.packetsOf(at.ID) > 30
	})
}

func TestLeaveAndRejoinIsSeenAgain(t *testing.T) {
	n := startNode(t)
	watcher := n.join("rejoin", "watcher")
	for round := range 2 {
		pub := n.join("rejoin", "alice")
		src := startSource(t)
		video := vp8Track(t, "cam", "s", "")
		if _, err := pub.Publish(ctx10(t), video); err != nil {
			t.Fatal(err)
		}
		src.video([]*webrtc.TrackLocalStaticRTP{video}, []byte{'f'}, []int{800})
		vt := publishedTrack(t, watcher, "video")
		eventually(t, 20*time.Second, fmt.Sprintf("round %d: watcher receives", round), func() bool {
			return watcher.rx.packetsOf(vt.ID) > 20
		})
		if err := pub.Leave(); err != nil {
			t.Fatal(err)
		}
		waitMessage(t, watcher, "track_unpublished", func(d json.RawMessage) bool {
			var m signal.TrackUnpublishedMsg
			return json.Unmarshal(d, &m) == nil && m.TrackID == vt.ID
		})
		waitMessage(t, watcher, "participant_left", func(d json.RawMessage) bool {
			var m signal.ParticipantLeftMsg
			return json.Unmarshal(d, &m) == nil && m.Identity == "alice" && m.Reason == "left"
		})
		src.stop()
		pub.Close()
	}
}

func TestMuteIsVisibleToSubscribers(t *testing.T) {
	n := startNode(t)
	pub := n.join("mute", "alice")
	sub := n.join("mute", "bob")
	src := startSource(t)
	audio := opusTrack(t, "mic", "s")
	if _, err := pub.Publish(ctx10(t), audio); err != nil {
		t.Fatal(err)
	}
	src.audio(audio)
	at := publishedTrack(t, sub, "audio")
	if err := pub.SetMuted(at.ID, true); err != nil {
		t.Fatal(err)
	}
	waitMessage(t, sub, "track_muted", func(d json.RawMessage) bool {
		var m signal.TrackMutedMsg
		return json.Unmarshal(d, &m) == nil && m.TrackID == at.ID && m.Muted
	})
	// Someone else's track cannot be muted without the host grant.
	if err := sub.SetMuted(at.ID, false); err != nil {
		t.Fatal(err)
	}
	waitMessage(t, sub, "error", func(d json.RawMessage) bool {
		var e signal.ErrorMsg
		return json.Unmarshal(d, &e) == nil && e.Code == signal.CodeForbidden
	})
}

// A page refresh: the same identity joins again before the old socket is gone.
func TestRefreshRace(t *testing.T) {
	n := startNode(t)
	watcher := n.join("refresh", "watcher")
	old := n.join("refresh", "alice")
	neu := n.join("refresh", "alice")
	waitMessage(t, old, "leave", func(d json.RawMessage) bool {
		var m signal.LeaveMsg
		return json.Unmarshal(d, &m) == nil && m.Reason == "replaced"
	})
	old.Close() // the old page's late cleanup
	select {
	case <-neu.Done():
		t.Fatal("the new session was closed by the old one's cleanup")
	case <-time.After(300 * time.Millisecond):
	}
	r := n.rooms.Room("refresh")
	if r == nil || len(r.Participants()) != 2 {
		t.Fatalf("room has %v participants, want watcher and the new alice", r.Participants())
	}
	_ = watcher
	// The new session works: its chat reaches the watcher.
	if err := neu.Chat("still here"); err != nil {
		t.Fatal(err)
	}
	waitMessage(t, watcher, "data", func(d json.RawMessage) bool {
		var m signal.DataMsg
		return json.Unmarshal(d, &m) == nil && m.Text == "still here" && m.From.Identity == "alice"
	})
}

// Losses on the subscriber's link are repaired by retransmissions from the node's cache.
func TestNACKRecoversInjectedLoss(t *testing.T) {
	n := startNode(t)
	lv := startLossyVideo(t, n, "nack", 2500)
	eventually(t, 20*time.Second, "300 packets with 10% first-transmission loss", func() bool {
		return lv.sub.rx.packetsOf(lv.track.ID) > 300
	}, n.statsString)
	loss := lv.checkRepaired(t, n, 25)
	if n.rooms.Stats().Retransmits.Load() < uint64(loss)/2 {
		t.Fatalf("retransmits %d for %d drops", n.rooms.Stats().Retransmits.Load(), loss)
	}
}

// lossyVideo is alice's VP8 video in a room, received by bob over a link that drops the first
// transmission of every tenth packet (retransmissions pass).
type lossyVideo struct {
	sub   *peer
	track signal.Track
	loss  *impairment
	src   *source
}

// startLossyVideo publishes alice's video of frameSize-byte frames into room and subscribes bob.
func startLossyVideo(t *testing.T, n *node, room string, frameSize int) *lossyVideo {
	t.Helper()
	pub := n.join(room, "alice")
	lv := &lossyVideo{loss: &impairment{dropFirst: func(seq uint16) bool { return seq%10 == 3 }}}
	lv.sub = n.join(room, "bob", lv.loss)
	lv.src = startSource(t)
	video := vp8Track(t, "cam", "s", "")
	if _, err := pub.Publish(ctx10(t), video); err != nil {
		t.Fatal(err)
	}
	lv.src.video([]*webrtc.TrackLocalStaticRTP{video}, []byte{'f'}, []int{frameSize})
	lv.track = publishedTrack(t, lv.sub, "video")
	return lv
}

// checkRepaired stops the source, waits for the last NACKs' answers and checks that at least
// minDrops packets were dropped and every one of them arrived all the same. It returns the
// number dropped.
func (lv *lossyVideo) checkRepaired(t *testing.T, n *node, minDrops int) int {
	t.Helper()
	lv.src.stop()
	time.Sleep(500 * time.Millisecond) // the last NACKs' answers
	got, _ := lv.sub.rx.snapshot(lv.track.ID)
	drops := lv.loss.dropCount()
	if drops < minDrops {
		t.Fatalf("only %d packets were dropped; the test did not inject loss", drops)
	}
	if missing := gaps(got.seqs); missing > 0 {
		t.Fatalf("%d of %d packets never arrived although %d were dropped once (%s)", missing, len(got.seqs), drops, n.statsString())
	}
	return drops
}
