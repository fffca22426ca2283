package cluster

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultLockWait bounds the wait for a room lock when a store's options do not set one.
const DefaultLockWait = 2 * time.Second

// MemoryStore is a RoomStore in this process's memory, for a single node and for tests. Its
// per-room locks have the same bounded wait as RedisStore's (DefaultLockWait).
type MemoryStore struct {
	st       *memState
	lockWait time.Duration
	closed   atomic.Bool
}

// memState is the state; a per-room lock orders the operations of one room, mu guards the maps.
type memState struct {
	mu    sync.Mutex                     // guards the fields below; never held while waiting for a room lock
	rooms map[string]RoomInfo            // by name
	occ   map[string]map[string]Occupant // room -> identity -> occupant; no empty inner maps
	nodes map[NodeID]map[string]struct{} // node -> rooms where it has occupants
	locks map[string]*memLock            // room -> its lock, while held or awaited
}

// memLock is a mutex that can be awaited with a deadline: holding it is having put the token
// in ch.
type memLock struct {
	ch   chan struct{}
	refs int // holder and waiters; guarded by memState.mu
}

// NewMemoryStore returns an empty MemoryStore.
func NewMemoryStore() *MemoryStore {
	return &MemoryStore{
		st: &memState{
			rooms: make(map[string]RoomInfo),
			occ:   make(map[string]map[string]Occupant),
			nodes: make(map[NodeID]map[string]struct{}),
			locks: make(map[string]*memLock),
		},
		lockWait: DefaultLockWait,
	}
}

// begin checks that the store is open and ctx is not done, as a Redis call would.
func (s *MemoryStore) begin(ctx context.Context) error {
	if s.closed.Load() {
		return ErrStoreClosed
	}
	return ctx.Err()
}

// lockRoom takes the room's lock, waiting at most lockWait and until ctx is done.
func (s *MemoryStore) lockRoom(ctx context.Context, room string) (unlock func(), err error) {
	st := s.st
	st.mu.Lock()
	l := st.locks[room]
	if l == nil {
		l = &memLock{ch: make(chan struct{}, 1)}
		st.locks[room] = l
	}
	l.refs++
	st.mu.Unlock()

	release := func() {
		st.mu.Lock()
		if l.refs--; l.refs == 0 {
			delete(st.locks, room)
		}
		st.mu.Unlock()
	}
	wctx, cancel := context.WithTimeout(ctx, s.lockWait)
	defer cancel()
	select {
	case l.ch <- struct{}{}:
		return func() { <-l.ch; release() }, nil
	case <-wctx.Done():
		release()
		return nil, lockWaitError(wctx, room)
	}
}

// locked runs fn with the room lock and the state mutex held.
func (s *MemoryStore) locked(ctx context.Context, room string, fn func(st *memState) error) error {
	if err := s.begin(ctx); err != nil {
		return err
	}
	unlock, err := s.lockRoom(ctx, room)
	if err != nil {
		return err
	}
	defer unlock()
	s.st.mu.Lock()
	defer s.st.mu.Unlock()
	return fn(s.st)
}

// CreateRoom implements RoomStore.
func (s *MemoryStore) CreateRoom(ctx context.Context, info RoomInfo) (RoomInfo, bool, error) {
	info, err := normalizeRoom(info)
	if err != nil {
		return RoomInfo{}, false, err
	}
	created := false
	err = s.locked(ctx, info.Name, func(st *memState) error {
		if old, ok := st.rooms[info.Name]; ok {
			info = old
			return nil
		}
		st.rooms[info.Name] = info
		created = true
		return nil
	})
	if err != nil {
		return RoomInfo{}, false, err
	}
	return info, created, nil
}

// Room implements RoomStore.
func (s *MemoryStore) Room(ctx context.Context, name string) (RoomInfo, error) {
	if err := s.begin(ctx); err != nil {
		return RoomInfo{}, err
	}
	s.st.mu.Lock()
	defer s.st.mu.Unlock()
	info, ok := s.st.rooms[name]
	if !ok {
		return RoomInfo{}, roomNotFound(name)
	}
	return info, nil
}

// Rooms implements RoomStore.
func (s *MemoryStore) Rooms(ctx context.Context) ([]RoomInfo, error) {
	if err := s.begin(ctx); err != nil {
		return nil, err
	}
	s.st.mu.Lock()
	out := make([]RoomInfo, 0, len(s.st.rooms))
	for _, info := range s.st.rooms {
		out = append(out, info)
	}
	s.st.mu.Unlock()
	sortRooms(out)
	return out, nil
}

// UpdateRoom implements RoomStore.
func (s *MemoryStore) UpdateRoom(ctx context.Context, name, metadata string, maxParticipants int) (RoomInfo, error) {
	if err := checkName("room name", name); err != nil {
		return RoomInfo{}, err
	}
	if err := checkRoomSettings(metadata, maxParticipants); err != nil {
		return RoomInfo{}, err
	}
	var info RoomInfo
	err := s.locked(ctx, name, func(st *memState) error {
		var ok bool
		if info, ok = st.rooms[name]; !ok {
			return roomNotFound(name)
		}
		info.Metadata, info.MaxParticipants = metadata, maxParticipants
		st.rooms[name] = info
		return nil
	})
	if err != nil {
		return RoomInfo{}, err
	}
	return info, nil
}

