package relay

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"sort"
	"sync"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/cascade-sfu/cascade/pkg/cluster"
	"github.com/cascade-sfu/cascade/pkg/room"
	"github.com/cascade-sfu/cascade/pkg/rtc"
)

// Control message bodies of the room protocol.
type (
	stateBody struct {
		Participants []partState `json:"participants,omitempty"`
	}
	interestBody struct {
		// Origins are the nodes, other than the receiver, whose participants the sender wants
		// through the receiver (the receiver is its transit to them).
		Origins []string `json:"origins,omitempty"`
	}
	partState struct {
		SID string `json:"sid"`
		// Origin is the node the participant is on; empty for the sender itself.
		Origin   string       `json:"origin,omitempty"`
		Identity string       `json:"identity"`
		Name     string       `json:"name,omitempty"`
		Host     bool         `json:"host,omitempty"`
		Tracks   []trackState `json:"tracks,omitempty"`
	}
	trackState struct {
		ID        string   `json:"id"`
		Kind      string   `json:"kind"`
		Source    string   `json:"source"`
		Name      string   `json:"name,omitempty"`
		Muted     bool     `json:"muted,omitempty"`
		Mime      string   `json:"mime"`
		ClockRate uint32   `json:"clock_rate"`
		Channels  uint16   `json:"channels,omitempty"`
		Fmtp      string   `json:"fmtp,omitempty"`
		RIDs      []string `json:"rids,omitempty"`
	}
	subscribeBody struct {
		Track string `json:"track"`
		// MaxLayer is the highest simulcast layer wanted; layers 0..MaxLayer cross.
		MaxLayer int `json:"max_layer"`
	}
	dataBody struct {
		SID     string          `json:"sid"`
		Seq     uint64          `json:"seq"`     // the room's order, cluster-wide
		UnixMS  int64           `json:"unix_ms"` // when the origin node took it
		Kind    string          `json:"kind"`
		Text    string          `json:"text,omitempty"`
		Topic   string          `json:"topic,omitempty"`
		Payload json.RawMessage `json:"payload,omitempty"`
	}
	assignedBody struct {
		Track string `json:"track"`
		RID   string `json:"rid"`
		MID   string `json:"mid"`
	}
)

// snapshot describes, for a peer, this node's own participants of a room and the remote ones
// the peer receives through us (never those of the peer itself), in a stable order.
func (c *Coordinator) snapshot(name string, peer cluster.NodeID, through map[cluster.NodeID]bool) stateBody {
	var st stateBody
	r := c.cfg.Rooms.Room(room.Name(name))
	if r == nil {
		return st
	}
	for _, p := range r.Participants() {
		origin := cluster.NodeID(p.Origin())
		if p.Hidden() || (origin != "" && (origin == peer || !through[origin])) {
			continue
		}
		info := p.Info()
		ps := partState{SID: string(info.SID), Origin: string(origin), Identity: string(info.Identity), Name: info.Name, Host: info.Role == room.RoleHost}
		for _, t := range info.Tracks {
			ps.Tracks = append(ps.Tracks, trackState{
				ID: string(t.ID), Kind: string(t.Kind), Source: string(t.Source), Name: t.Name, Muted: t.Muted,
				Mime: t.Codec.MimeType, ClockRate: t.Codec.ClockRate, Channels: t.Codec.Channels, Fmtp: t.Codec.SDPFmtpLine,
				RIDs: t.RIDs,
			})
		}
		sort.Slice(ps.Tracks, func(i, j int) bool { return ps.Tracks[i].ID < ps.Tracks[j].ID })
		st.Participants = append(st.Participants, ps)
	}
	sort.Slice(st.Participants, func(i, j int) bool { return st.Participants[i].SID < st.Participants[j].SID })
	return st
}

