// Room store: the room state every node shares.
//
// A RoomStore holds the rooms (name, application metadata, participant limit) and their
// occupants: who is in which room, with which session, on which node. Two implementations keep
// one behaviour, checked by one contract test suite: MemoryStore for a single node and tests,
// RedisStore for a cluster. The decisions (capacity, refresh, who is removed) are made by the
// same functions in this file for both; the implementations only read and write.
//
// # Rules
//
//   - An occupant is keyed by (room, identity) and owned by a session: a Join of an identity that
//     is present replaces it (a page refresh, possibly onto another node) and returns the old
//     occupant, so the caller can close the old session. Leave removes an occupant only if its
//     session is still the stored one, so an old session's late cleanup never removes a newer
//     session. Capacity counts identities, not sessions: 4 users and a refresh fit in 4.
//   - Rooms persist until DeleteRoom, which refuses while the room has occupants on any node
//     (deleting shared state under live participants is how ghosts are made). Join creates a
//     missing room record (implicit rooms).
//   - RemoveNode removes every occupant of a dead node; only that node's, each room under its
//     lock, so a participant who refreshed onto a live node stays.
//
// # Concurrency
//
// All methods are safe for concurrent use, also from several nodes on one Redis. CreateRoom,
// UpdateRoom, DeleteRoom, Join, Leave and RemoveNode run under a per-room lock: they read, decide
// and write as one step. The wait for the lock is bounded by the store's LockWait and by the
// caller's context deadline; either ends it with ErrLockTimeout (which also wraps
// context.DeadlineExceeded); a cancelled context ends it with context.Canceled. ErrLockTimeout
// means that someone else held the lock: a Redis failure is returned as such. Reads (Room,
// Rooms, Occupants, RoomNodes) take no lock. No store method starts a goroutine; Close only
// makes later calls fail with ErrStoreClosed, and calling it twice is safe.
//
// # Redis layout
//
// With prefix P (default "cascade:"):
//
//	P room:<name>         hash  metadata, max (decimal), created (RFC 3339, UTC)
//	P rooms               set   every room name
//	P occ:<name>          hash  identity -> JSON occupant {room, identity, session, node, host, joined}
//	P node:<id>:rooms     set   rooms where node <id> has occupants (RemoveNode reads it; no SCAN)
//	P lock:room:<name>    string, the redsync lock of a room (expires after LockTTL)
//
// Every key family starts with a distinct segment after P, so no name can make one family's key
// equal to another's. Changes to several keys are one MULTI/EXEC, sent under the room lock and
// watching the lock key: if the lock expired before the EXEC, nothing is written (ErrLockLost).
// The transactions touch several keys in different hash slots, so Redis Cluster is not supported;
// a single primary (optionally behind Sentinel) is. Nothing expires except the locks: room state
// survives node restarts, and survives Redis restarts only as far as Redis persistence is set up.

package cluster

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// NodeID names a node of the cluster.
type NodeID string

// RoomInfo describes a room.
type RoomInfo struct {
	Name            string
	Metadata        string // application JSON or text, at most MaxRoomMetadata bytes
	MaxParticipants int    // 0: the node's default
	CreatedAt       time.Time
}

// Occupant is one identity in a room, held by one session on one node.
type Occupant struct {
	Room      string
	Identity  string
	SessionID string
	Node      NodeID
	Host      bool
	JoinedAt  time.Time
}

