package rtputil

import (
	"bytes"
	"encoding/binary"
	"sync"
	"testing"
)

// pkt returns a packet whose content identifies seq and lap.
func pkt(seq uint16, size int) []byte {
	p := fill(size)
	if size >= 2 {
		binary.BigEndian.PutUint16(p, seq)
	}
	return p
}

func TestNewPacketCacheSizes(t *testing.T) {
	tests := []struct {
		slots, maxSize         int
		wantSlots, wantMaxSize int
	}{
		{1, 1500, 1, 1500},
		{100, 1500, 128, 1500},
		{128, 1200, 128, 1200},
		{0, 0, 1, 1},
		{-5, -1, 1, 1},
		{1 << 20, 1 << 20, MaxCacheSlots, MaxCachePacketSize},
	}
	for _, tc := range tests {
		c := NewPacketCache(tc.slots, tc.maxSize)
		if c.Slots() != tc.wantSlots || c.MaxPacketSize() != tc.wantMaxSize {
			t.Errorf("NewPacketCache(%d, %d): slots %d max %d, want %d %d",
				tc.slots, tc.maxSize, c.Slots(), c.MaxPacketSize(), tc.wantSlots, tc.wantMaxSize)
		}
	}
}

// cacheStep is one Put (put=true) or Get of a test sequence.
type cacheStep struct {
	put  bool
	seq  uint16
	want bool // for Get: expected presence
}

func put(seqs ...uint16) []cacheStep {
	out := make([]cacheStep, len(seqs))
	for i, s := range seqs {
		out[i] = cacheStep{put: true, seq: s}
	}
	return out
}

func get(want bool, seqs ...uint16) []cacheStep {
	out := make([]cacheStep, len(seqs))
	for i, s := range seqs {
		out[i] = cacheStep{seq: s, want: want}
	}
	return out
}

func seqRange(from uint16, n int) []uint16 {
	out := make([]uint16, n)
	for i := range out {
		out[i] = from + uint16(i)
	}
	return out
}

func steps(parts ...[]cacheStep) []cacheStep {
	var out []cacheStep
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

func TestPacketCache(t *testing.T) {
	tests := []struct {
		name      string
		slots     int
		steps     []cacheStep
		wantStats CacheStats
	}{
		{
			name:  "empty cache",
			slots: 8,
			steps: get(false, 0, 1, 65535),
		},
		{
			name:      "stored packets come back",
			slots:     8,
			steps:     steps(put(10, 11, 12), get(true, 10, 11, 12), get(false, 9, 13, 18)),
			wantStats: CacheStats{Stored: 3},
		},
		{
			name:      "wrap-around 65535 -> 0",
			slots:     16,
			steps:     steps(put(seqRange(65530, 12)...), get(true, seqRange(65530, 12)...), get(false, 65529, 6)),
			wantStats: CacheStats{Stored: 12},
		},
		{
			name:      "eviction keeps the newest window",
			slots:     8,
			steps:     steps(put(seqRange(0, 20)...), get(false, seqRange(0, 12)...), get(true, seqRange(12, 8)...)),
			wantStats: CacheStats{Stored: 20},
		},
		{
			name:      "eviction across wrap",
			slots:     8,
			steps:     steps(put(seqRange(65530, 20)...), get(false, seqRange(65530, 12)...), get(true, seqRange(6, 8)...)),
			wantStats: CacheStats{Stored: 20},
		},
		{
			// Slot 9&7 == 1 still holds seq 1 from the previous lap: that is
			// not seq 9.
			name:      "lost packet does not alias the previous lap",
			slots:     8,
			steps:     steps(put(seqRange(1, 8)...), put(seqRange(10, 7)...), get(false, 9, 1), get(true, seqRange(10, 7)...)),
			wantStats: CacheStats{Stored: 15},
		},
		{
			name:      "jump forward beyond the window empties it",
			slots:     8,
			steps:     steps(put(seqRange(0, 8)...), put(1000), get(false, seqRange(0, 8)...), get(true, 1000), get(false, 992, 1001)),
			wantStats: CacheStats{Stored: 9},
		},
		{
			name:      "reordering within the window",
			slots:     8,
			steps:     steps(put(10, 13, 12, 11, 7), get(true, 7, 10, 11, 12, 13), get(false, 8, 9)),
			wantStats: CacheStats{Stored: 5},
		},
		{
			name:      "reordering across wrap",
			slots:     8,
			steps:     steps(put(65535, 1, 0, 65534), get(true, 65534, 65535, 0, 1)),
			wantStats: CacheStats{Stored: 4},
		},
		{
			name:      "too old is ignored and counted",
			slots:     8,
			steps:     steps(put(seqRange(100, 10)...), put(101), get(false, 101), put(50), get(false, 50), get(true, 102, 109)),
			wantStats: CacheStats{Stored: 10, TooOld: 2},
		},
		{
			name:      "one stray old packet does not resynchronize",
			slots:     8,
			steps:     steps(put(5000, 1000, 5001), get(true, 5000, 5001), get(false, 1000)),
			wantStats: CacheStats{Stored: 2, TooOld: 1},
		},
		{
			name:  "sender restart resynchronizes on the second packet",
			slots: 8,
			steps: steps(put(5000, 5001, 1000, 1001, 1002),
				get(false, 5000, 5001, 1000), get(true, 1001, 1002), get(false, 1003)),
			wantStats: CacheStats{Stored: 4, TooOld: 1, Resyncs: 1},
		},
		{
			name:      "one slot",
			slots:     1,
			steps:     steps(put(7), get(true, 7), put(8), get(false, 7), get(true, 8), put(7), get(false, 7)),
			wantStats: CacheStats{Stored: 2, TooOld: 1},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := NewPacketCache(tc.slots, 100)
			dst := make([]byte, 100)
			for i, s := range tc.steps {
				if s.put {
					c.Put(s.seq, pkt(s.seq, 20+int(s.seq%50)))
					continue
				}
				n, ok := c.Get(s.seq, dst)
				if ok != s.want {
					t.Fatalf("step %d: Get(%d) ok = %v, want %v", i, s.seq, ok, s.want)
				}
				if ok && !bytes.Equal(dst[:n], pkt(s.seq, 20+int(s.seq%50))) {
					t.Fatalf("step %d: Get(%d) returned the wrong packet % x", i, s.seq, dst[:min(n, 8)])
				}
			}
			if got := c.Stats(); got != tc.wantStats {
				t.Errorf("stats %+v, want %+v", got, tc.wantStats)
			}
		})
	}
}

