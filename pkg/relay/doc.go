// Package relay makes rooms span nodes. It owns the relay links between the nodes of a
// cluster (one pion PeerConnection per node pair, set up over the signed cluster bus, with a
// control data channel and a fixed pool of media slots), and the [Coordinator], which tells
// peers which rooms it hosts, shows their participants as proxy participants, carries the
// tracks and simulcast layers that local subscribers want (a remote track becomes a
// room.PacketSource here; a remote node's subscription a room.DownTrack there), forwards chat
// and host actions, chooses what a short link carries first, and relays through a third node
// when the path policy says so.
//
// # One link per node pair
//
// There is at most one link between two nodes, and it carries every room they share. A link
// per room would cost one ICE check, one DTLS handshake and one SCTP association per room,
// repeated whenever another room starts spanning the two nodes, and state (certificates,
// SRTP contexts, ICE agents, congestion controllers) that grows with rooms rather than with
// nodes. With one link per pair:
//   - the handshakes are paid once, when two nodes first share a room; a room added later
//     costs one control message;
//   - per-room state (which tracks and layers the peer wants) lives in control messages on the
//     link's control data channel, tagged with the room;
//   - one GCC estimate and one set of RTT and bitrate figures describe the path between the
//     two nodes, which every room's media shares anyway.
//
// It is also what the media port allows: each node receives all media on one ICE UDP mux,
// which routes packets by their source address once a PeerConnection has written to it. Two
// PeerConnections between the same two nodes would take each other's packets. For the same
// reason a new link to a peer starts only when the previous one's PeerConnection is closed.
//
// The cost is that a link failure affects every shared room at once; the next Link call
// rebuilds it and the layer above re-sends the rooms' state.
//
// # Set-up
//
// The offerer creates the link's PeerConnection ([rtc.Engine.NewRelayPeerConnection]: the
// node's ICE UDP mux, codecs and interceptors for both directions) with a negotiated control
// data channel (ordered, reliable, id 0), gathers its candidates (at once on the UDP mux, so
// no trickle) and sends a signed relay_offer {req, sdp} on the peer's bus channel. The
// answerer applies it and replies relay_answer {req, sdp}, or {req, error} if it cannot; the
// offerer correlates the answer by request id. The link is open when its control channel
// opens. Set-up is bounded by Config.OfferTimeout from the first step; an attempt that runs
// out fails with ErrTimeout, its PeerConnection is closed and the peer told (relay_close). The
// bus has already dropped anything unsigned, stale, replayed or from a non-member.
//
// Cost, in round trips between the two nodes (RTT), on the offerer's side:
//   - 1 RTT: the bus round trip, offer then answer. The offerer cannot send a check before it
//     has the answer's ICE credentials and address.
//   - 1 RTT: ICE. The offerer's first check reaches the answerer half an RTT later; the
//     answerer, ICE-controlled and DTLS client, selects the pair on that check and sends its
//     ClientHello right behind its answer to it; the offerer selects the pair when that answer
//     (and the answerer's own check) arrives, the moment pion nominates it ([rtc.EarlyStart]).
//   - 1 RTT: DTLS 1.2 without HelloVerify, for the offerer (the server): its flight 4 out, the
//     client's flight 5 back. The answerer opens half an RTT later, on the server's flight 6.
//   - 0 RTT: SCTP and the control channel. The association is set up inside the SDP (SNAP)
//     and the channel is negotiated (id 0), so both are open when DTLS is.
//
// Over a 100 ms RTT the offerer's link opens in about 3.2 RTT (2.2 RTT when the bus round
// trip is near zero, as in the tests), the answerer's half an RTT later (TestLinkSetupOverWAN).
// SNAP and skipping HelloVerify save three round trips, EarlyStart one more (without it the
// offerer waits for its nomination's round trip, and with several candidate addresses it may
// also wait for pion's 200 ms check tick before it nominates).
//
// EarlyStart needs one candidate address on each side (e.g. a node whose media address, the
// host of --http, is a specific IP rather than 0.0.0.0); otherwise ICE runs as specified and
// the set-up costs that extra RTT or more.
//
// The target, 1 RTT + 100 ms, is out of reach with standard ICE and DTLS 1.2: the bus
// round trip, one ICE round trip (the offerer's check cannot leave before the answer, and no
// DTLS before a check has reached the peer) and DTLS 1.2's exchange (flight 4 out, flight 5
// back: one RTT for the server) are each irreducible, 3 RTT in all. Even with a bus round trip
// near zero, 2 RTT (plus about 20 ms of processing) meets the target only on paths of at most
// about 80 ms RTT. Going further would take skipping the ICE check (ICE-lite on both ends: DTLS
// to an address no check has proved, and no consent checks afterwards) or a 1-RTT handshake
// (DTLS 1.3; pion's DTLS v3 negotiates 1.2 only). Instead the product keeps the set-up off a
// room's path: a link is set up once per node pair and reused by every room the two nodes
// share, an idle link stays open for --relay-linger (30 s), and --relay-prewarm keeps links
// open to every live node ahead of time, so a room spanning nodes never waits for one.
//
// Glare: when both nodes set up a link at once, the node with the lexically smaller id is the
// offerer. The other, receiving that offer while its own is pending, abandons its attempt and
// answers; its Link callers wait for the answered link. The smaller node ignores the larger
// one's offer while its own is pending. Both end with one link, with the same ID. The answer
// goes out only after the abandoned attempt is closed, so an offer of it that was already on
// its way reaches the smaller node first, while that node's attempt is still pending.
//
// A node offers only when it has no link to the peer. An offer from a peer with which this
// node has an open link therefore means the peer lost it (it restarted, or saw the link fail
// first): the old link is closed (ErrReplaced) and the offer answered.
//
// # Failure
//
// A link closes when its PeerConnection fails (ICE failed, per the Engine's ICE timeouts), its
// DTLS transport or control channel closes, the peer sends relay_close, or [Link.Close],
// [Manager.ClosePeer] or [Manager.Close] is called. A closed link is removed at once and the
// peer told with relay_close; the next [Manager.Link] sets up a new one. On the side that did
// not start the close, pion takes up to 0.4 s to close the PeerConnection (its SCTP abort
// waits for a flush that never comes once the peer's ABORT has closed the association); a new
// link to that peer waits for it.
//
// # Concurrency
//
// All methods are safe for concurrent use. Each link has one goroutine, which sets it up,
// waits for it to close and tears it down; [Manager.Close] closes every link and waits for
// them. [Manager.HandleBusMessage] never blocks: it decides under the manager's lock and
// leaves the PeerConnection work to the link's goroutine. Manager.mu and Link.mu are never
// held together; no lock is held during I/O or while calling a callback, except
// Link.deliverMu, which serialises control message delivery. Callbacks (Config.OnLink,
// OnControl handlers) run on pion's goroutines and must not block.
//
// # What crosses a link
//
// Per room, on the control channel: interest (which origins a node wants through the peer),
// state snapshots of participants and tracks (kind, codec, source, mute, simulcast rids),
// subscribe/unsubscribe with the highest layer wanted, assigned (the slot of each layer),
// paused (a layer paused for bandwidth), chat and room data, kick and mute. On the slots: one
// down track per crossing layer, fixed to that layer, with NACK, PLI, sender and receiver
// reports per hop and transport-wide sequence numbers feeding the link's GCC estimate. See
// [Coordinator] and docs/architecture.md.
//
// The link's RTT ([LinkInfo.RTT], [Manager.RTTs]) is the latest STUN consent check's round
// trip on its selected candidate pair: the same path as the link's media and RTCP, without
// the SFUs' queueing. Cluster nodes publish it in their registry record and the auto relay
// path policy (cmd/sfu) prefers it to Serf's estimates.
package relay
