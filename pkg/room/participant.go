package room

import (
	"log/slog"
	"sync"
)

// SubscriberTransport carries a participant's subscribed tracks (its subscriber PeerConnection,
// a WHEP session, a relay link). AddTrack and RemoveTrack may renegotiate; the room calls them
// without holding locks.
type SubscriberTransport interface {
	AddTrack(d *DownTrack) error
	RemoveTrack(d *DownTrack) error
	// BandwidthEstimate returns the estimated bits per second toward the subscriber, 0 if unknown.
	BandwidthEstimate() int
}

// NegotiationBatcher may be implemented by a SubscriberTransport that can fold several AddTrack
// calls into one negotiation. Between HoldNegotiation and a call of the release function it
// returns, changes are only recorded; the release negotiates once for all of them. The room holds
// negotiation while it subscribes a joining participant to the tracks already in the room, so
// that all of them arrive in the first offer instead of one more offer/answer round per track.
type NegotiationBatcher interface {
	HoldNegotiation() (release func())
}

// holdNegotiation holds t's negotiation if it can batch, and returns the release function.
func holdNegotiation(t SubscriberTransport) func() {
	if b, ok := t.(NegotiationBatcher); ok {
		return b.HoldNegotiation()
	}
	return func() {}
}

// Permissions are what a participant's token allows.
type Permissions struct {
	Publish, Subscribe, PublishData, Admin bool
}

// JoinParams describe a participant that joins a room.
type JoinParams struct {
	Identity    Identity
	Name        string
	Session     SessionID
	Permissions Permissions
	// Hidden participants (WHEP viewers) are not announced and see no participant events.
	Hidden bool
	// Origin is the node a remote participant is connected to (a relay's proxy of it); empty
	// for participants of this node.
	Origin    string
	Sink      EventSink
	Transport SubscriberTransport // nil if the participant never subscribes
}

// MaxTracksPerParticipant bounds what one participant may publish.
const MaxTracksPerParticipant = 8

// Participant is one session's presence in a room.
type Participant struct {
	sid       ParticipantSID
	identity  Identity
	session   SessionID
	perms     Permissions
	hidden    bool
	origin    string
	sink      EventSink
	transport SubscriberTransport
	room      *Room
	log       *slog.Logger

	mu     sync.Mutex // guards the fields below
	name   string     // display name; an operator may rename
	left   bool
	tracks map[TrackID]*UpTrack
	subs   map[TrackID]*DownTrack
}

// SID returns the participant's session-scoped id.
func (p *Participant) SID() ParticipantSID { return p.sid }

// Identity returns the application's user id.
func (p *Participant) Identity() Identity { return p.identity }

// Session returns the signalling session that owns the participant.
func (p *Participant) Session() SessionID { return p.session }

// Room returns the room the participant is in.
func (p *Participant) Room() *Room { return p.room }

// Hidden reports whether the participant is a hidden viewer (WHEP).
func (p *Participant) Hidden() bool { return p.hidden }

// Origin returns the node a remote participant is on, or "" for a participant of this node.
func (p *Participant) Origin() string { return p.origin }

// Permissions returns the participant's grants.
func (p *Participant) Permissions() Permissions { return p.perms }

// Role returns host for participants with the admin grant.
func (p *Participant) Role() Role {
	if p.perms.Admin {
		return RoleHost
	}
	return RoleParticipant
}

// Info describes the participant and its tracks.
func (p *Participant) Info() ParticipantInfo {
	p.mu.Lock()
	tracks := make([]TrackInfo, 0, len(p.tracks))
	for _, t := range p.tracks {
		tracks = append(tracks, t.Info())
	}
	name := p.name
	p.mu.Unlock()
	return ParticipantInfo{SID: p.sid, Identity: p.identity, Name: name, Role: p.Role(), Tracks: tracks}
}

// Publish announces a new track. Its media starts with UpTrack.AddLayer.
func (p *Participant) Publish(info TrackInfo) (*UpTrack, error) {
	if !p.perms.Publish {
		return nil, ErrNotAllowed
	}
	if info.ID == "" {
		info.ID = TrackID(NewID("TR"))
	}
	info.Participant, info.Identity = p.sid, p.identity
	if len(info.RIDs) > MaxLayers {
		return nil, ErrTooManyLayers
	}
	r := p.room
	t := newUpTrack(info, r.stats, p.log, r.cfg.KeyframeInterval, r.cfg.Batcher, r.trackEnded)
	p.mu.Lock()
	switch {
	case p.left:
		p.mu.Unlock()
		return nil, ErrParticipantGone
	case len(p.tracks) >= MaxTracksPerParticipant:
		p.mu.Unlock()
		return nil, ErrTooManyTracks
	}
	p.tracks[info.ID] = t
	p.mu.Unlock()
	if err := r.publish(p, t); err != nil {
		p.mu.Lock()
		delete(p.tracks, info.ID)
		p.mu.Unlock()
		return nil, err
	}
	return t, nil
}

// Unpublish removes one of the participant's tracks.
func (p *Participant) Unpublish(id TrackID) error {
	p.mu.Lock()
	t := p.tracks[id]
	p.mu.Unlock()
	if t == nil {
		return ErrTrackNotFound
	}
	p.room.unpublish(t)
	return nil
}

// Track returns one of the participant's published tracks.
func (p *Participant) Track(id TrackID) *UpTrack {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.tracks[id]
}

// Subscription returns the participant's copy of a track, or nil.
func (p *Participant) Subscription(id TrackID) *DownTrack {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.subs[id]
}

