package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/cascade-sfu/cascade/pkg/auth"
	"github.com/cascade-sfu/cascade/pkg/cluster"
)

// The admin API: operator actions on rooms and participants anywhere in the cluster, and
// node drain. Every endpoint needs a cluster admin token. See docs/api.md.

// Operator carries out admin actions across the cluster (cluster.Admin).
type Operator interface {
	CreateRoom(ctx context.Context, info cluster.RoomInfo) (cluster.RoomInfo, bool, error)
	DeleteRoom(ctx context.Context, room string) error
	Participants(ctx context.Context, room string) ([]cluster.AdminParticipant, error)
	Evict(ctx context.Context, room, identity string) error
	Rename(ctx context.Context, room, identity, name string) error
	Mute(ctx context.Context, room, identity, track string, muted bool) error
	Send(ctx context.Context, room, text string) error
	Drain(ctx context.Context, node cluster.NodeID) error
}

// Limits of the admin API.
const (
	maxAdminBody       = 128 << 10
	MaxDisplayName     = 128
	MaxMessageText     = 4 << 10
	MaxTrackID         = 128
	MaxRoomLimit       = 100_000
	adminActionTimeout = 10 * time.Second
)

// maxAdminActions bounds the admin actions one node runs at once (each may fan out to every
// node hosting a room); more are answered 429.
const maxAdminActions = 16

func (s *Server) registerAdmin(mux *http.ServeMux) {
	slots := make(chan struct{}, maxAdminActions)
	act := func(h http.HandlerFunc) http.HandlerFunc {
		return s.admin(func(w http.ResponseWriter, r *http.Request) {
			select {
			case slots <- struct{}{}:
				defer func() { <-slots }()
				h(w, r)
			default:
				w.Header().Set("Retry-After", "1")
				httpError(w, http.StatusTooManyRequests, "too many admin actions in progress on this node; retry")
			}
		})
	}
	mux.HandleFunc("POST /v1/rooms", act(s.handleCreateRoom))
	mux.HandleFunc("DELETE /v1/rooms/{room}", act(s.handleDeleteRoom))
	mux.HandleFunc("GET /v1/rooms/{room}/participants", act(s.handleParticipants))
	mux.HandleFunc("DELETE /v1/rooms/{room}/participants/{identity}", act(s.handleEvict))
	mux.HandleFunc("PATCH /v1/rooms/{room}/participants/{identity}", act(s.handleRename))
	mux.HandleFunc("POST /v1/rooms/{room}/participants/{identity}/tracks/{track}/mute", act(s.handleMute))
	mux.HandleFunc("POST /v1/rooms/{room}/messages", act(s.handleSend))
	mux.HandleFunc("POST /v1/nodes/{node}/drain", act(s.handleDrain))
}

// CreateRoomRequest is the body of POST /v1/rooms.
type CreateRoomRequest struct {
	Name            string `json:"name"`
	Metadata        string `json:"metadata"`
	MaxParticipants int    `json:"max_participants"`
}

// RenameRequest is the body of PATCH /v1/rooms/{room}/participants/{identity}.
type RenameRequest struct {
	Name string `json:"name"`
}

// MuteRequest is the body of POST .../tracks/{track}/mute; muted defaults to true.
type MuteRequest struct {
	Muted *bool `json:"muted"`
}

// SendRequest is the body of POST /v1/rooms/{room}/messages.
type SendRequest struct {
	Text string `json:"text"`
}

// Participants is the answer of GET /v1/rooms/{room}/participants.
type Participants struct {
	Room         string                     `json:"room"`
	Participants []cluster.AdminParticipant `json:"participants"`
	// Incomplete names what could not be read (a node that did not answer); absent when whole.
	Incomplete string `json:"incomplete,omitempty"`
}

// Done is the answer of an action that returns nothing else.
type Done struct {
	OK bool `json:"ok"`
}

func (s *Server) operator(w http.ResponseWriter) (Operator, bool) {
	if s.cfg.Operator == nil {
		httpError(w, http.StatusServiceUnavailable, "admin actions are not available on this node")
		return nil, false
	}
	return s.cfg.Operator, true
}

// readBody decodes a bounded JSON body strictly into v.
func readBody(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxAdminBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			httpError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("body over %d bytes", maxAdminBody))
			return false
		}
		httpError(w, http.StatusBadRequest, "body must be a JSON object: "+err.Error())
		return false
	}
	if dec.More() {
		httpError(w, http.StatusBadRequest, "body must be one JSON object")
		return false
	}
	return true
}

