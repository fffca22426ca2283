package room

import (
	"log/slog"
	"sort"
	"sync"
	"time"
)

// Config tunes rooms. Zero fields take DefaultConfig's values.
type Config struct {
	// MaxParticipants is the room capacity, counted per identity (a reconnect does not need a
	// free place). Hidden participants (WHEP viewers) count too.
	MaxParticipants int
	// KeyframeInterval is the least time between two keyframe requests to a publisher's layer,
	// however many subscribers ask.
	KeyframeInterval time.Duration
	// SpeakerInterval is how often active speakers are evaluated.
	SpeakerInterval time.Duration
	// AllocateInterval is how often subscribers' layers are fitted to their bandwidth.
	AllocateInterval time.Duration
	Logger           *slog.Logger
	Stats            *Stats
	// OnData, if set, is told of every data message, numbered, once the room has it (under the
	// room's event lock: it must only enqueue). The relay uses it to carry chat across nodes.
	OnData func(room Name, from *Participant, msg DataMessage)
	// Sequencer, if set, numbers data messages in one order across the nodes hosting a room;
	// every node delivers them in that order. Without it a room numbers its own.
	Sequencer Sequencer
	// Remote, if set, carries a host's kick or mute of a remote participant (one shown here by
	// a relay) to the node it is on; without it such actions only change this node's view.
	Remote RemoteActions
	// FirstPacket, if set, is told once per subscription (a participant's down track) how long
	// after the subscription was created its first packet reached the subscriber. It runs on
	// the forwarding goroutine: it must be cheap and must not block.
	FirstPacket func(kind Kind, after time.Duration)
	// Batcher, if set, brackets the writes of a video frame to one subscriber, so that the
	// transport can send them together (rtc.Engine: one UDP GSO send).
	Batcher WriteBatcher
}

// WriteBatcher gathers writes: those between BeginBatch and EndBatch may be queued and leave
// together when EndBatch returns. Both must be cheap; EndBatch may send.
type WriteBatcher interface {
	BeginBatch()
	EndBatch()
}

// RemoteActions acts on participants of other nodes. Calls must not block.
type RemoteActions interface {
	Kick(room Name, target *Participant)
	Mute(room Name, owner *Participant, track TrackID, muted bool)
}

// DefaultConfig returns the production defaults.
func DefaultConfig() Config {
	return Config{
		MaxParticipants:  100,
		KeyframeInterval: 500 * time.Millisecond,
		SpeakerInterval:  300 * time.Millisecond,
		AllocateInterval: time.Second,
		Logger:           slog.New(slog.DiscardHandler),
		Stats:            &Stats{},
	}
}

func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.MaxParticipants <= 0 {
		c.MaxParticipants = d.MaxParticipants
	}
	if c.KeyframeInterval <= 0 {
		c.KeyframeInterval = d.KeyframeInterval
	}
	if c.SpeakerInterval <= 0 {
		c.SpeakerInterval = d.SpeakerInterval
	}
	if c.AllocateInterval <= 0 {
		c.AllocateInterval = d.AllocateInterval
	}
	if c.Logger == nil {
		c.Logger = d.Logger
	}
	if c.Stats == nil {
		c.Stats = d.Stats
	}
	return c
}

// Room is one room on this node: its participants, their tracks, and the order of its events.
type Room struct {
	name    Name
	cfg     Config
	stats   *Stats
	log     *slog.Logger
	onEmpty func(*Room) // the manager's hook; called without locks

	// eventMu orders every event of the room: whoever holds it may deliver, and every sink sees
	// events in the same order. Taken before mu.
	eventMu sync.Mutex
	seq     uint64   // data message sequence without a Sequencer; guarded by eventMu
	order   ordering // data messages waiting for their turn; guarded by eventMu

	mu           sync.Mutex // guards the fields below
	participants map[ParticipantSID]*Participant
	byIdentity   map[Identity]*Participant
	tracks       map[TrackID]*UpTrack
	published    uint64 // tracks published so far; orders them
	closed       bool

	ended    chan *UpTrack // tracks whose sources ended, for the room goroutine
	closing  chan struct{}
	done     chan struct{}
	stopOnce sync.Once
	speakers []ParticipantSID // last announced; room goroutine only
}

func newRoom(name Name, cfg Config, onEmpty func(*Room)) *Room {
	r := &Room{
		name:         name,
		cfg:          cfg,
		stats:        cfg.Stats,
		log:          cfg.Logger.With("room", name),
		onEmpty:      onEmpty,
		participants: map[ParticipantSID]*Participant{},
		byIdentity:   map[Identity]*Participant{},
		tracks:       map[TrackID]*UpTrack{},
		ended:        make(chan *UpTrack),
		closing:      make(chan struct{}),
		done:         make(chan struct{}),
	}
	if cfg.Sequencer == nil { // the room numbers its own messages: in order from the first
		r.order.ready, r.order.next = true, 1
	}
	go r.run()
	return r
}

// Name returns the room's name.
func (r *Room) Name() Name { return r.name }

