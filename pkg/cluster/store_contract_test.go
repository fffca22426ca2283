package cluster

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// testRoomStore is the behaviour every RoomStore must have. newStore returns a fresh, empty
// store for each subtest; it must implement storeHooks.
func testRoomStore(t *testing.T, newStore func(t *testing.T) RoomStore) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s storeHooks)
	}{
		{"CreateIdempotent", testCreateIdempotent},
		{"RoomsPersistSorted", testRoomsPersistSorted},
		{"Update", testUpdate},
		{"DeleteRefusedWhileOccupied", testDeleteRefusedWhileOccupied},
		{"JoinLeave", testJoinLeave},
		{"RetriedJoinSameSession", testRetriedJoin},
		{"CapacityByIdentity", testCapacityByIdentity},
		{"RefreshRace", testRefreshRace},
		{"ConcurrentJoinsBeyondCapacity", testConcurrentJoins},
		{"ConcurrentRefreshAndLeave", testConcurrentRefreshAndLeave},
		{"RemoveNode", testRemoveNode},
		{"RoomNodes", testRoomNodes},
		{"LockTimeout", testLockTimeout},
		{"LockReleasedAfterRefusal", testLockReleasedAfterRefusal},
		{"Invalid", testInvalid},
		{"Closed", testClosed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, ok := newStore(t).(storeHooks)
			if !ok {
				t.Fatalf("%T does not implement storeHooks", s)
			}
			tc.fn(t, s)
		})
	}
}

func occ(room, identity, session string, node NodeID) Occupant {
	return Occupant{Room: room, Identity: identity, SessionID: session, Node: node}
}

func mustJoin(t *testing.T, s RoomStore, o Occupant, capacity int) *Occupant {
	t.Helper()
	replaced, err := s.Join(t.Context(), o, capacity)
	if err != nil {
		t.Fatalf("Join(%s/%s %s@%s, cap %d): %v", o.Room, o.Identity, o.SessionID, o.Node, capacity, err)
	}
	return replaced
}

func mustLeave(t *testing.T, s RoomStore, room, identity, session string, want bool) {
	t.Helper()
	got, err := s.Leave(t.Context(), room, identity, session)
	if err != nil || got != want {
		t.Fatalf("Leave(%s, %s, %s) = %v, %v; want %v, nil", room, identity, session, got, err, want)
	}
}

func mustCreate(t *testing.T, s RoomStore, info RoomInfo) RoomInfo {
	t.Helper()
	got, _, err := s.CreateRoom(t.Context(), info)
	if err != nil {
		t.Fatalf("CreateRoom(%s): %v", info.Name, err)
	}
	return got
}

func occupants(t *testing.T, s RoomStore, room string) []Occupant {
	t.Helper()
	os, err := s.Occupants(t.Context(), room)
	if err != nil {
		t.Fatalf("Occupants(%s): %v", room, err)
	}
	return os
}

// describe renders occupants as "identity/session@node" for comparisons.
func describe(os []Occupant) string {
	parts := make([]string, len(os))
	for i, o := range os {
		parts[i] = fmt.Sprintf("%s/%s@%s", o.Identity, o.SessionID, o.Node)
	}
	return strings.Join(parts, " ")
}

func sameRoom(a, b RoomInfo) bool {
	return a.Name == b.Name && a.Metadata == b.Metadata && a.MaxParticipants == b.MaxParticipants &&
		a.CreatedAt.Equal(b.CreatedAt)
}

func wantErr(t *testing.T, what string, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("%s: err = %v; want %v", what, err, want)
	}
}

