package room

import (
	"errors"
	"testing"
)

// eventsOf returns the events of type E that s received.
func eventsOf[E Event](s *sink) []E {
	var out []E
	for _, ev := range s.all() {
		if e, ok := ev.(E); ok {
			out = append(out, e)
		}
	}
	return out
}

func TestOperatorRenameMuteAndSystemMessage(t *testing.T) {
	m := NewManager(testConfig())
	defer m.Close()
	alice, aliceSink, _ := join(t, m, "r", "alice")
	_, bobSink, _ := join(t, m, "r", "bob")
	r := m.Room("r")
	track, err := alice.Publish(vp8Info())
	if err != nil {
		t.Fatal(err)
	}

	if !r.Rename("alice", "Alice B.") || r.Rename("nobody", "x") {
		t.Fatal("Rename found the wrong participants")
	}
	for _, s := range []*sink{aliceSink, bobSink} {
		ups := eventsOf[ParticipantUpdated](s)
		if len(ups) != 1 || ups[0].Participant.Name != "Alice B." || ups[0].Participant.Identity != "alice" {
			t.Fatalf("participant_updated seen: %+v", ups)
		}
	}
	if alice.Name() != "Alice B." || alice.Info().Name != "Alice B." {
		t.Fatalf("name now %q", alice.Name())
	}

	if err := r.ServerMute("alice", track.Info().ID, true); err != nil {
		t.Fatal(err)
	}
	if mutes := eventsOf[TrackMuted](bobSink); len(mutes) != 1 || !mutes[0].Muted || mutes[0].Track != track.Info().ID {
		t.Fatalf("bob saw %+v", mutes)
	}
	if err := r.ServerMute("alice", "TR_nope", true); !errors.Is(err, ErrTrackNotFound) {
		t.Fatalf("unknown track: %v", err)
	}
	if err := r.ServerMute("nobody", track.Info().ID, true); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown participant: %v", err)
	}

	r.SystemMessage(0, 0, "maintenance")
	for _, s := range []*sink{aliceSink, bobSink} {
		msgs := eventsOf[DataMessage](s)
		if len(msgs) != 1 || msgs[0].Kind != DataSystem || msgs[0].Text != "maintenance" || msgs[0].From != "" || msgs[0].Seq == 0 {
			t.Fatalf("system message seen: %+v", msgs)
		}
	}
}

func TestEvictAndCloseRoom(t *testing.T) {
	m := NewManager(testConfig())
	defer m.Close()
	_, aliceSink, _ := join(t, m, "r", "alice")
	_, bobSink, _ := join(t, m, "r", "bob")
	_, carolSink, _ := join(t, m, "r", "carol")
	if m.Evict("r", "nobody") || m.Evict("nope", "alice") {
		t.Fatal("evicted someone who is not there")
	}
	if !m.Evict("r", "alice") {
		t.Fatal("alice not evicted")
	}
	if ends := eventsOf[SessionEnded](aliceSink); len(ends) != 1 || ends[0].Reason != ReasonEvicted {
		t.Fatalf("alice told %+v", ends)
	}
	if left := eventsOf[ParticipantLeft](bobSink); len(left) != 1 || left[0].Reason != ReasonEvicted {
		t.Fatalf("bob saw %+v", left)
	}
	if n := m.CloseRoom("r"); n != 2 {
		t.Fatalf("CloseRoom ended %d sessions, want 2", n)
	}
	for _, s := range []*sink{bobSink, carolSink} {
		if ends := eventsOf[SessionEnded](s); len(ends) != 1 || ends[0].Reason != ReasonRoomDeleted {
			t.Fatalf("told %+v", ends)
		}
	}
	eventually(t, "the room closes", func() bool { return m.Room("r") == nil })
}