// pathRoom reads and checks the {room} and, with identity, the {identity} path values.
func pathRoom(w http.ResponseWriter, r *http.Request, identity bool) (room, id string, ok bool) {
	room = r.PathValue("room")
	if err := auth.ValidRoomName(room); err != nil {
		httpError(w, http.StatusBadRequest, "room: "+err.Error())
		return "", "", false
	}
	if identity {
		id = r.PathValue("identity")
		if err := auth.ValidIdentity(id); err != nil {
			httpError(w, http.StatusBadRequest, "identity: "+err.Error())
			return "", "", false
		}
	}
	return room, id, true
}

// checkText rejects empty, over-long, non-UTF-8 text, or text with control characters
// (newlines and tabs allowed when multiline).
func checkText(what, s string, limit int, multiline bool) error {
	if s == "" || len(s) > limit || !utf8.ValidString(s) {
		return fmt.Errorf("%s must be 1 to %d bytes of UTF-8", what, limit)
	}
	if strings.IndexFunc(s, func(r rune) bool { return unicode.IsControl(r) && !(multiline && (r == '\n' || r == '\t')) }) >= 0 {
		return fmt.Errorf("%s must not contain control characters", what)
	}
	return nil
}

// actionError answers an Operator error: 404 for what does not exist, 409 for a conflict,
// 400 for what the store calls invalid, 503 when the cluster cannot answer.
func actionError(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, cluster.ErrRoomNotFound), errors.Is(err, cluster.ErrParticipantNotFound),
		errors.Is(err, cluster.ErrTrackNotFound), errors.Is(err, cluster.ErrNodeNotFound):
		httpError(w, http.StatusNotFound, err.Error())
	case errors.Is(err, cluster.ErrRoomOccupied):
		httpError(w, http.StatusConflict, err.Error())
	case errors.Is(err, cluster.ErrInvalid):
		httpError(w, http.StatusBadRequest, err.Error())
	case errors.Is(err, cluster.ErrNodeUnreachable):
		httpError(w, http.StatusServiceUnavailable, err.Error())
	default:
		httpError(w, http.StatusServiceUnavailable, "cluster unavailable: "+err.Error())
	}
}

func actionContext(r *http.Request) (context.Context, context.CancelFunc) {
	return context.WithTimeout(r.Context(), adminActionTimeout)
}

func (s *Server) handleCreateRoom(w http.ResponseWriter, r *http.Request) {
	op, ok := s.operator(w)
	if !ok {
		return
	}
	var req CreateRoomRequest
	if !readBody(w, r, &req) {
		return
	}
	if err := auth.ValidRoomName(req.Name); err != nil {
		httpError(w, http.StatusBadRequest, "name: "+err.Error())
		return
	}
	if len(req.Metadata) > cluster.MaxRoomMetadata || !utf8.ValidString(req.Metadata) {
		httpError(w, http.StatusBadRequest, fmt.Sprintf("metadata must be at most %d bytes of UTF-8", cluster.MaxRoomMetadata))
		return
	}
	if req.MaxParticipants < 0 || req.MaxParticipants > MaxRoomLimit {
		httpError(w, http.StatusBadRequest, fmt.Sprintf("max_participants must be 0 (the node default) to %d", MaxRoomLimit))
		return
	}
	ctx, cancel := actionContext(r)
	defer cancel()
	info, created, err := op.CreateRoom(ctx, cluster.RoomInfo{Name: req.Name, Metadata: req.Metadata, MaxParticipants: req.MaxParticipants})
	if err != nil {
		actionError(w, err)
		return
	}
	view := RoomView{Name: info.Name, Metadata: info.Metadata, MaxParticipants: info.MaxParticipants, CreatedAt: info.CreatedAt, Nodes: map[string]int{}}
	if !created {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusConflict)
		_ = json.NewEncoder(w).Encode(struct {
			Error string   `json:"error"`
			Room  RoomView `json:"room"`
		}{"room already exists", view})
		return
	}
	s.log.Info("room created by an operator", "room", info.Name, "max_participants", info.MaxParticipants)
	w.Header().Set("Location", "/v1/rooms/"+info.Name)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusCreated)
	_ = json.NewEncoder(w).Encode(view)
}