func testCreateIdempotent(t *testing.T, s storeHooks) {
	ctx := t.Context()
	before := time.Now()
	got, created, err := s.CreateRoom(ctx, RoomInfo{Name: "r1", Metadata: `{"topic":"a"}`, MaxParticipants: 5})
	if err != nil || !created {
		t.Fatalf("CreateRoom = %v, %v; want created", created, err)
	}
	if got.Name != "r1" || got.Metadata != `{"topic":"a"}` || got.MaxParticipants != 5 {
		t.Fatalf("CreateRoom returned %+v", got)
	}
	if got.CreatedAt.Before(before.Add(-time.Second)) || got.CreatedAt.After(time.Now().Add(time.Second)) {
		t.Fatalf("CreatedAt %v is not about now", got.CreatedAt)
	}

	again, created, err := s.CreateRoom(ctx, RoomInfo{Name: "r1", Metadata: "other", MaxParticipants: 9})
	if err != nil || created || !sameRoom(again, got) {
		t.Fatalf("second CreateRoom = %+v, %v, %v; want the first room, false, nil", again, created, err)
	}
	// From another node too.
	again, created, err = s.peer(t, 0).CreateRoom(ctx, RoomInfo{Name: "r1"})
	if err != nil || created || !sameRoom(again, got) {
		t.Fatalf("CreateRoom from a peer = %+v, %v, %v; want the first room, false, nil", again, created, err)
	}
	stored, err := s.Room(ctx, "r1")
	if err != nil || !sameRoom(stored, got) {
		t.Fatalf("Room = %+v, %v; want %+v", stored, err, got)
	}

	// A given creation time is kept (as the same instant).
	at := time.Date(2025, 3, 1, 12, 0, 0, 123456789, time.FixedZone("ICT", 7*3600))
	if got := mustCreate(t, s, RoomInfo{Name: "r2", CreatedAt: at}); !got.CreatedAt.Equal(at) {
		t.Fatalf("CreatedAt = %v; want %v", got.CreatedAt, at)
	}
	if got, _ := s.Room(ctx, "r2"); !got.CreatedAt.Equal(at) {
		t.Fatalf("stored CreatedAt = %v; want %v", got.CreatedAt, at)
	}
}

