package signal

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/coder/websocket"
	"github.com/pion/webrtc/v4"
	"golang.org/x/time/rate"

	"github.com/cascade-sfu/cascade/pkg/auth"
	"github.com/cascade-sfu/cascade/pkg/room"
	"github.com/cascade-sfu/cascade/pkg/rtc"
)

// outQueueSize bounds what may wait to be written to one client. A client that falls this far
// behind is disconnected: dropping messages would break the room's order.
const outQueueSize = 512

type outbound struct {
	data  []byte
	final bool // close the socket after writing this
}

// heldMessage is a message queued while joined waits for the subscriber's first offer.
type heldMessage struct {
	o     outbound
	cause room.LeaveReason
}

// wsSession is one WebSocket: at most one participant.
type wsSession struct {
	srv    *Server
	id     room.SessionID
	log    *slog.Logger
	ctx    context.Context
	cancel context.CancelFunc
	out    chan outbound
	msgs   *rate.Limiter

	// Set by join on the read goroutine, read there and by cleanup after it ends.
	part     *room.Participant
	sub      *rtc.Subscriber
	pub      *rtc.Publisher
	joinID   string
	joined   atomic.Bool
	occupied *auth.Grants // set while the session holds a place in the cluster's room state
	target   *wsSession   // set by a resume on this (never joined) socket: the session it takes over
	resumeID string       // request id of the resume being answered

	resume chan struct{} // a resume takes the parked session from its grace goroutine
	gone   chan struct{} // closed when a parked session ends without resumption

	mu       sync.Mutex // guards the fields below
	closing  bool       // a final message is queued or the session is ending
	endCause room.LeaveReason
	sock     *socket       // the socket serving the session; nil while parked
	parked   chan struct{} // closed when the current socket has let go and the session parked
	token    string        // the current resume token (registered in Server.resumes)
	// inline: the join asked for the subscriber's first offer inside joined. While that
	// joined waits for the offer (a few ms, within the join), it is held in heldJoined and
	// the messages queued meanwhile in heldOut, so that nothing overtakes joined.
	inline     bool
	heldJoined *Joined
	heldOut    []heldMessage
}

func (s *Server) handleWebSocket(w http.ResponseWriter, r *http.Request) {
	if s.draining.Load() {
		s.writeHTTPError(w, newError(CodeUnavailable, "node is draining; connect to another node"))
		return
	}
	conn, err := websocket.Accept(w, r, &websocket.AcceptOptions{
		// The demo page and SDK may be served from elsewhere; tokens, not origins, guard access.
		InsecureSkipVerify: true,
	})
	if err != nil {
		return // Accept has answered the client
	}
	conn.SetReadLimit(MaxFrameSize)
	if !s.enter() {
		_ = conn.Close(websocket.StatusGoingAway, "node is shutting down")
		return
	}
	defer s.wg.Done()
	ip := clientIP(r)
	sctx, scancel := context.WithCancel(s.ctx)
	sock := &socket{conn: conn, ctx: sctx, cancel: scancel}
	for ss := s.newSession(ip); ss != nil; {
		ss = ss.serve(sock, ip)
	}
	scancel()
	_ = conn.CloseNow()
}

func (s *Server) newSession(ip string) *wsSession {
	ctx, cancel := context.WithCancel(s.ctx)
	ss := &wsSession{
		srv:    s,
		id:     room.SessionID(room.NewID("SE")),
		ctx:    ctx,
		cancel: cancel,
		out:    make(chan outbound, outQueueSize),
		msgs:   rate.NewLimiter(rate.Limit(s.cfg.MessageRate), s.cfg.MessageBurst),
		resume: make(chan struct{}),
		gone:   make(chan struct{}),
	}
	ss.log = s.log.With("session", ss.id, "remote", ip)
	return ss
}

// serve runs the session on one socket until the socket ends. Then the session ends, or parks
// awaiting a resume; if this socket resumed another session, serve returns that one for the
// socket to serve next.
func (ss *wsSession) serve(sock *socket, ip string) *wsSession {
	ss.attach(sock)
	unlink := context.AfterFunc(ss.ctx, sock.cancel)
	if ss.resumeID != "" || ss.joined.Load() {
		ss.sendResumed()
	}
	stop := make(chan struct{})
	var writer sync.WaitGroup
	writer.Add(1)
	go func() {
		defer writer.Done()
		ss.writeLoop(sock, stop)
	}()
	reason := ss.readLoop(sock, ip)
	if next := ss.target; next != nil {
		close(stop)
		writer.Wait()
		unlink()
		ss.cancel() // this session never joined: nothing to clean up
		return next
	}
	if sock.dropped && ss.park(reason) {
		close(stop)
		writer.Wait()
		unlink()
		return nil
	}
	ss.withdrawToken()
	ss.end(reason)
	ss.cancel()
	writer.Wait()
	unlink()
	ss.flush(sock)
	ss.closePeers()
	return nil
}

