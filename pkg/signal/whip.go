package signal

import (
	"errors"
	"io"
	"mime"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/cascade-sfu/cascade/pkg/auth"
	"github.com/cascade-sfu/cascade/pkg/room"
	"github.com/cascade-sfu/cascade/pkg/rtc"
)

// httpSession is one WHIP publication or WHEP viewer.
type httpSession struct {
	srv      *Server
	id       string
	kind     string // "whip" or "whep"
	roomName string
	identity string
	part     *room.Participant
	pub      *rtc.Publisher
	viewer   *rtc.Viewer
	occupied bool
	once     sync.Once
}

// Deliver implements room.EventSink: WHIP and WHEP clients have no event channel, but a
// session the room ends (replaced, kicked, shutdown) is torn down.
func (h *httpSession) Deliver(ev room.Event) {
	if e, ok := ev.(room.SessionEnded); ok {
		h.srv.spawn(func() { h.end(e.Reason) }) // Deliver runs under room locks; end closes PeerConnections
	}
}

// end removes the session and releases everything it holds. Idempotent.
func (h *httpSession) end(reason room.LeaveReason) {
	h.once.Do(func() {
		h.srv.mu.Lock()
		delete(h.srv.https, h.id)
		h.srv.mu.Unlock()
		if h.part != nil {
			h.part.Leave(reason)
		}
		if h.occupied {
			h.srv.vacate(h.roomName, h.identity, h.id)
		}
		if h.pub != nil {
			_ = h.pub.Close()
		}
		if h.viewer != nil {
			_ = h.viewer.Close()
		}
	})
}

// readOffer checks the request's content type and size and returns the SDP offer.
func readOffer(w http.ResponseWriter, r *http.Request) (string, *Error) {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/sdp" {
		return "", &Error{Code: codeUnsupportedMediaType, Message: "Content-Type must be application/sdp"}
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxFrameSize))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return "", newError(CodeTooLarge, "offer over 64 KiB")
		}
		return "", newError(CodeBadRequest, "cannot read body")
	}
	if len(body) == 0 {
		return "", newError(CodeInvalidSDP, "empty body: an SDP offer is required")
	}
	return string(body), nil
}

// begin does what WHIP and WHEP share: admission, token, offer.
func (s *Server) begin(w http.ResponseWriter, r *http.Request) (auth.Grants, string, bool) {
	ip := clientIP(r)
	if e := s.admit(ip); e != nil {
		s.writeWHError(w, e)
		return auth.Grants{}, "", false
	}
	var g auth.Grants
	tok, err := auth.BearerToken(r.Header.Get("Authorization"))
	if err == nil {
		g, err = s.authorize(tok, r.PathValue("room"))
	}
	if err := s.charge(ip, err); err != nil {
		s.writeWHError(w, classify(err))
		return auth.Grants{}, "", false
	}
	offer, e := readOffer(w, r)
	if e != nil {
		s.writeWHError(w, e)
		return auth.Grants{}, "", false
	}
	return g, offer, true
}

func (s *Server) writeWHError(w http.ResponseWriter, e *Error) {
	if e.Code == codeUnsupportedMediaType {
		s.cfg.Observer.Error(e.Code)
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(http.StatusUnsupportedMediaType)
		_, _ = w.Write([]byte(e.Message + "\n"))
		return
	}
	s.writeHTTPError(w, e)
}

func (s *Server) handleWHIP(w http.ResponseWriter, r *http.Request) {
	g, offer, ok := s.begin(w, r)
	if !ok {
		return
	}
	if !g.CanPublish {
		s.writeHTTPError(w, newError(CodeForbidden, "token does not allow publishing"))
		return
	}
	// Refuse an unusable offer before joining: a join would announce the publisher and
	// replace a session of the same identity.
	if err := rtc.CheckOffer(offer); err != nil {
		s.writeHTTPError(w, classify(err))
		return
	}
	start := time.Now()
	h := &httpSession{srv: s, id: room.NewID("WH"), kind: "whip", roomName: g.Room, identity: g.Identity}
	if err := s.occupy(r.Context(), g, h.id); err != nil {
		s.writeHTTPError(w, classify(err))
		return
	}
	h.occupied = true
	part, err := s.cfg.Rooms.Join(room.Name(g.Room), room.JoinParams{
		Identity: room.Identity(g.Identity), Name: g.Name, Session: room.SessionID(h.id),
		Permissions: permissions(g), Sink: h,
	})
	if err != nil {
		h.end(room.ReasonDisconnected)
		s.writeHTTPError(w, classify(err))
		return
	}
	h.part = part
	s.cfg.Observer.Joined(TransportWHIP, time.Since(start))
	pub, err := s.cfg.Engine.NewPublisher(part, rtc.PeerEvents{Failed: func() { s.spawn(func() { h.end(room.ReasonDisconnected) }) }})
	if err != nil {
		h.end(room.ReasonDisconnected)
		s.writeHTTPError(w, classify(err))
		return
	}
	h.pub = pub
	ans, err := pub.HandleOffer(offer, nil)
	if err != nil {
		h.end(room.ReasonDisconnected)
		s.writeHTTPError(w, classify(err))
		return
	}
	s.created(w, h, ans)
}

