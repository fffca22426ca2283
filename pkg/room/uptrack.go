package room

import (
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtp"

	"github.com/cascade-sfu/cascade/pkg/rtputil"
)

// PacketSource delivers the RTP packets of one simulcast layer of a published track: a local
// publisher's PeerConnection, or a relay link from another node.
type PacketSource interface {
	// ReadRTP reads one whole RTP packet into buf. An error ends the layer.
	ReadRTP(buf []byte) (int, error)
	// RequestKeyframe asks the origin of the layer for a keyframe (RTCP PLI).
	RequestKeyframe() error
	// Close ends the source; a blocked ReadRTP returns an error.
	Close() error
}

// CodecParams describe a track's codec as negotiated with its publisher.
type CodecParams struct {
	MimeType    string // e.g. "video/VP8"
	ClockRate   uint32
	Channels    uint16
	SDPFmtpLine string
}

// TrackInfo describes a published track. It is immutable once published, except Muted,
// which TrackInfo() reports at the time of the call.
type TrackInfo struct {
	ID          TrackID
	Participant ParticipantSID
	Identity    Identity
	Kind        Kind
	Source      TrackSource
	Name        string
	// ClientID is the publisher's own id for the track (its msid track id), so that the
	// publisher can tell its tracks apart.
	ClientID string
	Muted    bool
	Codec    CodecParams
	// RIDs are the simulcast layers' rids, lowest quality first; empty for one layer.
	RIDs []string
	// AudioLevelExtID is the publisher's id for the RFC 6464 audio level extension (0: none).
	AudioLevelExtID uint8
	// AbsCaptureTimeExtID is the publisher's id for the abs-capture-time extension (0: none).
	// Its value, the capture time of the packet's frame on the publisher's clock, is forwarded
	// unchanged to every subscriber that negotiated it, across every relay hop, so that a
	// receiver can measure end-to-end delay and synchronize sources.
	AbsCaptureTimeExtID uint8
}

const (
	maxPacketSize     = 1500
	videoCacheSlots   = 512
	audioCacheSlots   = 128
	layerActiveWindow = 2 * time.Second
)

// packet is one received RTP packet on its way to the down tracks. It lives on the reader
// goroutine's stack frame and is only valid during forwarding.
type packet struct {
	hdr      *rtp.Header
	payload  []byte
	layer    int
	keyframe bool
	arrival  int64 // unix nanoseconds
	fwdExt
}

// fwdExt are the header extension values a packet carries through the SFU. Extension ids are
// negotiated per PeerConnection, so values are carried, and each subscriber's ids applied when
// the packet is written.
type fwdExt struct {
	level    uint8 // RFC 6464 level, valid if hasLevel
	hasLevel bool
	// absCapture is the abs-capture-time value (8 or 16 bytes), nil when absent. It aliases the
	// received packet's buffer and is valid only while the packet is being forwarded.
	absCapture []byte
}

// parse reads the forwarded extensions of h as described by info.
func (e *fwdExt) parse(h *rtp.Header, info *TrackInfo) {
	if id := info.AudioLevelExtID; id != 0 {
		if lvl, _, ok := rtputil.AudioLevel(h.GetExtension(id)); ok {
			e.level, e.hasLevel = lvl, true
		}
	}
	if id := info.AbsCaptureTimeExtID; id != 0 {
		if v := h.GetExtension(id); len(v) == 8 || len(v) == 16 {
			e.absCapture = v
		}
	}
}

type upLayer struct {
	index    int
	rid      string
	src      PacketSource
	cache    *rtputil.PacketCache
	meter    *rtputil.RateMeter
	throttle *rtputil.KeyframeThrottle
	lastRecv atomic.Int64 // unix nanoseconds of the last packet

	// fwd is the layer's forwarding token: whoever holds it is the only one writing the
	// layer's packets to down tracks. The reader holds it while it fans out a batch; a keyframe
	// replay started by DownTrack.TransportReady holds it on its caller's goroutine
	// (keyframecache.go), so that the replayed packets and the live ones never interleave for a
	// subscriber. Uncontended but for a replay. It guards kf's fields without atomics and the
	// down tracks' per-layer write buffers (DownTrack.hdrs, exts). The writes done under it are
	// the forwarding it serializes.
	fwd sync.Mutex
	kf  keyframeMark // the last keyframe, for starting new subscribers (keyframecache.go)
}

