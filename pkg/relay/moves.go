package relay

import (
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/cascade-sfu/cascade/pkg/cluster"
	"github.com/cascade-sfu/cascade/pkg/room"
	"github.com/cascade-sfu/cascade/pkg/rtc"
)

// When the relay path toward a node moves (direct to a via, a via to direct, around a cut or
// a transit node that died), this node stops receiving a room's participants of that node
// from one peer and starts receiving them from another. Removing the proxies of the first and
// creating new ones from the second would show everyone here those participants leaving and
// joining again, and every subscriber would lose and regain their tracks. Instead the first
// peer's proxies are parked, still in the room, and the second peer's description of the same
// participant (same origin node, same identity) adopts them: the participant, its tracks and
// their subscribers stay, and only the slots feeding the tracks change (proxySource keeps the
// stream continuous across the change). A parked proxy nobody adopts within parkGrace, or
// whose origin node leaves the cluster, is removed then.
//
// A proxy whose origin node died is parked too, for failoverGrace: its participant's client
// is expected to fail over to another node and join again as the same identity, and the room
// shows that new session (local here, or a proxy from its new node) as a move of the parked
// participant (room.ParticipantMoved), not as a leave and a join. One that does not come back
// in time leaves then.
const (
	parkGrace     = 5 * time.Second
	failoverGrace = 10 * time.Second
)

type parkKey struct {
	room     string
	origin   cluster.NodeID
	identity string
}

type parkedProxy struct {
	px *proxy
	at time.Time
}

// park keeps px in the room for a while if its origin is alive and still wanted here (through
// another peer now) or died (its client may fail over), and the coordinator is not closing;
// else removes it.
func (c *Coordinator) park(name string, px *proxy) {
	if c.ctx.Err() != nil || px.origin == "" || px.origin == c.cfg.Link.Self ||
		(c.alive(px.origin) && !c.wantedOrigins[name][px.origin]) {
		c.removeProxy(px)
		return
	}
	k := parkKey{room: name, origin: px.origin, identity: px.identity}
	if old, ok := c.parked[k]; ok && old.px != px {
		c.removeProxy(old.px)
	}
	for _, pt := range px.tracks {
		pt.subscribed = false // the next peer is asked afresh
		for _, s := range pt.sources {
			s.assign(nil)
		}
	}
	c.parked[k] = parkedProxy{px: px, at: time.Now()}
}

// adopt returns the parked proxy of the participant a peer now describes, moved to the peer,
// or nil. A proxy whose tracks were set up with other header extension ids than the peer's
// link negotiated is removed instead (its tracks would misread the new link's packets).
func (c *Coordinator) adopt(ps *peerState, name string, origin cluster.NodeID, identity string) *proxy {
	k := parkKey{room: name, origin: origin, identity: identity}
	pp, ok := c.parked[k]
	if !ok {
		return nil
	}
	delete(c.parked, k)
	for _, pt := range pp.px.tracks {
		info := pt.up.Info()
		kind := webrtc.RTPCodecTypeVideo
		if info.Kind == room.KindAudio {
			kind = webrtc.RTPCodecTypeAudio
			if ps.link.extID(kind, rtc.ExtAudioLevel) != info.AudioLevelExtID {
				c.removeProxy(pp.px)
				return nil
			}
		}
		if ps.link.extID(kind, rtc.ExtAbsCaptureTime) != info.AbsCaptureTimeExtID {
			c.removeProxy(pp.px)
			return nil
		}
	}
	c.log.Info("remote participant now relayed by another peer", "room", name, "origin", origin, "identity", identity,
		"peer", ps.link.Peer(), "parked_for", time.Since(pp.at).Round(time.Millisecond))
	return pp.px
}

// expireParked removes the parked proxies older than parkGrace at now, or than failoverGrace
// when their origin left the cluster; all of them with all. A parked participant that moved
// to a new session meanwhile is already out of the room: removing its proxy tells no one.
func (c *Coordinator) expireParked(now time.Time, all bool) {
	for k, pp := range c.parked {
		grace := parkGrace
		if !c.alive(k.origin) {
			grace = failoverGrace
		}
		if all || now.Sub(pp.at) >= grace {
			delete(c.parked, k)
			c.removeProxy(pp.px)
		}
	}
}