func testRoomsPersistSorted(t *testing.T, s storeHooks) {
	ctx := t.Context()
	if rooms, err := s.Rooms(ctx); err != nil || len(rooms) != 0 {
		t.Fatalf("Rooms of an empty store = %v, %v", rooms, err)
	}
	for _, n := range []string{"charlie", "alpha", "bravo"} {
		mustCreate(t, s, RoomInfo{Name: n, Metadata: "m-" + n})
	}
	mustJoin(t, s, occ("delta", "u1", "s1", "n1"), 0) // implicit room
	mustLeave(t, s, "delta", "u1", "s1", true)        // it stays after its last occupant leaves

	for _, st := range []RoomStore{s, s.peer(t, 0)} {
		rooms, err := st.Rooms(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, r := range rooms {
			names = append(names, r.Name)
		}
		if want := []string{"alpha", "bravo", "charlie", "delta"}; !slices.Equal(names, want) {
			t.Fatalf("Rooms = %v; want %v", names, want)
		}
		if rooms[0].Metadata != "m-alpha" {
			t.Fatalf("Rooms()[0] = %+v", rooms[0])
		}
	}
	_, err := s.Room(ctx, "zulu")
	wantErr(t, "Room(zulu)", err, ErrRoomNotFound)
}

func testUpdate(t *testing.T, s storeHooks) {
	ctx := t.Context()
	orig := mustCreate(t, s, RoomInfo{Name: "r", Metadata: "a", MaxParticipants: 2})
	got, err := s.UpdateRoom(ctx, "r", `{"b":1}`, 7)
	if err != nil {
		t.Fatal(err)
	}
	want := RoomInfo{Name: "r", Metadata: `{"b":1}`, MaxParticipants: 7, CreatedAt: orig.CreatedAt}
	if !sameRoom(got, want) {
		t.Fatalf("UpdateRoom = %+v; want %+v", got, want)
	}
	if stored, err := s.peer(t, 0).Room(ctx, "r"); err != nil || !sameRoom(stored, want) {
		t.Fatalf("Room after update = %+v, %v; want %+v", stored, err, want)
	}
	if got, err := s.UpdateRoom(ctx, "r", "", 0); err != nil || got.Metadata != "" || got.MaxParticipants != 0 {
		t.Fatalf("clearing UpdateRoom = %+v, %v", got, err)
	}

	_, err = s.UpdateRoom(ctx, "missing", "x", 1)
	wantErr(t, "UpdateRoom(missing)", err, ErrRoomNotFound)
	if _, err := s.Room(ctx, "missing"); !errors.Is(err, ErrRoomNotFound) {
		t.Fatalf("UpdateRoom of a missing room created it: %v", err)
	}
	_, err = s.UpdateRoom(ctx, "r", strings.Repeat("x", MaxRoomMetadata+1), 0)
	wantErr(t, "UpdateRoom(too much metadata)", err, ErrInvalid)
	_, err = s.UpdateRoom(ctx, "r", "", -1)
	wantErr(t, "UpdateRoom(max -1)", err, ErrInvalid)
	if _, err := s.UpdateRoom(ctx, "r", strings.Repeat("x", MaxRoomMetadata), 3); err != nil {
		t.Fatalf("UpdateRoom with metadata of exactly MaxRoomMetadata: %v", err)
	}
}

func testDeleteRefusedWhileOccupied(t *testing.T, s storeHooks) {
	ctx := t.Context()
	mustCreate(t, s, RoomInfo{Name: "r"})
	other := s.peer(t, 0)
	mustJoin(t, other, occ("r", "alice", "s1", "n2"), 0) // an occupant on another node

	wantErr(t, "DeleteRoom while occupied", s.DeleteRoom(ctx, "r"), ErrRoomOccupied)
	if _, err := s.Room(ctx, "r"); err != nil {
		t.Fatalf("refused DeleteRoom removed the room: %v", err)
	}
	if os := occupants(t, s, "r"); len(os) != 1 {
		t.Fatalf("refused DeleteRoom touched occupants: %s", describe(os))
	}

	mustLeave(t, other, "r", "alice", "s1", true)
	if err := s.DeleteRoom(ctx, "r"); err != nil {
		t.Fatalf("DeleteRoom of an empty room: %v", err)
	}
	_, err := s.Room(ctx, "r")
	wantErr(t, "Room after delete", err, ErrRoomNotFound)
	if rooms, _ := s.Rooms(ctx); len(rooms) != 0 {
		t.Fatalf("Rooms after delete = %v", rooms)
	}
	wantErr(t, "second DeleteRoom", s.DeleteRoom(ctx, "r"), ErrRoomNotFound)

	// A deleted room can be created again, implicitly too.
	mustJoin(t, s, occ("r", "bob", "s2", "n1"), 0)
	if _, err := s.Room(ctx, "r"); err != nil {
		t.Fatalf("implicit re-creation: %v", err)
	}
}

func testJoinLeave(t *testing.T, s storeHooks) {
	ctx := t.Context()
	before := time.Now()
	o := occ("r", "alice", "s1", "n1")
	o.Host = true
	if replaced := mustJoin(t, s, o, 0); replaced != nil {
		t.Fatalf("first Join replaced %+v", replaced)
	}
	info, err := s.Room(ctx, "r")
	if err != nil || info.Metadata != "" || info.MaxParticipants != 0 || info.CreatedAt.IsZero() {
		t.Fatalf("implicit room = %+v, %v", info, err)
	}

	os := occupants(t, s.peer(t, 0), "r")
	if len(os) != 1 {
		t.Fatalf("Occupants = %s", describe(os))
	}
	got := os[0]
	if got.Room != "r" || got.Identity != "alice" || got.SessionID != "s1" || got.Node != "n1" || !got.Host {
		t.Fatalf("occupant = %+v", got)
	}
	if got.JoinedAt.Before(before.Add(-time.Second)) || got.JoinedAt.After(time.Now().Add(time.Second)) {
		t.Fatalf("JoinedAt %v is not about now", got.JoinedAt)
	}

	mustLeave(t, s, "r", "alice", "s1", true)
	mustLeave(t, s, "r", "alice", "s1", false) // idempotent: the three ways of leaving converge
	mustLeave(t, s, "nowhere", "alice", "s1", false)
	if os := occupants(t, s, "r"); len(os) != 0 {
		t.Fatalf("Occupants after leave = %s", describe(os))
	}
	if os := occupants(t, s, "nowhere"); len(os) != 0 {
		t.Fatalf("Occupants of an unknown room = %s", describe(os))
	}

	// A given JoinedAt is kept.
	at := time.Date(2025, 1, 2, 3, 4, 5, 6, time.UTC)
	o = occ("r", "bob", "s2", "n1")
	o.JoinedAt = at
	mustJoin(t, s, o, 0)
	if os := occupants(t, s, "r"); len(os) != 1 || !os[0].JoinedAt.Equal(at) {
		t.Fatalf("Occupants = %+v; want bob joined at %v", os, at)
	}
}

func testRetriedJoin(t *testing.T, s storeHooks) {
	mustJoin(t, s, occ("r", "alice", "s1", "n1"), 1)
	if replaced := mustJoin(t, s, occ("r", "alice", "s1", "n1"), 1); replaced != nil {
		t.Fatalf("a retried Join of the same session replaced %+v", replaced)
	}
	if os := occupants(t, s, "r"); describe(os) != "alice/s1@n1" {
		t.Fatalf("Occupants = %s", describe(os))
	}
}

func testCapacityByIdentity(t *testing.T, s storeHooks) {
	const capacity = 4
	for i := 1; i <= capacity; i++ {
		mustJoin(t, s, occ("r", fmt.Sprintf("u%d", i), "s1", "n1"), capacity)
	}
	// A page refresh of u2 (new session, another node) fits: 4 users, not 5 sessions.
	replaced := mustJoin(t, s.peer(t, 0), occ("r", "u2", "s2", "n2"), capacity)
	if replaced == nil || replaced.Identity != "u2" || replaced.SessionID != "s1" || replaced.Node != "n1" {
		t.Fatalf("refresh replaced %+v; want u2/s1@n1", replaced)
	}
	_, err := s.Join(t.Context(), occ("r", "u5", "s1", "n1"), capacity)
	wantErr(t, "5th identity", err, ErrRoomFull)
	if got, want := describe(occupants(t, s, "r")), "u1/s1@n1 u2/s2@n2 u3/s1@n1 u4/s1@n1"; got != want {
		t.Fatalf("Occupants = %s; want %s", got, want)
	}
	// Unlimited capacity, and room again after a leave.
	mustJoin(t, s, occ("r", "u6", "s1", "n1"), 0)
	mustLeave(t, s, "r", "u6", "s1", true)
	mustLeave(t, s, "r", "u1", "s1", true)
	mustJoin(t, s, occ("r", "u5", "s1", "n1"), capacity)
}

// testRefreshRace: the refreshed page's new session joins before the old one's cleanup runs.
func testRefreshRace(t *testing.T, s storeHooks) {
	ctx := t.Context()
	n2 := s.peer(t, 0)
	mustJoin(t, s, occ("r", "alice", "s1", "n1"), 0)
	replaced := mustJoin(t, n2, occ("r", "alice", "s2", "n2"), 0)
	if replaced == nil || replaced.SessionID != "s1" || replaced.Node != "n1" {
		t.Fatalf("replaced = %+v; want alice/s1@n1", replaced)
	}
	mustLeave(t, s, "r", "alice", "s1", false) // the old session's late cleanup
	if got := describe(occupants(t, s, "r")); got != "alice/s2@n2" {
		t.Fatalf("Occupants = %s; want alice/s2@n2", got)
	}
	nodes, err := s.RoomNodes(ctx, "r")
	if err != nil || len(nodes) != 1 || nodes["n2"] != 1 {
		t.Fatalf("RoomNodes = %v, %v; want map[n2:1]", nodes, err)
	}
	// n1 dies now: the refreshed occupant is n2's and stays.
	removed, err := s.RemoveNode(ctx, "n1")
	if err != nil || len(removed) != 0 {
		t.Fatalf("RemoveNode(n1) = %v, %v; want nothing removed", removed, err)
	}
	mustLeave(t, n2, "r", "alice", "s2", true)
}

// testConcurrentJoins: two nodes admit 20 distinct identities at once into a room of 8.
func testConcurrentJoins(t *testing.T, s storeHooks) {
	const capacity, perNode = 8, 10
	nodes := map[NodeID]RoomStore{"n1": s, "n2": s.peer(t, 0)}
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex // guards the fields below
		ok, full int
		other    []error
	)
	for node, st := range nodes {
		for i := range perNode {
			wg.Go(func() {
				_, err := st.Join(t.Context(), occ("r", fmt.Sprintf("%s-u%d", node, i), "s1", node), capacity)
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil:
					ok++
				case errors.Is(err, ErrRoomFull):
					full++
				default:
					other = append(other, err)
				}
			})
		}
	}
	wg.Wait()
	if len(other) > 0 || ok != capacity || full != 2*perNode-capacity {
		t.Fatalf("joins: %d ok, %d full, errors %v; want %d ok, %d full", ok, full, other, capacity, 2*perNode-capacity)
	}
	if os := occupants(t, s, "r"); len(os) != capacity {
		t.Fatalf("%d occupants: %s", len(os), describe(os))
	}
	counts, err := s.RoomNodes(t.Context(), "r")
	if err != nil || counts["n1"]+counts["n2"] != capacity {
		t.Fatalf("RoomNodes = %v, %v", counts, err)
	}
}

