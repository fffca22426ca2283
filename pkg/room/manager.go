package room

import (
	"sort"
	"sync"
)

// Manager holds the rooms of one node. A room exists while it has participants.
type Manager struct {
	cfg Config

	mu     sync.Mutex // guards the fields below
	rooms  map[Name]*Room
	closed bool
}

// NewManager returns an empty manager.
func NewManager(cfg Config) *Manager {
	return &Manager{cfg: cfg.withDefaults(), rooms: map[Name]*Room{}}
}

// Stats returns the node-wide forwarding counters.
func (m *Manager) Stats() *Stats { return m.cfg.Stats }

// Join adds a participant to the named room, creating the room if needed.
func (m *Manager) Join(name Name, jp JoinParams) (*Participant, error) {
	for {
		m.mu.Lock()
		if m.closed {
			m.mu.Unlock()
			return nil, ErrManagerClosed
		}
		r := m.rooms[name]
		if r == nil {
			r = newRoom(name, m.cfg, m.roomEmpty)
			m.rooms[name] = r
		}
		m.mu.Unlock()
		p, err := r.join(jp)
		if err == ErrRoomClosed {
			continue // it emptied and closed between the lookup and the join; make a new one
		}
		return p, err
	}
}

// Room returns the named room, or nil.
func (m *Manager) Room(name Name) *Room {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.rooms[name]
}

// Rooms returns every room, sorted by name.
func (m *Manager) Rooms() []*Room {
	m.mu.Lock()
	out := make([]*Room, 0, len(m.rooms))
	for _, r := range m.rooms {
		out = append(out, r)
	}
	m.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out
}

// EndSession makes the participant of the given session leave its room, if it is on this
// node. It reports whether there was one.
func (m *Manager) EndSession(name Name, session SessionID, reason LeaveReason) bool {
	r := m.Room(name)
	if r == nil {
		return false
	}
	for _, p := range r.Participants() {
		if p.session == session {
			p.Leave(reason)
			return true
		}
	}
	return false
}

// roomEmpty closes r if it still has no participants.
func (m *Manager) roomEmpty(r *Room) {
	m.mu.Lock()
	r.mu.Lock()
	closeIt := len(r.participants) == 0 && !r.closed
	if closeIt {
		r.closed = true
		if m.rooms[r.name] == r {
			delete(m.rooms, r.name)
		}
	}
	r.mu.Unlock()
	m.mu.Unlock()
	if closeIt {
		r.stop()
	}
}

// Close makes every participant leave with ReasonShutdown and waits for every room goroutine.
// Joins fail afterwards. Safe to call twice.
func (m *Manager) Close() {
	m.mu.Lock()
	m.closed = true
	rooms := make([]*Room, 0, len(m.rooms))
	for _, r := range m.rooms {
		rooms = append(rooms, r)
	}
	m.mu.Unlock()
	for _, r := range rooms {
		r.closeAll(ReasonShutdown)
		m.roomEmpty(r)
		r.stop()
	}
}
