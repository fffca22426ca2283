package room

import (
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
)

// PacketWriter sends RTP to one subscriber. pion's TrackLocalWriter satisfies it.
// WriteRTP must not keep header or payload after it returns.
type PacketWriter interface {
	WriteRTP(header *rtp.Header, payload []byte) (int, error)
}

// Binding is what negotiation decided for one subscriber's copy of a track.
type Binding struct {
	Writer              PacketWriter
	SSRC                uint32
	PayloadType         uint8
	AudioLevelExtID     uint8 // the subscriber's id for RFC 6464, 0 if not negotiated
	AbsCaptureTimeExtID uint8 // the subscriber's id for abs-capture-time, 0 if not negotiated
	// TWCCExtID is the subscriber's id for transport-wide sequence numbers. With Transport set,
	// the down track stamps them as it writes (0, or no Transport: not negotiated, or stamped
	// further down the write path).
	TWCCExtID uint8
	Transport TransportSequencer
}

// TransportSequencer numbers the packets of one subscriber transport for transport-wide
// congestion control and remembers when each was sent. Stamp runs once per packet written.
type TransportSequencer interface {
	Stamp(size int, now time.Time) uint16
}

// extBufs hold the header extension values of the packet being written, for one goroutine.
type extBufs struct {
	level [1]byte
	twcc  [2]byte
}

// DownTrackStats are one subscriber's counters for one track.
type DownTrackStats struct {
	Packets, Bytes uint64
	Layer          int     // layer being forwarded, -1 before the first keyframe
	TargetLayer    int     // layer the allocator chose
	FractionLost   float64 // from the subscriber's last receiver report
}

const (
	historySize = 512 // sent packets remembered for NACKs; power of two
	noLayer     = -1
	staleWindow = 4096 // packets older than this, or than the last switch, are not forwarded
	// A packet is retransmitted at most maxRetransmits times, and not again within
	// rtxInterval: a receiver NACKs a missing packet every 100 ms or so until it arrives, and on
	// a congested path (RTT grown by queueing) answering each repeat would multiply the load
	// that caused the loss.
	maxRetransmits = 3
	rtxInterval    = 250 * time.Millisecond
)

// historyEntry maps one sent sequence number back to the source packet.
type historyEntry struct {
	outSeq   uint16
	srcSeq   uint16
	layer    uint8
	valid    bool
	rtxCount uint8 // times retransmitted
	tsOffset uint32
	rtxAt    int64 // unix nanoseconds of the last retransmission
}

// munger keeps the subscriber's sequence numbers and timestamps continuous across layer
// switches and source changes.
type munger struct {
	started     bool
	seqOffset   uint16
	tsOffset    uint32
	switchSeq   uint16 // first source sequence number of the current layer
	lastSeq     uint16 // highest sequence number sent
	lastTS      uint32 // its timestamp
	lastArrival int64  // its arrival time, unix nanoseconds
}

// DownTrack is one subscriber's copy of one UpTrack.
type DownTrack struct {
	track      *UpTrack
	subscriber ParticipantSID
	stats      *Stats
	clockRate  uint32

	bind     atomic.Pointer[Binding]
	paused   atomic.Bool
	closed   atomic.Bool
	maxLayer atomic.Int32 // the subscriber's preference
	target   atomic.Int32 // chosen by allocation; written under mu
	current  atomic.Int32 // being forwarded; written under mu
	packets  atomic.Uint64
	bytes    atomic.Uint64
	payload  atomic.Uint64 // payload octets, for sender reports
	lost     atomic.Uint32 // fraction lost × 256 from the last receiver report
	first    firstPacket

	mu sync.Mutex // guards m and hist

	// probe is allocation's state for trying a higher layer than the estimate allows (allocate.go).
	probeMu sync.Mutex
	probe   layerProbe
	m       munger
	hist    [historySize]historyEntry

	// hdrs[i] and exts[i] are used only by the holder of layer i's forwarding token
	// (upLayer.fwd): its reader, or a keyframe replay.
	hdrs [MaxLayers]rtp.Header
	exts [MaxLayers]extBufs

	// Used only by the goroutine that calls HandleRTCP.
	rtxBuf [maxPacketSize]byte
	rtxHdr rtp.Header
	rtxExt extBufs
}