// run is the room's goroutine: it retires ended tracks, detects active speakers and fits
// subscribers' layers to their bandwidth.
func (r *Room) run() {
	defer close(r.done)
	r.startOrder()
	speak := time.NewTicker(r.cfg.SpeakerInterval)
	defer speak.Stop()
	alloc := time.NewTicker(r.cfg.AllocateInterval)
	defer alloc.Stop()
	for {
		select {
		case <-r.closing:
			return
		case t := <-r.ended:
			r.unpublish(t)
		case now := <-speak.C:
			r.updateSpeakers()
			r.flushStale(now)
		case <-alloc.C:
			for _, p := range r.Participants() {
				p.allocate()
			}
		}
	}
}

// trackEnded is the UpTrack's onEnded hook, called from its last reader goroutine.
func (r *Room) trackEnded(t *UpTrack) {
	select {
	case r.ended <- t:
	case <-r.closing:
	}
}

// stop ends the room goroutine and waits for it. Called once the room is empty and closed.
func (r *Room) stop() {
	r.stopOnce.Do(func() { close(r.closing) })
	<-r.done
}

// Participants returns everyone in the room, hidden participants included.
func (r *Room) Participants() []*Participant {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]*Participant, 0, len(r.participants))
	for _, p := range r.participants {
		out = append(out, p)
	}
	return out
}

// Track returns a published track of the room, or nil.
func (r *Room) Track(id TrackID) *UpTrack {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.tracks[id]
}

// Tracks returns every published track in the room, in publish order.
func (r *Room) Tracks() []*UpTrack {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]*UpTrack, 0, len(r.tracks))
	for _, t := range r.tracks {
		out = append(out, t)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].order < out[j].order })
	return out
}

func (r *Room) participant(sid ParticipantSID) *Participant {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.participants[sid]
}

func (r *Room) participantByIdentity(id Identity) *Participant {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.byIdentity[id]
}

// join adds a participant. A participant with the same identity is replaced: it leaves with
// ReasonReplaced and its later cleanup cannot touch the new one.
func (r *Room) join(jp JoinParams) (*Participant, error) {
	p := &Participant{
		sid:       ParticipantSID(NewID("PA")),
		identity:  jp.Identity,
		name:      jp.Name,
		session:   jp.Session,
		perms:     jp.Permissions,
		hidden:    jp.Hidden,
		origin:    jp.Origin,
		sink:      jp.Sink,
		transport: jp.Transport,
		room:      r,
		tracks:    map[TrackID]*UpTrack{},
		subs:      map[TrackID]*DownTrack{},
	}
	p.log = r.log.With("participant", p.sid, "identity", p.identity)

	r.eventMu.Lock()
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		r.eventMu.Unlock()
		return nil, ErrRoomClosed
	}
	old := r.byIdentity[jp.Identity]
	// Remote participants (relay proxies) were admitted by their own node against the cluster's
	// count; only this node's own participants are counted here.
	if old == nil && jp.Origin == "" && r.localIdentities() >= r.cfg.MaxParticipants {
		r.mu.Unlock()
		r.eventMu.Unlock()
		return nil, ErrRoomFull
	}
	if old != nil {
		delete(r.participants, old.sid)
	}
	r.participants[p.sid] = p
	r.byIdentity[p.identity] = p
	var others []ParticipantInfo
	var audience []*Participant
	for _, q := range r.participants {
		if q == p {
			continue
		}
		if !q.hidden {
			others = append(others, q.Info())
		}
		if !q.hidden || q == old {
			audience = append(audience, q)
		}
	}
	tracks := make([]*UpTrack, 0, len(r.tracks))
	for _, t := range r.tracks {
		if old == nil || t.info.Participant != old.sid {
			tracks = append(tracks, t)
		}
	}
	r.mu.Unlock()
	sort.Slice(tracks, func(i, j int) bool { return tracks[i].order < tracks[j].order })
	p.sink.Deliver(Joined{Room: r.name, Self: p.Info(), Others: others})
	moved := old != nil && !old.hidden && !p.hidden
	if !p.hidden {
		var ev Event = ParticipantJoined{Participant: p.Info()}
		if moved {
			// One identity is one participant: its new session (a refresh, or a failover to
			// another node) is shown as a move, not as a join and a leave.
			ev = ParticipantMoved{From: old.sid, Participant: p.Info()}
		}
		for _, q := range audience {
			if q != old {
				q.sink.Deliver(ev)
			}
		}
	}
	r.eventMu.Unlock()

	if old != nil {
		r.finishLeave(old, ReasonReplaced, !moved)
	}
	release := holdNegotiation(p.transport)
	for _, t := range tracks {
		p.subscribe(t)
	}
	release()
	p.log.Info("joined", "replaced", old != nil)
	return p, nil
}

// localIdentities counts the identities of this node's own participants. r.mu held.
func (r *Room) localIdentities() int {
	n := 0
	for _, p := range r.byIdentity {
		if p.origin == "" {
			n++
		}
	}
	return n
}