// DeleteRoom implements RoomStore.
func (s *MemoryStore) DeleteRoom(ctx context.Context, name string) error {
	if err := checkName("room name", name); err != nil {
		return err
	}
	return s.locked(ctx, name, func(st *memState) error {
		if _, ok := st.rooms[name]; !ok {
			return roomNotFound(name)
		}
		if n := len(st.occ[name]); n > 0 {
			return roomOccupied(name, n)
		}
		delete(st.rooms, name)
		return nil
	})
}

// Join implements RoomStore.
func (s *MemoryStore) Join(ctx context.Context, o Occupant, capacity int) (*Occupant, error) {
	o, err := normalizeOccupant(o)
	if err != nil {
		return nil, err
	}
	var plan joinPlan
	err = s.locked(ctx, o.Room, func(st *memState) error {
		cur := st.occ[o.Room]
		p, err := planJoin(cur, o, capacity)
		if err != nil {
			return err
		}
		plan = p
		if _, ok := st.rooms[o.Room]; !ok {
			st.rooms[o.Room] = RoomInfo{Name: o.Room, CreatedAt: stamp(time.Time{})}
		}
		if cur == nil {
			cur = make(map[string]Occupant)
			st.occ[o.Room] = cur
		}
		cur[o.Identity] = o
		st.addNodeRoom(o.Node, o.Room)
		if plan.dropNode != "" {
			st.dropNodeRoom(plan.dropNode, o.Room)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return plan.replaced, nil
}

// Leave implements RoomStore.
func (s *MemoryStore) Leave(ctx context.Context, room, identity, sessionID string) (bool, error) {
	if err := checkLeave(room, identity, sessionID); err != nil {
		return false, err
	}
	removed := false
	err := s.locked(ctx, room, func(st *memState) error {
		old, remove, lastOfNode := planLeave(st.occ[room], identity, sessionID)
		if !remove {
			return nil
		}
		st.removeOccupant(old, lastOfNode)
		removed = true
		return nil
	})
	return removed, err
}

// Occupants implements RoomStore.
func (s *MemoryStore) Occupants(ctx context.Context, room string) ([]Occupant, error) {
	if err := s.begin(ctx); err != nil {
		return nil, err
	}
	s.st.mu.Lock()
	defer s.st.mu.Unlock()
	return sortedOccupants(s.st.occ[room]), nil
}

// RoomNodes implements RoomStore.
func (s *MemoryStore) RoomNodes(ctx context.Context, room string) (map[NodeID]int, error) {
	if err := s.begin(ctx); err != nil {
		return nil, err
	}
	s.st.mu.Lock()
	defer s.st.mu.Unlock()
	return countByNode(s.st.occ[room]), nil
}

// RemoveNode implements RoomStore.
func (s *MemoryStore) RemoveNode(ctx context.Context, node NodeID) (map[string][]Occupant, error) {
	if err := checkName("node id", string(node)); err != nil {
		return nil, err
	}
	if err := s.begin(ctx); err != nil {
		return nil, err
	}
	s.st.mu.Lock()
	rooms := sortedKeys(s.st.nodes[node])
	s.st.mu.Unlock()

	removed := make(map[string][]Occupant)
	var errs []error
	for _, room := range rooms {
		err := s.locked(ctx, room, func(st *memState) error {
			gone := planRemoveNode(st.occ[room], node)
			for _, o := range gone {
				st.removeOccupant(o, false)
			}
			st.dropNodeRoom(node, room)
			if len(gone) > 0 {
				removed[room] = gone
			}
			return nil
		})
		if err != nil {
			errs = append(errs, err)
		}
	}
	return removed, removeNodeError(node, errs)
}

// Close implements RoomStore.
func (s *MemoryStore) Close() error {
	s.closed.Store(true)
	return nil
}

// removeOccupant deletes o; lastOfNode: o's node has no other occupant in the room.
func (st *memState) removeOccupant(o Occupant, lastOfNode bool) {
	cur := st.occ[o.Room]
	delete(cur, o.Identity)
	if len(cur) == 0 {
		delete(st.occ, o.Room)
	}
	if lastOfNode {
		st.dropNodeRoom(o.Node, o.Room)
	}
}

func (st *memState) addNodeRoom(node NodeID, room string) {
	rs := st.nodes[node]
	if rs == nil {
		rs = make(map[string]struct{})
		st.nodes[node] = rs
	}
	rs[room] = struct{}{}
}

func (st *memState) dropNodeRoom(node NodeID, room string) {
	rs := st.nodes[node]
	delete(rs, room)
	if len(rs) == 0 {
		delete(st.nodes, node)
	}
}