// UpTrack is one published track with up to MaxLayers simulcast layers. Each layer is read by
// one goroutine that fans packets out to the track's DownTracks.
type UpTrack struct {
	info    TrackInfo
	codec   rtputil.Codec
	stats   *Stats
	log     *slog.Logger
	kfEvery time.Duration
	onEnded func(*UpTrack) // called once, from a reader goroutine, when every layer has ended
	batcher WriteBatcher   // nil: every write leaves at once
	muted   atomic.Bool
	subs    atomic.Pointer[[]*DownTrack] // copy-on-write; written under mu
	layers  [MaxLayers]atomic.Pointer[upLayer]
	// suspended[i]: layer i is paused upstream (SetLayerSuspended); allocation skips it.
	suspended [MaxLayers]atomic.Bool
	levelSum  atomic.Uint64 // sum of loudness (127 - level) of packets since the last speaker tick
	levelN    atomic.Uint64

	order uint64 // position in the room's publish order; set by the room under its lock

	mu     sync.Mutex // guards the fields below
	closed bool
	live   int // layers whose reader is running
	wg     sync.WaitGroup
}

func newUpTrack(info TrackInfo, stats *Stats, log *slog.Logger, kfEvery time.Duration, batcher WriteBatcher, onEnded func(*UpTrack)) *UpTrack {
	t := &UpTrack{
		info:    info,
		codec:   rtputil.CodecFromMime(info.Codec.MimeType),
		stats:   stats,
		log:     log.With("track", info.ID),
		kfEvery: kfEvery,
		batcher: batcher,
		onEnded: onEnded,
	}
	t.muted.Store(info.Muted)
	empty := []*DownTrack{}
	t.subs.Store(&empty)
	return t
}

// ID returns the track's id.
func (t *UpTrack) ID() TrackID { return t.info.ID }

// Info returns the track's description, with its current mute state.
func (t *UpTrack) Info() TrackInfo {
	info := t.info
	info.Muted = t.muted.Load()
	info.RIDs = append([]string(nil), t.info.RIDs...)
	return info
}

// Kind returns audio or video.
func (t *UpTrack) Kind() Kind { return t.info.Kind }

// layerIndex maps a rid to its layer index ("" is layer 0 of a single-layer track).
func (t *UpTrack) layerIndex(rid string) (int, bool) {
	if len(t.info.RIDs) == 0 {
		return 0, rid == ""
	}
	for i, r := range t.info.RIDs {
		if r == rid && i < MaxLayers {
			return i, true
		}
	}
	return 0, false
}

// AddLayer starts forwarding the layer with the given rid ("" for a track without simulcast),
// read from src. The track owns src from now on and closes it.
func (t *UpTrack) AddLayer(rid string, src PacketSource) error {
	idx, ok := t.layerIndex(rid)
	if !ok {
		return ErrTooManyLayers
	}
	slots := videoCacheSlots
	if t.info.Kind == KindAudio {
		slots = audioCacheSlots
	}
	l := &upLayer{
		index:    idx,
		rid:      rid,
		src:      src,
		cache:    rtputil.NewPacketCache(slots, maxPacketSize),
		meter:    rtputil.NewRateMeter(time.Second, 10),
		throttle: rtputil.NewKeyframeThrottle(t.kfEvery),
	}
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return ErrTrackClosed
	}
	if !t.layers[idx].CompareAndSwap(nil, l) {
		t.mu.Unlock()
		return ErrLayerExists
	}
	t.live++
	t.wg.Add(1)
	t.mu.Unlock()
	go t.readLoop(l)
	return nil
}

func (t *UpTrack) readLoop(l *upLayer) {
	defer t.layerEnded()
	rb := &readBatch{}
	dl, _ := l.src.(deadlineSource)
	hold := dl != nil && t.batcher != nil && t.info.Kind == KindVideo
	held := false // a read deadline bounds the packets held
	for {
		i := rb.n
		n, err := l.src.ReadRTP(rb.bufs[i][:])
		if err != nil {
			t.forwardBatch(l, rb)
			if held && isTimeout(err) {
				// The frame's last packet is late or lost: what was held has gone; go on.
				_ = dl.SetReadDeadline(time.Time{})
				held = false
				continue
			}
			t.log.Debug("layer ended", "rid", l.rid, "err", err)
			return
		}
		p := &rb.pkts[i]
		if !t.receive(l, rb.bufs[i][:n], &rb.hdrs[i], p) {
			continue
		}
		rb.n++
		// Hold the packets of a video frame until its last one (marker) and forward them
		// together: each subscriber then gets the frame in one send (UDP GSO). The frame cannot
		// be decoded before its last packet anyway, so only its first packets wait, for at most
		// holdFor.
		if hold && !p.hdr.Marker && rb.n < maxBatch && p.hdr.Timestamp == rb.hdrs[0].Timestamp {
			if !held {
				_ = dl.SetReadDeadline(time.Unix(0, rb.pkts[0].arrival).Add(holdFor))
				held = true
			}
			continue
		}
		t.forwardBatch(l, rb)
		if held {
			_ = dl.SetReadDeadline(time.Time{})
			held = false
		}
	}
}