func newDownTrack(t *UpTrack, subscriber ParticipantSID, stats *Stats) *DownTrack {
	d := &DownTrack{track: t, subscriber: subscriber, stats: stats, clockRate: t.info.Codec.ClockRate}
	d.maxLayer.Store(MaxLayers - 1)
	d.target.Store(0)
	d.current.Store(noLayer)
	d.m.lastSeq = uint16(rand.Uint32())
	d.m.lastTS = rand.Uint32()
	return d
}

// Track returns the published track this is a copy of.
func (d *DownTrack) Track() *UpTrack { return d.track }

// TrackID returns the published track's id (the msid track id the subscriber sees).
func (d *DownTrack) TrackID() TrackID { return d.track.info.ID }

// StreamID returns the publisher's participant sid (the msid stream id the subscriber sees).
func (d *DownTrack) StreamID() string { return string(d.track.info.Participant) }

// Kind returns audio or video.
func (d *DownTrack) Kind() Kind { return d.track.info.Kind }

// Codec returns the codec the subscriber must accept: the publisher's.
func (d *DownTrack) Codec() CodecParams { return d.track.info.Codec }

// Bind starts forwarding to the subscriber once negotiation has decided SSRC and payload type.
func (d *DownTrack) Bind(b Binding) {
	d.bind.Store(&b)
	d.track.RequestKeyframe(int(d.target.Load()))
}

// TransportReady tells the down track that its subscriber's transport (ICE and DTLS) is up.
// Bind comes with negotiation, before that, so the keyframe it asked for found no way to the
// subscriber; if nothing has been sent yet, the layer's cached keyframe is replayed to it at
// once, on the caller's goroutine, or if there is none a new one is asked for now rather than
// after the keyframe throttle's interval (keyframecache.go). It must not be called with a lock
// held that a layer's reader might wait for.
func (d *DownTrack) TransportReady() {
	if d.packets.Load() == 0 && d.bind.Load() != nil && !d.paused.Load() {
		d.track.startFromCache(d)
	}
}

// Unbind stops writing; packets are dropped until the next Bind.
func (d *DownTrack) Unbind() { d.bind.Store(nil) }

// SSRC returns the SSRC the subscriber receives, or 0 before negotiation.
func (d *DownTrack) SSRC() uint32 {
	if b := d.bind.Load(); b != nil {
		return b.SSRC
	}
	return 0
}

// SetPaused pauses or resumes forwarding. Resuming waits for a keyframe.
func (d *DownTrack) SetPaused(paused bool) {
	if d.paused.Swap(paused) == paused || paused {
		return
	}
	d.mu.Lock()
	d.current.Store(noLayer)
	d.mu.Unlock()
	d.track.RequestKeyframe(int(d.target.Load()))
}

// Paused reports whether the subscriber paused the track.
func (d *DownTrack) Paused() bool { return d.paused.Load() }

// SetMaxLayer records the subscriber's preferred highest layer.
func (d *DownTrack) SetMaxLayer(q Quality) { d.maxLayer.Store(int32(q)) }

// MaxLayer returns the subscriber's preferred highest layer.
func (d *DownTrack) MaxLayer() Quality { return Quality(d.maxLayer.Load()) }

// SetTargetLayer chooses the layer to forward. The switch happens at the next keyframe of that
// layer, which is requested now.
func (d *DownTrack) SetTargetLayer(layer int) {
	if layer < 0 || layer >= MaxLayers {
		return
	}
	d.mu.Lock()
	changed := int(d.target.Load()) != layer
	d.target.Store(int32(layer))
	d.mu.Unlock()
	if changed {
		d.track.RequestKeyframe(layer)
	}
}

