package relay

import (
	"errors"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/webrtc/v4"

	"github.com/cascade-sfu/cascade/pkg/room"
	"github.com/cascade-sfu/cascade/pkg/rtc"
)

// Media crosses a link in slots: a fixed set of sendrecv transceivers negotiated when the link
// is set up, so that starting or stopping a track never renegotiates. Each side sends at most
// one track layer per slot and receives at most one; a slot is named by its mid, which both
// sides share. Which track a slot carries is said on the control channel.
const (
	audioSlots = 4
	videoSlots = 8
)

var (
	errNoSlot     = errors.New("relay: no free slot on the link")
	errSlotClosed = errors.New("relay: slot source closed")
)

type slot struct {
	mid  string
	kind room.Kind
	tr   *webrtc.RTPTransceiver

	out      atomic.Pointer[room.DownTrack] // what this node sends in the slot
	reserved bool                           // guarded by Link.mu
	// last is the down track the slot carried most recently (guarded by Link.mu): the next
	// one goes on from its sequence numbers and timestamps, because the slot is one RTP
	// stream (one SSRC) to the peer. Starting again from 1 would look like a replay to the
	// peer's SRTP, which would drop everything until the numbers passed the old ones.
	last *room.DownTrack

	// lost is the fraction (× 256) of this slot's packets the peer reported lost in its last
	// receiver report, at lostAt (unix nanoseconds; 0: never).
	lost   atomic.Uint32
	lostAt atomic.Int64

	ready  chan struct{} // closed once the peer's first packet in the slot arrived
	once   sync.Once
	remote atomic.Pointer[webrtc.TrackRemote]
}

// addSlots creates the link's transceivers; both sides do it before the offer or answer, so
// that pion pairs them by kind and order.
func addSlots(pc *webrtc.PeerConnection) error {
	for _, k := range []struct {
		kind webrtc.RTPCodecType
		n    int
	}{{webrtc.RTPCodecTypeAudio, audioSlots}, {webrtc.RTPCodecTypeVideo, videoSlots}} {
		for range k.n {
			if _, err := pc.AddTransceiverFromKind(k.kind, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendrecv}); err != nil {
				return err
			}
		}
	}
	return nil
}

// openSlots indexes the negotiated transceivers by mid, detaches pion's placeholder tracks and
// starts one RTCP reader per slot. Called once the link is open.
func (l *Link) openSlots() {
	l.mu.Lock()
	pc := l.pc
	l.mu.Unlock()
	if pc == nil {
		return
	}
	slots := map[string]*slot{}
	for _, tr := range pc.GetTransceivers() {
		if tr.Mid() == "" || tr.Sender() == nil {
			continue
		}
		kind := room.KindVideo
		if tr.Kind() == webrtc.RTPCodecTypeAudio {
			kind = room.KindAudio
		}
		s := &slot{mid: tr.Mid(), kind: kind, tr: tr, ready: make(chan struct{})}
		_ = tr.Sender().ReplaceTrack(nil)
		slots[s.mid] = s
	}
	l.mu.Lock()
	l.slots = slots
	l.mu.Unlock()
	for _, s := range slots {
		l.slotWG.Add(1)
		go l.readSlotRTCP(s)
	}
}

// onTrack records the peer's track in a slot when its first packet arrives.
func (l *Link) onTrack(t *webrtc.TrackRemote, recv *webrtc.RTPReceiver) {
	l.mu.Lock()
	pc := l.pc
	l.mu.Unlock()
	if pc == nil {
		return
	}
	for _, tr := range pc.GetTransceivers() {
		if tr.Receiver() != recv {
			continue
		}
		// The slot map may not exist yet if media beats the control channel's open.
		deadline := time.Now().Add(5 * time.Second)
		for time.Now().Before(deadline) {
			if s := l.slot(tr.Mid()); s != nil {
				s.remote.Store(t)
				s.once.Do(func() { close(s.ready) })
				return
			}
			select {
			case <-l.done:
				return
			case <-time.After(10 * time.Millisecond):
			}
		}
	}
}

func (l *Link) slot(mid string) *slot {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.slots[mid]
}

// Attach sends d's packets to the peer in a free slot of its kind and returns the slot's mid.
func (l *Link) Attach(d *room.DownTrack) (string, error) {
	l.mu.Lock()
	var free []*slot
	for _, s := range l.slots {
		if s.kind == d.Kind() && !s.reserved {
			free = append(free, s)
		}
	}
	if len(free) == 0 {
		l.mu.Unlock()
		return "", errNoSlot
	}
	sort.Slice(free, func(i, j int) bool { return free[i].mid < free[j].mid })
	s := free[0]
	s.reserved = true
	prev := s.last
	l.mu.Unlock()
	if prev != nil {
		d.ContinueFrom(prev)
	}
	if err := s.tr.Sender().ReplaceTrack(rtc.NewTrackLocal(d)); err != nil {
		l.mu.Lock()
		s.reserved = false
		l.mu.Unlock()
		return "", fmt.Errorf("relay: attach to slot %s: %w", s.mid, err)
	}
	l.mu.Lock()
	s.last = d
	l.mu.Unlock()
	s.out.Store(d)
	return s.mid, nil
}

