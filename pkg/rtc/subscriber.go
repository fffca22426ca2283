package rtc

import (
	"encoding/binary"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/webrtc/v4"

	"github.com/cascade-sfu/cascade/pkg/room"
)

// Subscriber sends a participant the tracks it subscribes to. The server offers: every change
// of the track set leads to a new offer, passed to SendOffer; the client's answer comes back
// through HandleAnswer. Implements room.SubscriberTransport.
type Subscriber struct {
	pc        *webrtc.PeerConnection
	log       *slog.Logger
	sendOffer func(sdp string)
	ev        PeerEvents
	timeout   time.Duration // for an answer
	side      *sendSide
	out       *rtpOut        // nil: pion's write path
	wg        sync.WaitGroup // RTCP readers

	mu          sync.Mutex // guards the fields below
	senders     map[*room.DownTrack]*webrtc.RTPSender
	negotiating bool // an offer is out, waiting for the answer
	pending     bool // something changed while negotiating
	restartICE  bool // the next offer restarts ICE
	closed      bool
	held        int         // HoldNegotiation calls not released yet: offers wait
	answerDue   *time.Timer // runs while an offer is out
	// While an offer is being made, gathered candidates wait in heldCands; those the last
	// offer carries (carried, its a=candidate values and "end-of-candidates") are not
	// trickled, also when pion reports them only after the offer went out.
	holdCands bool
	heldCands []*webrtc.ICECandidateInit
	carried   map[string]bool
}

// gatherWait bounds how long an offer waits for candidate gathering, so that it carries its
// candidates itself: on the node's UDP port gathering takes a millisecond or two, and a client
// answering an offer with its candidates in it has no trickled candidates to add one by one
// (Chromium spent 50–70 ms of a join on that). Candidates found later (a slow STUN server)
// are trickled.
const gatherWait = 20 * time.Millisecond

// NewSubscriber creates the PeerConnection that carries a participant's subscriptions.
// sendOffer delivers a server offer to the client; it must not block.
func (e *Engine) NewSubscriber(ev PeerEvents, sendOffer func(sdp string)) (*Subscriber, error) {
	s := &Subscriber{
		log:       ev.logger(e.log).With("pc", "sub"),
		sendOffer: sendOffer,
		ev:        ev,
		timeout:   e.cfg.AnswerTimeout,
		senders:   map[*room.DownTrack]*webrtc.RTPSender{},
	}
	out := e.newRTPOut(s.handleRTCP)
	api, err := e.newSubscriberAPI(out)
	if err != nil {
		return nil, err
	}
	pc, err := api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		return nil, err
	}
	s.pc = pc
	s.out = out
	if out != nil {
		out.watch(pc)
	}
	s.side = newSendSide(e.cfg)
	s.side.start(pc, out, s.downTracks)
	wev := ev
	if ev.Candidate != nil {
		wev.Candidate = s.candidate
	}
	watch(pc, wev, s.transportReady)
	return s, nil
}

// transportReady runs when the PeerConnection is connected: the down tracks bound before that
// ask for the keyframe they could not deliver.
func (s *Subscriber) transportReady() {
	s.log.Debug("subscriber connected")
	s.mu.Lock()
	ds := make([]*room.DownTrack, 0, len(s.senders))
	for d := range s.senders {
		ds = append(ds, d)
	}
	s.mu.Unlock()
	for _, d := range ds {
		d.TransportReady()
	}
}

// BandwidthEstimate returns GCC's estimate toward the client in bits per second.
func (s *Subscriber) BandwidthEstimate() int { return s.side.cc.TargetBitrate() }

// downTracks returns the down tracks the PeerConnection carries.
func (s *Subscriber) downTracks() []*room.DownTrack {
	s.mu.Lock()
	defer s.mu.Unlock()
	ds := make([]*room.DownTrack, 0, len(s.senders))
	for d := range s.senders {
		ds = append(ds, d)
	}
	return ds
}

// AddTrack adds a sendonly transceiver for d and renegotiates.
func (s *Subscriber) AddTrack(d *room.DownTrack) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrClosed
	}
	s.mu.Unlock()
	tr, err := s.pc.AddTransceiverFromTrack(trackLocal{d: d, cc: s.side.cc, out: s.out}, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly})
	if err != nil {
		return err
	}
	sender := tr.Sender()
	s.mu.Lock()
	if s.closed {
		// Close ran meanwhile: pion's Close may have stopped the transceivers before this one
		// was added, and nobody else would stop its sender (its RTCP reader would wait
		// forever). Close's wait does not cover a reader started now either.
		s.mu.Unlock()
		_ = sender.Stop()
		return ErrClosed
	}
	s.senders[d] = sender
	s.wg.Add(1) // under mu, so that a Close after this waits for the reader
	s.mu.Unlock()
	go s.readRTCP(sender, d)
	s.negotiate()
	return nil
}