// testConcurrentRefreshAndLeave: many refreshes of one identity race their old sessions'
// leaves; the last session to join must be the one stored, and no leave removes a newer one.
func testConcurrentRefreshAndLeave(t *testing.T, s storeHooks) {
	const rounds = 20
	stores := []RoomStore{s, s.peer(t, 0)}
	mustJoin(t, s, occ("r", "alice", "s0", "n1"), 1)
	var wg sync.WaitGroup
	for i := 1; i <= rounds; i++ {
		// Session i replaces session i-1 while session i-1's cleanup runs concurrently.
		wg.Go(func() {
			_, _ = stores[i%2].Leave(t.Context(), "r", "alice", fmt.Sprintf("s%d", i-1))
		})
		mustJoin(t, stores[(i+1)%2], occ("r", "alice", fmt.Sprintf("s%d", i), NodeID(fmt.Sprintf("n%d", 1+i%2))), 1)
	}
	wg.Wait()
	if got, want := describe(occupants(t, s, "r")), fmt.Sprintf("alice/s%d@n%d", rounds, 1+rounds%2); got != want {
		t.Fatalf("Occupants = %s; want %s", got, want)
	}
	counts, err := s.RoomNodes(t.Context(), "r")
	if err != nil || len(counts) != 1 {
		t.Fatalf("RoomNodes = %v, %v; want one node", counts, err)
	}
}