func (s *Server) handleWHEP(w http.ResponseWriter, r *http.Request) {
	g, offer, ok := s.begin(w, r)
	if !ok {
		return
	}
	if !g.CanSubscribe {
		s.writeHTTPError(w, newError(CodeForbidden, "token does not allow subscribing"))
		return
	}
	start := time.Now()
	h := &httpSession{srv: s, id: room.NewID("WH"), kind: "whep", roomName: g.Room, identity: g.Identity}
	viewer, err := s.cfg.Engine.NewViewer(offer, rtc.PeerEvents{
		Failed: func() { s.spawn(func() { h.end(room.ReasonDisconnected) }) },
		Logger: s.log.With("room", g.Room, "identity", g.Identity, "session", h.id),
	})
	if err != nil {
		s.writeHTTPError(w, classify(err))
		return
	}
	h.viewer = viewer
	if err := s.occupy(r.Context(), g, h.id); err != nil {
		_ = viewer.Close()
		s.writeHTTPError(w, classify(err))
		return
	}
	h.occupied = true
	perms := permissions(g)
	perms.Publish, perms.PublishData = false, false
	part, err := s.cfg.Rooms.Join(room.Name(g.Room), room.JoinParams{
		Identity: room.Identity(g.Identity), Name: g.Name, Session: room.SessionID(h.id),
		Permissions: perms, Hidden: true, Sink: h, Transport: viewer,
	})
	if err != nil {
		h.end(room.ReasonDisconnected)
		s.writeHTTPError(w, classify(err))
		return
	}
	h.part = part
	s.cfg.Observer.Joined(TransportWHEP, time.Since(start))
	ans, err := viewer.Answer(offer)
	if err != nil {
		h.end(room.ReasonDisconnected)
		s.writeHTTPError(w, newError(CodeNegotiationFailed, err.Error()))
		return
	}
	s.created(w, h, ans)
}

// created registers h and answers 201 with its Location.
func (s *Server) created(w http.ResponseWriter, h *httpSession, answer string) {
	s.mu.Lock()
	s.https[h.id] = h
	s.mu.Unlock()
	loc := "/" + h.kind + "/" + h.roomName + "/" + h.id
	w.Header().Set("Location", loc)
	w.Header().Set("Content-Type", "application/sdp")
	w.Header().Set("Accept-Patch", "application/trickle-ice-sdpfrag")
	w.WriteHeader(http.StatusCreated)
	_, _ = io.WriteString(w, answer)
}

// lookup finds the session named by the URL and checks that the caller may act on it: a valid
// token for the same room, for the same identity or with the admin grant.
func (s *Server) lookup(w http.ResponseWriter, r *http.Request) *httpSession {
	kind := strings.Split(strings.TrimPrefix(r.URL.Path, "/"), "/")[0]
	s.mu.Lock()
	h := s.https[r.PathValue("id")]
	s.mu.Unlock()
	if h == nil || h.kind != kind || h.roomName != r.PathValue("room") {
		s.writeHTTPError(w, newError(CodeNotFound, "no such session"))
		return nil
	}
	tok, err := auth.BearerToken(r.Header.Get("Authorization"))
	if err != nil {
		s.writeHTTPError(w, classify(err))
		return nil
	}
	g, err := s.authorize(tok, h.roomName)
	if err != nil {
		s.writeHTTPError(w, classify(err))
		return nil
	}
	if g.Identity != h.identity && !g.RoomAdmin {
		s.writeHTTPError(w, newError(CodeForbidden, "session belongs to another identity"))
		return nil
	}
	return h
}

