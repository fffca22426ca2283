package room

import "time"

// Operator actions: what the cluster's admin API asks of a room on this node. They act on
// the participants of this node, never on proxies of remote ones (their own node acts; the
// relay follows).

// Reasons for operator actions.
const (
	ReasonEvicted     LeaveReason = "evicted"
	ReasonRoomDeleted LeaveReason = "room_deleted"
)

// DataSystem is a message from the server (an operator), not from a participant.
const DataSystem DataKind = "system"

// ParticipantUpdated: a participant's display name changed.
type ParticipantUpdated struct{ Participant ParticipantInfo }

func (ParticipantUpdated) isEvent() {}

// MaxNameLength bounds a display name set by an operator, in bytes.
const MaxNameLength = 128

// Name returns the participant's display name.
func (p *Participant) Name() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.name
}

// Rename sets the display name of this node's own participant of identity and tells everyone
// (a relay carries the new name to the proxies on other nodes). It reports whether there was
// one.
func (r *Room) Rename(id Identity, name string) bool {
	p := r.LocalParticipant(id)
	if p == nil {
		return false
	}
	p.SetName(name)
	return true
}

// SetName sets the participant's display name; if it changed, everyone in the room is told
// (ParticipantUpdated). The relay uses it to follow a remote participant's new name.
func (p *Participant) SetName(name string) {
	p.mu.Lock()
	same := p.name == name
	p.name = name
	p.mu.Unlock()
	if same {
		return
	}
	r := p.room
	r.eventMu.Lock()
	r.deliverLocked(ParticipantUpdated{Participant: p.Info()}, nil)
	r.eventMu.Unlock()
}

// LocalParticipant returns this node's own participant of identity (not a proxy), or nil.
func (r *Room) LocalParticipant(id Identity) *Participant {
	for _, p := range r.Participants() {
		if p.identity == id && p.origin == "" {
			return p
		}
	}
	return nil
}

// ServerMute mutes or unmutes a track of this node's participant of identity, as its host
// would: subscribers see the track muted. Errors: ErrNotFound (no such participant here),
// ErrTrackNotFound.
func (r *Room) ServerMute(id Identity, track TrackID, muted bool) error {
	p := r.LocalParticipant(id)
	if p == nil {
		return ErrNotFound
	}
	return r.setMuted(p.sid, track, muted)
}

// SystemMessage delivers a server message to every visible participant of this node, in the
// room's message order (and not to the relay: every node hosting the room is given the same
// message with the same number, seq, taken once from the cluster's order). seq 0: the room
// numbers it itself (a room without a Sequencer); unixMS 0: now.
func (r *Room) SystemMessage(seq uint64, unixMS int64, text string) {
	if unixMS == 0 {
		unixMS = time.Now().UnixMilli()
	}
	r.eventMu.Lock()
	defer r.eventMu.Unlock()
	if seq == 0 {
		r.seq++
		seq = r.seq
	}
	r.enqueueLocked(DataMessage{Seq: seq, Kind: DataSystem, Text: text, UnixMS: unixMS}, time.Now())
}

// Evict ends the session of this node's participant of identity in room name with
// ReasonEvicted. It reports whether there was one.
func (m *Manager) Evict(name Name, id Identity) bool {
	r := m.Room(name)
	if r == nil {
		return false
	}
	p := r.LocalParticipant(id)
	if p == nil {
		return false
	}
	p.Leave(ReasonEvicted)
	return true
}

// CloseRoom ends every session of this node in room name with ReasonRoomDeleted and returns
// how many it ended.
func (m *Manager) CloseRoom(name Name) int {
	r := m.Room(name)
	if r == nil {
		return 0
	}
	n := 0
	for _, p := range r.Participants() {
		if p.origin == "" {
			p.Leave(ReasonRoomDeleted)
			n++
		}
	}
	return n
}