func (s *Server) handleDeleteRoom(w http.ResponseWriter, r *http.Request) {
	op, ok := s.operator(w)
	if !ok {
		return
	}
	room, _, ok := pathRoom(w, r, false)
	if !ok {
		return
	}
	ctx, cancel := actionContext(r)
	defer cancel()
	if err := op.DeleteRoom(ctx, room); err != nil {
		actionError(w, err)
		return
	}
	s.log.Info("room deleted by an operator", "room", room)
	writeJSON(w, Done{OK: true})
}

func (s *Server) handleParticipants(w http.ResponseWriter, r *http.Request) {
	op, ok := s.operator(w)
	if !ok {
		return
	}
	room, _, ok := pathRoom(w, r, false)
	if !ok {
		return
	}
	ctx, cancel := actionContext(r)
	defer cancel()
	list, err := op.Participants(ctx, room)
	out := Participants{Room: room, Participants: list}
	if err != nil {
		if len(list) == 0 || errors.Is(err, cluster.ErrRoomNotFound) {
			actionError(w, err)
			return
		}
		out.Incomplete = err.Error() // some nodes answered: show what they said
	}
	writeJSON(w, out)
}

func (s *Server) handleEvict(w http.ResponseWriter, r *http.Request) {
	op, ok := s.operator(w)
	if !ok {
		return
	}
	room, id, ok := pathRoom(w, r, true)
	if !ok {
		return
	}
	ctx, cancel := actionContext(r)
	defer cancel()
	if err := op.Evict(ctx, room, id); err != nil {
		actionError(w, err)
		return
	}
	s.log.Info("participant evicted by an operator", "room", room, "participant", id)
	writeJSON(w, Done{OK: true})
}

func (s *Server) handleRename(w http.ResponseWriter, r *http.Request) {
	op, ok := s.operator(w)
	if !ok {
		return
	}
	room, id, ok := pathRoom(w, r, true)
	if !ok {
		return
	}
	var req RenameRequest
	if !readBody(w, r, &req) {
		return
	}
	if err := checkText("name", req.Name, MaxDisplayName, false); err != nil {
		httpError(w, http.StatusBadRequest, err.Error())
		return
	}
	ctx, cancel := actionContext(r)
	defer cancel()
	if err := op.Rename(ctx, room, id, req.Name); err != nil {
		actionError(w, err)
		return
	}
	writeJSON(w, Done{OK: true})
}

func (s *Server) handleMute(w http.ResponseWriter, r *http.Request) {
	op, ok := s.operator(w)
	if !ok {
		return
	}
	room, id, ok := pathRoom(w, r, true)
	if !ok {
		return
	}
	track := r.PathValue("track")
	if err := checkText("track", track, MaxTrackID, false); err != nil {
		httpError(w, http.StatusBadRequest, err.Error())
		return
	}
	req := MuteRequest{}
	if r.ContentLength != 0 && !readBody(w, r, &req) {
		return
	}
	muted := req.Muted == nil || *req.Muted
	ctx, cancel := actionContext(r)
	defer cancel()
	if err := op.Mute(ctx, room, id, track, muted); err != nil {
		actionError(w, err)
		return
	}
	writeJSON(w, Done{OK: true})
}

func (s *Server) handleSend(w http.ResponseWriter, r *http.Request) {
	op, ok := s.operator(w)
	if !ok {
		return
	}
	room, _, ok := pathRoom(w, r, false)
	if !ok {
		return
	}
	var req SendRequest
	if !readBody(w, r, &req) {
		return
	}
	if err := checkText("text", req.Text, MaxMessageText, true); err != nil {
		httpError(w, http.StatusBadRequest, err.Error())
		return
	}
	ctx, cancel := actionContext(r)
	defer cancel()
	if err := op.Send(ctx, room, req.Text); err != nil {
		actionError(w, err)
		return
	}
	writeJSON(w, Done{OK: true})
}

func (s *Server) handleDrain(w http.ResponseWriter, r *http.Request) {
	op, ok := s.operator(w)
	if !ok {
		return
	}
	node := r.PathValue("node")
	if err := checkText("node", node, 256, false); err != nil {
		httpError(w, http.StatusBadRequest, err.Error())
		return
	}
	ctx, cancel := actionContext(r)
	defer cancel()
	if err := op.Drain(ctx, cluster.NodeID(node)); err != nil {
		actionError(w, err)
		return
	}
	s.log.Info("node drain requested by an operator", "target", node)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusAccepted)
	_ = json.NewEncoder(w).Encode(Done{OK: true})
}
