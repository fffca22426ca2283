package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"sync"
	"time"
)

// Admin carries out an operator's actions on rooms hosted anywhere in the cluster: it finds
// the nodes that host a room or a participant in the room state and asks each of them, over
// RPC, to act on its own sessions. The node-side work is done by a LocalRooms.
//
// # Concurrency
//
// Its methods are safe for concurrent use; a fan-out to several nodes runs the calls in
// parallel and waits for all of them.
type Admin struct {
	cfg AdminConfig
}

// LocalRooms is what a node does to its own sessions at an operator's request.
type LocalRooms interface {
	// Participants lists this node's own participants of a room (not proxies).
	Participants(room string) []AdminParticipant
	// Evict ends the identity's session on this node; false if it has none here.
	Evict(room, identity string) bool
	// Rename renames the identity's session on this node; false if it has none here.
	Rename(room, identity, name string) bool
	// Mute mutes a track of the identity's session here: ErrParticipantNotFound or
	// ErrTrackNotFound when there is none.
	Mute(room, identity, track string, muted bool) error
	// Send delivers a system message to this node's participants of the room, numbered seq in
	// the room's order (0: unnumbered), sent at unixMS.
	Send(room, text string, seq uint64, unixMS int64)
	// CloseRoom ends every session of this node in the room.
	CloseRoom(room string) int
	// Drain starts the node's graceful drain (as on SIGTERM); it returns at once.
	Drain()
}

// AdminParticipant is one participant as an operator sees it.
type AdminParticipant struct {
	Identity string       `json:"identity"`
	Name     string       `json:"name"`
	Node     NodeID       `json:"node"`
	Session  string       `json:"session_id"`
	SID      string       `json:"sid"`
	Kind     string       `json:"kind"` // "websocket", "whip" or "whep"
	Host     bool         `json:"host"`
	Tracks   []AdminTrack `json:"tracks"`
}

// AdminTrack is one published track.
type AdminTrack struct {
	ID     string `json:"id"`
	Kind   string `json:"kind"`
	Source string `json:"source"`
	Name   string `json:"name,omitempty"`
	Muted  bool   `json:"muted"`
}

// AdminConfig sets up an Admin.
type AdminConfig struct {
	Self     NodeID
	RPC      *RPC
	Store    RoomStore
	Registry interface {
		Nodes(ctx context.Context) ([]Node, error)
	}
	Local LocalRooms
	// Order numbers a system message once for every node (nil: each node numbers its own).
	Order  MessageOrder
	Logger *slog.Logger
}

// RPC methods of the admin actions.
const (
	methodParticipants = "admin.participants"
	methodEvict        = "admin.evict"
	methodRename       = "admin.rename"
	methodMute         = "admin.mute"
	methodSend         = "admin.send"
	methodCloseRoom    = "admin.close_room"
	methodDrain        = "admin.drain"
)

// Codes of admin errors on the bus.
const (
	codeParticipantNotFound = "participant_not_found"
	codeTrackNotFound       = "track_not_found"
)

type adminReq struct {
	Room     string `json:"room"`
	Identity string `json:"identity,omitempty"`
	Name     string `json:"name,omitempty"`
	Track    string `json:"track,omitempty"`
	Muted    bool   `json:"muted,omitempty"`
	Text     string `json:"text,omitempty"`
	Seq      uint64 `json:"seq,omitempty"`
	UnixMS   int64  `json:"ts,omitempty"`
}

