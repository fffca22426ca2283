package relay

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/interceptor/pkg/cc"
	"github.com/pion/webrtc/v4"

	"github.com/cascade-sfu/cascade/pkg/cluster"
	"github.com/cascade-sfu/cascade/pkg/rtc"
)

// LinkState is where a link is in its life.
type LinkState string

// Link states.
const (
	StateConnecting LinkState = "connecting"
	StateOpen       LinkState = "open"
	StateClosed     LinkState = "closed"
)

const (
	// controlLabel and controlID define the negotiated control data channel: both sides create
	// it with the same id, so it needs no in-band open handshake.
	controlLabel = "cascade-relay"
	controlID    = uint16(0)
	// maxBacklog bounds the control messages kept for an OnControl handler not set yet.
	maxBacklog = 256
	// Send waits while more than maxBuffered bytes are queued on the control channel, until
	// the queue drains below bufferedLow.
	maxBuffered = 1 << 20
	bufferedLow = 512 << 10
)

// Link is the relay connection to one peer node: one PeerConnection carrying the media of
// every room both nodes share, and an ordered, reliable control data channel.
type Link struct {
	m       *Manager
	peer    cluster.NodeID
	id      string // the request id of the offer that created the link
	offerer bool
	created time.Time
	log     *slog.Logger
	// after is the link to the same peer before this one, if its PeerConnection may still be
	// open: this link's PeerConnection waits until it is closed (see Manager.last).
	after *Link

	// setup bounds the set-up (OfferTimeout); shutdown cancels it.
	setup       context.Context
	cancelSetup context.CancelFunc
	answers     chan answerBody // the offerer's correlated answer (capacity 1)
	ready       chan struct{}   // closed once the link is open or closed
	readyOnce   sync.Once
	done        chan struct{} // closed by shutdown
	released    chan struct{} // closed when the PeerConnection is closed
	finished    chan struct{} // closed when released and the peer told
	bufLow      chan struct{} // the control channel's queue drained (capacity 1)
	bwe         atomic.Pointer[estimator]
	opened      atomic.Bool // the control channel opened; read without mu (under Manager.mu)

	// deliverMu serialises delivery of control messages, so that a backlog flushed by
	// OnControl and newly received messages reach the handler one at a time, in order. It is
	// held while the handler runs.
	deliverMu sync.Mutex

	mu          sync.Mutex // guards the fields below
	state       LinkState
	err         error // why the link closed
	published   bool  // our offer or answer went out: the peer may hold a half of the link
	pc          *webrtc.PeerConnection
	dc          *webrtc.DataChannel
	openedAfter time.Duration
	onControl   func(ControlMessage)
	backlog     []ControlMessage
	dropped     uint64 // control messages dropped: malformed, or the backlog was full
	sample      rateSample
	slots       map[string]*slot // media slots by mid, once open

	probe *prober // the link's quality probes, with its PeerConnection

	slotWG  sync.WaitGroup // RTCP readers of the slots
	probeWG sync.WaitGroup // the probe sender, from open to close

	nacksIn, plisIn, plisOut atomic.Uint64 // media feedback counters (LinkInfo)
	pausedLayers             atomic.Int32  // layers sent to the peer paused for bandwidth (LinkInfo)
	packetsDetached          atomic.Uint64 // video packets sent by down tracks since detached
}

type estimator struct{ cc.BandwidthEstimator }

func newLink(m *Manager, peer cluster.NodeID, id string, offerer bool) *Link {
	l := &Link{
		m:        m,
		peer:     peer,
		id:       id,
		offerer:  offerer,
		created:  time.Now(),
		log:      m.log.With("peer", peer, "link", shortID(id)),
		answers:  make(chan answerBody, 1),
		ready:    make(chan struct{}),
		done:     make(chan struct{}),
		released: make(chan struct{}),
		finished: make(chan struct{}),
		bufLow:   make(chan struct{}, 1),
		state:    StateConnecting,
	}
	l.setup, l.cancelSetup = context.WithTimeout(m.ctx, m.cfg.OfferTimeout)
	return l
}

func shortID(id string) string { return id[:min(len(id), 8)] }

// Peer returns the node at the other end.
func (l *Link) Peer() cluster.NodeID { return l.peer }

// ID returns the link's id, the same on both sides (the request id of its offer).
func (l *Link) ID() string { return l.id }

