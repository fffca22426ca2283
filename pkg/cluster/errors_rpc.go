package cluster

import "errors"

// Sentinel errors of node-to-node requests (RPC).
var (
	// ErrRPCTimeout: the node did not answer in time (it may be gone, or busy).
	ErrRPCTimeout = errors.New("rpc: no answer from the node in time")
	// ErrRPCNoMethod: the node has no handler for the request.
	ErrRPCNoMethod = errors.New("rpc: unknown method")
	// ErrRPCClosed: this endpoint is closed.
	ErrRPCClosed = errors.New("rpc: closed")
	// ErrRPCBusy: too many requests are in flight.
	ErrRPCBusy = errors.New("rpc: too many requests in flight")
	// ErrRPCNoBus: the request is for another node, and this node has no bus (no Redis).
	ErrRPCNoBus = errors.New("rpc: no bus to reach another node")
)

// Sentinel errors of operator actions (Admin).
var (
	// ErrParticipantNotFound: no occupant of that identity in the room.
	ErrParticipantNotFound = errors.New("participant not found")
	// ErrTrackNotFound: the participant has no track of that id.
	ErrTrackNotFound = errors.New("track not found")
	// ErrNodeUnreachable: a node hosting the room did not answer.
	ErrNodeUnreachable = errors.New("node unreachable")
)