// closePeers closes the session's PeerConnections.
func (ss *wsSession) closePeers() {
	if ss.sub != nil {
		_ = ss.sub.Close()
	}
	if ss.pub != nil {
		_ = ss.pub.Close()
	}
}

// end makes the participant leave (once) with the first reason given.
func (ss *wsSession) end(reason room.LeaveReason) {
	if ss.part != nil {
		ss.part.Leave(reason)
	}
	ss.vacate()
}

// vacate gives up the session's place in the cluster's room state.
func (ss *wsSession) vacate() {
	if g := ss.occupied; g != nil {
		ss.occupied = nil
		ss.srv.vacate(g.Room, g.Identity, string(ss.id))
	}
}

// readLoop reads frames until the socket ends, and returns why.
func (ss *wsSession) readLoop(sock *socket, ip string) room.LeaveReason {
	joinTimer := time.AfterFunc(ss.srv.cfg.JoinTimeout, func() {
		if !ss.joined.Load() {
			ss.fail(newError(CodeBadRequest, "no join within the time limit"), "")
		}
	})
	defer joinTimer.Stop()
	for {
		typ, data, err := sock.conn.Read(sock.ctx)
		if err != nil {
			sock.dropped = brokenSocket(err)
			return ss.readEndReason(err)
		}
		if typ != websocket.MessageText {
			ss.sendError(newError(CodeBadRequest, "binary frames are not part of the protocol"), "", "")
			continue
		}
		if !ss.msgs.Allow() {
			ss.sendError(newError(CodeRateLimited, "too many messages; slow down"), "", "")
			continue
		}
		if done := ss.handle(data, ip); done {
			return room.ReasonLeft
		}
	}
}

func (ss *wsSession) readEndReason(err error) room.LeaveReason {
	ss.mu.Lock()
	cause := ss.endCause
	ss.mu.Unlock()
	if cause != "" {
		return cause
	}
	if ss.srv.ctx.Err() != nil {
		return room.ReasonShutdown
	}
	if websocket.CloseStatus(err) == websocket.StatusMessageTooBig {
		ss.log.Info("frame over the size limit")
	}
	return room.ReasonDisconnected
}

// handle processes one frame. It returns true when the session should end.
func (ss *wsSession) handle(data []byte, ip string) bool {
	env, perr := DecodeEnvelope(data)
	ss.srv.cfg.Observer.Message(messageLabel(env.Type))
	if perr != nil {
		ss.sendError(perr, env.Type, env.ID)
		return false
	}
	h := handlerFor(env.Type)
	if env.Type != "join" && env.Type != "resume" && env.Type != "ping" && ss.part == nil {
		ss.sendError(newError(CodeNotJoined, "send join first"), env.Type, env.ID)
		return false
	}
	done, err := h(ss, env, ip)
	if err != nil {
		ss.sendError(classify(err), env.Type, env.ID)
	}
	return done
}

// DecodeEnvelope parses one client frame and checks its version and type. On error the
// returned envelope still carries whatever type and id could be read, for the error reply.
func DecodeEnvelope(data []byte) (Envelope, *Error) {
	var env Envelope
	if len(data) > MaxFrameSize {
		return env, newError(CodeTooLarge, "frame over 64 KiB")
	}
	if err := json.Unmarshal(data, &env); err != nil {
		return Envelope{}, newError(CodeBadRequest, "invalid JSON: "+err.Error())
	}
	env.ID = truncateUTF8(env.ID, maxRequestID)
	env.Type = truncateUTF8(env.Type, 64)
	if env.V != ProtocolVersion {
		return env, newError(CodeUnsupportedVersion, "this server speaks version 1")
	}
	if handlerFor(env.Type) == nil {
		return env, newError(CodeUnknownType, "unknown message type "+strconvQuote(env.Type))
	}
	return env, nil
}

type handler func(ss *wsSession, env Envelope, ip string) (done bool, err error)