func testRemoveNode(t *testing.T, s storeHooks) {
	ctx := t.Context()
	n2 := s.peer(t, 0)
	mustJoin(t, s, occ("r1", "a", "sa", "n1"), 0)
	mustJoin(t, s, occ("r1", "c", "sc", "n1"), 0)
	mustJoin(t, n2, occ("r1", "b", "sb", "n2"), 0)
	mustJoin(t, s, occ("r2", "d", "sd", "n1"), 0)
	mustJoin(t, n2, occ("r3", "e", "se", "n2"), 0)
	mustJoin(t, s, occ("r4", "f", "sf1", "n1"), 0)
	mustJoin(t, n2, occ("r4", "f", "sf2", "n2"), 0) // f refreshed onto n2: not n1's any more

	removed, err := n2.RemoveNode(ctx, "n1")
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for room, os := range removed {
		got[room] = describe(os)
	}
	want := map[string]string{"r1": "a/sa@n1 c/sc@n1", "r2": "d/sd@n1"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("RemoveNode(n1) removed %v; want %v", got, want)
	}
	for room, want := range map[string]string{"r1": "b/sb@n2", "r2": "", "r3": "e/se@n2", "r4": "f/sf2@n2"} {
		if got := describe(occupants(t, s, room)); got != want {
			t.Fatalf("Occupants(%s) = %q; want %q", room, got, want)
		}
	}
	// Idempotent; an unknown node has nothing.
	for _, node := range []NodeID{"n1", "n9"} {
		if removed, err := s.RemoveNode(ctx, node); err != nil || len(removed) != 0 {
			t.Fatalf("RemoveNode(%s) = %v, %v; want nothing", node, removed, err)
		}
	}
	// Rooms stay; emptied ones can be deleted.
	if err := s.DeleteRoom(ctx, "r2"); err != nil {
		t.Fatalf("DeleteRoom(r2) after RemoveNode: %v", err)
	}
	// The node can come back.
	mustJoin(t, s, occ("r1", "a", "sa2", "n1"), 0)
	if removed, err := s.RemoveNode(ctx, "n1"); err != nil || describe(removed["r1"]) != "a/sa2@n1" {
		t.Fatalf("second RemoveNode(n1) = %v, %v", removed, err)
	}
}

