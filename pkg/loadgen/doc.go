// Package loadgen drives a Cascade node (or another SFU speaking WHIP/WHEP) with synthetic
// publishers and many cheap viewers, and measures what the viewers receive: packets and bits
// per second, loss from sequence gaps after NACK repair, time to first packet, and, given the
// server's process id, its CPU per million egress packets. It is the engine of `relayctl load`.
//
// # Concurrency
//
// [Run] owns everything it starts: one goroutine per publisher (pacing its frames), one reader
// goroutine per received track (no goroutine per packet), the join pacer and the progress
// ticker. Run returns only after every PeerConnection is closed and every goroutine has ended.
// Viewers share one pion API, one SettingEngine and one UDP socket (ICE UDP mux). The counters
// a reader updates are atomics, read by the progress and window snapshots without locks.
package loadgen