// Subscriptions returns every down track of the participant.
func (p *Participant) Subscriptions() []*DownTrack {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]*DownTrack, 0, len(p.subs))
	for _, d := range p.subs {
		out = append(out, d)
	}
	return out
}

// SetSubscription records the participant's preference for one subscribed track: the highest
// layer it wants and whether it is paused. Allocation follows at once.
func (p *Participant) SetSubscription(id TrackID, max Quality, paused bool) error {
	d := p.Subscription(id)
	if d == nil {
		return ErrTrackNotFound
	}
	d.SetMaxLayer(max)
	d.SetPaused(paused)
	p.allocate()
	return nil
}

// SetMuted changes a track's mute state. The owner or a host may do it.
func (p *Participant) SetMuted(owner ParticipantSID, id TrackID, muted bool) error {
	if owner != p.sid && !p.perms.Admin {
		return ErrNotAllowed
	}
	if remote := p.room.cfg.Remote; owner != p.sid && remote != nil {
		if o := p.room.participant(owner); o != nil && o.origin != "" {
			if o.Track(id) == nil {
				return ErrTrackNotFound
			}
			remote.Mute(p.room.name, o, id, muted) // the owner's node mutes it; the relay follows
			return nil
		}
	}
	return p.room.setMuted(owner, id, muted)
}

// SendChat sends a chat message to the room. ref is the client's request id, echoed to it.
func (p *Participant) SendChat(text, ref string) error {
	if !p.perms.PublishData {
		return ErrNotAllowed
	}
	return p.room.broadcastData(p, DataMessage{Kind: DataChat, Text: text, Ref: ref})
}

// SendState sends a room-state message to everyone, the sender included.
func (p *Participant) SendState(topic string, payload []byte, ref string) error {
	if !p.perms.PublishData {
		return ErrNotAllowed
	}
	return p.room.broadcastData(p, DataMessage{Kind: DataState, Topic: topic, Payload: payload, Ref: ref})
}

// RelayData delivers a data message that a participant of another node sent there: msg keeps
// the number and time its node gave it. Only for participants shown here by the relay.
func (p *Participant) RelayData(msg DataMessage) error {
	if p.Origin() == "" || msg.Seq == 0 {
		return ErrNotAllowed
	}
	if msg.Kind != DataChat && msg.Kind != DataState {
		return ErrNotAllowed
	}
	msg.Ref = ""
	return p.room.broadcastData(p, msg)
}

// Kick removes another participant. Hosts only.
func (p *Participant) Kick(identity Identity) error {
	if !p.perms.Admin {
		return ErrNotAllowed
	}
	target := p.room.participantByIdentity(identity)
	if target == nil {
		return ErrNotFound
	}
	if remote := p.room.cfg.Remote; target.origin != "" && remote != nil {
		remote.Kick(p.room.name, target) // its own node removes it; the relay follows
		return nil
	}
	target.Leave(ReasonKicked)
	return nil
}

// Leave removes the participant from its room. It is idempotent and never affects a newer
// session of the same identity.
func (p *Participant) Leave(reason LeaveReason) { p.room.leave(p, reason) }

// subscribe gives the participant a copy of t. Idempotent.
func (p *Participant) subscribe(t *UpTrack) {
	if p.transport == nil || !p.perms.Subscribe || t.info.Participant == p.sid {
		return
	}
	p.mu.Lock()
	if p.left || p.subs[t.info.ID] != nil {
		p.mu.Unlock()
		return
	}
	d := newDownTrack(t, p.sid, p.room.stats)
	d.watchFirstPacket(p.room.cfg.FirstPacket)
	p.subs[t.info.ID] = d
	p.mu.Unlock()

	p.allocateOne(d)
	if err := t.addDownTrack(d); err != nil {
		p.dropSub(d)
		return
	}
	if err := p.transport.AddTrack(d); err != nil {
		p.log.Warn("cannot add track to subscriber", "track", t.info.ID, "err", err)
		t.removeDownTrack(d)
		p.dropSub(d)
	}
}

func (p *Participant) dropSub(d *DownTrack) {
	p.mu.Lock()
	if p.subs[d.TrackID()] == d {
		delete(p.subs, d.TrackID())
	}
	p.mu.Unlock()
}

// unsubscribe removes the participant's copy of a track, renegotiating unless it is leaving.
func (p *Participant) unsubscribe(id TrackID) {
	p.mu.Lock()
	d := p.subs[id]
	delete(p.subs, id)
	left := p.left
	p.mu.Unlock()
	if d == nil {
		return
	}
	d.close()
	if !left && p.transport != nil {
		if err := p.transport.RemoveTrack(d); err != nil {
			p.log.Debug("remove track from subscriber", "track", id, "err", err)
		}
	}
}

// markLeft ends the participant's life and returns what it owned.
func (p *Participant) markLeft() (tracks []*UpTrack, subs []*DownTrack, first bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.left {
		return nil, nil, false
	}
	p.left = true
	for _, t := range p.tracks {
		tracks = append(tracks, t)
	}
	for _, d := range p.subs {
		subs = append(subs, d)
	}
	p.tracks = map[TrackID]*UpTrack{}
	p.subs = map[TrackID]*DownTrack{}
	return tracks, subs, true
}

func (p *Participant) removeTrack(t *UpTrack) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.tracks[t.info.ID] != t {
		return false
	}
	delete(p.tracks, t.info.ID)
	return true
}