// Stats returns the down track's counters.
func (d *DownTrack) Stats() DownTrackStats {
	return DownTrackStats{
		Packets:      d.packets.Load(),
		Bytes:        d.bytes.Load(),
		Layer:        int(d.current.Load()),
		TargetLayer:  int(d.target.Load()),
		FractionLost: float64(d.lost.Load()) / 256,
	}
}

// SenderReport returns what an RTCP sender report for the subscriber's stream says at now:
// its SSRC, the RTP time of now (extrapolated from the last packet sent), and the packets and
// payload octets sent. ok is false until a packet has been sent.
func (d *DownTrack) SenderReport(now time.Time) (ssrc, rtpTime, packets, octets uint32, ok bool) {
	b := d.bind.Load()
	if b == nil || d.packets.Load() == 0 {
		return 0, 0, 0, 0, false
	}
	d.mu.Lock()
	m := d.m
	d.mu.Unlock()
	if !m.started {
		return 0, 0, 0, 0, false
	}
	elapsed := now.UnixNano() - m.lastArrival
	ticks := elapsed * int64(d.clockRate) / int64(time.Second)
	return b.SSRC, m.lastTS + uint32(ticks), uint32(d.packets.Load()), uint32(d.payload.Load()), true
}

// ContinueFrom makes d carry on prev's sequence numbers and timestamps, so that a subscriber
// whose sender switches from prev's track to d's (e.g. a WHEP slot fed by the next publisher)
// sees one unbroken stream.
func (d *DownTrack) ContinueFrom(prev *DownTrack) {
	prev.mu.Lock()
	m := prev.m
	prev.mu.Unlock()
	d.mu.Lock()
	d.m = munger{started: m.started, lastSeq: m.lastSeq, lastTS: m.lastTS, lastArrival: m.lastArrival}
	d.mu.Unlock()
}

// Close detaches the down track from its track; its subscriber gets nothing more.
func (d *DownTrack) Close() { d.close() }

func (d *DownTrack) close() {
	d.closed.Store(true)
	d.track.removeDownTrack(d)
}

// forward sends one packet of layer p.layer if it is the layer being forwarded, or the first
// keyframe of the target layer. It runs with that layer's forwarding token held (upLayer.fwd),
// on its reader goroutine or in a keyframe replay, and never blocks on another subscriber.
func (d *DownTrack) forward(p *packet) {
	layer := int32(p.layer)
	if layer != d.current.Load() && layer != d.target.Load() {
		return // another simulcast layer
	}
	b := d.bind.Load()
	if b == nil {
		d.stats.Drop(DropUnbound)
		return
	}
	if d.paused.Load() {
		d.stats.Drop(DropPaused)
		return
	}
	h := &d.hdrs[p.layer]
	d.mu.Lock()
	reason, ok := d.rewrite(p, h)
	d.mu.Unlock()
	if !ok {
		if reason == DropWaitKeyframe || reason == dropSwitchPending {
			// Until the keyframe comes, ask again (the layer's throttle spaces the requests): a
			// request can be lost or throttled away, and a simulcast encoder may not send
			// another keyframe on that layer for a long time by itself.
			d.track.RequestKeyframe(p.layer)
		}
		if reason != dropNone && reason != dropSwitchPending {
			d.stats.Drop(reason)
		}
		return
	}
	if !d.write(b, h, p.hdr.Marker, p.payload, &p.fwdExt, &d.exts[p.layer]) && d.packets.Load() == 0 {
		// Nothing has reached the subscriber yet (its transport was not ready): the stream
		// must start again at a keyframe, or its decoder would begin with deltas.
		d.mu.Lock()
		if d.packets.Load() == 0 {
			d.current.Store(noLayer)
			d.m.started = false
		}
		d.mu.Unlock()
		d.track.RequestKeyframe(p.layer)
	}
}