func (s *Server) handleDelete(w http.ResponseWriter, r *http.Request) {
	if h := s.lookup(w, r); h != nil {
		h.end(room.ReasonLeft)
		w.WriteHeader(http.StatusOK)
	}
}

// handlePatch takes trickled candidates (RFC 8840 SDP fragments): 204. A fragment with new ICE
// credentials is an ICE restart (RFC 9725 §4.3): 200 with the server's new credentials and
// candidates as a fragment.
func (s *Server) handlePatch(w http.ResponseWriter, r *http.Request) {
	h := s.lookup(w, r)
	if h == nil {
		return
	}
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if mt != "application/trickle-ice-sdpfrag" {
		s.writeWHError(w, &Error{Code: codeUnsupportedMediaType, Message: "Content-Type must be application/trickle-ice-sdpfrag"})
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxFrameSize))
	if err != nil {
		s.writeHTTPError(w, newError(CodeTooLarge, "fragment over 64 KiB"))
		return
	}
	cands, ufrag, perr := parseSDPFrag(string(body))
	if perr != nil {
		s.writeHTTPError(w, perr)
		return
	}
	current := ""
	if h.pub != nil {
		current = rtc.ICEUfrag(h.pub.RemoteDescription())
	} else {
		current = rtc.ICEUfrag(h.viewer.RemoteDescription())
	}
	if ufrag != "" && ufrag != current {
		s.restartICE(w, h, ufrag, fragPassword(string(body)), cands)
		return
	}
	for _, c := range cands {
		var err error
		if h.pub != nil {
			err = h.pub.AddCandidate(c)
		} else {
			err = h.viewer.AddCandidate(c)
		}
		if err != nil {
			s.writeHTTPError(w, newError(CodeBadRequest, "candidate rejected: "+err.Error()))
			return
		}
	}
	w.WriteHeader(http.StatusNoContent)
}

// restartICE answers a PATCH that restarts ICE.
func (s *Server) restartICE(w http.ResponseWriter, h *httpSession, ufrag, pwd string, cands []webrtc.ICECandidateInit) {
	var frag string
	var err error
	if h.pub != nil {
		frag, err = h.pub.RestartICE(ufrag, pwd, cands)
	} else {
		frag, err = h.viewer.RestartICE(ufrag, pwd, cands)
	}
	if err != nil {
		s.writeHTTPError(w, classify(err))
		return
	}
	w.Header().Set("Content-Type", "application/trickle-ice-sdpfrag")
	w.WriteHeader(http.StatusOK)
	_, _ = io.WriteString(w, frag)
}

// fragPassword returns the a=ice-pwd of an SDP fragment, or "".
func fragPassword(frag string) string {
	for _, line := range strings.Split(frag, "\n") {
		if p, ok := strings.CutPrefix(strings.TrimRight(line, "\r"), "a=ice-pwd:"); ok {
			return p
		}
	}
	return ""
}

// parseSDPFrag extracts candidates and the ICE username fragment from a trickle-ice-sdpfrag
// (RFC 8840). A ufrag other than the session's means the client restarts ICE.
func parseSDPFrag(frag string) ([]webrtc.ICECandidateInit, string, *Error) {
	var out []webrtc.ICECandidateInit
	var mid *string
	ufrag := ""
	for _, line := range strings.Split(frag, "\n") {
		line = strings.TrimRight(line, "\r")
		switch {
		case strings.HasPrefix(line, "a=mid:"):
			m := strings.TrimPrefix(line, "a=mid:")
			mid = &m
		case strings.HasPrefix(line, "a=ice-ufrag:"):
			ufrag = strings.TrimPrefix(line, "a=ice-ufrag:")
		case strings.HasPrefix(line, "a=candidate:"):
			if len(out) >= 64 {
				return nil, "", newError(CodeTooLarge, "more than 64 candidates")
			}
			c := webrtc.ICECandidateInit{Candidate: strings.TrimPrefix(line, "a=")}
			if mid != nil {
				m := *mid
				c.SDPMid = &m
			} else {
				zero := uint16(0)
				c.SDPMLineIndex = &zero
			}
			out = append(out, c)
		}
	}
	return out, ufrag, nil
}
