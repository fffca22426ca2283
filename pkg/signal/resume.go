package signal

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"io"
	"net"
	"syscall"
	"time"

	"github.com/coder/websocket"

	"github.com/cascade-sfu/cascade/pkg/room"
)

// A WebSocket session outlives its socket: when the socket drops while the session is joined,
// the session parks for Config.ResumeGrace with its PeerConnections, tracks and queued messages,
// and a new socket that sends "resume" with the session's token takes it over. Nobody else in
// the room sees anything. A token is single use; each resume hands out a new one.

// maxResumeWait bounds how long a resume waits for the session's old socket to let go.
const maxResumeWait = 5 * time.Second

// socket is one WebSocket connection serving a session.
type socket struct {
	conn   *websocket.Conn
	ctx    context.Context // cancelled when the socket ends (or the session it serves does)
	cancel context.CancelFunc
	// dropped is set by the reader when the socket ended without a close frame (a broken
	// connection, unanswered pings): only then may the session wait for a resume.
	dropped bool
}

// ResumeRequest is the data of "resume": the token of a session whose socket dropped.
type ResumeRequest struct {
	Token string `json:"token"`
}

// Resumed answers "resume": the session goes on; Token is the next resume token.
type Resumed struct {
	SessionID   string `json:"session_id"`
	ResumeToken string `json:"resume_token"`
}

// brokenSocket reports whether a read error means the connection broke (no close frame, a
// reset, unanswered pings), rather than a close by the client or a protocol violation.
func brokenSocket(err error) bool {
	if websocket.CloseStatus(err) != -1 {
		return false
	}
	var ne net.Error
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) ||
		errors.Is(err, context.Canceled) || errors.Is(err, syscall.ECONNRESET) || errors.As(err, &ne)
}

func newResumeToken() string {
	b := make([]byte, 24)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// issueToken gives the session a fresh token (the previous one, if any, is withdrawn).
func (ss *wsSession) issueToken() string {
	if ss.srv.cfg.ResumeGrace <= 0 {
		return ""
	}
	tok := newResumeToken()
	s := ss.srv
	s.mu.Lock()
	ss.mu.Lock()
	if ss.token != "" {
		delete(s.resumes, ss.token)
	}
	ss.token = tok
	ss.mu.Unlock()
	s.resumes[tok] = ss
	s.mu.Unlock()
	return tok
}

// withdrawToken makes the session's token unusable; true if it was still registered.
func (ss *wsSession) withdrawToken() bool {
	s := ss.srv
	s.mu.Lock()
	defer s.mu.Unlock()
	ss.mu.Lock()
	tok := ss.token
	ss.mu.Unlock()
	if tok == "" || s.resumes[tok] != ss {
		return false
	}
	delete(s.resumes, tok)
	return true
}

// claim removes a token from the registry and returns its session, or nil.
func (s *Server) claim(tok string) *wsSession {
	s.mu.Lock()
	defer s.mu.Unlock()
	ss := s.resumes[tok]
	delete(s.resumes, tok)
	return ss
}

// park keeps a joined session whose socket dropped alive for the grace period. It returns
// false when the session must end now instead.
func (ss *wsSession) park(reason room.LeaveReason) bool {
	if reason != room.ReasonDisconnected || !ss.joined.Load() || ss.srv.cfg.ResumeGrace <= 0 || ss.ctx.Err() != nil {
		return false
	}
	ss.mu.Lock()
	if ss.closing || ss.token == "" {
		ss.mu.Unlock()
		return false
	}
	ss.sock = nil
	parked := ss.parked
	ss.mu.Unlock()
	if !ss.srv.enter() {
		return false
	}
	ss.log.Info("socket dropped; session kept for resumption", "grace", ss.srv.cfg.ResumeGrace)
	close(parked)
	go func() {
		defer ss.srv.wg.Done()
		ss.waitResume()
	}()
	return true
}

// waitResume owns a parked session until a resume takes it or the grace period ends it.
func (ss *wsSession) waitResume() {
	grace := time.NewTimer(ss.srv.cfg.ResumeGrace)
	defer grace.Stop()
	for {
		select {
		case <-ss.resume:
			return // the resuming socket's goroutine owns the session now
		case <-grace.C:
			if !ss.withdrawToken() {
				continue // a resume claimed the token and is about to take over (or give up)
			}
			ss.log.Info("session not resumed in time")
			ss.finishParked(room.ReasonDisconnected)
			return
		case <-ss.ctx.Done():
			ss.withdrawToken()
			reason := room.ReasonDisconnected
			if ss.srv.ctx.Err() != nil {
				reason = room.ReasonShutdown
			}
			ss.finishParked(reason)
			return
		}
	}
}

// finishParked ends a parked session (no socket, no writer).
func (ss *wsSession) finishParked(reason room.LeaveReason) {
	close(ss.gone)
	ss.mu.Lock()
	if c := ss.endCause; c != "" {
		reason = c
	}
	ss.mu.Unlock()
	ss.end(reason)
	ss.cancel()
	ss.closePeers()
}

// onResume takes over the session of a token: this socket's own session has not joined and
// ends; the socket then serves the resumed one.
func (ss *wsSession) onResume(env Envelope, ip string) (bool, error) {
	if ss.part != nil || ss.target != nil {
		return false, newError(CodeAlreadyJoined, "this socket has joined already")
	}
	var req ResumeRequest
	if err := decode(env, &req); err != nil {
		return false, err
	}
	if e := ss.srv.admit(ip); e != nil {
		return false, e
	}
	var old *wsSession
	if len(req.Token) <= 64 {
		old = ss.srv.claim(req.Token)
	}
	if old == nil {
		return false, ss.srv.charge(ip, newError(CodeResumeFailed, "unknown, expired or already used resume token; join again"))
	}
	if !old.takeOver() {
		return false, newError(CodeResumeFailed, "the session ended before it could be resumed; join again")
	}
	old.resumeID = env.ID
	ss.target = old
	ss.joined.Store(true) // no join timeout for this socket
	return true, nil
}

// takeOver detaches the session from its old socket if it still has one, and takes it from its
// parked owner. False when the session ended meanwhile (the caller then owns nothing).
func (ss *wsSession) takeOver() bool {
	ss.mu.Lock()
	sock, parked := ss.sock, ss.parked
	ss.mu.Unlock()
	if sock != nil {
		sock.cancel() // a half-open socket the server has not noticed yet
	}
	t := time.NewTimer(maxResumeWait)
	defer t.Stop()
	select {
	case <-parked:
	case <-ss.gone:
		return false
	case <-t.C:
		ss.cancel() // the old socket did not let go: end the session rather than share it
		return false
	}
	select {
	case ss.resume <- struct{}{}:
		return true
	case <-ss.gone:
		return false
	}
}

// attach makes sock the session's socket.
func (ss *wsSession) attach(sock *socket) {
	ss.mu.Lock()
	ss.sock = sock
	ss.parked = make(chan struct{})
	ss.mu.Unlock()
}

// sendResumed answers the resume with the next token.
func (ss *wsSession) sendResumed() {
	tok := ss.issueToken()
	id := ss.resumeID
	ss.resumeID = ""
	ss.send("resumed", id, Resumed{SessionID: string(ss.id), ResumeToken: tok})
	ss.log.Info("session resumed")
}
