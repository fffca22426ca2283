// Package room owns rooms, participants and the media forwarding engine of one node.
//
// A published track is an [UpTrack] with one to three simulcast layers. Each layer's packets
// come from a [PacketSource] (a local publisher's PeerConnection, or later a relay link from another
// node) and are read by exactly one goroutine, owned by the UpTrack. That goroutine caches each
// packet for retransmission and hands it to every [DownTrack] attached to the track, taken from a
// copy-on-write snapshot, without allocating and with only the layer's forwarding token held (an
// uncontended mutex; a keyframe replay for a subscriber whose transport just came up takes it
// from another goroutine, so that replayed and live packets never interleave). A DownTrack is one subscriber's
// copy of one track: it picks the simulcast layer, rewrites SSRC, sequence numbers and
// timestamps so that the subscriber sees one continuous stream whatever the source does, and
// writes to a [PacketWriter] (a subscriber's PeerConnection, a relay link, a test).
//
// The package knows nothing about HTTP, Redis or Serf and does not create PeerConnections:
// [SubscriberTransport], [PacketSource] and [EventSink] are the seams other packages implement;
// a transport that can fold several track changes into one negotiation also implements
// [NegotiationBatcher].
//
// # Concurrency
//
//   - Lock order: Manager.mu → Room.mu → Participant.mu → UpTrack.mu → DownTrack.mu, and a
//     layer's forwarding token (upLayer.fwd) → DownTrack.mu. Packets are written with only the
//     forwarding token held, the token being what serializes a layer's writes; no lock is held
//     while calling a SubscriberTransport or while a Source blocks. DownTrack.TransportReady
//     takes a forwarding token: it must not be called with a lock held that a reader waits for.
//   - EventSink.Deliver is called with Room.dataMu held so that every participant sees room
//     messages in one order; implementations must only enqueue.
//   - Each Room runs one goroutine (speaker detection, bandwidth allocation, track-end notices);
//     each UpTrack layer runs one reader goroutine. Room.Close and UpTrack.Close wait for them.
package room