// Holding a frame's packets (readLoop): at most maxBatch packets, for at most holdFor.
const (
	maxBatch = 16
	holdFor  = 10 * time.Millisecond
)

// readBatch is a layer reader's packets not yet forwarded. Used by that reader only.
type readBatch struct {
	n    int
	bufs [maxBatch][maxPacketSize]byte
	hdrs [maxBatch]rtp.Header
	pkts [maxBatch]packet
}

// deadlineSource is a PacketSource whose reads can time out (with an error that has
// Timeout() true); the reader then holds packets of a frame to forward them together.
type deadlineSource interface {
	SetReadDeadline(t time.Time) error
}

func isTimeout(err error) bool {
	var t interface{ Timeout() bool }
	return errors.As(err, &t) && t.Timeout()
}

// forwardBatch sends the batch's packets, read from layer l, to every subscriber. Several packets go subscriber by
// subscriber, each subscriber's in one write batch, so that they leave together and the first
// subscribers do not wait for the last ones.
func (t *UpTrack) forwardBatch(l *upLayer, rb *readBatch) {
	n := rb.n
	if n == 0 {
		return
	}
	rb.n = 0
	l.fwd.Lock()
	for i := range n {
		l.kf.observe(&rb.pkts[i])
	}
	if l.kf.armed.Load() {
		t.replayKeyframe(l, rb.pkts[0].hdr.SequenceNumber) // keyframecache.go
	}
	subs := *t.subs.Load()
	if n == 1 || t.batcher == nil {
		for i := range n {
			for _, d := range subs {
				d.forward(&rb.pkts[i])
			}
		}
	} else {
		for _, d := range subs {
			t.batcher.BeginBatch()
			for i := range n {
				d.forward(&rb.pkts[i])
			}
			t.batcher.EndBatch()
		}
	}
	l.fwd.Unlock()
}

// receive handles one packet read from layer l: counts it, caches it for retransmission and
// fills p for forwarding. It reports whether p is to be forwarded. It runs on l's reader
// goroutine only.
func (t *UpTrack) receive(l *upLayer, raw []byte, hdr *rtp.Header, p *packet) bool {
	now := time.Now()
	t.stats.PacketsIn.Add(1)
	t.stats.BytesIn.Add(uint64(len(raw)))
	if len(raw) >= maxPacketSize {
		t.stats.Drop(DropTooLarge)
		return false
	}
	hl, err := hdr.Unmarshal(raw)
	if err != nil || hl > len(raw) {
		t.stats.Drop(DropMalformed)
		return false
	}
	payload, ok := stripPadding(hdr, raw[hl:])
	if !ok {
		t.stats.Drop(DropMalformed)
		return false
	}
	if l.meter != nil {
		l.meter.Add(now, len(raw))
	}
	l.lastRecv.Store(now.UnixNano())
	l.cache.Put(hdr.SequenceNumber, raw)
	if len(payload) == 0 {
		t.stats.Drop(DropPadding)
		return false
	}
	*p = packet{hdr: hdr, payload: payload, layer: l.index, arrival: now.UnixNano()}
	p.keyframe = t.codec.IsKeyframe(payload)
	p.parse(hdr, &t.info)
	if p.hasLevel {
		t.levelSum.Add(uint64(127 - p.level))
		t.levelN.Add(1)
	}
	return true
}

// stripPadding returns the payload without RTP padding; ok is false if the padding is invalid.
func stripPadding(hdr *rtp.Header, payload []byte) ([]byte, bool) {
	if !hdr.Padding {
		return payload, true
	}
	if len(payload) == 0 {
		return nil, false
	}
	pad := int(payload[len(payload)-1])
	if pad == 0 || pad > len(payload) {
		return nil, false
	}
	return payload[:len(payload)-pad], true
}

func (t *UpTrack) layerEnded() {
	t.mu.Lock()
	t.live--
	notify := t.live == 0 && !t.closed && t.onEnded != nil
	t.mu.Unlock()
	t.wg.Done()
	if notify {
		t.onEnded(t)
	}
}

// addDownTrack attaches d so that it receives the track's packets.
func (t *UpTrack) addDownTrack(d *DownTrack) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return ErrTrackClosed
	}
	old := *t.subs.Load()
	next := make([]*DownTrack, 0, len(old)+1)
	next = append(next, old...)
	next = append(next, d)
	t.subs.Store(&next)
	return nil
}

// removeDownTrack detaches d; the next packet no longer reaches it.
func (t *UpTrack) removeDownTrack(d *DownTrack) {
	t.mu.Lock()
	defer t.mu.Unlock()
	old := *t.subs.Load()
	next := make([]*DownTrack, 0, len(old))
	for _, x := range old {
		if x != d {
			next = append(next, x)
		}
	}
	t.subs.Store(&next)
}

