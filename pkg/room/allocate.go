package room

import (
	"sort"
	"time"
)

// upgradeMargin is how much headroom a higher layer needs before a subscriber is moved up to
// it, so that layers do not flap around the estimate.
const upgradeMargin = 1.15

// allocate fits the participant's video layers to its bandwidth estimate.
func (p *Participant) allocate() {
	if p.transport == nil {
		return
	}
	allocateLayers(p.Subscriptions(), p.transport.BandwidthEstimate(), time.Now())
}

// allocateOne chooses the starting layer of a new subscription.
func (p *Participant) allocateOne(d *DownTrack) {
	budget := 0
	if p.transport != nil {
		budget = p.transport.BandwidthEstimate()
	}
	allocateLayers([]*DownTrack{d}, budget, time.Now())
}

// allocateLayers gives audio what it uses, then video in priority order (screen shares first),
// each the highest active layer within the subscriber's preference that fits what is left.
// budget 0 means unknown: everyone gets their preference.
func allocateLayers(subs []*DownTrack, budget int, now time.Time) {
	remaining := float64(budget)
	video := subs[:0:0]
	for _, d := range subs {
		if d.Kind() == KindAudio {
			remaining -= float64(d.track.LayerBitrate(0, now))
			continue
		}
		if !d.Paused() {
			video = append(video, d)
		}
	}
	sort.SliceStable(video, func(i, j int) bool {
		return priority(video[i]) > priority(video[j])
	})
	for _, d := range video {
		layer := chooseLayer(d, budget > 0, remaining, now)
		if layer < 0 {
			continue
		}
		d.SetTargetLayer(layer)
		remaining -= float64(d.track.LayerBitrate(layer, now))
	}
}

func priority(d *DownTrack) int {
	if d.track.info.Source == SourceScreen {
		return 1
	}
	return 0
}

// chooseLayer returns the layer for d, or -1 to leave its target alone (no layer is active).
func chooseLayer(d *DownTrack, limited bool, remaining float64, now time.Time) int {
	t := d.track
	maxLayer := int(d.MaxLayer())
	if n := len(t.info.RIDs); n == 0 {
		maxLayer = 0
	} else if maxLayer > n-1 {
		maxLayer = n - 1
	}
	current := int(d.target.Load())
	lowest := -1
	for l := maxLayer; l >= 0; l-- {
		if !t.layerActive(l, now) {
			continue
		}
		lowest = l
		need := float64(t.LayerBitrate(l, now))
		if l > current {
			need *= upgradeMargin
		}
		if !limited || need <= remaining {
			return l
		}
	}
	if lowest >= 0 {
		return lowest // nothing fits: the lowest active layer rather than nothing
	}
	if current > maxLayer {
		return maxLayer
	}
	return -1
}
