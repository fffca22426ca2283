package room

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtp"
)

// A subscriber that joins a room where video is already flowing needs a keyframe before it can
// show anything. Asking the publisher for one costs a round trip to it, its encoder's next frame
// and its pacer; and browsers' encoders honour at most one keyframe request every 300 ms or so.
// But the layer's packet cache usually still holds the last keyframe and the frames after it
// (the keyframe asked for when the subscriber's track was bound, while its transport was not up,
// is the usual one). So when a subscriber's transport comes up and it has received nothing yet,
// that keyframe and what followed it up to the last packet forwarded live are replayed to it
// at once, through the down track's normal rewriting: the subscriber starts without waiting
// for the layer's next packet, and its sequence numbers and timestamps go on without a gap
// into the live stream.
//
// The replay runs on TransportReady's goroutine with the layer's forwarding token
// (upLayer.fwd) held: the reader cannot forward a live packet in the middle of it, and the
// live packets read meanwhile follow it in order. If nothing of it reached the subscriber (pion
// reports the transport connected a moment before its SRTP keys exist), the reader tries
// again before each of its next batches, a few times.
//
// A replay is refused, and the publisher asked for a keyframe as before, when the cached
// keyframe is older than maxReplayAge or more than maxReplayPackets packets back (the replay is
// one burst, and the subscriber's decoder has all of it to catch up on: Chromium decodes such a
// start at once and skips rendering the late frames), or when a packet of it is missing from
// the cache. A transport that comes up within maxReplayAge of being bound (it takes 50-500 ms on
// loopback) finds the keyframe asked for at Bind in the cache.
const (
	maxReplayAge     = 2 * time.Second
	maxReplayPackets = 300 // < videoCacheSlots: the cache still holds all of them
	// maxReplayTries bounds how often a replay is tried again when nothing of it reached the
	// subscriber (pion reports the transport connected a moment before its SRTP keys exist).
	maxReplayTries = 5
)

// keyframeMark remembers where the layer's last forwarded keyframe starts, and where the
// packets forwarded so far end. The fields without atomics are guarded by the layer's
// forwarding token (upLayer.fwd).
type keyframeMark struct {
	seq   uint16 // sequence number of the keyframe's first packet
	ts    uint32 // its RTP timestamp
	valid bool
	end   uint16       // one past the newest sequence number forwarded
	begun bool         // end is set
	at    atomic.Int64 // arrival (unix ns) of the keyframe's first packet; 0 before one came

	armed   atomic.Bool // want is not empty
	wantMu  sync.Mutex  // guards want
	want    []replayWant
	scratch []byte // replay buffer
}

// replayWant is a down track waiting for a replay, with the number of tries so far.
type replayWant struct {
	d     *DownTrack
	tries int
}

// observe notes p, a packet of the layer about to be forwarded. Forwarding token held.
func (k *keyframeMark) observe(p *packet) {
	if seq := p.hdr.SequenceNumber; !k.begun || int16(seq-k.end) >= 0 {
		k.end, k.begun = seq+1, true
	}
	if !p.keyframe || (k.valid && p.hdr.Timestamp == k.ts) {
		return
	}
	k.seq, k.ts, k.valid = p.hdr.SequenceNumber, p.hdr.Timestamp, true
	k.at.Store(p.arrival)
}

// fresh reports whether the layer has a keyframe recent enough to replay.
func (k *keyframeMark) fresh(now time.Time) bool {
	at := k.at.Load()
	return at != 0 && now.UnixNano()-at <= int64(maxReplayAge)
}

// arm queues d for a replay before the layer's next packet.
func (k *keyframeMark) arm(w replayWant) {
	k.wantMu.Lock()
	k.want = append(k.want, w)
	k.armed.Store(true)
	k.wantMu.Unlock()
}

// take returns and clears the queued down tracks.
func (k *keyframeMark) take() []replayWant {
	k.wantMu.Lock()
	defer k.wantMu.Unlock()
	w := k.want
	k.want = nil
	k.armed.Store(false)
	return w
}

