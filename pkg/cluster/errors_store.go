package cluster

import "errors"

// Sentinel errors of the room store (RoomStore, MemoryStore, RedisStore). They are wrapped with
// details; test them with errors.Is.
var (
	// ErrRoomNotFound: no room of that name.
	ErrRoomNotFound = errors.New("room not found")
	// ErrRoomFull: Join of a new identity into a room that holds `capacity` identities already.
	ErrRoomFull = errors.New("room is full")
	// ErrRoomOccupied: DeleteRoom while the room has occupants on some node.
	ErrRoomOccupied = errors.New("room has occupants")
	// ErrLockTimeout: the room lock was not obtained within the store's LockWait or the
	// caller's deadline. The error also wraps context.DeadlineExceeded.
	ErrLockTimeout = errors.New("room lock timeout")
	// ErrLockLost: the room lock expired (LockTTL) before the change was committed; nothing was
	// changed. It means a critical section outlived LockTTL (a stalled process or Redis).
	ErrLockLost = errors.New("room lock lost before commit")
	// ErrInvalid: an empty or malformed name, identity, session or node id, metadata over
	// MaxRoomMetadata bytes, or a negative participant limit.
	ErrInvalid = errors.New("invalid argument")
	// ErrStoreClosed: the store was closed.
	ErrStoreClosed = errors.New("room store closed")
	// ErrUnavailable: the shared store (Redis) did not answer.
	ErrUnavailable = errors.New("cluster store unavailable")
)