// Done is closed when the link closes.
func (l *Link) Done() <-chan struct{} { return l.done }

// Err returns why the link closed, or nil while it is not closed.
func (l *Link) Err() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.err
}

// PeerConnection returns the link's PeerConnection (nil early in set-up).
func (l *Link) PeerConnection() *webrtc.PeerConnection {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.pc
}

// feedbackLoss returns GCC's loss average toward the peer (0–1, from transport-wide
// feedback), and false before there is an estimator.
func (l *Link) feedbackLoss() (float64, bool) {
	e := l.bwe.Load()
	if e == nil {
		return 0, false
	}
	loss, ok := e.GetStats()["averageLoss"].(float64)
	return loss, ok
}

// BandwidthEstimate returns GCC's estimate toward the peer in bits per second; it starts at
// rtc.RelayMaxBitrate, the ceiling, and falls when the link shows delay or loss (0 before
// set-up).
func (l *Link) BandwidthEstimate() int {
	if e := l.bwe.Load(); e != nil {
		return e.GetTargetBitrate()
	}
	return 0
}

// Close closes the link, tells the peer, and waits until the PeerConnection is closed. It
// must not be called from an OnControl handler (which runs on the channel's read loop that
// closing waits for); call it on another goroutine there.
func (l *Link) Close() {
	l.shutdown(ErrLinkClosed)
	<-l.finished
}

// shutdown closes the link for reason err; the link's goroutine then closes the
// PeerConnection. Safe to call many times and from pion's callbacks: it does no I/O.
func (l *Link) shutdown(err error) {
	l.end(err, false)
}

// failSetup closes the link for reason err unless it opened meanwhile.
func (l *Link) failSetup(err error) bool {
	return l.end(err, true)
}

func (l *Link) end(err error, onlyConnecting bool) bool {
	l.mu.Lock()
	if l.state == StateClosed || (onlyConnecting && l.state != StateConnecting) {
		l.mu.Unlock()
		return false
	}
	wasOpen := l.state == StateOpen
	l.state, l.err = StateClosed, err
	l.mu.Unlock()
	l.cancelSetup()
	l.m.remove(l) // before waking Link's callers: a retry must not find this link
	l.readyOnce.Do(func() { close(l.ready) })
	close(l.done)
	switch {
	case wasOpen:
		l.log.Info("relay link closed", "reason", err)
	case errors.Is(err, errSuperseded):
		l.log.Debug("relay link attempt superseded")
	default:
		l.log.Info("relay link set-up failed", "reason", err)
	}
	return true
}

// markOpen runs when the control channel opens.
func (l *Link) markOpen() {
	l.mu.Lock()
	connecting := l.state == StateConnecting && l.slots == nil
	l.mu.Unlock()
	if connecting {
		l.openSlots()
	}
	l.mu.Lock()
	if l.state != StateConnecting {
		l.mu.Unlock()
		return
	}
	l.state = StateOpen
	l.openedAfter = time.Since(l.created)
	after := l.openedAfter
	l.opened.Store(true)
	if l.probe != nil { // under mu: teardown waits only after the state left open
		l.probeWG.Add(1)
		go l.runProbes(l.probe)
	}
	l.mu.Unlock()
	l.readyOnce.Do(func() { close(l.ready) })
	l.log.Info("relay link open", "offerer", l.offerer, "after", after)
	if f := l.m.cfg.OnLink; f != nil {
		f(l)
	}
}

// run sets the link up, waits for it to close, then tears it down. It is the link's only
// goroutine; the Manager waits for it.
func (l *Link) run(offer string) {
	defer l.m.wg.Done()
	defer close(l.finished)
	err := l.waitPrevious()
	if err == nil && l.offerer {
		err = l.dial()
	} else if err == nil {
		err = l.accept(offer)
	}
	if err != nil {
		l.failSetup(err)
	}
	<-l.done
	l.teardown()
}

// waitPrevious waits until the previous link to the peer has closed its PeerConnection.
func (l *Link) waitPrevious() error {
	if l.after == nil {
		return nil
	}
	select {
	case <-l.after.released:
		l.after = nil
		return nil
	case <-l.setup.Done():
		return l.setupError("could not start: the previous link did not close")
	}
}