func testRoomNodes(t *testing.T, s storeHooks) {
	ctx := t.Context()
	mustJoin(t, s, occ("r", "a", "s", "n1"), 0)
	mustJoin(t, s, occ("r", "b", "s", "n1"), 0)
	mustJoin(t, s, occ("r", "c", "s", "n2"), 0)
	got, err := s.peer(t, 0).RoomNodes(ctx, "r")
	if err != nil || fmt.Sprint(got) != "map[n1:2 n2:1]" {
		t.Fatalf("RoomNodes = %v, %v; want map[n1:2 n2:1]", got, err)
	}
	mustLeave(t, s, "r", "c", "s", true)
	if got, err := s.RoomNodes(ctx, "r"); err != nil || fmt.Sprint(got) != "map[n1:2]" {
		t.Fatalf("RoomNodes after leave = %v, %v", got, err)
	}
	if got, err := s.RoomNodes(ctx, "nowhere"); err != nil || len(got) != 0 {
		t.Fatalf("RoomNodes(nowhere) = %v, %v; want empty", got, err)
	}
}

func testLockTimeout(t *testing.T, s storeHooks) {
	ctx := t.Context()
	const wait = 100 * time.Millisecond
	mustJoin(t, s, occ("r", "bob", "sb", "n3"), 0)
	unlock, err := s.lockRoom(ctx, "r")
	if err != nil {
		t.Fatal(err)
	}
	short := s.peer(t, wait)

	ops := map[string]func() error{
		"Join": func() error { _, err := short.Join(ctx, occ("r", "alice", "s1", "n2"), 0); return err },
		"Leave": func() error {
			_, err := short.Leave(ctx, "r", "bob", "sb")
			return err
		},
		"CreateRoom": func() error { _, _, err := short.CreateRoom(ctx, RoomInfo{Name: "r"}); return err },
		"UpdateRoom": func() error { _, err := short.UpdateRoom(ctx, "r", "x", 1); return err },
		"DeleteRoom": func() error { return short.DeleteRoom(ctx, "r") },
		"RemoveNode": func() error {
			removed, err := short.RemoveNode(ctx, "n3")
			if len(removed) != 0 {
				t.Errorf("RemoveNode removed %v without the lock", removed)
			}
			return err
		},
	}
	for name, op := range ops {
		start := time.Now()
		err := op()
		elapsed := time.Since(start)
		if !errors.Is(err, ErrLockTimeout) || !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("%s with the lock held: err = %v; want ErrLockTimeout wrapping DeadlineExceeded", name, err)
		}
		if elapsed < wait*9/10 || elapsed > wait+time.Second {
			t.Fatalf("%s waited %v; want about %v", name, elapsed, wait)
		}
	}

	// The caller's deadline bounds the wait too, on a store with the default LockWait.
	dctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	_, err = s.Join(dctx, occ("r", "alice", "s1", "n1"), 0)
	wantErr(t, "Join with a short deadline", err, ErrLockTimeout)

	// Cancellation is not a timeout.
	cctx, cancel := context.WithCancel(ctx)
	time.AfterFunc(wait/2, cancel)
	_, err = s.Join(cctx, occ("r", "alice", "s1", "n1"), 0)
	if !errors.Is(err, context.Canceled) || errors.Is(err, ErrLockTimeout) {
		t.Fatalf("Join cancelled while waiting: err = %v; want context.Canceled only", err)
	}

	// Other rooms are not blocked, and reads take no lock.
	mustJoin(t, short, occ("other", "alice", "s1", "n2"), 0)
	if got := describe(occupants(t, short, "r")); got != "bob/sb@n3" {
		t.Fatalf("Occupants while locked = %s", got)
	}

	unlock()
	mustJoin(t, short, occ("r", "alice", "s1", "n2"), 0)
	if got := describe(occupants(t, s, "r")); got != "alice/s1@n2 bob/sb@n3" {
		t.Fatalf("Occupants = %s", got)
	}
}

