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
// Each layer of a track that crosses a link is a flow. When the link is congested, the sending
// node pauses the least important flows, from the bottom of the order up, until the rest fit
// in the link's GCC estimate: audio is never paused, then screen shares come before camera
// video, and video goes by layer, every track's lowest layer before any track's next one. It
// cuts about a third of what runs at most per step and judges the link again settleTime
// later.
//
// Congested means both: GCC's estimate is below what the flows measure at their source, and
// at least 2% of the packets sent are lost (GCC's loss average over the transport-wide
// feedback, which sees each packet once, unlike NACKs, which repeat for a packet still missing).
// GCC's delay signal alone is not trusted to shed: on a loaded server its delay measurements
// jitter, and each false "overuse" lowers the estimate to 85% of what was sent; with layers
// shed on it, less is sent and the next false alarm goes lower, down to audio alone (seen in
// tests on a busy 2-core machine, on an idle 50 Mbps link). A bottleneck that only queues and
// never drops is therefore left to GCC and the peer's own layer choice.
//
// A paused flow resumes after a hold, 2 s after its pause, doubled each time it is paused again
// soon after resuming (up to 30 s), so that a short link does not flap a layer on and off; then
// either the estimate has room for it with a 15% margin, or, when the link has been clean (under
// 1% loss), it is resumed as a probe: one flow at a time, settleTime apart at least, most
// important first. Resuming keeps the priority order: while a flow stays paused, no less
// important one resumes. Real media is the probe; if the link cannot carry it, loss comes
// back, the flow is paused again and its hold doubles. Without probing, an estimate that fell could stay low for
// good: pion's GCC grows its estimate slowly (additively near the rate of its last decreases)
// while the sender stays below it. The most important flow always runs, so that the link keeps
// carrying packets and feedback.
const (
	resumeMargin  = 1.15
	holdMin       = 2 * time.Second
	holdMax       = 30 * time.Second
	holdResetting = 10 * time.Second // a pause this long after a resume starts the hold over
	// congestedLoss and cleanLoss are the link's loss (GCC's average of the transport-wide
	// feedback) above which it counts as congested and below which as clean.
	congestedLoss = 0.02
	cleanLoss     = 0.01
	// settleTime is how long after a cut or a probe the link is left before it is judged
	// again: long enough for a queue to drain and for the feedback on it to come back.
	settleTime = 2 * time.Second
)

// linkCondition is what shed knows of a link besides its estimate.
type linkCondition struct {
	congested bool // losing at least congestedLoss
	probe     bool // clean (under cleanLoss) and settled: one paused flow may resume as a probe
}

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
// rounds; the coordinator sets class, layer and track when the layer starts crossing, and the
// bitrate each round.
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

// shed decides which flows run (see the top of this file) and sorts flows by importance. A
// budget of 0 or less means no estimate: everything runs. It returns the flows whose state
// changed and whether one of them resumed as a probe.
func shed(flows []*flow, budget int, cond linkCondition, now time.Time) (changed []*flow, probed bool) {
	slices.SortFunc(flows, (*flow).less)
	protected := func(i int) bool { return budget <= 0 || i == 0 || flows[i].class == classAudio }
	run := make([]bool, len(flows))
	used := 0
	blocked := false // a more important flow stays paused: no less important one resumes
	resumed := false // a flow resumed with room in the estimate: no probe on top of it
	for i, f := range flows {
		switch {
		case protected(i) || !f.paused:
			run[i] = true
		case blocked || now.Before(f.holdTo):
		case used+int(float64(f.bitrate)*resumeMargin) <= budget:
			run[i], resumed = true, true
		case cond.probe && !probed && !resumed:
			run[i], probed = true, true
		}
		if run[i] {
			used += f.bitrate
		} else {
			blocked = true
		}
	}
	// Congested: pause the least important flows until the rest fit in the estimate, but cut
	// at most about a third of what runs in one step (the flow that crosses the line goes
	// too); the next measurement decides on more.
	if cond.congested && budget > 0 && used > budget {
		target := max(budget, used*7/10)
		for i := len(flows) - 1; i >= 0 && used > target; i-- {
			if run[i] && !protected(i) {
				run[i] = false
				used -= flows[i].bitrate
				if probed && flows[i].paused {
					probed = false // the probe did not go ahead after all
				}
			}
		}
	}
	for i, f := range flows {
		if run[i] == !f.paused {
			continue
		}
		f.paused = !run[i]
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
	return changed, probed
}

// pausedBody tells the peer that the sender paused (or resumed) one layer of a track it sends
// over the link, for lack of bandwidth: the peer moves its subscribers off that layer at once
// instead of waiting for the layer to fall silent.
type pausedBody struct {
	Track  string `json:"track"`
	RID    string `json:"rid"`
	Paused bool   `json:"paused"`
}

// prioritize fits the layers this node sends a peer to the link (see shed and the top of this
// file), pausing and resuming their down tracks and telling the peer.
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
	// Judge the link only once it has settled after the last cut or probe: the queue the cut
	// relieves drains, the loss the probe causes shows.
	loss, known := ps.link.feedbackLoss()
	settled := now.Sub(ps.lastChange) >= settleTime
	cond := linkCondition{
		congested: known && settled && loss >= congestedLoss,
		probe:     known && settled && loss < cleanLoss,
	}
	changed, probed := shed(flows, budget, cond, now)
	if probed || (cond.congested && slices.ContainsFunc(changed, func(f *flow) bool { return f.paused })) {
		ps.lastChange = now
	}
	paused := 0
	for id, ex := range ps.exports {
		for i, el := range ex.layers {
			if el.flow.paused {
				paused++
			}
			if slices.Contains(changed, &el.flow) {
				el.down.SetPaused(el.flow.paused)
				msg := "relay link congested: a layer paused"
				if !el.flow.paused {
					msg = "relay link has room again: a layer resumed"
				}
				c.log.Info(msg, "peer", ps.link.Peer(), "room", ex.room, "participant", ex.up.Info().Participant, "track", id, "rid", el.rid, "layer_bps", el.flow.bitrate,
					"estimate_bps", budget, "loss", loss)
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