// RoomStore is the shared room state. See the comment at the top of store.go for its rules and
// concurrency contract.
type RoomStore interface {
	// CreateRoom creates the room; if it exists, it returns the stored one and created=false.
	CreateRoom(ctx context.Context, info RoomInfo) (stored RoomInfo, created bool, err error)
	// Room returns the room, or ErrRoomNotFound.
	Room(ctx context.Context, name string) (RoomInfo, error)
	// Rooms returns every room, sorted by name.
	Rooms(ctx context.Context) ([]RoomInfo, error)
	// UpdateRoom sets the metadata and the participant limit; ErrRoomNotFound if missing.
	UpdateRoom(ctx context.Context, name, metadata string, maxParticipants int) (RoomInfo, error)
	// DeleteRoom deletes the room; ErrRoomOccupied while it has occupants on any node.
	DeleteRoom(ctx context.Context, name string) error

	// Join adds o to o.Room (creating the room record if missing). If o.Identity is present,
	// on any node, it is replaced by o and the old occupant is returned (nil when the old one
	// has o's session, i.e. a retried Join). Otherwise ErrRoomFull if the room holds capacity
	// identities (capacity <= 0: unlimited). A zero o.JoinedAt is set to now.
	Join(ctx context.Context, o Occupant, capacity int) (replaced *Occupant, err error)
	// Leave removes identity from room only if its stored session is sessionID; it reports
	// whether it removed it. Leaving twice, or after a newer session replaced this one, is a
	// no-op (false, nil).
	Leave(ctx context.Context, room, identity, sessionID string) (bool, error)
	// Occupants lists a room's occupants sorted by identity (empty for an unknown room).
	Occupants(ctx context.Context, room string) ([]Occupant, error)
	// RoomNodes counts a room's occupants per node (empty for an unknown room).
	RoomNodes(ctx context.Context, room string) (map[NodeID]int, error)
	// RemoveNode removes every occupant of node, room by room under each room's lock, and
	// returns what it removed by room (occupants sorted by identity). It is idempotent; on error
	// the map holds what was removed and a later call finishes the work.
	RemoveNode(ctx context.Context, node NodeID) (map[string][]Occupant, error)

	// Close makes later calls fail with ErrStoreClosed. It does not close a Redis client it was
	// given.
	Close() error
}

// MaxRoomMetadata is the largest RoomInfo.Metadata accepted, in bytes.
const MaxRoomMetadata = 64 << 10

// maxNameLen bounds room names, identities, session and node ids, in bytes.
const maxNameLen = 256

// checkName rejects what cannot be a key part: empty, over maxNameLen bytes, invalid UTF-8 or
// containing control characters. (Room names are restricted further upstream.)
func checkName(kind, s string) error {
	switch {
	case s == "":
		return fmt.Errorf("%w: empty %s", ErrInvalid, kind)
	case len(s) > maxNameLen:
		return fmt.Errorf("%w: %s longer than %d bytes", ErrInvalid, kind, maxNameLen)
	case !utf8.ValidString(s):
		return fmt.Errorf("%w: %s %q is not UTF-8", ErrInvalid, kind, s)
	case strings.ContainsFunc(s, unicode.IsControl):
		return fmt.Errorf("%w: %s %q has control characters", ErrInvalid, kind, s)
	}
	return nil
}

func checkRoomSettings(metadata string, maxParticipants int) error {
	if len(metadata) > MaxRoomMetadata {
		return fmt.Errorf("%w: metadata of %d bytes, limit %d", ErrInvalid, len(metadata), MaxRoomMetadata)
	}
	if maxParticipants < 0 {
		return fmt.Errorf("%w: max participants %d", ErrInvalid, maxParticipants)
	}
	return nil
}

// normalizeRoom validates info and sets a zero CreatedAt to now; times are kept in UTC.
func normalizeRoom(info RoomInfo) (RoomInfo, error) {
	if err := checkName("room name", info.Name); err != nil {
		return RoomInfo{}, err
	}
	if err := checkRoomSettings(info.Metadata, info.MaxParticipants); err != nil {
		return RoomInfo{}, err
	}
	info.CreatedAt = stamp(info.CreatedAt)
	return info, nil
}

// normalizeOccupant validates o and sets a zero JoinedAt to now; times are kept in UTC.
func normalizeOccupant(o Occupant) (Occupant, error) {
	for _, f := range []struct{ kind, v string }{
		{"room name", o.Room}, {"identity", o.Identity}, {"session id", o.SessionID}, {"node id", string(o.Node)},
	} {
		if err := checkName(f.kind, f.v); err != nil {
			return Occupant{}, err
		}
	}
	o.JoinedAt = stamp(o.JoinedAt)
	return o, nil
}