// applyState makes this node's proxies of the peer's participants in a room match a snapshot.
func (c *Coordinator) applyState(ps *peerState, name string, st stateBody) {
	if ps.wanted[name] == nil && len(st.Participants) > 0 {
		return // we host no one there (any more)
	}
	ir := ps.imports[name]
	if ir == nil {
		ir = &importedRoom{proxies: map[string]*proxy{}}
		ps.imports[name] = ir
	}
	seen := map[string]bool{}
	for _, p := range st.Participants {
		origin := cluster.NodeID(p.Origin)
		if origin == "" {
			origin = ps.link.Peer()
		}
		if origin == c.cfg.Link.Self {
			continue // our own participants, back through a transit: never
		}
		seen[p.SID] = true
		px := ir.proxies[p.SID]
		if px == nil {
			if px = c.adopt(ps, name, origin, p.Identity); px != nil {
				ir.proxies[p.SID] = px
			}
		}
		if px == nil {
			part, err := c.cfg.Rooms.Join(room.Name(name), room.JoinParams{
				Identity: room.Identity(p.Identity), Name: p.Name, Session: proxySession(ps.link.Peer(), p.SID),
				Permissions: room.Permissions{Publish: true, PublishData: true, Admin: p.Host}, Origin: string(origin),
				Sink: discardSink{},
			})
			if err != nil {
				c.log.Warn("cannot show a remote participant", "room", name, "participant", p.SID, "identity", p.Identity, "err", err)
				continue
			}
			px = &proxy{part: part, origin: origin, identity: p.Identity, tracks: map[room.TrackID]*proxyTrack{}}
			ir.proxies[p.SID] = px
		} else if px.part.Name() != p.Name {
			px.part.SetName(p.Name) // renamed on its node (admin API): tell our participants
		}
		c.syncProxyTracks(ps, name, px, p.Tracks)
	}
	for sid, px := range ir.proxies {
		if !seen[sid] {
			delete(ir.proxies, sid)
			c.removeProxy(px)
		}
	}
}

func (c *Coordinator) syncProxyTracks(ps *peerState, name string, px *proxy, tracks []trackState) {
	seen := map[room.TrackID]bool{}
	for _, t := range tracks {
		id := room.TrackID(t.ID)
		seen[id] = true
		if pt := px.tracks[id]; pt != nil {
			if pt.up.Info().Muted != t.Muted {
				_ = px.part.SetMuted(px.part.SID(), id, t.Muted)
			}
			continue
		}
		info := room.TrackInfo{
			ID: id, Kind: room.Kind(t.Kind), Source: room.ParseSource(t.Source), Name: t.Name, Muted: t.Muted,
			Codec: room.CodecParams{MimeType: t.Mime, ClockRate: t.ClockRate, Channels: t.Channels, SDPFmtpLine: t.Fmtp},
			RIDs:  t.RIDs,
		}
		kind := webrtc.RTPCodecTypeVideo
		if info.Kind == room.KindAudio {
			kind = webrtc.RTPCodecTypeAudio
			info.AudioLevelExtID = ps.link.extID(kind, rtc.ExtAudioLevel)
		}
		info.AbsCaptureTimeExtID = ps.link.extID(kind, rtc.ExtAbsCaptureTime)
		up, err := px.part.Publish(info)
		if err != nil {
			c.log.Warn("cannot show a remote track", "room", name, "participant", px.part.SID(), "track", id, "err", err)
			continue
		}
		rids := t.RIDs
		if len(rids) == 0 {
			rids = []string{""}
		}
		pt := &proxyTrack{room: name, up: up, rids: rids, sources: map[string]*proxySource{}, maxLayer: -1}
		for _, rid := range rids {
			src := newProxySource(t.ClockRate)
			if err := up.AddLayer(rid, src); err != nil {
				_ = src.Close()
				continue
			}
			pt.sources[rid] = src
		}
		px.tracks[id] = pt
	}
	for id, pt := range px.tracks {
		if !seen[id] {
			delete(px.tracks, id)
			for _, s := range pt.sources {
				_ = s.Close()
			}
			_ = px.part.Unpublish(id)
		}
	}
}

// deliverData re-emits a remote participant's chat or state message in the room here.
func (c *Coordinator) deliverData(ps *peerState, name string, db dataBody) {
	ir := ps.imports[name]
	if ir == nil {
		return
	}
	px := ir.proxies[db.SID]
	if px == nil {
		return
	}
	msg := room.DataMessage{
		Seq: db.Seq, UnixMS: db.UnixMS, Kind: room.DataKind(db.Kind), Text: db.Text, Topic: db.Topic, Payload: db.Payload,
	}
	if msg.Seq == 0 { // from a node that does not number messages: as it comes
		switch msg.Kind {
		case room.DataChat:
			_ = px.part.SendChat(db.Text, "")
		case room.DataState:
			_ = px.part.SendState(db.Topic, db.Payload, "")
		}
		return
	}
	_ = px.part.RelayData(msg)
}

// discardSink drops a proxy participant's events: nobody listens on this node.
type discardSink struct{}

func (discardSink) Deliver(room.Event) {}

var errProxyClosed = errors.New("relay: remote track ended")

