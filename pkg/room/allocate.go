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

// Probing. pion's GCC never raises its estimate above 1.5 times the rate it sees received, so
// a subscriber held on a low layer by its estimate (it asked for low, or the path was
// congested a while ago) would never be moved up again: the estimate cannot grow past what the
// low layer needs. So once the layer has held for probeFirst, allocation tries the next layer
// up for probeWindow. If the estimate catches up (the higher layer fits by the end), the
// subscriber stays there; if it falls below what the old layer needs, or the higher layer
// still does not fit at the end, the subscriber goes back and the next try waits twice as long
// (up to probeMaxBackoff). A real bottleneck thus costs one short overshoot now and then.
const (
	probeFirst      = 5 * time.Second
	probeWindow     = 5 * time.Second
	probeMaxBackoff = 80 * time.Second
)

// layerProbe is one down track's probing state (DownTrack.probeMu).
type layerProbe struct {
	next    time.Time     // no try before; zero: not yet scheduled
	until   time.Time     // a try is running until then; zero: none
	from    int           // the layer the try started from
	backoff time.Duration // wait after a failed try
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
	fit, lowest, top := -1, -1, -1
	for l := maxLayer; l >= 0; l-- {
		if !t.layerActive(l, now) {
			continue
		}
		if top < 0 {
			top = l
		}
		lowest = l
		need := float64(t.LayerBitrate(l, now))
		if l > current {
			need *= upgradeMargin
		}
		if fit < 0 && (!limited || need <= remaining) {
			fit = l
		}
	}
	if fit < 0 {
		fit = lowest // nothing fits: the lowest active layer rather than nothing
	}
	if fit < 0 {
		if current > maxLayer {
			return maxLayer
		}
		return -1
	}
	if !limited {
		return fit
	}
	return d.probeLayer(fit, top, current, remaining, now)
}

// probeLayer applies probing to the layer that fits the estimate (see probeFirst).
func (d *DownTrack) probeLayer(fit, top, current int, remaining float64, now time.Time) int {
	d.probeMu.Lock()
	defer d.probeMu.Unlock()
	p := &d.probe
	if !p.until.IsZero() {
		switch {
		case fit >= current: // the estimate caught up with the layer tried
			p.until, p.backoff = time.Time{}, 0
			p.next = now.Add(probeFirst)
			return fit
		case now.Before(p.until) && float64(d.track.LayerBitrate(p.from, now)) <= remaining && d.track.layerActive(current, now):
			return current // give the estimate time to grow
		default: // it fell, or the window ended without it fitting
			p.until = time.Time{}
			p.backoff = min(max(2*p.backoff, probeFirst), probeMaxBackoff)
			p.next = now.Add(p.backoff)
			return fit
		}
	}
	if fit >= top || fit != current {
		if p.next.IsZero() || fit != current {
			p.next = now.Add(max(p.backoff, probeFirst)) // the layer must hold before a try
		}
		return fit
	}
	if p.next.IsZero() {
		p.next = now.Add(probeFirst)
		return fit
	}
	if now.Before(p.next) {
		return fit
	}
	for l := fit + 1; l <= top; l++ {
		if d.track.layerActive(l, now) {
			p.from, p.until = fit, now.Add(probeWindow)
			return l
		}
	}
	return fit
}