// Subscribe attaches a new down track that is not a participant's: a relay link's copy of the
// track. The caller binds it and closes it with DownTrack.Close.
func (t *UpTrack) Subscribe(subscriber ParticipantSID) (*DownTrack, error) {
	d := newDownTrack(t, subscriber, t.stats)
	if err := t.addDownTrack(d); err != nil {
		return nil, err
	}
	return d, nil
}

// MaxWantedLayer returns the highest layer any unpaused subscriber prefers, capped by the
// track's layers, or -1 when no one wants the track.
func (t *UpTrack) MaxWantedLayer() int {
	top := len(t.info.RIDs) - 1
	if top < 0 {
		top = 0
	}
	want := -1
	for _, d := range *t.subs.Load() {
		if !d.Paused() {
			want = max(want, min(int(d.MaxLayer()), top))
		}
	}
	return want
}

// Subscribers returns the number of attached down tracks.
func (t *UpTrack) Subscribers() int { return len(*t.subs.Load()) }

// layer returns layer i, or nil.
func (t *UpTrack) layer(i int) *upLayer {
	if i < 0 || i >= MaxLayers {
		return nil
	}
	return t.layers[i].Load()
}

// LayerBitrate returns the measured bitrate of layer i in bits per second.
func (t *UpTrack) LayerBitrate(i int, now time.Time) uint64 {
	if l := t.layer(i); l != nil {
		return l.meter.Rate(now)
	}
	return 0
}

// layerActive reports whether layer i has carried a packet recently and is not suspended.
func (t *UpTrack) layerActive(i int, now time.Time) bool {
	l := t.layer(i)
	return l != nil && !t.suspended[i].Load() && now.UnixNano()-l.lastRecv.Load() < int64(layerActiveWindow)
}

// SetLayerSuspended marks layer i as about to fall silent (or back), e.g. paused by the node
// that relays it for lack of bandwidth: layer allocation moves subscribers off a suspended
// layer at once rather than after it has been silent for a while.
func (t *UpTrack) SetLayerSuspended(i int, suspended bool) {
	if i >= 0 && i < MaxLayers {
		t.suspended[i].Store(suspended)
	}
}

// LayerSuspended reports whether layer i is marked suspended.
func (t *UpTrack) LayerSuspended(i int) bool {
	return i >= 0 && i < MaxLayers && t.suspended[i].Load()
}

// RequestKeyframe asks the publisher for a keyframe on layer i. Requests from all subscribers
// are collapsed to at most one per layer per keyframe interval.
func (t *UpTrack) RequestKeyframe(i int) {
	l := t.layer(i)
	if l == nil || t.info.Kind != KindVideo || !l.throttle.Allow(time.Now()) {
		return
	}
	t.stats.KeyframeRequests.Add(1)
	if err := l.src.RequestKeyframe(); err != nil {
		t.log.Debug("keyframe request failed", "layer", i, "err", err)
	}
}

// readyKeyframeInterval is the least time between a keyframe request for a subscriber whose
// transport just came up and the last request on that layer: the keyframe asked for at Bind
// (negotiation ends before ICE and DTLS do) was most likely dropped as not deliverable, and the
// full throttle interval would add up to KeyframeInterval to that subscriber's first frame.
const readyKeyframeInterval = 100 * time.Millisecond

// requestKeyframeReady is RequestKeyframe for a subscriber whose transport just came up: it
// waits only readyKeyframeInterval since the layer's last request.
func (t *UpTrack) requestKeyframeReady(i int) {
	l := t.layer(i)
	if l == nil || t.info.Kind != KindVideo || !l.throttle.AllowEvery(time.Now(), readyKeyframeInterval) {
		return
	}
	t.stats.KeyframeRequests.Add(1)
	if err := l.src.RequestKeyframe(); err != nil {
		t.log.Debug("keyframe request failed", "layer", i, "err", err)
	}
}

// takeSpeechLevel returns the mean loudness (0..127, higher is louder) of the packets since
// the last call, and resets it.
func (t *UpTrack) takeSpeechLevel() (float64, bool) {
	n := t.levelN.Swap(0)
	sum := t.levelSum.Swap(0)
	if n == 0 {
		return 0, false
	}
	return float64(sum) / float64(n), true
}

// Close stops every layer and waits for the reader goroutines. It is safe to call twice.
func (t *UpTrack) Close() {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		t.wg.Wait()
		return
	}
	t.closed = true
	empty := []*DownTrack{}
	t.subs.Store(&empty)
	t.mu.Unlock()
	for i := range t.layers {
		if l := t.layers[i].Load(); l != nil {
			_ = l.src.Close()
		}
	}
	t.wg.Wait()
}
