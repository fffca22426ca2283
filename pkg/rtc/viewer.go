package rtc

import (
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/pion/rtcp"
	"github.com/pion/webrtc/v4"

	"github.com/cascade-sfu/cascade/pkg/room"
)

// Viewer is a WHEP session: the client offers a fixed set of receive-only m-lines and the room's
// tracks are fed into them. Each m-line is a slot; a slot carries one track at a time, in the
// order tracks were published, and passes to the next waiting track of its kind when its track
// ends. Sequence numbers and timestamps continue across such a change. Implements
// room.SubscriberTransport.
type Viewer struct {
	pc   *webrtc.PeerConnection
	log  *slog.Logger
	side *sendSide
	out  *rtpOut        // nil: pion's write path
	wg   sync.WaitGroup // RTCP readers, one per slot

	mu      sync.Mutex // guards the fields below
	slots   []*slot
	waiting []*room.DownTrack
	closed  bool
}

type slot struct {
	kind   room.Kind
	sender *webrtc.RTPSender
	cur    atomic.Pointer[room.DownTrack]
	last   *room.DownTrack // the last track carried, for continuity; guarded by Viewer.mu
}

// NewViewer prepares a WHEP PeerConnection for the given offer: one sendonly slot for every
// audio or video m-line the client can receive.
func (e *Engine) NewViewer(offer string, ev PeerEvents) (*Viewer, error) {
	d, err := parseSDP(offer)
	if err != nil {
		return nil, err
	}
	v := &Viewer{log: ev.logger(e.log).With("pc", "whep")}
	out := e.newRTPOut(v.handleRTCP)
	api, err := e.newSubscriberAPI(out)
	if err != nil {
		return nil, err
	}
	pc, err := api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		return nil, err
	}
	v.pc = pc
	v.out = out
	if out != nil {
		out.watch(pc)
	}
	v.side = newSendSide(e.cfg)
	for _, m := range d.MediaDescriptions {
		kind := strings.ToLower(m.MediaName.Media)
		if (kind != "audio" && kind != "video") || rejected(m) {
			continue
		}
		if _, sendonly := m.Attribute("sendonly"); sendonly {
			continue
		}
		if _, inactive := m.Attribute("inactive"); inactive {
			continue
		}
		ck := webrtc.RTPCodecTypeVideo
		if kind == "audio" {
			ck = webrtc.RTPCodecTypeAudio
		}
		tr, err := pc.AddTransceiverFromKind(ck, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly})
		if err != nil {
			_ = pc.Close()
			return nil, err
		}
		s := &slot{kind: room.Kind(kind), sender: tr.Sender()}
		v.slots = append(v.slots, s)
	}
	if len(v.slots) == 0 {
		_ = pc.Close()
		return nil, ErrNothingUsable
	}
	v.side.start(pc, out, v.downTracks)
	watch(pc, ev, v.transportReady)
	for _, s := range v.slots {
		v.wg.Add(1)
		go v.readRTCP(s)
	}
	return v, nil
}

// Answer applies the client's offer and returns the complete answer.
func (v *Viewer) Answer(offer string) (string, error) {
	if err := v.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: offer}); err != nil {
		return "", err
	}
	return answer(v.pc)
}

// RemoteDescription returns the client's current SDP.
func (v *Viewer) RemoteDescription() string { return remoteSDP(v.pc) }

// AddCandidate adds a remote ICE candidate.
func (v *Viewer) AddCandidate(c webrtc.ICECandidateInit) error { return v.pc.AddICECandidate(c) }

// BandwidthEstimate returns GCC's estimate toward the viewer in bits per second.
func (v *Viewer) BandwidthEstimate() int { return v.side.cc.TargetBitrate() }

// transportReady runs when the PeerConnection is connected: the down tracks carried start from
// their layers' cached keyframes, or ask for one (room.DownTrack.TransportReady).
func (v *Viewer) transportReady() {
	for _, d := range v.downTracks() {
		d.TransportReady()
	}
}

// downTracks returns the down tracks the slots carry now.
func (v *Viewer) downTracks() []*room.DownTrack {
	var ds []*room.DownTrack
	for _, s := range v.slots {
		if d := s.cur.Load(); d != nil {
			ds = append(ds, d)
		}
	}
	return ds
}

// AddTrack puts d into a free slot of its kind, or queues it.
func (v *Viewer) AddTrack(d *room.DownTrack) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.closed {
		return ErrClosed
	}
	for _, s := range v.slots {
		if s.kind == d.Kind() && s.cur.Load() == nil && v.fill(s, d) {
			return nil
		}
	}
	v.waiting = append(v.waiting, d)
	return nil
}

// RemoveTrack frees d's slot for the next waiting track, or drops d from the queue.
func (v *Viewer) RemoveTrack(d *room.DownTrack) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	for i, w := range v.waiting {
		if w == d {
			v.waiting = append(v.waiting[:i], v.waiting[i+1:]...)
			return nil
		}
	}
	for _, s := range v.slots {
		if s.cur.Load() != d {
			continue
		}
		s.cur.Store(nil)
		for len(v.waiting) > 0 {
			next := v.takeWaiting(s.kind)
			if next == nil || v.fill(s, next) {
				break
			}
		}
		if s.cur.Load() == nil {
			_ = s.sender.ReplaceTrack(nil)
		}
		return nil
	}
	return nil
}

// fill binds d to slot s, continuing the slot's numbering. v.mu held; ReplaceTrack only swaps
// the sender's track and binds it, it does not touch the network.
func (v *Viewer) fill(s *slot, d *room.DownTrack) bool {
	if s.last != nil {
		d.ContinueFrom(s.last)
	}
	if err := s.sender.ReplaceTrack(trackLocal{d: d, cc: v.side.cc, out: v.out}); err != nil {
		v.log.Debug("slot cannot carry track", "track", d.TrackID(), "err", err)
		return false
	}
	s.cur.Store(d)
	s.last = d
	return true
}

func (v *Viewer) takeWaiting(kind room.Kind) *room.DownTrack {
	for i, w := range v.waiting {
		if w.Kind() == kind {
			v.waiting = append(v.waiting[:i], v.waiting[i+1:]...)
			return w
		}
	}
	return nil
}

func (v *Viewer) readRTCP(s *slot) {
	defer v.wg.Done()
	readSubscriberRTCP(s.sender, v.side.feedback, func(pkts []rtcp.Packet) {
		if d := s.cur.Load(); d != nil {
			d.HandleRTCP(pkts)
		}
	})
}

// handleRTCP handles one of the client's decrypted RTCP compound packets from the own read
// path (rtpOut.receiveRTCP).
func (v *Viewer) handleRTCP(b []byte) {
	if pkts := splitRTCP(b, nil, v.side.feedback); len(pkts) > 0 {
		deliverRTCP(pkts, v.downTracks())
	}
}

// Close ends the PeerConnection and waits for the RTCP readers.
func (v *Viewer) Close() error {
	v.mu.Lock()
	v.closed = true
	v.mu.Unlock()
	if v.out != nil {
		v.out.close()
	}
	err := v.pc.Close()
	v.side.close()
	v.wg.Wait()
	return err
}
