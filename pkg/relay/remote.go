package relay

import (
	"strings"

	"github.com/cascade-sfu/cascade/pkg/cluster"
	"github.com/cascade-sfu/cascade/pkg/room"
)

// Host actions on remote participants travel to the participant's node over the relay links,
// hop by hop: each node knows a proxy by the sid its peer gave it, and the peer either is the
// participant's node or a transit that forwards the action again.

type (
	kickBody struct {
		SID string `json:"sid"`
	}
	muteBody struct {
		Track string `json:"track"`
		Muted bool   `json:"muted"`
	}
	remoteAction struct {
		room  string
		kind  string // "kick" or "mute"
		part  *room.Participant
		track room.TrackID
		muted bool
	}
)

// Kick implements room.RemoteActions: the participant's own node removes it.
func (c *Coordinator) Kick(name room.Name, target *room.Participant) {
	c.enqueueAction(remoteAction{room: string(name), kind: "kick", part: target})
}

// Mute implements room.RemoteActions: the track's own node mutes it.
func (c *Coordinator) Mute(name room.Name, owner *room.Participant, track room.TrackID, muted bool) {
	c.enqueueAction(remoteAction{room: string(name), kind: "mute", part: owner, track: track, muted: muted})
}

func (c *Coordinator) enqueueAction(a remoteAction) {
	select {
	case c.actions <- a:
	default:
		c.log.Warn("relay action queue full; a remote kick or mute was dropped", "room", a.room, "participant", a.part.SID())
	}
}

// proxyPeer splits a proxy's session ("relay:<peer>:<sid>") into the peer that showed it to us
// and the sid the peer knows it by.
func proxyPeer(p *room.Participant) (cluster.NodeID, string, bool) {
	rest, ok := strings.CutPrefix(string(p.Session()), "relay:")
	if !ok {
		return "", "", false
	}
	peer, sid, ok := strings.Cut(rest, ":")
	return cluster.NodeID(peer), sid, ok
}

// act sends a host's action one hop toward the participant's node. Coordinator goroutine.
func (c *Coordinator) act(a remoteAction) {
	peer, sid, ok := proxyPeer(a.part)
	if !ok {
		return
	}
	ps := c.peers[peer]
	if ps == nil || isDone(ps.link) {
		return
	}
	switch a.kind {
	case "kick":
		c.send(ps, "kick", a.room, kickBody{SID: sid})
	case "mute":
		c.send(ps, "mute", a.room, muteBody{Track: string(a.track), Muted: a.muted})
	}
}

// onKick removes our participant, or passes the kick on toward a proxy's node.
func (c *Coordinator) onKick(name string, kb kickBody) {
	r := c.cfg.Rooms.Room(room.Name(name))
	if r == nil {
		return
	}
	for _, p := range r.Participants() {
		if string(p.SID()) != kb.SID {
			continue
		}
		if p.Origin() == "" {
			p.Leave(room.ReasonKicked)
		} else {
			c.act(remoteAction{room: name, kind: "kick", part: p})
		}
		return
	}
}

// onMute mutes our participant's track, or passes it on toward a proxy's node.
func (c *Coordinator) onMute(name string, mb muteBody) {
	r := c.cfg.Rooms.Room(room.Name(name))
	if r == nil {
		return
	}
	t := r.Track(room.TrackID(mb.Track))
	if t == nil {
		return
	}
	for _, p := range r.Participants() {
		if p.SID() != t.Info().Participant {
			continue
		}
		if p.Origin() == "" {
			_ = p.SetMuted(p.SID(), t.ID(), mb.Muted)
		} else {
			c.act(remoteAction{room: name, kind: "mute", part: p, track: t.ID(), muted: mb.Muted})
		}
		return
	}
}