// handlerFor returns the handler of a client message type, or nil.
func handlerFor(typ string) handler {
	switch typ {
	case "join":
		return (*wsSession).onJoin
	case "resume":
		return (*wsSession).onResume
	case "offer":
		return (*wsSession).onOffer
	case "answer":
		return (*wsSession).onAnswer
	case "candidate":
		return (*wsSession).onCandidate
	case "ice_restart":
		return (*wsSession).onICERestart
	case "mute":
		return (*wsSession).onMute
	case "subscription":
		return (*wsSession).onSubscription
	case "chat":
		return (*wsSession).onChat
	case "data":
		return (*wsSession).onData
	case "kick":
		return (*wsSession).onKick
	case "leave":
		return (*wsSession).onLeave
	case "ping":
		return (*wsSession).onPing
	}
	return nil
}

// decode unmarshals a payload strictly.
func decode(env Envelope, v any) error {
	if len(env.Data) == 0 {
		return newError(CodeBadRequest, env.Type+" needs a data object")
	}
	if err := json.Unmarshal(env.Data, v); err != nil {
		return newError(CodeBadRequest, "invalid "+env.Type+" data: "+err.Error())
	}
	return nil
}

func (ss *wsSession) onJoin(env Envelope, ip string) (bool, error) {
	if ss.part != nil || ss.target != nil {
		return false, newError(CodeAlreadyJoined, "this socket has joined already")
	}
	var req JoinRequest
	if err := decode(env, &req); err != nil {
		return false, err
	}
	if e := ss.srv.admit(ip); e != nil {
		return false, e
	}
	g, err := ss.srv.cfg.Verifier.Verify(req.Token)
	if err == nil && auth.ValidRoomName(g.Room) != nil {
		err = newError(CodeForbidden, "token names no valid room")
	}
	if err := ss.srv.charge(ip, err); err != nil {
		return false, err
	}
	start := time.Now()
	name := g.Name
	if name == "" && len(req.Name) <= 256 && utf8.ValidString(req.Name) {
		name = req.Name
	}
	ss.joinID = env.ID
	if err := ss.srv.occupy(ss.ctx, g, string(ss.id)); err != nil {
		return false, err
	}
	ss.occupied = &g
	if g.CanSubscribe {
		ev := ss.peerEvents("sub")
		ev.Logger = ss.log.With("room", g.Room, "identity", g.Identity) // the participant sid comes with the join
		sub, err := ss.srv.cfg.Engine.NewSubscriber(ev, func(sdp string) {
			if !ss.releaseJoined(sdp) {
				ss.send("offer", "", SDPMessage{PC: "sub", SDP: sdp})
			}
		})
		if err != nil {
			ss.vacate()
			return false, err
		}
		ss.sub = sub
	}
	jp := room.JoinParams{
		Identity:    room.Identity(g.Identity),
		Name:        name,
		Session:     ss.id,
		Permissions: permissions(g),
		Sink:        ss,
	}
	if ss.sub != nil {
		jp.Transport = ss.sub
	}
	ss.issueToken() // before the join, whose "joined" carries it
	ss.mu.Lock()
	ss.inline = req.InlineOffer && ss.sub != nil
	ss.mu.Unlock()
	part, err := ss.srv.cfg.Rooms.Join(room.Name(g.Room), jp)
	// The subscriber's first offer is made within the join; if it was not (it failed), joined
	// goes without it.
	ss.releaseJoined("")
	if err != nil {
		ss.withdrawToken()
		if ss.sub != nil {
			_ = ss.sub.Close()
			ss.sub = nil
		}
		ss.vacate()
		return false, err
	}
	ss.part = part
	ss.joined.Store(true)
	ss.srv.cfg.Observer.Joined(TransportWS, time.Since(start))
	ss.log = ss.log.With("room", g.Room, "participant", part.SID(), "identity", g.Identity)
	return false, nil
}

// peerEvents wires a PeerConnection's callbacks to this session.
func (ss *wsSession) peerEvents(pc string) rtc.PeerEvents {
	return rtc.PeerEvents{
		Candidate: func(c *webrtc.ICECandidateInit) {
			if c != nil {
				ss.send("candidate", "", CandidateMessage{PC: pc, Candidate: c})
			}
		},
		Failed: func() { ss.fail(newError(CodeNegotiationFailed, pc+" connection failed"), room.ReasonDisconnected) },
		Unanswered: func() {
			ss.fail(newError(CodeNegotiationFailed, "the "+pc+" offer was not answered in time"), room.ReasonDisconnected)
		},
		Logger: ss.log,
	}
}