// NewAdmin registers the node-side handlers on cfg.RPC and returns the operator's side.
func NewAdmin(cfg AdminConfig) *Admin {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	a := &Admin{cfg: cfg}
	l := cfg.Local
	handle := func(method string, f func(from NodeID, r adminReq) (any, error)) {
		cfg.RPC.Handle(method, func(_ context.Context, from NodeID, body json.RawMessage) (any, error) {
			var r adminReq
			if err := json.Unmarshal(body, &r); err != nil {
				return nil, &CodedError{Code: "bad_request", Err: fmt.Errorf("%w: %v", ErrMalformed, err)}
			}
			return f(from, r)
		})
	}
	handle(methodParticipants, func(_ NodeID, r adminReq) (any, error) { return l.Participants(r.Room), nil })
	handle(methodEvict, func(from NodeID, r adminReq) (any, error) {
		if !l.Evict(r.Room, r.Identity) {
			return nil, &CodedError{Code: codeParticipantNotFound, Err: ErrParticipantNotFound}
		}
		cfg.Logger.Info("participant evicted by an operator", "room", r.Room, "participant", r.Identity, "asked_by", from)
		return struct{}{}, nil
	})
	handle(methodRename, func(_ NodeID, r adminReq) (any, error) {
		if !l.Rename(r.Room, r.Identity, r.Name) {
			return nil, &CodedError{Code: codeParticipantNotFound, Err: ErrParticipantNotFound}
		}
		return struct{}{}, nil
	})
	handle(methodMute, func(_ NodeID, r adminReq) (any, error) {
		err := l.Mute(r.Room, r.Identity, r.Track, r.Muted)
		switch {
		case errors.Is(err, ErrParticipantNotFound):
			return nil, &CodedError{Code: codeParticipantNotFound, Err: err}
		case errors.Is(err, ErrTrackNotFound):
			return nil, &CodedError{Code: codeTrackNotFound, Err: err}
		}
		return struct{}{}, err
	})
	handle(methodSend, func(_ NodeID, r adminReq) (any, error) {
		l.Send(r.Room, r.Text, r.Seq, r.UnixMS)
		return struct{}{}, nil
	})
	handle(methodCloseRoom, func(_ NodeID, r adminReq) (any, error) { return l.CloseRoom(r.Room), nil })
	handle(methodDrain, func(from NodeID, _ adminReq) (any, error) {
		cfg.Logger.Info("drain requested by an operator", "asked_by", from)
		l.Drain()
		return struct{}{}, nil
	})
	return a
}

// fromRemote turns the codes of a remote error back into this package's sentinels.
func fromRemote(err error) error {
	switch ErrorCode(err) {
	case codeParticipantNotFound:
		return fmt.Errorf("%w: %v", ErrParticipantNotFound, err)
	case codeTrackNotFound:
		return fmt.Errorf("%w: %v", ErrTrackNotFound, err)
	}
	if errors.Is(err, ErrRPCTimeout) || errors.Is(err, ErrRPCNoBus) {
		return fmt.Errorf("%w: %w", ErrNodeUnreachable, err)
	}
	return err
}

// roomNodes returns the nodes hosting room's occupants; ErrRoomNotFound when the room has
// neither occupants nor a record.
func (a *Admin) roomNodes(ctx context.Context, room string) ([]NodeID, error) {
	per, err := a.cfg.Store.RoomNodes(ctx, room)
	if err != nil {
		return nil, err
	}
	if len(per) == 0 {
		if _, err := a.cfg.Store.Room(ctx, room); err != nil {
			return nil, err
		}
	}
	nodes := make([]NodeID, 0, len(per))
	for id := range per {
		nodes = append(nodes, id)
	}
	slices.Sort(nodes)
	return nodes, nil
}

// occupant finds the node hosting identity in room.
func (a *Admin) occupant(ctx context.Context, room, identity string) (Occupant, error) {
	occ, err := a.cfg.Store.Occupants(ctx, room)
	if err != nil {
		return Occupant{}, err
	}
	for _, o := range occ {
		if o.Identity == identity {
			return o, nil
		}
	}
	if len(occ) == 0 {
		if _, err := a.cfg.Store.Room(ctx, room); err != nil {
			return Occupant{}, err
		}
	}
	return Occupant{}, fmt.Errorf("%w: %q in room %q", ErrParticipantNotFound, identity, room)
}

// fanOut calls method on every node in parallel; results[i] answers nodes[i].
func (a *Admin) fanOut(ctx context.Context, nodes []NodeID, method string, req adminReq, newResp func() any) ([]any, []error) {
	results, errs := make([]any, len(nodes)), make([]error, len(nodes))
	var wg sync.WaitGroup
	for i, n := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var out any
			if newResp != nil {
				out = newResp()
			}
			errs[i] = a.cfg.RPC.Call(ctx, n, method, req, out)
			results[i] = out
		}()
	}
	wg.Wait()
	return results, errs
}

