package bwe

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/pion/interceptor/pkg/twcc"
	"github.com/pion/rtcp"
)

// parsedBoth parses one marshalled feedback packet with FeedbackRaw and with pion's parser, and
// reports both readings (statuses, deltas). ok is false if pion refuses it.
func parsedBoth(t testing.TB, raw []byte) (rawSt []uint8, rawD []int64, pionSt []uint8, pionD []int64, ok bool) {
	a := New(Config{})
	now := time.Unix(1_700_000_000, 0)
	a.FeedbackRaw(raw, now)
	pkts, err := rtcp.Unmarshal(raw)
	if err != nil || len(pkts) != 1 {
		return nil, nil, nil, nil, false
	}
	fb, isFb := pkts[0].(*rtcp.TransportLayerCC)
	if !isFb {
		return nil, nil, nil, nil, false
	}
	pionSt, pionD = pionReading(fb)
	return a.statuses, a.deltas, pionSt, pionD, true
}

// pionReading is what pion's parser read: the status symbols in sequence order (as many as the
// status count says, as far as the chunks go) and the receive deltas in µs.
func pionReading(fb *rtcp.TransportLayerCC) (statuses []uint8, deltas []int64) {
	remaining := int(fb.PacketStatusCount)
	for _, chunk := range fb.PacketChunks {
		switch c := chunk.(type) {
		case *rtcp.RunLengthChunk:
			for i := uint16(0); i < c.RunLength && remaining > 0; i++ {
				statuses = append(statuses, uint8(c.PacketStatusSymbol))
				remaining--
			}
		case *rtcp.StatusVectorChunk:
			for _, sym := range c.SymbolList {
				if remaining <= 0 {
					break
				}
				statuses = append(statuses, uint8(sym))
				remaining--
			}
		}
	}
	for _, d := range fb.RecvDeltas {
		deltas = append(deltas, d.Delta)
	}
	return statuses, deltas
}

// FeedbackRaw reads what pion's parser reads, on feedback built by pion's own recorder (run
// length and status vector chunks, small and large deltas, losses).
func TestFeedbackRawReadsWhatPionReads(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for round := range 200 {
		r := twcc.NewRecorder(1)
		seq := uint16(rng.Uint32())
		at := int64(1_700_000_000_000_000) + rng.Int64N(1e12) // µs
		for range 1 + rng.IntN(300) {
			seq += uint16(1 + rng.IntN(3)*rng.IntN(2)) // sometimes gaps: lost packets
			switch rng.IntN(10) {
			case 0:
				at += int64(rng.IntN(200_000)) // a large delta
			default:
				at += int64(rng.IntN(2_000))
			}
			r.Record(5, seq, at)
		}
		for _, p := range r.BuildFeedbackPacket() {
			raw, err := p.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			rs, rd, ps, pd, ok := parsedBoth(t, raw)
			if !ok {
				t.Fatalf("round %d: pion refuses its own feedback", round)
			}
			if len(ps) == 0 || !slices.Equal(rs, ps) || !slices.Equal(rd, pd) {
				t.Fatalf("round %d: raw read %d statuses %d deltas, pion %d and %d", round, len(rs), len(rd), len(ps), len(pd))
			}
		}
	}
}

func TestFeedbackRawDoesNotAllocate(t *testing.T) {
	r := twcc.NewRecorder(1)
	for i := range 100 {
		r.Record(5, uint16(i*2), int64(1_700_000_000_000_000+i*1000))
	}
	raw, err := r.BuildFeedbackPacket()[0].Marshal()
	if err != nil {
		t.Fatal(err)
	}
	s := New(Config{})
	now := time.Now()
	s.FeedbackRaw(raw, now) // sizes the scratch space
	n := 0
	if a := testing.AllocsPerRun(100, func() {
		raw[19]++ // a new feedback count, so it is not skipped as a repeat
		n++
		s.FeedbackRaw(raw, now.Add(time.Duration(n)*time.Millisecond))
	}); a != 0 {
		t.Fatalf("FeedbackRaw allocates %.1f times per feedback", a)
	}
}

// Whatever the bytes, FeedbackRaw does not panic, and where pion's parser accepts them as one
// feedback packet, both read the same.
func FuzzFeedbackRaw(f *testing.F) {
	r := twcc.NewRecorder(1)
	for i := range 40 {
		r.Record(5, uint16(i*3/2), int64(1_700_000_000_000_000+i*7000))
	}
	for _, p := range r.BuildFeedbackPacket() {
		raw, _ := p.Marshal()
		f.Add(raw)
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		rs, rd, ps, pd, ok := parsedBoth(t, raw)
		if !ok {
			return
		}
		// pion reads status vectors of two-bit symbols and run lengths the same way; it may
		// accept packets whose deltas run short (then it stops at what it has): compare only
		// complete readings.
		if len(rd) == len(pd) && len(rs) == len(ps) && (!slices.Equal(rs, ps) || !slices.Equal(rd, pd)) {
			t.Fatalf("raw read %v %v, pion %v %v", rs, rd, ps, pd)
		}
	})
}