// proxySource is one layer of a remote track as a room.PacketSource. It follows the slot the
// origin assigns: between assignments (nobody here wants the track) its reader waits.
//
// Each slot is its own RTP stream, numbered on its own, and a layer can move from one slot to
// another: a re-subscription, or the relay path moving to another peer while the proxy stays.
// The reader sees one stream throughout: when the slot changes, the new slot's sequence
// numbers and timestamps are offset to go on from the last packet returned (timestamps
// advanced by the time between them), and a keyframe is asked for, since the new slot starts
// mid-stream.
type proxySource struct {
	clockRate uint32

	mu      sync.Mutex // guards the fields below
	cur     *slotSource
	changed chan struct{} // closed and replaced on every change
	closed  bool

	// The reader's own state (ReadRTP's goroutine only).
	deadline time.Time   // SetReadDeadline's
	applied  *slotSource // the slot source the deadline was last given to
	from     *slotSource // the slot the last packet came from
	started  bool
	seqOff   uint16
	tsOff    uint32
	lastSeq  uint16
	lastTS   uint32
	lastAt   time.Time
}

func newProxySource(clockRate uint32) *proxySource {
	return &proxySource{clockRate: clockRate, changed: make(chan struct{})}
}

// assign switches to a new slot (open returns its source), or to none with nil.
func (p *proxySource) assign(open func() (*slotSource, error)) {
	var next *slotSource
	if open != nil {
		s, err := open()
		if err != nil {
			return
		}
		next = s
	}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		if next != nil {
			_ = next.Close()
		}
		return
	}
	old := p.cur
	p.cur = next
	close(p.changed)
	p.changed = make(chan struct{})
	p.mu.Unlock()
	if old != nil {
		_ = old.Close()
	}
}

func (p *proxySource) ReadRTP(buf []byte) (int, error) {
	for {
		p.mu.Lock()
		cur, changed, closed := p.cur, p.changed, p.closed
		p.mu.Unlock()
		if closed {
			return 0, errProxyClosed
		}
		if cur == nil {
			<-changed
			continue
		}
		if cur != p.applied {
			_ = cur.SetReadDeadline(p.deadline)
			p.applied = cur
		}
		n, err := cur.ReadRTP(buf)
		if err == nil {
			p.continueStream(cur, buf[:n])
			return n, nil
		}
		if !p.deadline.IsZero() && isTimeout(err) {
			return 0, err // the reader's deadline, not the slot's end
		}
		// The slot was reassigned, released or its link closed: wait for what comes next.
		select {
		case <-changed:
		case <-cur.l.Done():
			p.mu.Lock()
			if p.cur == cur {
				p.cur = nil
			}
			p.mu.Unlock()
		}
	}
}

// continueStream rewrites a packet from slot src in place so that the stream goes on from the
// last packet returned, re-anchoring when src is not the slot of that packet.
func (p *proxySource) continueStream(src *slotSource, pkt []byte) {
	if len(pkt) < 12 {
		return // not RTP: the track's reader drops it
	}
	now := time.Now()
	seq := binary.BigEndian.Uint16(pkt[2:4])
	ts := binary.BigEndian.Uint32(pkt[4:8])
	if src != p.from {
		if p.from != nil && p.started {
			ticks := uint32(1)
			if p.clockRate > 0 && now.After(p.lastAt) {
				if t := uint64(now.Sub(p.lastAt)) * uint64(p.clockRate) / uint64(time.Second); t > 1 {
					ticks = uint32(t)
				}
			}
			p.seqOff = p.lastSeq + 1 - seq
			p.tsOff = p.lastTS + ticks - ts
			_ = src.RequestKeyframe() // the new slot starts mid-stream
		}
		p.from = src
	}
	seq += p.seqOff
	ts += p.tsOff
	binary.BigEndian.PutUint16(pkt[2:4], seq)
	binary.BigEndian.PutUint32(pkt[4:8], ts)
	if !p.started || int16(seq-p.lastSeq) > 0 {
		p.lastSeq, p.lastTS, p.lastAt, p.started = seq, ts, now, true
	}
}

// SetReadDeadline bounds ReadRTP: past t it fails with a timeout error (the room's reader holds
// a frame's first packets until its last packet or the deadline). Called from the reader
// goroutine.
func (p *proxySource) SetReadDeadline(t time.Time) error {
	p.deadline = t
	p.mu.Lock()
	cur := p.cur
	p.mu.Unlock()
	if cur != nil {
		p.applied = cur
		return cur.SetReadDeadline(t)
	}
	return nil
}

func isTimeout(err error) bool {
	var t interface{ Timeout() bool }
	return errors.As(err, &t) && t.Timeout()
}

func (p *proxySource) RequestKeyframe() error {
	p.mu.Lock()
	cur := p.cur
	p.mu.Unlock()
	if cur == nil {
		return nil
	}
	return cur.RequestKeyframe()
}

func (p *proxySource) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	old := p.cur
	p.cur = nil
	close(p.changed)
	p.changed = make(chan struct{})
	p.mu.Unlock()
	if old != nil {
		_ = old.Close()
	}
	return nil
}