// Participants lists a room's participants on every hosting node, by identity. A node that
// does not answer is reported in the error along with what the others answered.
func (a *Admin) Participants(ctx context.Context, room string) ([]AdminParticipant, error) {
	nodes, err := a.roomNodes(ctx, room)
	if err != nil {
		return nil, err
	}
	results, errs := a.fanOut(ctx, nodes, methodParticipants, adminReq{Room: room}, func() any { return &[]AdminParticipant{} })
	out := []AdminParticipant{}
	var failed []error
	for i, r := range results {
		if errs[i] != nil {
			failed = append(failed, fromRemote(errs[i]))
			continue
		}
		out = append(out, *(r.(*[]AdminParticipant))...)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Identity != out[j].Identity {
			return out[i].Identity < out[j].Identity
		}
		return out[i].Session < out[j].Session
	})
	return out, errors.Join(failed...)
}

// Evict ends the participant's session on whichever node hosts it.
func (a *Admin) Evict(ctx context.Context, room, identity string) error {
	o, err := a.occupant(ctx, room, identity)
	if err != nil {
		return err
	}
	return fromRemote(a.cfg.RPC.Call(ctx, o.Node, methodEvict, adminReq{Room: room, Identity: identity}, nil))
}

// Rename renames the participant on its own node; the relay state carries the new name to the
// nodes that show it through a relay.
func (a *Admin) Rename(ctx context.Context, room, identity, name string) error {
	o, err := a.occupant(ctx, room, identity)
	if err != nil {
		return err
	}
	return fromRemote(a.cfg.RPC.Call(ctx, o.Node, methodRename, adminReq{Room: room, Identity: identity, Name: name}, nil))
}

// Mute mutes (or unmutes) a participant's track on its own node; the relay carries the state
// to the other nodes.
func (a *Admin) Mute(ctx context.Context, room, identity, track string, muted bool) error {
	o, err := a.occupant(ctx, room, identity)
	if err != nil {
		return err
	}
	return fromRemote(a.cfg.RPC.Call(ctx, o.Node, methodMute, adminReq{Room: room, Identity: identity, Track: track, Muted: muted}, nil))
}

// Send delivers a system message to every participant of the room, on every node.
func (a *Admin) Send(ctx context.Context, room, text string) error {
	nodes, err := a.roomNodes(ctx, room)
	if err != nil {
		return err
	}
	req := adminReq{Room: room, Text: text, UnixMS: time.Now().UnixMilli()}
	if a.cfg.Order != nil {
		// One number for every node, so that each delivers it in the room's one order.
		if req.Seq, err = a.cfg.Order.Next(ctx, room); err != nil {
			return err
		}
	}
	_, errs := a.fanOut(ctx, nodes, methodSend, req, nil)
	return joinRemote(errs)
}

// DeleteRoom ends every session of the room on every node, then deletes its record.
func (a *Admin) DeleteRoom(ctx context.Context, room string) error {
	nodes, err := a.roomNodes(ctx, room)
	if err != nil {
		return err
	}
	if _, errs := a.fanOut(ctx, nodes, methodCloseRoom, adminReq{Room: room}, nil); joinRemote(errs) != nil {
		return joinRemote(errs)
	}
	// Sessions record their leave asynchronously; drop any occupant left over so the record
	// can go.
	occ, err := a.cfg.Store.Occupants(ctx, room)
	if err != nil {
		return err
	}
	for _, o := range occ {
		if _, err := a.cfg.Store.Leave(ctx, room, o.Identity, o.SessionID); err != nil {
			return err
		}
	}
	if err := a.cfg.Store.DeleteRoom(ctx, room); err != nil && !errors.Is(err, ErrRoomNotFound) {
		return err
	}
	return nil
}

// Drain asks a node to drain. ErrNodeNotFound if it is not a live member.
func (a *Admin) Drain(ctx context.Context, node NodeID) error {
	if node != a.cfg.Self {
		nodes, err := a.cfg.Registry.Nodes(ctx)
		if err != nil {
			return err
		}
		if !slices.ContainsFunc(nodes, func(n Node) bool { return n.ID == node }) {
			return fmt.Errorf("%w: %q", ErrNodeNotFound, node)
		}
	}
	return fromRemote(a.cfg.RPC.Call(ctx, node, methodDrain, adminReq{}, nil))
}

func joinRemote(errs []error) error {
	var out []error
	for _, err := range errs {
		if err != nil {
			out = append(out, fromRemote(err))
		}
	}
	return errors.Join(out...)
}

// CreateRoom creates the room record; created=false (and the stored record) if it exists.
func (a *Admin) CreateRoom(ctx context.Context, info RoomInfo) (RoomInfo, bool, error) {
	return a.cfg.Store.CreateRoom(ctx, info)
}