// Detach stops sending in a slot and frees it.
func (l *Link) Detach(mid string) {
	s := l.slot(mid)
	if s == nil {
		return
	}
	if d := s.out.Swap(nil); d != nil && s.kind == room.KindVideo {
		l.packetsDetached.Add(d.Stats().Packets)
	}
	_ = s.tr.Sender().ReplaceTrack(nil)
	l.mu.Lock()
	s.reserved = false
	l.mu.Unlock()
}

// readSlotRTCP feeds the peer's feedback for what we send in a slot (NACK, PLI, reports) to
// the down track currently attached.
func (l *Link) readSlotRTCP(s *slot) {
	defer l.slotWG.Done()
	rtc.ReadSenderRTCP(s.tr.Sender(), func(pkts []rtcp.Packet) {
		l.countFeedback(pkts)
		for _, p := range pkts {
			var reports []rtcp.ReceptionReport
			switch p := p.(type) {
			case *rtcp.ReceiverReport:
				reports = p.Reports
			case *rtcp.SenderReport:
				reports = p.Reports
			}
			if len(reports) > 0 { // pion routed the packet here by the report's SSRC: ours
				s.lost.Store(uint32(reports[0].FractionLost))
				s.lostAt.Store(time.Now().UnixNano())
			}
		}
		if d := s.out.Load(); d != nil {
			d.HandleRTCP(pkts)
		}
	})
}

// countFeedback counts the peer's NACKed sequence numbers and keyframe requests.
func (l *Link) countFeedback(pkts []rtcp.Packet) {
	for _, p := range pkts {
		switch p := p.(type) {
		case *rtcp.TransportLayerNack:
			for _, pair := range p.Nacks {
				l.nacksIn.Add(uint64(len(pair.PacketList())))
			}
		case *rtcp.PictureLossIndication, *rtcp.FullIntraRequest:
			l.plisIn.Add(1)
		}
	}
}

// Source returns a room.PacketSource reading what the peer sends in a slot.
func (l *Link) Source(mid string) (room.PacketSource, error) {
	s := l.slot(mid)
	if s == nil {
		return nil, fmt.Errorf("relay: no slot %q", mid)
	}
	return &slotSource{l: l, s: s, closed: make(chan struct{})}, nil
}

// slotSource is one track layer received in a slot. Closing it unblocks its reader with a
// read deadline, leaving the slot's receiver running for the next track.
type slotSource struct {
	l         *Link
	s         *slot
	closed    chan struct{}
	closeOnce sync.Once
	started   bool      // reader goroutine only
	deadline  time.Time // reader goroutine only: SetReadDeadline's
}

// SetReadDeadline bounds ReadRTP (the room's reader holds a frame's first packets until its
// last, at most until the deadline). Called from the reader goroutine.
func (r *slotSource) SetReadDeadline(t time.Time) error {
	r.deadline = t
	if !r.started {
		return nil // applied by the first read
	}
	if rt := r.s.remote.Load(); rt != nil {
		return rt.SetReadDeadline(t)
	}
	return nil
}

func (r *slotSource) ReadRTP(buf []byte) (int, error) {
	select {
	case <-r.s.ready:
	case <-r.closed:
		return 0, errSlotClosed
	case <-r.l.done:
		return 0, ErrLinkClosed
	}
	t := r.s.remote.Load()
	if !r.started {
		// A previous source of this slot may have left a deadline (Close sets one).
		r.started = true
		_ = t.SetReadDeadline(r.deadline)
	}
	n, _, err := t.Read(buf)
	if err != nil {
		select {
		case <-r.closed:
			return 0, errSlotClosed
		default:
		}
		return 0, err
	}
	return n, nil
}

func (r *slotSource) RequestKeyframe() error {
	t := r.s.remote.Load()
	if t == nil {
		return nil
	}
	r.l.mu.Lock()
	pc := r.l.pc
	r.l.mu.Unlock()
	r.l.plisOut.Add(1)
	return pc.WriteRTCP([]rtcp.Packet{&rtcp.PictureLossIndication{MediaSSRC: uint32(t.SSRC())}})
}

func (r *slotSource) Close() error {
	r.closeOnce.Do(func() {
		close(r.closed)
		if t := r.s.remote.Load(); t != nil {
			_ = t.SetReadDeadline(time.Now())
		}
	})
	return nil
}

// extID returns the link's negotiated id of the header extension uri on its receivers of kind,
// 0 if none: relayed media carries the audio level and the abs-capture time under them.
func (l *Link) extID(kind webrtc.RTPCodecType, uri string) uint8 {
	l.mu.Lock()
	pc := l.pc
	l.mu.Unlock()
	if pc == nil {
		return 0
	}
	for _, tr := range pc.GetTransceivers() {
		if tr.Kind() != kind || tr.Receiver() == nil {
			continue
		}
		for _, h := range tr.Receiver().GetParameters().HeaderExtensions {
			if h.URI == uri {
				return uint8(h.ID)
			}
		}
	}
	return 0
}