// testLockReleasedAfterRefusal: every refusal path releases the room lock.
func testLockReleasedAfterRefusal(t *testing.T, s storeHooks) {
	ctx := t.Context()
	short := s.peer(t, 500*time.Millisecond) // fails fast if a lock stayed held (LockTTL is longer)
	mustJoin(t, s, occ("r", "a", "s", "n1"), 1)
	_, err := s.Join(ctx, occ("r", "b", "s", "n1"), 1)
	wantErr(t, "Join into a full room", err, ErrRoomFull)
	wantErr(t, "DeleteRoom", s.DeleteRoom(ctx, "r"), ErrRoomOccupied)
	_, err = s.UpdateRoom(ctx, "missing", "", 0)
	wantErr(t, "UpdateRoom(missing)", err, ErrRoomNotFound)
	wantErr(t, "DeleteRoom(missing)", s.DeleteRoom(ctx, "missing"), ErrRoomNotFound)
	mustLeave(t, s, "r", "a", "other-session", false)

	mustJoin(t, short, occ("r", "a", "s2", "n2"), 1)
	if _, err := short.UpdateRoom(ctx, "r", "x", 0); err != nil {
		t.Fatal(err)
	}
	mustLeave(t, short, "r", "a", "s2", true)
	if err := short.DeleteRoom(ctx, "r"); err != nil {
		t.Fatal(err)
	}
	if err := short.DeleteRoom(ctx, "missing"); !errors.Is(err, ErrRoomNotFound) {
		t.Fatal(err)
	}
}