func (ss *wsSession) onOffer(env Envelope, _ string) (bool, error) {
	var m SDPMessage
	if err := decode(env, &m); err != nil {
		return false, err
	}
	if m.PC != "pub" {
		return false, newError(CodeBadRequest, `clients offer only on "pub"`)
	}
	if ss.pub == nil {
		pub, err := ss.srv.cfg.Engine.NewPublisher(ss.part, ss.peerEvents("pub"))
		if err != nil {
			return false, err
		}
		ss.pub = pub
	}
	meta := make([]rtc.TrackMeta, 0, len(m.Tracks))
	for _, t := range m.Tracks {
		if len(t.Name) > 256 {
			return false, newError(CodeTooLarge, "track name over 256 bytes")
		}
		meta = append(meta, rtc.TrackMeta{ID: t.ID, Source: room.ParseSource(t.Source), Name: t.Name})
	}
	ans, err := ss.pub.HandleOffer(m.SDP, meta)
	if err != nil {
		return false, err
	}
	ss.send("answer", env.ID, SDPMessage{PC: "pub", SDP: ans})
	return false, nil
}

func (ss *wsSession) onAnswer(env Envelope, _ string) (bool, error) {
	var m SDPMessage
	if err := decode(env, &m); err != nil {
		return false, err
	}
	if m.PC != "sub" || ss.sub == nil {
		return false, newError(CodeBadRequest, `answers are for the server's "sub" offers`)
	}
	return false, ss.sub.HandleAnswer(m.SDP)
}

func (ss *wsSession) onCandidate(env Envelope, _ string) (bool, error) {
	var m CandidateMessage
	if err := decode(env, &m); err != nil {
		return false, err
	}
	if m.Candidate == nil {
		return false, nil // end of candidates
	}
	var err error
	switch {
	case m.PC == "pub" && ss.pub != nil:
		err = ss.pub.AddCandidate(*m.Candidate)
	case m.PC == "sub" && ss.sub != nil:
		err = ss.sub.AddCandidate(*m.Candidate)
	default:
		return false, newError(CodeBadRequest, "no such peer connection: "+strconvQuote(m.PC))
	}
	if err != nil {
		return false, newError(CodeBadRequest, "candidate rejected: "+err.Error())
	}
	return false, nil
}

func (ss *wsSession) onICERestart(env Envelope, _ string) (bool, error) {
	var m ICERestartRequest
	if err := decode(env, &m); err != nil {
		return false, err
	}
	if m.PC != "sub" || ss.sub == nil {
		return false, newError(CodeBadRequest, `ice_restart is for "sub"; restart "pub" with a new offer`)
	}
	ss.sub.RestartICE()
	return false, nil
}

func (ss *wsSession) onMute(env Envelope, _ string) (bool, error) {
	var m MuteRequest
	if err := decode(env, &m); err != nil {
		return false, err
	}
	t := ss.part.Room().Track(room.TrackID(m.TrackID))
	if t == nil {
		return false, room.ErrTrackNotFound
	}
	return false, ss.part.SetMuted(t.Info().Participant, t.ID(), m.Muted)
}

func (ss *wsSession) onSubscription(env Envelope, _ string) (bool, error) {
	var m SubscriptionRequest
	if err := decode(env, &m); err != nil {
		return false, err
	}
	q := room.QualityHigh
	if m.Quality != "" {
		var ok bool
		if q, ok = room.ParseQuality(m.Quality); !ok {
			return false, newError(CodeBadRequest, `quality must be "low", "medium" or "high"`)
		}
	}
	return false, ss.part.SetSubscription(room.TrackID(m.TrackID), q, m.Paused)
}

func (ss *wsSession) onChat(env Envelope, _ string) (bool, error) {
	var m ChatRequest
	if err := decode(env, &m); err != nil {
		return false, err
	}
	if m.Text == "" || len(m.Text) > MaxChatSize || !utf8.ValidString(m.Text) {
		return false, newError(CodeBadRequest, "chat text must be 1 to 4096 bytes of UTF-8")
	}
	return false, ss.part.SendChat(m.Text, env.ID)
}

func (ss *wsSession) onData(env Envelope, _ string) (bool, error) {
	var m DataRequest
	if err := decode(env, &m); err != nil {
		return false, err
	}
	if len(m.Topic) > 128 || len(m.Payload) > MaxPayloadSize {
		return false, newError(CodeTooLarge, "topic over 128 bytes or payload over 16 KiB")
	}
	if len(m.Payload) == 0 {
		m.Payload = json.RawMessage("null")
	}
	return false, ss.part.SendState(m.Topic, m.Payload, env.ID)
}