// dial is the offerer's set-up: offer, wait for the correlated answer, wait for the open.
func (l *Link) dial() error {
	pc, early, err := l.newPeerConnection()
	if err != nil {
		return err
	}
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		return fmt.Errorf("%w: create offer: %v", ErrLinkFailed, err)
	}
	sdp, err := l.gather(pc, offer)
	if err != nil {
		return err
	}
	if err := l.publish(MsgOffer, offerBody{Req: l.id, SDP: sdp}); err != nil {
		return err
	}
	var ans answerBody
	select {
	case ans = <-l.answers:
	case <-l.setup.Done():
		return l.setupError("did not answer")
	}
	if ans.Error != "" {
		return fmt.Errorf("%w: %s: %s", ErrRefused, l.peer, ans.Error)
	}
	l.armEarlyStart(early, sdp, ans.SDP)
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: ans.SDP}); err != nil {
		return fmt.Errorf("%w: apply the answer of %s: %v", ErrLinkFailed, l.peer, err)
	}
	return l.waitOpen()
}

// accept is the answerer's set-up: apply the offer, answer, wait for the open. If it fails
// before answering it tells the offerer why, so that the offerer need not wait for its timeout.
func (l *Link) accept(offer string) error {
	sdp, err := l.answer(offer)
	if err != nil {
		if l.setup.Err() == nil {
			if serr := l.send(l.setup, MsgAnswer, answerBody{Req: l.id, Error: err.Error()}); serr != nil {
				l.log.Debug("cannot send the refusal", "err", serr)
			}
		}
		return err
	}
	if err := l.publish(MsgAnswer, answerBody{Req: l.id, SDP: sdp}); err != nil {
		return err
	}
	return l.waitOpen()
}

func (l *Link) answer(offer string) (string, error) {
	pc, early, err := l.newPeerConnection()
	if err != nil {
		return "", err
	}
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: offer}); err != nil {
		return "", fmt.Errorf("%w: apply the offer of %s: %v", ErrLinkFailed, l.peer, err)
	}
	ans, err := pc.CreateAnswer(nil)
	if err != nil {
		return "", fmt.Errorf("%w: create answer: %v", ErrLinkFailed, err)
	}
	sdp, err := l.gather(pc, ans)
	if err != nil {
		return "", err
	}
	l.armEarlyStart(early, sdp, offer) // before the answer goes out: no check can precede it
	return sdp, nil
}

// armEarlyStart lets the PeerConnection start DTLS before ICE nomination completes when each
// side has one candidate address (rtc.EarlyStart).
func (l *Link) armEarlyStart(early *rtc.EarlyStart, local, remote string) {
	armed := early.Arm(local, remote)
	l.log.Debug("relay link set-up: descriptions known", "early_start", armed, "after", time.Since(l.created))
}

// gather applies the local description and returns it with its candidates. With the node's
// UDP mux and no STUN servers gathering completes at once; there is no trickle on the bus.
func (l *Link) gather(pc *webrtc.PeerConnection, desc webrtc.SessionDescription) (string, error) {
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(desc); err != nil {
		return "", fmt.Errorf("%w: set local description: %v", ErrLinkFailed, err)
	}
	select {
	case <-gathered:
	case <-l.setup.Done():
		return "", l.setupError("gathering did not complete")
	}
	return pc.LocalDescription().SDP, nil
}

// publish sends our offer or answer and records that the peer may now hold a half link.
func (l *Link) publish(typ string, body any) error {
	l.mu.Lock()
	l.published = true
	l.mu.Unlock()
	if err := l.send(l.setup, typ, body); err != nil {
		if l.setup.Err() != nil {
			return l.setupError("could not be reached")
		}
		return fmt.Errorf("%w: send %s to %s: %v", ErrLinkFailed, typ, l.peer, err)
	}
	return nil
}

func (l *Link) send(ctx context.Context, typ string, body any) error {
	return l.m.cfg.Bus.Send(ctx, l.peer, typ, body)
}

func (l *Link) waitOpen() error {
	select {
	case <-l.ready:
		return nil
	case <-l.setup.Done():
		return l.setupError("did not connect")
	}
}

// setupError explains why the set-up context ended.
func (l *Link) setupError(what string) error {
	if errors.Is(l.setup.Err(), context.DeadlineExceeded) {
		return fmt.Errorf("%w: node %s %s within %v", ErrTimeout, l.peer, what, l.m.cfg.OfferTimeout)
	}
	return ErrLinkClosed // shut down meanwhile; the reason is already recorded
}