// RemoveTrack stops d's transceiver and renegotiates.
func (s *Subscriber) RemoveTrack(d *room.DownTrack) error {
	s.mu.Lock()
	sender := s.senders[d]
	delete(s.senders, d)
	s.mu.Unlock()
	if sender == nil {
		return nil
	}
	if err := s.pc.RemoveTrack(sender); err != nil {
		return err
	}
	s.negotiate()
	return nil
}

// readRTCP feeds the subscriber's RTCP for one sender to its down track.
func (s *Subscriber) readRTCP(sender *webrtc.RTPSender, d *room.DownTrack) {
	defer s.wg.Done()
	readSubscriberRTCP(sender, s.side.feedback, d.HandleRTCP)
}

// readSubscriberRTCP reads a subscriber sender's RTCP until the sender stops: transport-wide
// feedback goes to twcc as raw bytes (parsed without allocating), the other packets of each
// compound packet to handle, parsed. handle's slice is reused: it must not keep it.
func readSubscriberRTCP(sender *webrtc.RTPSender, twcc func(raw []byte), handle func([]rtcp.Packet)) {
	buf := make([]byte, 1500)
	var pkts []rtcp.Packet
	for {
		n, _, err := sender.Read(buf)
		if err != nil {
			return
		}
		pkts = splitRTCP(buf[:n], pkts[:0], twcc)
		if len(pkts) > 0 {
			handle(pkts)
		}
	}
}

// splitRTCP splits a compound RTCP packet: transport-wide feedback goes to twcc as raw bytes,
// the other packets are parsed and appended to pkts.
func splitRTCP(b []byte, pkts []rtcp.Packet, twcc func(raw []byte)) []rtcp.Packet {
	for len(b) >= 4 {
		l := (int(binary.BigEndian.Uint16(b[2:4])) + 1) * 4
		if l > len(b) {
			break
		}
		p := b[:l]
		b = b[l:]
		if p[1] == rtcpTypeTransportFeedback && p[0]&0x1f == rtcpFormatTWCC {
			twcc(p)
			continue
		}
		if ps, err := rtcp.Unmarshal(p); err == nil {
			pkts = append(pkts, ps...)
		}
	}
	return pkts
}

// deliverRTCP hands each of a subscriber's RTCP packets to the down tracks it is about (a
// receiver report to the tracks it reports on, a NACK or a PLI to its media source).
func deliverRTCP(pkts []rtcp.Packet, ds []*room.DownTrack) {
	var mine []rtcp.Packet
	for _, d := range ds {
		ssrc := d.SSRC()
		mine = mine[:0]
		for _, p := range pkts {
			for _, dst := range p.DestinationSSRC() {
				if dst == ssrc {
					mine = append(mine, p)
					break
				}
			}
		}
		if len(mine) > 0 {
			d.HandleRTCP(mine)
		}
	}
}

// handleRTCP handles one of the client's decrypted RTCP compound packets from the own read
// path (rtpOut.receiveRTCP).
func (s *Subscriber) handleRTCP(b []byte) {
	if pkts := splitRTCP(b, nil, s.side.feedback); len(pkts) > 0 {
		deliverRTCP(pkts, s.downTracks())
	}
}

// RTCP packet type and format of transport-wide congestion control feedback.
const (
	rtcpTypeTransportFeedback = 205
	rtcpFormatTWCC            = 15
)

// ReadSenderRTCP reads a sender's RTCP until the sender stops, handing each compound packet to
// handle. Reading is what makes pion's interceptors see the feedback; call it on one goroutine.
func ReadSenderRTCP(sender *webrtc.RTPSender, handle func([]rtcp.Packet)) {
	buf := make([]byte, 1500)
	for {
		n, _, err := sender.Read(buf)
		if err != nil {
			return
		}
		if pkts, err := rtcp.Unmarshal(buf[:n]); err == nil {
			handle(pkts)
		}
	}
}

// RestartICE makes the next offer restart ICE, and sends it as soon as no offer is out.
func (s *Subscriber) RestartICE() {
	s.mu.Lock()
	s.restartICE = true
	s.mu.Unlock()
	s.negotiate()
}

// HoldNegotiation defers offers until the returned function is called, so that several
// AddTrack calls lead to one offer. Implements room.NegotiationBatcher.
func (s *Subscriber) HoldNegotiation() (release func()) {
	s.mu.Lock()
	s.held++
	s.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			s.mu.Lock()
			s.held--
			run := s.held == 0 && s.pending && !s.negotiating
			s.mu.Unlock()
			if run {
				s.negotiate()
			}
		})
	}
}

// Negotiate sends an offer now if the subscriber has tracks, or marks one pending.
func (s *Subscriber) negotiate() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	if s.negotiating || s.held > 0 {
		s.pending = true
		s.mu.Unlock()
		return
	}
	s.negotiating, s.pending = true, false
	restart := s.restartICE
	s.restartICE = false
	s.mu.Unlock()
	if err := s.offer(restart); err != nil {
		s.log.Warn("subscriber offer failed", "err", err)
		s.mu.Lock()
		s.negotiating = false
		s.mu.Unlock()
		return
	}
	s.mu.Lock()
	if s.negotiating && !s.closed {
		s.answerDue = time.AfterFunc(s.timeout, s.unanswered)
	}
	s.mu.Unlock()
}