func (ss *wsSession) onKick(env Envelope, _ string) (bool, error) {
	var m KickRequest
	if err := decode(env, &m); err != nil {
		return false, err
	}
	return false, ss.part.Kick(room.Identity(m.Identity))
}

func (ss *wsSession) onLeave(Envelope, string) (bool, error) { return true, nil }

func (ss *wsSession) onPing(env Envelope, _ string) (bool, error) {
	var m PingMessage
	if len(env.Data) > 0 {
		if err := decode(env, &m); err != nil {
			return false, err
		}
	}
	ss.send("pong", env.ID, m)
	return false, nil
}

// Deliver implements room.EventSink. It only enqueues.
func (ss *wsSession) Deliver(ev room.Event) {
	if j, ok := ev.(room.Joined); ok {
		others := make([]Participant, 0, len(j.Others))
		subOffer := false
		for _, o := range j.Others {
			others = append(others, participantMsg(o))
			subOffer = subOffer || (ss.sub != nil && len(o.Tracks) > 0)
		}
		ss.mu.Lock()
		msg := Joined{
			SessionID: string(ss.id), Room: string(j.Room), Participant: participantMsg(j.Self),
			Participants: others, ICEServers: []ICEServer{}, ResumeToken: ss.token, SubOffer: subOffer,
		}
		if subOffer && ss.inline {
			ss.heldJoined = &msg // sent with the offer (releaseJoined)
			ss.mu.Unlock()
			return
		}
		ss.mu.Unlock()
		ss.send("joined", ss.joinID, msg)
		return
	}
	typ, payload := eventMessage(ev)
	if typ == "" {
		return
	}
	if e, ok := ev.(room.SessionEnded); ok {
		ss.sendFinal(typ, payload, e.Reason)
		return
	}
	id := ""
	if d, ok := ev.(room.DataMessage); ok && ss.joined.Load() && d.From == ss.part.SID() {
		id = d.Ref // the sender's own copy answers its request
	}
	ss.send(typ, id, payload)
}

// send queues a message. A client whose queue is full is disconnected.
func (ss *wsSession) send(typ, id string, payload any) { ss.enqueue(typ, id, payload, false, "") }

// sendFinal queues a last message; the socket closes after it.
func (ss *wsSession) sendFinal(typ string, payload any, cause room.LeaveReason) {
	ss.enqueue(typ, "", payload, true, cause)
}

func (ss *wsSession) sendError(e *Error, ref, id string) {
	ss.srv.cfg.Observer.Error(e.Code)
	ss.send("error", id, ErrorMsg{Code: e.Code, Message: e.Message, Ref: ref})
}

// fail tells the client why and ends the session.
func (ss *wsSession) fail(e *Error, cause room.LeaveReason) {
	ss.srv.cfg.Observer.Error(e.Code)
	if cause == "" {
		cause = room.ReasonDisconnected
	}
	data, _ := json.Marshal(Envelope{V: ProtocolVersion, Type: "error", Data: mustJSON(ErrorMsg{Code: e.Code, Message: e.Message})})
	ss.push(outbound{data: data, final: true}, cause)
}

func (ss *wsSession) enqueue(typ, id string, payload any, final bool, cause room.LeaveReason) {
	data, err := json.Marshal(Envelope{V: ProtocolVersion, Type: typ, ID: id, Data: mustJSON(payload)})
	if err != nil {
		ss.log.Error("cannot encode message", "type", typ, "err", err)
		return
	}
	ss.push(outbound{data: data, final: final}, cause)
}

// releaseJoined sends a held joined with sdp, the subscriber's first offer (without it if sdp
// is empty), then the messages held behind it, and reports whether there was one.
func (ss *wsSession) releaseJoined(sdp string) bool {
	ss.mu.Lock()
	released, slow := ss.releaseJoinedLocked(sdp)
	ss.mu.Unlock()
	ss.warnSlow(slow)
	return released
}