// stamp returns t, or now if t is zero, in UTC without a monotonic reading, so that a time
// read back from Redis equals the one written.
func stamp(t time.Time) time.Time {
	if t.IsZero() {
		t = time.Now()
	}
	return t.UTC()
}

// joinPlan is what Join must do besides storing the new occupant.
type joinPlan struct {
	replaced *Occupant // the occupant to return; nil if none or same session
	dropNode NodeID    // a node left without occupants in the room by the replacement, or ""
}

// planJoin decides a Join of o into a room whose occupants (by identity) are cur.
func planJoin(cur map[string]Occupant, o Occupant, capacity int) (joinPlan, error) {
	old, ok := cur[o.Identity]
	if !ok {
		if capacity > 0 && len(cur) >= capacity {
			return joinPlan{}, fmt.Errorf("%w: room %q holds %d of %d identities", ErrRoomFull, o.Room, len(cur), capacity)
		}
		return joinPlan{}, nil
	}
	var p joinPlan
	if old.SessionID != o.SessionID {
		p.replaced = &old
	}
	if old.Node != o.Node && !nodeHasOthers(cur, old.Node, old.Identity) {
		p.dropNode = old.Node
	}
	return p, nil
}

// planLeave decides a Leave: remove reports whether the occupant goes, lastOfNode whether its
// node then has no occupants left in the room.
func planLeave(cur map[string]Occupant, identity, sessionID string) (old Occupant, remove, lastOfNode bool) {
	old, ok := cur[identity]
	if !ok || old.SessionID != sessionID {
		return Occupant{}, false, false
	}
	return old, true, !nodeHasOthers(cur, old.Node, identity)
}

// planRemoveNode returns the occupants of node in cur, sorted by identity.
func planRemoveNode(cur map[string]Occupant, node NodeID) []Occupant {
	var out []Occupant
	for _, o := range cur {
		if o.Node == node {
			out = append(out, o)
		}
	}
	sortOccupants(out)
	return out
}

// nodeHasOthers reports whether node has an occupant in cur other than identity except.
func nodeHasOthers(cur map[string]Occupant, node NodeID, except string) bool {
	for id, o := range cur {
		if id != except && o.Node == node {
			return true
		}
	}
	return false
}

func sortedOccupants(cur map[string]Occupant) []Occupant {
	out := slices.Collect(maps.Values(cur))
	sortOccupants(out)
	return out
}

func sortOccupants(os []Occupant) {
	slices.SortFunc(os, func(a, b Occupant) int { return strings.Compare(a.Identity, b.Identity) })
}

func countByNode(cur map[string]Occupant) map[NodeID]int {
	out := make(map[NodeID]int)
	for _, o := range cur {
		out[o.Node]++
	}
	return out
}

func sortRooms(rs []RoomInfo) {
	slices.SortFunc(rs, func(a, b RoomInfo) int { return strings.Compare(a.Name, b.Name) })
}

// lockWaitError is the error of a lock wait ended by ctx (the caller's context, or the wait
// bound derived from it): ErrLockTimeout on a deadline, the context's error on cancellation.
func lockWaitError(ctx context.Context, room string) error {
	if errors.Is(ctx.Err(), context.Canceled) {
		return fmt.Errorf("lock room %q: %w", room, ctx.Err())
	}
	return fmt.Errorf("%w: room %q: %w", ErrLockTimeout, room, context.DeadlineExceeded)
}

func roomNotFound(name string) error {
	return fmt.Errorf("%w: %q", ErrRoomNotFound, name)
}

func roomOccupied(name string, n int) error {
	return fmt.Errorf("%w: room %q has %d", ErrRoomOccupied, name, n)
}

func checkLeave(room, identity, sessionID string) error {
	if err := checkName("room name", room); err != nil {
		return err
	}
	if err := checkName("identity", identity); err != nil {
		return err
	}
	return checkName("session id", sessionID)
}

func removeNodeError(node NodeID, errs []error) error {
	if len(errs) == 0 {
		return nil
	}
	return fmt.Errorf("remove node %q: %w", node, errors.Join(errs...))
}

func sortedKeys[V any](m map[string]V) []string {
	return slices.Sorted(maps.Keys(m))
}