// dropNone marks a packet that is skipped without being a drop (the old layer's packets while a
// switch waits for its keyframe go on being forwarded; the new layer's are just not used yet).
const dropNone DropReason = 255

// dropSwitchPending marks a packet of the layer being switched to, before its keyframe: not
// used yet, not a drop.
const dropSwitchPending DropReason = 254

// rewrite decides whether p is forwarded and sets h's sequence number and timestamp. d.mu held.
func (d *DownTrack) rewrite(p *packet, h *rtp.Header) (DropReason, bool) {
	layer := int32(p.layer)
	cur, tgt := d.current.Load(), d.target.Load()
	if layer != cur {
		if layer != tgt {
			return dropNone, false
		}
		if !p.keyframe {
			if cur == noLayer {
				return DropWaitKeyframe, false
			}
			return dropSwitchPending, false
		}
		d.startLayer(p)
		d.current.Store(layer)
		if cur != noLayer {
			d.stats.LayerSwitches.Add(1)
		}
	}
	seq := p.hdr.SequenceNumber
	since := int16(seq - d.m.switchSeq)
	if since < 0 {
		return DropStale, false
	}
	if since > staleWindow {
		// Keep the reference close behind, so that the comparison stays valid forever and a
		// packet more than staleWindow older than the newest is treated as stale.
		d.m.switchSeq = seq - staleWindow
	}
	outSeq := seq + d.m.seqOffset
	outTS := p.hdr.Timestamp + d.m.tsOffset
	if int16(outSeq-d.m.lastSeq) > 0 {
		d.m.lastSeq, d.m.lastTS, d.m.lastArrival = outSeq, outTS, p.arrival
	}
	d.hist[outSeq&(historySize-1)] = historyEntry{
		outSeq: outSeq, srcSeq: seq, layer: uint8(p.layer), valid: true, tsOffset: d.m.tsOffset,
	}
	h.SequenceNumber, h.Timestamp = outSeq, outTS
	return 0, true
}

// startLayer sets the offsets so that p, a keyframe, follows the last packet sent.
func (d *DownTrack) startLayer(p *packet) {
	m := &d.m
	delta := uint32(1)
	if m.started && d.clockRate > 0 && p.arrival > m.lastArrival {
		elapsed := time.Duration(p.arrival - m.lastArrival)
		if ticks := uint64(elapsed) * uint64(d.clockRate) / uint64(time.Second); ticks > 1 {
			delta = uint32(ticks)
		}
	}
	m.seqOffset = m.lastSeq + 1 - p.hdr.SequenceNumber
	m.tsOffset = m.lastTS + delta - p.hdr.Timestamp
	m.switchSeq = p.hdr.SequenceNumber
	m.started = true
}

// write fills in the subscriber's header fields and sends; it reports whether the packet left.
// h carries the rewritten sequence number and timestamp. pion accepts and silently discards
// packets (0 bytes, no error) until the transport's SRTP keys exist: that counts as not sent.
func (d *DownTrack) write(b *Binding, h *rtp.Header, marker bool, payload []byte, ext *fwdExt, bufs *extBufs) bool {
	h.Version = 2
	h.Padding = false
	h.Marker = marker
	h.PayloadType = b.PayloadType
	h.SSRC = b.SSRC
	h.CSRC = h.CSRC[:0]
	h.Extension = false
	h.ExtensionProfile = 0
	h.Extensions = h.Extensions[:0]
	if ext.hasLevel && b.AudioLevelExtID != 0 {
		bufs.level[0] = ext.level
		_ = h.SetExtension(b.AudioLevelExtID, bufs.level[:])
	}
	if ext.absCapture != nil && b.AbsCaptureTimeExtID != 0 {
		_ = h.SetExtension(b.AbsCaptureTimeExtID, ext.absCapture)
	}
	if b.TWCCExtID != 0 && b.Transport != nil {
		// The size counts the extension about to be added (4 bytes with its padding).
		seq := b.Transport.Stamp(h.MarshalSize()+4+len(payload), time.Now())
		bufs.twcc[0], bufs.twcc[1] = byte(seq>>8), byte(seq)
		_ = h.SetExtension(b.TWCCExtID, bufs.twcc[:])
	}
	n, err := b.Writer.WriteRTP(h, payload)
	switch {
	case err != nil:
		d.stats.Drop(DropWriteError)
		return false
	case n == 0:
		d.stats.Drop(DropNotReady)
		return false
	}
	d.packets.Add(1)
	d.bytes.Add(uint64(n))
	d.payload.Add(uint64(len(payload)))
	d.stats.PacketsOut.Add(1)
	d.stats.BytesOut.Add(uint64(n))
	d.first.sent(d.track.info.Kind)
	return true
}

