package rtputil

import "sync"

// Packet cache limits.
const (
	// MaxCacheSlots is the largest window a PacketCache keeps: half the
	// sequence number space, beyond which "older" and "newer" are ambiguous.
	MaxCacheSlots = 1 << 15
	// MaxCachePacketSize is the largest packet size a PacketCache accepts.
	MaxCachePacketSize = 1<<16 - 1
)

// PacketCache keeps the most recent RTP packets of one stream, indexed by
// sequence number, for retransmission in answer to NACKs.
//
// It holds a window of the newest Slots() extended sequence numbers. Each
// slot records the extended sequence number it holds, so a packet whose
// sequence number merely aliases in the ring, or that is older than the
// window, is reported absent. Memory is fixed at construction; Put and Get
// never allocate.
//
// A sequence number that falls behind the window is ignored and counted,
// unless the next Put continues from it: then, as in RFC 3550 appendix A.1,
// the sender is taken to have restarted its sequence and the window moves
// there.
//
// A PacketCache is safe for one writer (Put, Reset) and any number of
// concurrent readers (Get, Stats).
type PacketCache struct {
	mask    uint64 // slots - 1
	maxSize int    // bytes per slot

	mu      sync.RWMutex // guards the fields below and the contents of buf
	highest uint64       // extended seq of the newest packet; 0 while empty
	probe   uint16       // a Put of this seq after a too-old one resynchronizes
	probing bool         // probe is valid
	slots   []cacheSlot
	buf     []byte // len(slots) * maxSize
	stats   CacheStats
}

type cacheSlot struct {
	ext uint64 // extended seq held; 0 if none
	n   uint16 // packet length
}

// CacheStats counts what a PacketCache did with the packets it was given.
type CacheStats struct {
	Stored    uint64 // packets stored
	Oversized uint64 // packets ignored: longer than the maximum packet size
	TooOld    uint64 // packets ignored: behind the window
	Resyncs   uint64 // times the sender's sequence restarted elsewhere
}

// NewPacketCache returns a cache of slots packets of at most maxPacketSize
// bytes each. slots is rounded up to a power of two and clamped to
// [1, MaxCacheSlots]; maxPacketSize is clamped to [1, MaxCachePacketSize].
func NewPacketCache(slots int, maxPacketSize int) *PacketCache {
	n := 1
	for n < slots && n < MaxCacheSlots {
		n <<= 1
	}
	size := min(max(maxPacketSize, 1), MaxCachePacketSize)
	return &PacketCache{
		mask:    uint64(n - 1),
		maxSize: size,
		slots:   make([]cacheSlot, n),
		buf:     make([]byte, n*size),
	}
}

// Slots returns the number of packets the cache holds.
func (c *PacketCache) Slots() int { return int(c.mask) + 1 }

// MaxPacketSize returns the largest packet the cache stores; a dst of this
// size is always large enough for Get.
func (c *PacketCache) MaxPacketSize() int { return c.maxSize }

// Put stores a copy of pkt under seq, replacing whatever the slot held.
// Packets longer than MaxPacketSize and packets behind the window are
// ignored and counted in Stats.
func (c *PacketCache) Put(seq uint16, pkt []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(pkt) > c.maxSize {
		c.stats.Oversized++
		return
	}
	ext, ok := c.place(seq)
	if !ok {
		return
	}
	s := &c.slots[ext&c.mask]
	s.ext = ext
	s.n = uint16(len(pkt))
	off := int(ext&c.mask) * c.maxSize
	copy(c.buf[off:off+c.maxSize], pkt)
	c.stats.Stored++
}

// place returns the extended sequence number under which to store seq and
// advances the window, or false if seq is behind the window.
func (c *PacketCache) place(seq uint16) (uint64, bool) {
	if c.highest == 0 {
		c.highest = seqBase + uint64(seq)
		return c.highest, true
	}
	ext := extendSeq(c.highest, seq)
	switch {
	case ext > c.highest:
		c.highest = ext
	case c.highest-ext <= c.mask:
		// reordered, within the window
	case c.probing && seq == c.probe:
		// Two consecutive packets far behind: the sender restarted. Jump
		// past the window so that nothing stored before can alias.
		base := c.highest + c.mask + 1
		ext = base + uint64(seq-uint16(base))
		c.highest = ext
		c.stats.Resyncs++
	default:
		c.probe, c.probing = seq+1, true
		c.stats.TooOld++
		return 0, false
	}
	c.probing = false
	return ext, true
}

// Get copies the packet stored under seq into dst and returns its length.
// ok is false if the packet is not in the window (never stored, evicted,
// or older than the window) or if dst is shorter than the packet.
func (c *PacketCache) Get(seq uint16, dst []byte) (n int, ok bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.highest == 0 {
		return 0, false
	}
	ext := extendSeq(c.highest, seq)
	if ext > c.highest || c.highest-ext > c.mask {
		return 0, false
	}
	s := c.slots[ext&c.mask]
	if s.ext != ext || int(s.n) > len(dst) {
		return 0, false
	}
	off := int(ext&c.mask) * c.maxSize
	return copy(dst, c.buf[off:off+int(s.n)]), true
}

// Reset forgets every stored packet and the sequence position; counters are
// kept.
func (c *PacketCache) Reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	clear(c.slots)
	c.highest = 0
	c.probing = false
}

// Stats returns the cache's counters.
func (c *PacketCache) Stats() CacheStats {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.stats
}
