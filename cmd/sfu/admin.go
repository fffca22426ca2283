package main

import (
	"context"
	"errors"
	"log/slog"
	"strings"

	"github.com/cascade-sfu/cascade/pkg/cluster"
	"github.com/cascade-sfu/cascade/pkg/room"
)

// localRooms adapts the node's room manager to cluster.LocalRooms: what this node does to its
// own sessions when an operator acts through the admin API (from any node).
type localRooms struct {
	node  cluster.NodeID
	rooms *room.Manager
	drain func() // starts the node's graceful drain; never blocks
}

func (l localRooms) Participants(name string) []cluster.AdminParticipant {
	r := l.rooms.Room(room.Name(name))
	if r == nil {
		return []cluster.AdminParticipant{}
	}
	out := []cluster.AdminParticipant{}
	for _, p := range r.Participants() {
		if p.Origin() != "" {
			continue // a proxy: its own node lists it
		}
		info := p.Info()
		ap := cluster.AdminParticipant{
			Identity: string(info.Identity), Name: info.Name, Node: l.node, Session: string(p.Session()),
			SID: string(info.SID), Kind: sessionKind(p), Host: info.Role == room.RoleHost, Tracks: []cluster.AdminTrack{},
		}
		for _, t := range info.Tracks {
			ap.Tracks = append(ap.Tracks, cluster.AdminTrack{ID: string(t.ID), Kind: string(t.Kind), Source: string(t.Source), Name: t.Name, Muted: t.Muted})
		}
		out = append(out, ap)
	}
	return out
}

// sessionKind tells WebSocket sessions from WHIP and WHEP ones by the signalling server's
// session id prefixes (SE: WebSocket, WH: WHIP or WHEP; a WHEP viewer is hidden).
func sessionKind(p *room.Participant) string {
	switch {
	case strings.HasPrefix(string(p.Session()), "WH") && p.Hidden():
		return "whep"
	case strings.HasPrefix(string(p.Session()), "WH"):
		return "whip"
	}
	return "websocket"
}

func (l localRooms) Evict(name, identity string) bool {
	return l.rooms.Evict(room.Name(name), room.Identity(identity))
}

func (l localRooms) Rename(name, identity, newName string) bool {
	r := l.rooms.Room(room.Name(name))
	return r != nil && r.Rename(room.Identity(identity), newName)
}

func (l localRooms) Mute(name, identity, track string, muted bool) error {
	r := l.rooms.Room(room.Name(name))
	if r == nil {
		return cluster.ErrParticipantNotFound
	}
	err := r.ServerMute(room.Identity(identity), room.TrackID(track), muted)
	switch {
	case errors.Is(err, room.ErrNotFound):
		return cluster.ErrParticipantNotFound
	case errors.Is(err, room.ErrTrackNotFound):
		return cluster.ErrTrackNotFound
	}
	return err
}

func (l localRooms) Send(name, text string, seq uint64, unixMS int64) {
	if r := l.rooms.Room(room.Name(name)); r != nil {
		r.SystemMessage(seq, unixMS, text)
	}
}

func (l localRooms) CloseRoom(name string) int { return l.rooms.CloseRoom(room.Name(name)) }

func (l localRooms) Drain() { l.drain() }

// startAdmin builds the node's RPC endpoint and the cluster admin on it. Without a bus (no
// Redis) every request is for this node and runs locally.
func startAdmin(c *clusterParts, self cluster.NodeID, rooms *room.Manager, drain func(), log *slog.Logger) {
	c.rpc = cluster.NewRPC(cluster.RPCConfig{Self: self, Bus: c.bus, Logger: log})
	c.admin = cluster.NewAdmin(cluster.AdminConfig{
		Self: self, RPC: c.rpc, Store: c.store, Registry: c.registry,
		Local: localRooms{node: self, rooms: rooms, drain: drain}, Order: c.order, Logger: log,
	})
	c.rpcRef.Store(c.rpc)
}

// roomCapacity is the participant limit of a room: its record's, else the node default.
func roomCapacity(ctx context.Context, store cluster.RoomStore, name string, def int) int {
	info, err := store.Room(ctx, name)
	if err == nil && info.MaxParticipants > 0 {
		return info.MaxParticipants
	}
	return def
}

// requestDrain asks run to shut the node down gracefully, as SIGTERM does; the node is marked
// draining at once, so that the cluster sees it before run gets to Shutdown.
func (n *node) requestDrain() {
	n.signal.Drain()
	n.cluster.drain()
	select {
	case n.drainReq <- struct{}{}:
	default: // already requested
	}
}

// DrainRequested is signalled when an operator asks this node to drain.
func (n *node) DrainRequested() <-chan struct{} { return n.drainReq }
