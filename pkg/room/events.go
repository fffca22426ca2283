package room

// Event is something a participant is told about. The signalling layer turns events into
// protocol messages.
type Event interface{ isEvent() }

// EventSink receives a participant's events. Deliver is called with room locks held, so that
// every participant sees room messages in one order: it must not block or call back into the
// room; it should enqueue and return (and may drop the session if its queue is full).
type EventSink interface {
	Deliver(Event)
}

// ParticipantInfo describes a participant and its published tracks.
type ParticipantInfo struct {
	SID      ParticipantSID
	Identity Identity
	Name     string
	Role     Role
	Tracks   []TrackInfo
}

// LeaveReason says why a participant left.
type LeaveReason string

const (
	ReasonLeft         LeaveReason = "left"
	ReasonDisconnected LeaveReason = "disconnected"
	ReasonReplaced     LeaveReason = "replaced"
	ReasonKicked       LeaveReason = "kicked"
	ReasonShutdown     LeaveReason = "shutdown"
)

// DataKind distinguishes chat from room-state messages.
type DataKind string

const (
	DataChat  DataKind = "chat"
	DataState DataKind = "state"
)

type (
	// Joined is the first event a participant receives: itself and everyone already there.
	Joined struct {
		Room   Name
		Self   ParticipantInfo
		Others []ParticipantInfo
	}
	// ParticipantJoined: another participant entered the room.
	ParticipantJoined struct{ Participant ParticipantInfo }
	// ParticipantMoved: another participant's identity has a new session (a refresh, or a
	// failover from a node that died to another): the participant From is now Participant.
	// Its old tracks are unpublished and its new ones published; no ParticipantLeft follows.
	ParticipantMoved struct {
		From        ParticipantSID
		Participant ParticipantInfo
	}
	// ParticipantLeft: another participant left the room.
	ParticipantLeft struct {
		SID      ParticipantSID
		Identity Identity
		Reason   LeaveReason
	}
	// TrackPublished: a track is available (the subscriber transport is offered it separately).
	TrackPublished struct{ Track TrackInfo }
	// TrackUnpublished: a track went away.
	TrackUnpublished struct {
		SID   ParticipantSID
		Track TrackID
	}
	// TrackMuted: a track's mute state changed.
	TrackMuted struct {
		SID   ParticipantSID
		Track TrackID
		Muted bool
	}
	// ActiveSpeakers: the set of speaking participants changed, loudest first.
	ActiveSpeakers struct{ Speakers []Speaker }
	// DataMessage: a chat or room-state message, numbered in room order by Seq.
	DataMessage struct {
		Seq      uint64
		Kind     DataKind
		From     ParticipantSID
		Identity Identity
		Text     string
		Topic    string
		Payload  []byte // raw JSON for state messages
		UnixMS   int64
		// Ref is the sender's request id; only the sender's own copy should carry it.
		Ref string
	}
	// SessionEnded: this participant's own session was ended by the room.
	SessionEnded struct{ Reason LeaveReason }
)

// Speaker is one active speaker with a level from 0 (quiet) to 1 (loudest).
type Speaker struct {
	SID      ParticipantSID
	Identity Identity
	Level    float64
}

func (Joined) isEvent()            {}
func (ParticipantJoined) isEvent() {}
func (ParticipantLeft) isEvent()   {}
func (ParticipantMoved) isEvent()  {}
func (TrackPublished) isEvent()    {}
func (TrackUnpublished) isEvent()  {}
func (TrackMuted) isEvent()        {}
func (ActiveSpeakers) isEvent()    {}
func (DataMessage) isEvent()       {}
func (SessionEnded) isEvent()      {}
