// Package rtputil holds small, allocation-free RTP helpers for the SFU
// forwarding hot path:
//
//   - [Codec]: codec identification from a mime type and keyframe detection
//     ([Codec.IsKeyframe]) for VP8, VP9, H.264, AV1 and H.265 payloads;
//     [ParseVP8Descriptor] for the VP8 payload descriptor.
//   - [AudioLevel]: the RFC 6464 client-to-mixer audio level extension.
//   - [PacketCache]: a fixed-size, sequence-number-indexed ring of recent
//     packets of one stream, for answering NACKs.
//   - [SeqUnwrapper] and [TSUnwrapper]: 16-bit sequence numbers and 32-bit
//     timestamps extended to 64 bits.
//   - [RateMeter]: bits per second over a sliding window, driven by an
//     explicit clock.
//   - [KeyframeThrottle]: collapses many subscribers' PLIs into at most one
//     upstream request per interval.
//
// The package owns no goroutines, performs no I/O, logs nothing and has no
// package-level state. Nothing here allocates after construction.
//
// # Concurrency properties
//
//   - Pure functions ([CodecFromMime], [Codec] methods, [AudioLevel],
//     [ParseVP8Descriptor]) are safe for any number of concurrent callers.
//     They never panic, whatever the input (this is fuzzed).
//   - [PacketCache] is safe for one writer (Put, Reset) and any number of
//     concurrent readers (Get, Stats). A read-write mutex guards it; critical
//     sections only copy memory and never block on anything else.
//   - [RateMeter] is safe for one writer (Add) and any number of concurrent
//     readers (Rate). A small mutex guards it.
//   - [KeyframeThrottle] is lock-free (one compare-and-swap) and safe for any
//     number of concurrent callers.
//   - [SeqUnwrapper] and [TSUnwrapper] are not synchronized: each belongs to
//     the single goroutine that owns the stream.
package rtputil