// startFromCache is TransportReady's keyframe: d's target layer's cached keyframe, replayed
// now on the caller's goroutine, if there is a fresh one; else a request to the publisher.
func (t *UpTrack) startFromCache(d *DownTrack) {
	l, ok := t.replayLayer(d)
	if !ok {
		return
	}
	l.fwd.Lock()
	defer l.fwd.Unlock()
	l.kf.arm(replayWant{d: d})
	if l.kf.begun {
		t.replayKeyframe(l, l.kf.end)
	}
}

// replayLayer returns d's target layer if it has a fresh keyframe to replay; if it has none,
// it asks the publisher for one and reports false.
func (t *UpTrack) replayLayer(d *DownTrack) (*upLayer, bool) {
	i := int(d.target.Load())
	l := t.layer(i)
	if l == nil || t.info.Kind != KindVideo {
		return nil, false
	}
	if !l.kf.fresh(time.Now()) {
		t.log.Debug("no fresh keyframe to replay", "subscriber", d.subscriber, "layer", i)
		t.requestKeyframeReady(i)
		return nil, false
	}
	return l, true
}

// replayKeyframe sends the queued down tracks the layer's cached keyframe and the packets after
// it, up to next (excluded): the first packet not forwarded yet. It runs with l's forwarding
// token held: on the reader goroutine before it fans out a batch starting at next, or on
// TransportReady's goroutine with next one past the newest packet forwarded. A down track that
// can no longer use a replay, or for which the cache cannot serve one, gets a keyframe request
// to the publisher instead.
func (t *UpTrack) replayKeyframe(l *upLayer, next uint16) {
	wants := l.kf.take()
	live := wants[:0]
	for _, w := range wants {
		d := w.d
		if d.closed.Load() || d.packets.Load() != 0 || d.current.Load() != noLayer {
			continue
		}
		if int(d.target.Load()) != l.index {
			// Allocation moved it to another layer meanwhile: that layer's reader replays
			// before its next batch (its token cannot be taken while holding this one).
			if nl, ok := t.replayLayer(d); ok {
				nl.kf.arm(replayWant{d: d, tries: w.tries})
			}
			continue
		}
		live = append(live, w)
	}
	if len(live) == 0 {
		return
	}
	ahead := int16(next - l.kf.seq)
	if l.kf.valid && ahead <= 0 {
		return // a keyframe starts with next or in its frame: the live stream serves them
	}
	count := int(ahead)
	if !l.kf.valid || count > maxReplayPackets || !l.kf.fresh(time.Now()) {
		t.requestKeyframeReady(l.index)
		return
	}
	if l.kf.scratch == nil {
		l.kf.scratch = make([]byte, maxPacketSize)
	}
	var hdr rtp.Header
	now := time.Now().UnixNano()
	for i := range count {
		seq := l.kf.seq + uint16(i)
		n, ok := l.cache.Get(seq, l.kf.scratch)
		if !ok {
			t.requestKeyframeReady(l.index)
			break
		}
		hl, err := hdr.Unmarshal(l.kf.scratch[:n])
		if err != nil || hl > n {
			t.requestKeyframeReady(l.index)
			break
		}
		payload, ok := stripPadding(&hdr, l.kf.scratch[hl:n])
		if !ok || len(payload) == 0 {
			continue // padding only: the live path skips it too
		}
		p := packet{hdr: &hdr, payload: payload, layer: l.index, arrival: now}
		p.keyframe = t.codec.IsKeyframe(payload)
		p.parse(&hdr, &t.info)
		for _, w := range live {
			w.d.forward(&p)
		}
	}
	for _, w := range live {
		if w.d.packets.Load() != 0 {
			t.stats.KeyframeReplays.Add(1)
			t.log.Debug("keyframe replayed", "subscriber", w.d.subscriber, "layer", l.index, "packets", count,
				"age", time.Duration(now-l.kf.at.Load()), "tries", w.tries+1)
			continue
		}
		// Nothing reached the subscriber (its transport was not writable yet): the reader tries
		// again before its next batch, a few times.
		if w.tries+1 < maxReplayTries && !w.d.closed.Load() {
			w.d.mu.Lock()
			w.d.current.Store(noLayer)
			w.d.m.started = false
			w.d.mu.Unlock()
			l.kf.arm(replayWant{d: w.d, tries: w.tries + 1})
		}
	}
}
