// Package cluster makes many Cascade nodes one cluster: it owns gossip membership (Serf), the
// Redis registry of live nodes with expiring health keys, and the room state shared by all
// nodes (RoomStore, with an in-memory implementation for a single node and a Redis one for a
// cluster). It knows nothing of pion or HTTP.
//
// # Health and liveness
//
// A node is alive while its registry record exists: the record expires (TTL) unless the node
// refreshes it, so a node that dies stops being alive within the TTL without anyone having to
// notice. Serf membership carries the node's tags (region, position, URL, state, load) and its
// network coordinate, from which RTT to every other node is estimated; Serf's own failure
// detection is advisory. A node that shuts down gracefully first marks itself draining (in Serf
// and in the registry) so that no new clients are routed to it, and deletes its record last.
// The survivors remove a dead node's occupants from the room state (the reaper).
//
// The registry record also carries what Serf tags cannot hold (they are limited to 512 bytes):
// the measured RTT of the node's open relay links (Node.LinkRTT), which other nodes read to
// choose relay paths.
//
// # Operator actions
//
// RPC is request/response over the signed bus (a request id, a timeout, the answer on the
// asking node's own channel); a request to this node itself runs locally, so a node without
// Redis answers everything. Admin uses it to act on rooms hosted anywhere: it finds the hosting
// nodes in the room state and asks each to act on its own sessions (LocalRooms).
//
// # Concurrency
//
// Membership runs one goroutine draining Serf's event channel (it never blocks Serf); Agent runs
// one goroutine for heartbeats and reaping; RPC one per request being served (bounded). Close
// stops and waits for them. All methods are safe
// for concurrent use. No lock is held during network I/O.
package cluster
