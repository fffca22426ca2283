// Package rtc connects pion PeerConnections to the forwarding engine in package room.
//
// A participant has up to two PeerConnections. A [Publisher] receives what the participant sends:
// the client offers, every incoming track (and each of its simulcast layers) becomes a
// room.UpTrack layer whose packets a room goroutine reads. A [Subscriber] carries what the
// participant receives: the server offers, and each room.DownTrack becomes a sendonly
// transceiver. A [Viewer] is the WHEP variant: the client offers a fixed set of m-lines and the
// room's tracks are fed into them in publish order.
//
// All PeerConnections of a node share one [Engine]: one ICE UDP mux (one media port) and the
// codec and interceptor set-up.
//
// # Concurrency
//
// Methods are safe for concurrent use. Renegotiation of a Subscriber is serialised: while an
// offer is outstanding, further changes are collected and offered once the answer arrives. Each
// sender has one goroutine reading its RTCP; Close stops the PeerConnection and waits for them.
package rtc
