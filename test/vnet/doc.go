// Package vnet holds in-process acceptance tests of rooms that span nodes (issue #4), with the
// media on pion's virtual network and the signalling over real HTTP on 127.0.0.1.
//
// Each test builds two or three nodes in the test process, wired as cmd/sfu wires a node with
// --redis: a media engine whose ICE runs on the node's own host of the virtual network
// (198.51.100.0/24, one router that delays every packet by 40 ms), a room manager, a relay
// coordinator whose links are set up over the signed bus on a real redis-server (from
// pkg/cluster/redistest), the cluster's room state (in memory, shared by the nodes) as its
// Directory and as the signalling server's Occupancy, and the WHIP, WHEP and WebSocket
// endpoints on an httptest server. Clients are pion PeerConnections on client hosts of the same
// virtual network, so every hop a packet takes (client to node, node to node, node to client)
// crosses it. Publishers send VP8 (one packet a frame, tagged with the publisher and the send
// time) and, where it matters, Opus.
//
// What is tested, each from what a user notices:
//   - a WHIP publisher on eu is watched by two WHEP viewers on hcm, starting at a keyframe,
//     three hops of delay away;
//   - a late WHEP viewer on hcm gets a keyframe from a publisher that sends one only on PLI,
//     both when the track starts crossing and when it already crosses;
//   - a room spanning eu and hcm is joined on a third node, sgp: each participant receives the
//     two others;
//   - a WHIP publisher on eu ending its session (DELETE) disappears on hcm;
//   - eu killed without a word (its host cut off the network, its bus and room-state writes
//     dropped): hcm's own participants go on, and once the cluster reaps eu's occupants, eu's
//     participant and track go from hcm.
//
// The real-process versions of these tests are in test/cluster. Durations are logged, not
// asserted; the only timing asserted is a lower bound the virtual network guarantees (media
// that crossed three hops took at least three hop delays). Every node closes in t.Cleanup in
// cmd/sfu's order, and TestMain checks that no goroutine is left.
//
// Set CASCADE_TEST_LOG=1 for the nodes' debug logs.
//
// The package has no non-test code besides this comment.
package vnet