// leave removes p if it is still the room's participant for its session. Idempotent.
func (r *Room) leave(p *Participant, reason LeaveReason) {
	r.mu.Lock()
	if r.participants[p.sid] != p {
		r.mu.Unlock()
		return
	}
	delete(r.participants, p.sid)
	if r.byIdentity[p.identity] == p {
		delete(r.byIdentity, p.identity)
	}
	empty := len(r.participants) == 0
	r.mu.Unlock()
	r.finishLeave(p, reason, true)
	p.log.Info("left", "reason", reason)
	if empty && r.onEmpty != nil {
		r.onEmpty(r)
	}
}

// finishLeave releases what p owned once it is out of the room's maps, and tells everyone
// (the others only when announce: not when p moved to a new session of its identity).
func (r *Room) finishLeave(p *Participant, reason LeaveReason, announce bool) {
	tracks, subs, first := p.markLeft()
	if !first {
		return
	}
	for _, d := range subs {
		d.close()
	}
	for _, t := range tracks {
		r.retire(t)
	}
	r.eventMu.Lock()
	if !p.hidden && announce {
		r.deliverLocked(ParticipantLeft{SID: p.sid, Identity: p.identity, Reason: reason}, p)
	}
	p.sink.Deliver(SessionEnded{Reason: reason})
	r.eventMu.Unlock()
}

// publish registers t and offers it to every subscriber in the room.
func (r *Room) publish(p *Participant, t *UpTrack) error {
	r.eventMu.Lock()
	r.mu.Lock()
	if r.closed || r.participants[p.sid] != p {
		r.mu.Unlock()
		r.eventMu.Unlock()
		return ErrParticipantGone
	}
	r.published++
	t.order = r.published
	r.tracks[t.info.ID] = t
	r.mu.Unlock()
	r.deliverLocked(TrackPublished{Track: t.Info()}, nil)
	r.eventMu.Unlock()
	for _, q := range r.Participants() {
		q.subscribe(t)
	}
	p.log.Info("published", "track", t.info.ID, "kind", t.info.Kind, "codec", t.info.Codec.MimeType, "layers", len(t.info.RIDs))
	return nil
}

// unpublish removes t from its owner and the room.
func (r *Room) unpublish(t *UpTrack) {
	r.mu.Lock()
	owner := r.participants[t.info.Participant]
	r.mu.Unlock()
	if owner != nil && !owner.removeTrack(t) {
		return // already retired by its owner's leave
	}
	r.retire(t)
}

// retire stops t, removes every subscriber's copy and tells the room.
func (r *Room) retire(t *UpTrack) {
	r.mu.Lock()
	known := r.tracks[t.info.ID] == t
	if known {
		delete(r.tracks, t.info.ID)
	}
	r.mu.Unlock()
	t.Close()
	if !known {
		return
	}
	for _, q := range r.Participants() {
		q.unsubscribe(t.info.ID)
	}
	r.eventMu.Lock()
	r.deliverLocked(TrackUnpublished{SID: t.info.Participant, Track: t.info.ID}, nil)
	r.eventMu.Unlock()
}

func (r *Room) setMuted(owner ParticipantSID, id TrackID, muted bool) error {
	r.mu.Lock()
	t := r.tracks[id]
	r.mu.Unlock()
	if t == nil || t.info.Participant != owner {
		return ErrTrackNotFound
	}
	if t.muted.Swap(muted) == muted {
		return nil
	}
	r.eventMu.Lock()
	r.deliverLocked(TrackMuted{SID: owner, Track: id, Muted: muted}, nil)
	r.eventMu.Unlock()
	return nil
}

// broadcastData numbers a data message in the room's order (one order on every node with a
// Sequencer) and delivers it in that order to every visible participant, the sender included.
// A message relayed from another node (msg.Seq set) keeps its number and time.
func (r *Room) broadcastData(from *Participant, msg DataMessage) error {
	r.mu.Lock()
	present := r.participants[from.sid] == from
	r.mu.Unlock()
	if !present {
		return ErrParticipantGone
	}
	msg.From, msg.Identity = from.sid, from.identity
	relayed := msg.Seq != 0
	if !relayed {
		msg.UnixMS = time.Now().UnixMilli()
	}
	if !relayed && r.cfg.Sequencer != nil {
		if err := r.number(&msg); err != nil { // I/O: before taking eventMu
			return err
		}
	}
	r.eventMu.Lock()
	defer r.eventMu.Unlock()
	if msg.Seq == 0 { // no Sequencer: the room numbers its own
		r.seq++
		msg.Seq = r.seq
	}
	r.enqueueLocked(msg, time.Now())
	if r.cfg.OnData != nil {
		r.cfg.OnData(r.name, from, msg)
	}
	return nil
}

// deliverLocked sends ev to every visible participant except skip. eventMu must be held.
func (r *Room) deliverLocked(ev Event, skip *Participant) {
	r.mu.Lock()
	sinks := make([]EventSink, 0, len(r.participants))
	for _, q := range r.participants {
		if q != skip && !q.hidden {
			sinks = append(sinks, q.sink)
		}
	}
	r.mu.Unlock()
	for _, s := range sinks {
		s.Deliver(ev)
	}
}

// closeAll makes every participant leave with the given reason.
func (r *Room) closeAll(reason LeaveReason) {
	for _, p := range r.Participants() {
		p.Leave(reason)
	}
}