// HandleRTCP processes RTCP from the subscriber: NACKs are answered from the publisher's packet
// cache, PLI/FIR become (throttled) keyframe requests, receiver reports update loss. It must be
// called from one goroutine at a time.
func (d *DownTrack) HandleRTCP(pkts []rtcp.Packet) {
	for _, pkt := range pkts {
		switch p := pkt.(type) {
		case *rtcp.TransportLayerNack:
			for _, pair := range p.Nacks {
				pair.Range(func(seq uint16) bool {
					d.stats.NACKsReceived.Add(1)
					d.retransmit(seq)
					return true
				})
			}
		case *rtcp.PictureLossIndication, *rtcp.FullIntraRequest:
			d.stats.PLIsReceived.Add(1)
			if cur := d.current.Load(); cur != noLayer {
				d.track.RequestKeyframe(int(cur))
			} else {
				d.track.RequestKeyframe(int(d.target.Load()))
			}
		case *rtcp.ReceiverReport:
			d.handleReports(p.Reports)
		}
	}
}

func (d *DownTrack) handleReports(reports []rtcp.ReceptionReport) {
	ssrc := d.SSRC()
	for _, r := range reports {
		if r.SSRC == ssrc {
			d.lost.Store(uint32(r.FractionLost))
		}
	}
}

// retransmit resends the packet the subscriber knows as outSeq, if the cache still has it.
func (d *DownTrack) retransmit(outSeq uint16) {
	b := d.bind.Load()
	if b == nil {
		return
	}
	now := time.Now().UnixNano()
	d.mu.Lock()
	slot := &d.hist[outSeq&(historySize-1)]
	e := *slot
	found := e.valid && e.outSeq == outSeq
	repeat := found && (e.rtxCount >= maxRetransmits || (e.rtxCount > 0 && now-e.rtxAt < int64(rtxInterval)))
	if found && !repeat {
		slot.rtxCount++
		slot.rtxAt = now
	}
	d.mu.Unlock()
	if !found {
		d.stats.RetransmitMisses.Add(1)
		return
	}
	if repeat {
		d.stats.RetransmitsSuppressed.Add(1)
		return
	}
	l := d.track.layer(int(e.layer))
	if l == nil {
		d.stats.RetransmitMisses.Add(1)
		return
	}
	n, ok := l.cache.Get(e.srcSeq, d.rtxBuf[:])
	if !ok {
		d.stats.RetransmitMisses.Add(1)
		return
	}
	h := &d.rtxHdr
	hl, err := h.Unmarshal(d.rtxBuf[:n])
	if err != nil {
		d.stats.RetransmitMisses.Add(1)
		return
	}
	payload, ok := stripPadding(h, d.rtxBuf[hl:n])
	if !ok {
		d.stats.RetransmitMisses.Add(1)
		return
	}
	var ext fwdExt
	ext.parse(h, &d.track.info)
	h.SequenceNumber = outSeq
	h.Timestamp += e.tsOffset
	d.stats.Retransmits.Add(1)
	d.write(b, h, h.Marker, payload, &ext, &d.rtxExt)
}
