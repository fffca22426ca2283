package relay

import (
	"cmp"
	"slices"
	"time"

	"github.com/cascade-sfu/cascade/pkg/room"
	"github.com/cascade-sfu/cascade/pkg/rtc"
)

// Priorities on a short link.
//
// Each layer of a track that crosses a link is a flow. When the link's GCC estimate toward the
// peer is lower than what the flows measure at their source, the sending node pauses the least
// important flows until the rest fit: audio is never paused, then screen shares come before
// camera video, and video goes by layer, every track's lowest layer before any track's next
// one. A flow that does not fit is paused even if a less important, smaller one after it still
// fits (that one then runs): the link carries as much as it can in priority order.
//
// GCC in pion raises its estimate while the sender stays below it (by up to 8% a second) and
// lowers it to 85% of the received rate when delay grows, so a paused flow is resumed once the
// estimate has room for it with a margin, and not before a hold time: 2 s after a pause, doubled
// each time a flow is paused again soon after it resumed (up to 30 s), so that a link short of
// bandwidth does not flap a layer on and off. The most important flow always runs, so that the
// link keeps carrying packets and feedback, and the estimate keeps moving.
const (
	resumeMargin  = 1.15
	holdMin       = 2 * time.Second
	holdMax       = 30 * time.Second
	holdResetting = 10 * time.Second // a pause this long after a resume starts the hold over
)

// flowClass orders flows by importance, most important first.
type flowClass int

const (
	classAudio flowClass = iota
	classScreen
	classVideo
)

func classOf(info room.TrackInfo) flowClass {
	switch {
	case info.Kind == room.KindAudio:
		return classAudio
	case info.Source == room.SourceScreen:
		return classScreen
	default:
		return classVideo
	}
}

// flow is one exported layer as the shedder sees it. The shedder's state lives in it between
// rounds; the coordinator fills in class, layer, track and bitrate each round.
type flow struct {
	class   flowClass
	layer   int
	track   room.TrackID
	bitrate int // measured at the source, bits per second

	paused  bool
	holdTo  time.Time     // a paused flow stays paused until then
	hold    time.Duration // the hold of the last pause
	resumed time.Time     // when it last resumed
}

// less orders flows by importance: class, then layer, then track id for a stable order.
func (f *flow) less(g *flow) int {
	return cmp.Or(cmp.Compare(f.class, g.class), cmp.Compare(f.layer, g.layer), cmp.Compare(f.track, g.track))
}

// shed decides which flows run within budget (bits per second; 0 or less: unknown, all run)
// and sorts flows by importance. It returns the flows whose state changed.
func shed(flows []*flow, budget int, now time.Time) (changed []*flow) {
	slices.SortFunc(flows, (*flow).less)
	used := 0
	for i, f := range flows {
		run := budget <= 0 || i == 0 || f.class == classAudio
		if !run {
			need := f.bitrate
			if f.paused {
				need = int(float64(f.bitrate) * resumeMargin)
			}
			run = used+need <= budget && (!f.paused || !now.Before(f.holdTo))
		}
		if run {
			used += f.bitrate
		}
		if run == !f.paused {
			continue
		}
		f.paused = !run
		if f.paused {
			switch {
			case f.hold == 0 || now.Sub(f.resumed) > holdResetting:
				f.hold = holdMin
			default:
				f.hold = min(2*f.hold, holdMax)
			}
			f.holdTo = now.Add(f.hold)
		} else {
			f.resumed = now
		}
		changed = append(changed, f)
	}
	return changed
}

// pausedBody tells the peer that the sender paused (or resumed) one layer of a track it sends
// over the link, for lack of bandwidth: the peer moves its subscribers off that layer at once
// instead of waiting for the layer to fall silent.
type pausedBody struct {
	Track  string `json:"track"`
	RID    string `json:"rid"`
	Paused bool   `json:"paused"`
}

// prioritize fits the layers this node sends a peer to the link's bandwidth estimate (see
// shed), pausing and resuming their down tracks and telling the peer.
func (c *Coordinator) prioritize(ps *peerState, now time.Time) {
	if len(ps.exports) == 0 {
		ps.link.pausedLayers.Store(0)
		return
	}
	flows := make([]*flow, 0, 2*len(ps.exports))
	for _, ex := range ps.exports {
		for i, el := range ex.layers {
			el.flow.bitrate = int(ex.up.LayerBitrate(i, now))
			flows = append(flows, &el.flow)
		}
	}
	budget := ps.link.BandwidthEstimate()
	if budget >= rtc.RelayMaxBitrate {
		budget = 0 // at the ceiling: not limited
	}
	changed := shed(flows, budget, now)
	paused := 0
	for id, ex := range ps.exports {
		for i, el := range ex.layers {
			if el.flow.paused {
				paused++
			}
			if slices.Contains(changed, &el.flow) {
				el.down.SetPaused(el.flow.paused)
				msg := "relay link short of bandwidth: a layer paused"
				if !el.flow.paused {
					msg = "relay link has room again: a layer resumed"
				}
				c.log.Info(msg, "peer", ps.link.Peer(), "track", id, "rid", el.rid, "layer_bps", el.flow.bitrate, "estimate_bps", budget)
			}
			// The peer hears of a layer paused here, or paused before it reached us (we are a
			// transit node and the link from its origin is short).
			silent := el.flow.paused || ex.up.LayerSuspended(i)
			if silent != el.told && c.send(ps, "paused", ex.room, pausedBody{Track: string(id), RID: el.rid, Paused: silent}) {
				el.told = silent
			}
		}
	}
	ps.link.pausedLayers.Store(int32(paused))
}

// layerPaused marks a layer of a proxy track paused or resumed by the peer that sends it.
func (c *Coordinator) layerPaused(ps *peerState, name string, pb pausedBody) {
	ir := ps.imports[name]
	if ir == nil {
		return
	}
	for _, px := range ir.proxies {
		if pt := px.tracks[room.TrackID(pb.Track)]; pt != nil {
			if i := slices.Index(pt.rids, pb.RID); i >= 0 {
				pt.up.SetLayerSuspended(i, pb.Paused)
			}
			return
		}
	}
}
