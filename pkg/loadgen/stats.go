package loadgen

import (
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// Percentile returns the p-th percentile (0..100) of ds by the nearest-rank method; 0 for
// none. ds need not be sorted; it is not modified.
func Percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	if p <= 0 {
		return s[0]
	}
	if p >= 100 {
		return s[len(s)-1]
	}
	rank := int(p/100*float64(len(s)) + 0.999999999) // ceil
	if rank < 1 {
		rank = 1
	}
	return s[rank-1]
}

// seqWindow is how far back (in packets) a late or repaired packet is still counted.
const seqWindow = 1024

// SeqTracker counts the distinct RTP packets of one stream and how many were expected, from
// the sequence numbers (wrap-around handled). A packet that arrives again (a retransmission of
// one already received) is not counted twice; one that arrives late, e.g. repaired by NACK,
// fills its gap while it is within the last 1024 sequence numbers. It is used by one reader
// goroutine; Expected and Received may be read concurrently.
type SeqTracker struct {
	started  bool
	first    uint64 // extended sequence number of the first packet
	highest  uint64
	seen     [seqWindow / 64]uint64 // bitmap of the last seqWindow extended numbers
	expected atomic.Uint64
	received atomic.Uint64
}

// Add records one packet's sequence number and reports whether it was new.
func (s *SeqTracker) Add(seq uint16) bool {
	if !s.started {
		s.started = true
		s.first, s.highest = uint64(seq)+1<<16, uint64(seq)+1<<16 // room to go back before the first
		s.mark(s.highest)
		s.expected.Store(1)
		s.received.Store(1)
		return true
	}
	ext := extend(s.highest, seq)
	switch {
	case ext > s.highest:
		from := s.highest + 1
		if ext-from >= seqWindow {
			from = ext - seqWindow + 1
		}
		for n := from; n < ext; n++ {
			s.clear(n)
		}
		s.highest = ext
	case ext+seqWindow <= s.highest || ext < s.first:
		return false // too old to tell, or from before the start
	case s.isSet(ext):
		return false // a duplicate
	}
	s.mark(ext)
	s.expected.Store(s.highest - s.first + 1)
	s.received.Add(1)
	return true
}

// Expected is the number of packets from the first to the highest sequence number seen.
func (s *SeqTracker) Expected() uint64 { return s.expected.Load() }

// Received is the number of distinct packets received.
func (s *SeqTracker) Received() uint64 { return s.received.Load() }

func (s *SeqTracker) mark(n uint64)       { s.seen[(n/64)%(seqWindow/64)] |= 1 << (n % 64) }
func (s *SeqTracker) clear(n uint64)      { s.seen[(n/64)%(seqWindow/64)] &^= 1 << (n % 64) }
func (s *SeqTracker) isSet(n uint64) bool { return s.seen[(n/64)%(seqWindow/64)]&(1<<(n%64)) != 0 }

// extend returns the extended sequence number of seq closest to ref.
func extend(ref uint64, seq uint16) uint64 {
	cand := ref&^0xffff | uint64(seq)
	switch {
	case cand+0x8000 < ref:
		cand += 0x10000
	case cand > ref+0x8000 && cand >= 0x10000:
		cand -= 0x10000
	}
	return cand
}

// LossRatio is 1 - received/expected, 0 when nothing was expected, never negative.
func LossRatio(expected, received uint64) float64 {
	if expected == 0 || received >= expected {
		return 0
	}
	return float64(expected-received) / float64(expected)
}

// CPUSample is a process's CPU time (user + system) at an instant.
type CPUSample struct {
	At  time.Time
	CPU time.Duration
}

// clockTicks is USER_HZ, the unit of /proc/PID/stat's utime and stime: 100 on every Linux
// architecture Go supports.
const clockTicks = 100

// ReadProcCPU reads utime+stime of process pid from /proc.
func ReadProcCPU(pid int) (CPUSample, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return CPUSample{}, fmt.Errorf("%w: %w", ErrProcStat, err)
	}
	cpu, err := ParseProcStat(string(b))
	if err != nil {
		return CPUSample{}, err
	}
	return CPUSample{At: time.Now(), CPU: cpu}, nil
}

// ParseProcStat returns utime+stime from the text of a /proc/PID/stat file.
func ParseProcStat(stat string) (time.Duration, error) {
	// The command name (field 2) is in parentheses and may hold spaces and ')'.
	i := strings.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, fmt.Errorf("%w: no ')' in %q", ErrProcStat, stat)
	}
	f := strings.Fields(stat[i+1:])
	// f[0] is field 3 (state); utime and stime are fields 14 and 15.
	if len(f) < 13 {
		return 0, fmt.Errorf("%w: %d fields after the name", ErrProcStat, len(f))
	}
	var ticks uint64
	for _, s := range f[11:13] {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("%w: %w", ErrProcStat, err)
		}
		ticks += v
	}
	return time.Duration(ticks) * time.Second / clockTicks, nil
}

// CPUPerMillion returns the CPU-seconds the process spent between a and b per million
// packets; 0 when no packet was counted.
func CPUPerMillion(a, b CPUSample, packets uint64) float64 {
	if packets == 0 || b.CPU < a.CPU {
		return 0
	}
	return (b.CPU - a.CPU).Seconds() * 1e6 / float64(packets)
}

// Utilization is the share of one core the process used between a and b.
func Utilization(a, b CPUSample) float64 {
	wall := b.At.Sub(a.At)
	if wall <= 0 || b.CPU < a.CPU {
		return 0
	}
	return float64(b.CPU-a.CPU) / float64(wall)
}