// releaseJoinedLocked is releaseJoined with ss.mu held; slow reports a client disconnected
// because its queue was full.
func (ss *wsSession) releaseJoinedLocked(sdp string) (released, slow bool) {
	ss.inline = false // later offers are offer messages
	j := ss.heldJoined
	if j == nil {
		return false, false
	}
	held := ss.heldOut
	ss.heldJoined, ss.heldOut = nil, nil
	j.SubOfferSDP = sdp
	j.SubOffer = sdp != ""
	data, _ := json.Marshal(Envelope{V: ProtocolVersion, Type: "joined", ID: ss.joinID, Data: mustJSON(j)})
	slow = ss.pushLocked(outbound{data: data}, "")
	for _, h := range held {
		slow = ss.pushLocked(h.o, h.cause) || slow
	}
	return true, slow
}

func (ss *wsSession) push(o outbound, cause room.LeaveReason) {
	ss.mu.Lock()
	var slow bool
	switch {
	case ss.heldJoined != nil && o.final:
		// The session ends: joined (without the offer) goes first.
		_, slow = ss.releaseJoinedLocked("")
		slow = ss.pushLocked(o, cause) || slow
	case ss.heldJoined != nil && len(ss.heldOut) >= cap(ss.out):
		slow = !ss.closing && ss.dropSlowLocked()
	case ss.heldJoined != nil:
		ss.heldOut = append(ss.heldOut, heldMessage{o, cause})
	default:
		slow = ss.pushLocked(o, cause)
	}
	ss.mu.Unlock()
	ss.warnSlow(slow)
}

// pushLocked queues o, and reports whether the client was disconnected because its queue was
// full; ss.mu held.
func (ss *wsSession) pushLocked(o outbound, cause room.LeaveReason) (slow bool) {
	if ss.closing {
		return false
	}
	if o.final {
		ss.closing = true
		ss.endCause = cause
		if ss.sock == nil && ss.joined.Load() {
			ss.cancel() // parked: nobody will write it; the grace goroutine ends the session
		}
	}
	select {
	case ss.out <- o:
		return false
	default:
		return ss.dropSlowLocked()
	}
}

// dropSlowLocked ends the session of a client whose queue is full; ss.mu held. It reports
// true, for the caller to log once it has let go of ss.mu.
func (ss *wsSession) dropSlowLocked() bool {
	ss.closing = true
	ss.endCause = room.ReasonDisconnected
	ss.cancel()
	return true
}

func (ss *wsSession) warnSlow(slow bool) {
	if slow {
		ss.log.Warn("client too slow; disconnecting")
	}
}

// writeLoop writes queued messages and pings until the socket ends or stop is closed.
func (ss *wsSession) writeLoop(sock *socket, stop <-chan struct{}) {
	ping := time.NewTicker(ss.srv.cfg.PingInterval)
	defer ping.Stop()
	for {
		select {
		case <-stop:
			return
		case <-sock.ctx.Done():
			return // serve flushes if the session ends; a parked one keeps its queue
		case o := <-ss.out:
			if !ss.write(sock, o) {
				return
			}
		case <-ping.C:
			ctx, cancel := context.WithTimeout(sock.ctx, ss.srv.cfg.PingTimeout)
			err := sock.conn.Ping(ctx)
			cancel()
			if err != nil && sock.ctx.Err() == nil {
				ss.log.Info("client stopped answering pings")
				sock.cancel()
				return
			}
		}
	}
}

// write sends one message; after a final one it closes the socket.
func (ss *wsSession) write(sock *socket, o outbound) bool {
	ctx, cancel := context.WithTimeout(sock.ctx, 10*time.Second)
	err := sock.conn.Write(ctx, websocket.MessageText, o.data)
	cancel()
	if err != nil {
		sock.cancel()
		return false
	}
	if o.final {
		_ = sock.conn.Close(websocket.StatusNormalClosure, "")
		sock.cancel()
		return false
	}
	return true
}

// flush writes what is still queued (e.g. the shutdown notice) with a short deadline.
func (ss *wsSession) flush(sock *socket) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	for {
		select {
		case o := <-ss.out:
			if sock.conn.Write(ctx, websocket.MessageText, o.data) != nil {
				return
			}
			if o.final {
				_ = sock.conn.Close(websocket.StatusNormalClosure, "")
				return
			}
		default:
			return
		}
	}
}

func mustJSON(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		return json.RawMessage("null")
	}
	return b
}

// truncateUTF8 cuts s to at most n bytes without splitting a character, so that what is
// echoed to the client is still the UTF-8 it sent.
func truncateUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

func strconvQuote(s string) string {
	if len(s) > 64 {
		s = s[:64]
	}
	b, _ := json.Marshal(s)
	return string(b)
}
