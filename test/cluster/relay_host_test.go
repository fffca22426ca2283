package cluster

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"

	"github.com/cascade-sfu/cascade/pkg/auth"
	"github.com/cascade-sfu/cascade/pkg/signal"
)

// A host on hcm mutes and then kicks a participant who is on eu: eu acts, and everyone follows.
func TestHostActsOnRemoteParticipant(t *testing.T) {
	eu, hcm := twoNodes(t)

	alice := dialWith(t, eu, "hosted", "alice", auth.Grants{CanPublish: true}, nil)
	defer alice.Close()
	audio, _ := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2}, "mic", "s")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	if _, err := alice.Publish(ctx, audio); err != nil {
		t.Fatal(err)
	}
	cancel()
	mctx, stopMedia := context.WithCancel(context.Background())
	defer stopMedia()
	go func() { // audio packets, so that the track is published
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for i := uint16(0); ; i++ {
			select {
			case <-mctx.Done():
				return
			case <-tick.C:
			}
			_ = audio.WriteRTP(&rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: i, Timestamp: uint32(i) * 960}, Payload: make([]byte, 40)})
		}
	}()
	host := dialWith(t, hcm, "hosted", "host", auth.Grants{CanSubscribe: true, RoomAdmin: true}, nil)
	defer host.Close()
	var track signal.TrackPublishedMsg
	waitFor(t, host, "track_published", func(d json.RawMessage) bool { return json.Unmarshal(d, &track) == nil })

	if err := host.SetMuted(track.Track.ID, true); err != nil {
		t.Fatal(err)
	}
	waitFor(t, alice, "track_muted", func(d json.RawMessage) bool {
		var m signal.TrackMutedMsg
		return json.Unmarshal(d, &m) == nil && m.TrackID == track.Track.ID && m.Muted
	})
	waitFor(t, host, "track_muted", func(d json.RawMessage) bool {
		var m signal.TrackMutedMsg
		return json.Unmarshal(d, &m) == nil && m.TrackID == track.Track.ID && m.Muted
	})

	if err := host.Send("kick", signal.KickRequest{Identity: "alice"}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, alice, "leave", func(d json.RawMessage) bool {
		var m signal.LeaveMsg
		return json.Unmarshal(d, &m) == nil && m.Reason == "kicked"
	})
	waitFor(t, host, "participant_left", func(d json.RawMessage) bool {
		var m signal.ParticipantLeftMsg
		return json.Unmarshal(d, &m) == nil && m.Identity == "alice"
	})
	// It stays gone: no snapshot brings it back.
	deadline := time.After(1500 * time.Millisecond)
	for {
		select {
		case env := <-host.Messages():
			if env.Type == "participant_joined" {
				t.Fatalf("the kicked participant came back: %s", env.Data)
			}
		case <-deadline:
			return
		}
	}
}
