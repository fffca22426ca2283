// Package interop tests Cascade against media stacks other than pion: GStreamer's webrtcbin
// publishing over WHIP and playing over WHEP.
//
// The node and the GStreamer clients run inside a network namespace the test creates, with a veth
// pair (both ends inside it), one end on 198.51.100.1: libnice gathers no loopback candidates, and pion does not
// pair a loopback candidate with another address, so neither 127.0.0.1 nor the machine's own
// interfaces would do. The tests need root (CI runs as root) and are skipped with a clear
// message where namespaces cannot be made.
package interop