// newPeerConnection creates the link's PeerConnection and control channel and watches them.
func (l *Link) newPeerConnection() (*webrtc.PeerConnection, *rtc.EarlyStart, error) {
	pc, early, err := l.m.cfg.Engine.NewRelayPeerConnection(func(est cc.BandwidthEstimator) {
		l.bwe.Store(&estimator{est})
	})
	if err != nil {
		return nil, nil, fmt.Errorf("%w: new peer connection: %v", ErrLinkFailed, err)
	}
	negotiated, ordered, id := true, true, controlID
	dc, err := pc.CreateDataChannel(controlLabel, &webrtc.DataChannelInit{Negotiated: &negotiated, Ordered: &ordered, ID: &id})
	if err != nil {
		_ = pc.Close()
		return nil, nil, fmt.Errorf("%w: control channel: %v", ErrLinkFailed, err)
	}
	pdc, err := newProbeChannel(pc)
	if err != nil {
		_ = pc.Close()
		return nil, nil, fmt.Errorf("%w: probe channel: %v", ErrLinkFailed, err)
	}
	probe := newProber(pdc.Send)
	pdc.OnMessage(func(m webrtc.DataChannelMessage) { probe.receive(m.Data) })
	if err := addSlots(pc); err != nil {
		_ = pc.Close()
		return nil, nil, fmt.Errorf("%w: media slots: %v", ErrLinkFailed, err)
	}
	pc.OnTrack(l.onTrack)
	dc.SetBufferedAmountLowThreshold(bufferedLow)
	dc.OnBufferedAmountLow(func() {
		select {
		case l.bufLow <- struct{}{}:
		default:
		}
	})
	dc.OnOpen(l.markOpen)
	dc.OnMessage(l.receive)
	dc.OnClose(func() { l.shutdown(fmt.Errorf("%w: control channel closed", ErrLinkFailed)) })
	// Set-up phases, for diagnosis (RELAY_TEST_LOG=debug in the tests).
	pc.OnICEConnectionStateChange(func(s webrtc.ICEConnectionState) {
		l.log.Debug("relay link ICE state", "state", s, "after", time.Since(l.created))
	})
	pc.OnConnectionStateChange(func(s webrtc.PeerConnectionState) {
		switch s {
		case webrtc.PeerConnectionStateFailed, webrtc.PeerConnectionStateClosed:
			l.shutdown(fmt.Errorf("%w: peer connection %s", ErrLinkFailed, s))
		}
	})
	// The peer closing DTLS leaves ICE connected, so the PeerConnection's state does not show
	// it; the DTLS transport's does.
	pc.SCTP().Transport().OnStateChange(func(s webrtc.DTLSTransportState) {
		l.log.Debug("relay link DTLS state", "state", s, "after", time.Since(l.created))
		switch s {
		case webrtc.DTLSTransportStateFailed, webrtc.DTLSTransportStateClosed:
			l.shutdown(fmt.Errorf("%w: DTLS %s", ErrLinkFailed, s))
		}
	})
	l.mu.Lock()
	if l.state == StateClosed {
		l.mu.Unlock()
		_ = pc.GracefulClose()
		return nil, nil, ErrLinkClosed
	}
	l.pc, l.dc, l.probe = pc, dc, probe
	l.mu.Unlock()
	return pc, early, nil
}

// teardown closes the PeerConnection and tells the peer, unless the peer told us.
func (l *Link) teardown() {
	l.mu.Lock()
	pc, tell, reason := l.pc, l.published && !errors.Is(l.err, ErrPeerClosed), l.err
	l.mu.Unlock()
	if pc != nil {
		start := time.Now()
		err := pc.GracefulClose()
		l.log.Debug("peer connection closed", "took", time.Since(start), "err", err)
	}
	l.slotWG.Wait()
	l.probeWG.Wait()
	close(l.released)
	l.m.released(l)
	if !tell {
		return
	}
	ctx, cancel := context.WithTimeout(l.m.ctx, closeNotifyTimeout)
	defer cancel()
	if err := l.send(ctx, MsgClose, closeBody{Req: l.id, Reason: reason.Error()}); err != nil {
		l.log.Debug("cannot tell the peer the link closed", "err", err)
	}
}

func peerClosedError(reason string) error {
	if reason == "" {
		return ErrPeerClosed
	}
	return fmt.Errorf("%w: %s", ErrPeerClosed, reason)
}