// unanswered runs when the client let an offer go unanswered for the answer timeout.
func (s *Subscriber) unanswered() {
	s.mu.Lock()
	stalled := s.negotiating && !s.closed
	s.mu.Unlock()
	if stalled && s.ev.Unanswered != nil {
		s.log.Warn("client did not answer the subscriber offer", "timeout", s.timeout)
		s.ev.Unanswered()
	}
}

func (s *Subscriber) offer(restart bool) error {
	start := time.Now()
	var opts *webrtc.OfferOptions
	if restart {
		opts = &webrtc.OfferOptions{ICERestart: true}
	}
	offer, err := s.pc.CreateOffer(opts)
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.holdCands = true
	s.mu.Unlock()
	defer s.releaseCandidates("")
	gathered := webrtc.GatheringCompletePromise(s.pc)
	if err := s.pc.SetLocalDescription(offer); err != nil {
		return err
	}
	wait := time.NewTimer(gatherWait)
	select {
	case <-gathered:
	case <-wait.C:
	}
	wait.Stop()
	sdp := s.pc.LocalDescription().SDP
	s.sendOffer(sdp)
	s.releaseCandidates(sdp)
	s.log.Debug("subscriber offer sent", "restart", restart, "took", time.Since(start))
	return nil
}

// candidate passes a gathered candidate on, unless the last offer carries it; while an offer
// is being made, it holds it.
func (s *Subscriber) candidate(c *webrtc.ICECandidateInit) {
	s.mu.Lock()
	if s.holdCands {
		s.heldCands = append(s.heldCands, c)
		s.mu.Unlock()
		return
	}
	skip := s.carries(c)
	s.mu.Unlock()
	if !skip {
		s.ev.Candidate(c)
	}
}

// carries reports whether the last offer carries c (nil: says end-of-candidates). s.mu held.
func (s *Subscriber) carries(c *webrtc.ICECandidateInit) bool {
	if c == nil {
		return s.carried["end-of-candidates"]
	}
	return s.carried[c.Candidate]
}

// releaseCandidates ends holding candidates: sdp, the offer just sent, becomes the last offer,
// and the candidates held that it does not carry are trickled. After a failed offer (sdp
// empty) nothing held is sent: the next offer carries them.
func (s *Subscriber) releaseCandidates(sdp string) {
	var carried map[string]bool
	if sdp != "" {
		carried = map[string]bool{}
		for line := range strings.Lines(sdp) {
			if v, ok := strings.CutPrefix(strings.TrimRight(line, "\r\n"), "a="); ok && (strings.HasPrefix(v, "candidate:") || v == "end-of-candidates") {
				carried[v] = true
			}
		}
	}
	s.mu.Lock()
	if !s.holdCands {
		s.mu.Unlock()
		return
	}
	held := s.heldCands
	s.holdCands, s.heldCands = false, nil
	if sdp == "" {
		s.mu.Unlock()
		return
	}
	s.carried = carried
	var send []*webrtc.ICECandidateInit
	for _, c := range held {
		if !s.carries(c) {
			send = append(send, c)
		}
	}
	s.mu.Unlock()
	for _, c := range send {
		s.ev.Candidate(c)
	}
}

// HandleAnswer applies the client's answer to the last offer, then sends the next offer if
// anything changed meanwhile.
func (s *Subscriber) HandleAnswer(sdp string) error {
	s.mu.Lock()
	if !s.negotiating {
		s.mu.Unlock()
		return ErrNoPendingOffer
	}
	s.mu.Unlock()
	if _, err := parseSDP(sdp); err != nil {
		return err
	}
	start := time.Now()
	err := s.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: sdp})
	s.log.Debug("subscriber answer applied", "took", time.Since(start), "err", err)
	s.mu.Lock()
	s.negotiating = false
	if s.answerDue != nil {
		s.answerDue.Stop()
		s.answerDue = nil
	}
	again := s.pending || s.restartICE
	s.mu.Unlock()
	if err != nil {
		return fmt.Errorf("%w: %v", ErrNegotiationFailed, err)
	}
	if again {
		s.negotiate()
	}
	return nil
}

// AddCandidate adds a remote ICE candidate.
func (s *Subscriber) AddCandidate(c webrtc.ICECandidateInit) error { return s.pc.AddICECandidate(c) }

// Close ends the PeerConnection and waits for the RTCP readers.
func (s *Subscriber) Close() error {
	s.mu.Lock()
	s.closed = true
	if s.answerDue != nil {
		s.answerDue.Stop()
	}
	s.mu.Unlock()
	if s.out != nil {
		s.out.close()
	}
	err := s.pc.Close()
	s.side.close()
	s.wg.Wait()
	return err
}