func TestPacketCacheSizes(t *testing.T) {
	c := NewPacketCache(4, 10)
	c.Put(1, pkt(1, 10))
	c.Put(2, pkt(2, 11))
	c.Put(3, nil)
	if st := c.Stats(); st.Oversized != 1 || st.Stored != 2 {
		t.Errorf("stats %+v, want 1 oversized and 2 stored", st)
	}
	if _, ok := c.Get(2, make([]byte, 100)); ok {
		t.Error("oversized packet was stored")
	}
	if n, ok := c.Get(1, make([]byte, 9)); ok || n != 0 {
		t.Errorf("Get into a short dst = %d, %v; want 0, false", n, ok)
	}
	if n, ok := c.Get(1, make([]byte, 10)); !ok || n != 10 {
		t.Errorf("Get into an exact dst = %d, %v; want 10, true", n, ok)
	}
	if n, ok := c.Get(3, nil); !ok || n != 0 {
		t.Errorf("Get of an empty packet = %d, %v; want 0, true", n, ok)
	}
}

func TestPacketCacheOverwriteShorter(t *testing.T) {
	c := NewPacketCache(4, 100)
	c.Put(1, pkt(1, 50))
	c.Put(1, pkt(1, 20))
	dst := make([]byte, 100)
	if n, ok := c.Get(1, dst); !ok || n != 20 || !bytes.Equal(dst[:n], pkt(1, 20)) {
		t.Errorf("Get after overwrite = %d, %v", n, ok)
	}
}

func TestPacketCacheCopies(t *testing.T) {
	c := NewPacketCache(4, 100)
	p := pkt(1, 30)
	c.Put(1, p)
	p[5] ^= 0xff
	dst := make([]byte, 100)
	n, _ := c.Get(1, dst)
	if !bytes.Equal(dst[:n], pkt(1, 30)) {
		t.Error("cache kept a reference to the caller's buffer")
	}
}

func TestPacketCacheReset(t *testing.T) {
	c := NewPacketCache(8, 100)
	for s := range uint16(8) {
		c.Put(s, pkt(s, 30))
	}
	c.Reset()
	dst := make([]byte, 100)
	for s := range uint16(8) {
		if _, ok := c.Get(s, dst); ok {
			t.Errorf("Get(%d) after Reset found a packet", s)
		}
	}
	// A restarted stream at a different position works at once, and what
	// was stored before Reset cannot alias.
	c.Put(3, pkt(3, 30))
	if _, ok := c.Get(3, dst); !ok {
		t.Error("Get(3) after Reset and Put failed")
	}
	if _, ok := c.Get(2, dst); ok {
		t.Error("Get(2) after Reset found a pre-Reset packet")
	}
	if st := c.Stats(); st.Stored != 9 {
		t.Errorf("Reset cleared the counters: %+v", st)
	}
}

// TestPacketCacheConcurrent runs one writer and several readers; every
// packet a reader gets must be the one it asked for, whole.
func TestPacketCacheConcurrent(t *testing.T) {
	const (
		slots   = 64
		packets = 20000
		readers = 4
	)
	c := NewPacketCache(slots, 200)
	var wg sync.WaitGroup
	done := make(chan struct{})
	for r := range readers {
		wg.Go(func() {
			dst := make([]byte, 200)
			var found int
			for i := 0; ; i++ {
				select {
				case <-done:
					if found == 0 {
						t.Errorf("reader %d found nothing", r)
					}
					return
				default:
				}
				seq := uint16(i*7 + r)
				n, ok := c.Get(seq, dst)
				if !ok {
					continue
				}
				found++
				if !bytes.Equal(dst[:n], pkt(seq, 40+int(seq%100))) {
					t.Errorf("Get(%d) returned a different or torn packet", seq)
					return
				}
			}
		})
	}
	for i := range packets {
		seq := uint16(60000 + i) // wraps
		c.Put(seq, pkt(seq, 40+int(seq%100)))
	}
	close(done)
	wg.Wait()
}
