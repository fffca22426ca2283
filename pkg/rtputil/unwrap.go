package rtputil

// seqBase and tsBase are where the first value of a stream is placed, so
// that packets slightly older than the first one do not underflow.
const (
	seqBase = 1 << 16
	tsBase  = 1 << 32
)

// SeqUnwrapper extends 16-bit RTP sequence numbers to 64 bits, following
// wrap-around (65535 -> 0) forwards and reordering backwards. A value is
// interpreted relative to the highest value seen so far: up to 32767 ahead
// is newer, up to 32768 behind is older (a reordered or late packet, which
// does not move the reference). The zero value is ready to use. A
// SeqUnwrapper is not safe for concurrent use.
type SeqUnwrapper struct {
	highest uint64 // highest extended value; 0 before the first Unwrap
}

// Unwrap returns the extended sequence number of seq. The first value maps
// to 1<<16 + seq, so a result is never below 1<<15.
func (u *SeqUnwrapper) Unwrap(seq uint16) uint64 {
	if u.highest == 0 {
		u.highest = seqBase + uint64(seq)
		return u.highest
	}
	ext := extendSeq(u.highest, seq)
	u.highest = max(u.highest, ext)
	return ext
}

// Highest returns the highest extended sequence number returned so far, and
// false if Unwrap has not been called.
func (u *SeqUnwrapper) Highest() (uint64, bool) { return u.highest, u.highest != 0 }

// extendSeq returns the extended sequence number nearest to ref whose low 16
// bits are seq; exactly half the space away counts as older. ref must be at
// least 1<<15.
func extendSeq(ref uint64, seq uint16) uint64 {
	return uint64(int64(ref) + int64(int16(seq-uint16(ref))))
}

// TSUnwrapper extends 32-bit RTP timestamps to 64 bits the way SeqUnwrapper
// extends sequence numbers: relative to the highest value seen, up to 2^31-1
// ahead is newer, up to 2^31 behind is older. The zero value is ready to use.
// A TSUnwrapper is not safe for concurrent use.
type TSUnwrapper struct {
	highest uint64 // highest extended value; 0 before the first Unwrap
}

// Unwrap returns the extended timestamp of ts. The first value maps to
// 1<<32 + ts.
func (u *TSUnwrapper) Unwrap(ts uint32) uint64 {
	if u.highest == 0 {
		u.highest = tsBase + uint64(ts)
		return u.highest
	}
	ext := uint64(int64(u.highest) + int64(int32(ts-uint32(u.highest))))
	u.highest = max(u.highest, ext)
	return ext
}

// Highest returns the highest extended timestamp returned so far, and false
// if Unwrap has not been called.
func (u *TSUnwrapper) Highest() (uint64, bool) { return u.highest, u.highest != 0 }