func testInvalid(t *testing.T, s storeHooks) {
	ctx := t.Context()
	long := strings.Repeat("x", maxNameLen+1)
	good := occ("r", "alice", "s1", "n1")
	with := func(f func(o *Occupant)) Occupant { o := good; f(&o); return o }
	cases := map[string]func() error{
		"CreateRoom empty name":   func() error { _, _, err := s.CreateRoom(ctx, RoomInfo{}); return err },
		"CreateRoom long name":    func() error { _, _, err := s.CreateRoom(ctx, RoomInfo{Name: long}); return err },
		"CreateRoom control char": func() error { _, _, err := s.CreateRoom(ctx, RoomInfo{Name: "a\nb"}); return err },
		"CreateRoom bad UTF-8":    func() error { _, _, err := s.CreateRoom(ctx, RoomInfo{Name: "a\xffb"}); return err },
		"CreateRoom big metadata": func() error {
			_, _, err := s.CreateRoom(ctx, RoomInfo{Name: "r", Metadata: strings.Repeat("x", MaxRoomMetadata+1)})
			return err
		},
		"CreateRoom negative max": func() error { _, _, err := s.CreateRoom(ctx, RoomInfo{Name: "r", MaxParticipants: -1}); return err },
		"UpdateRoom empty name":   func() error { _, err := s.UpdateRoom(ctx, "", "", 0); return err },
		"DeleteRoom empty name":   func() error { return s.DeleteRoom(ctx, "") },
		"Join empty room":         func() error { _, err := s.Join(ctx, with(func(o *Occupant) { o.Room = "" }), 0); return err },
		"Join empty identity":     func() error { _, err := s.Join(ctx, with(func(o *Occupant) { o.Identity = "" }), 0); return err },
		"Join empty session":      func() error { _, err := s.Join(ctx, with(func(o *Occupant) { o.SessionID = "" }), 0); return err },
		"Join empty node":         func() error { _, err := s.Join(ctx, with(func(o *Occupant) { o.Node = "" }), 0); return err },
		"Leave empty identity":    func() error { _, err := s.Leave(ctx, "r", "", "s1"); return err },
		"Leave empty session":     func() error { _, err := s.Leave(ctx, "r", "alice", ""); return err },
		"RemoveNode empty node":   func() error { _, err := s.RemoveNode(ctx, ""); return err },
	}
	for name, op := range cases {
		wantErr(t, name, op(), ErrInvalid)
	}
	if rooms, err := s.Rooms(ctx); err != nil || len(rooms) != 0 {
		t.Fatalf("invalid calls left rooms: %v, %v", rooms, err)
	}
	// Names are otherwise free: key separators and non-ASCII are fine.
	for _, name := range []string{"a:b", "occ:x", "lock:room:y", "{tag}", "phòng-họp", "a b"} {
		mustJoin(t, s, occ(name, "id:"+name, "s", "node:1"), 0)
		if got := describe(occupants(t, s, name)); got != "id:"+name+"/s@node:1" {
			t.Fatalf("Occupants(%q) = %s", name, got)
		}
	}
	if rooms, _ := s.Rooms(ctx); len(rooms) != 6 {
		t.Fatalf("Rooms = %v; want 6 rooms", rooms)
	}
}

func testClosed(t *testing.T, s storeHooks) {
	ctx := t.Context()
	mustJoin(t, s, occ("r", "a", "s", "n1"), 0)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	_, _, err := s.CreateRoom(ctx, RoomInfo{Name: "x"})
	wantErr(t, "CreateRoom after Close", err, ErrStoreClosed)
	_, err = s.Room(ctx, "r")
	wantErr(t, "Room after Close", err, ErrStoreClosed)
	_, err = s.Rooms(ctx)
	wantErr(t, "Rooms after Close", err, ErrStoreClosed)
	_, err = s.Join(ctx, occ("r", "b", "s", "n1"), 0)
	wantErr(t, "Join after Close", err, ErrStoreClosed)
	_, err = s.Leave(ctx, "r", "a", "s")
	wantErr(t, "Leave after Close", err, ErrStoreClosed)
	_, err = s.Occupants(ctx, "r")
	wantErr(t, "Occupants after Close", err, ErrStoreClosed)
	_, err = s.RoomNodes(ctx, "r")
	wantErr(t, "RoomNodes after Close", err, ErrStoreClosed)
	_, err = s.RemoveNode(ctx, "n1")
	wantErr(t, "RemoveNode after Close", err, ErrStoreClosed)
	// Another handle on the same state is unaffected.
	if got := describe(occupants(t, s.peer(t, 0), "r")); got != "a/s@n1" {
		t.Fatalf("Occupants from another node = %s", got)
	}
}
