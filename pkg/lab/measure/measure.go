// Package measure turns the RTP packets a subscriber receives into call-quality figures: one-way
// latency from the abs-capture-time header extension against the receiver's clock (publisher
// and subscriber share one clock), RFC 3550 interarrival jitter, loss after retransmission,
// frames, freezes, time to first frame and bitrate. It is pure: no I/O, no goroutines.
package measure

import (
	"encoding/binary"
	"errors"
	"math"
	"sort"
	"time"
)

// FreezeGap is the gap between completed frames over which a freeze is counted.
const FreezeGap = 500 * time.Millisecond

// maxSamples bounds the latency samples and frames a Recorder keeps (about 3 hours of a
// 1.5 Mb/s stream); later packets still count toward loss, jitter and bitrate.
const maxSamples = 2_000_000

// ErrBadAbsCaptureTime is returned for an abs-capture-time payload of the wrong size.
var ErrBadAbsCaptureTime = errors.New("measure: abs-capture-time payload must be 8 or 16 bytes")

// ntpEpochOffset is the number of seconds between 1900-01-01 (NTP) and 1970-01-01 (Unix).
const ntpEpochOffset = 2208988800

// AbsCaptureTime encodes t as the 8-byte abs-capture-time payload (NTP 32.32 fixed point).
func AbsCaptureTime(t time.Time) []byte {
	b := make([]byte, 8)
	binary.BigEndian.PutUint64(b, toNTP(t))
	return b
}

func toNTP(t time.Time) uint64 {
	ns := t.UnixNano()
	sec := uint64(ns/1e9) + ntpEpochOffset
	frac := (uint64(ns%1e9) << 32) / 1e9
	return sec<<32 | frac
}

// ParseAbsCaptureTime decodes an abs-capture-time payload (the optional clock offset is
// ignored: in the lab both ends share one clock).
func ParseAbsCaptureTime(b []byte) (time.Time, error) {
	if len(b) != 8 && len(b) != 16 {
		return time.Time{}, ErrBadAbsCaptureTime
	}
	v := binary.BigEndian.Uint64(b)
	sec := int64(v>>32) - ntpEpochOffset
	ns := int64(((v & 0xffffffff) * 1e9) >> 32)
	return time.Unix(sec, ns), nil
}

// Packet is one received video RTP packet.
type Packet struct {
	Seq       uint16
	Timestamp uint32
	Marker    bool
	// FrameStart marks the first packet of a frame (VP8: S bit set, partition 0).
	FrameStart bool
	// Keyframe is meaningful on a FrameStart packet.
	Keyframe bool
	Size     int       // bytes of the whole packet
	Arrival  time.Time // the receiver's clock
	Capture  time.Time // from abs-capture-time; zero when absent
}

// Percentiles of a set of samples, in milliseconds.
type Percentiles struct {
	P50  float64 `json:"p50"`
	P95  float64 `json:"p95"`
	P99  float64 `json:"p99"`
	Mean float64 `json:"mean"`
}

// Result is what a Recorder measured.
type Result struct {
	BitrateMbps float64     `json:"bitrate_mbps"`
	Latency     Percentiles `json:"latency_ms"`
	JitterMs    float64     `json:"jitter_ms"`
	LossPct     float64     `json:"loss_pct"`
	Freezes     int         `json:"freezes"`
	FreezeMs    float64     `json:"freeze_ms"`
	// FirstFrameMs runs from the Recorder's start (the subscribe request) to the first
	// complete keyframe; -1 when none completed.
	FirstFrameMs float64 `json:"first_frame_ms"`
	Frames       int     `json:"frames"`
	Packets      int     `json:"packets"`
	Repaired     int     `json:"repaired"` // packets that arrived after a later one (retransmitted)
	NoCapture    int     `json:"no_capture_time"`
	// AudioPackets counts the audio packets that arrived alongside (the recorder measures
	// video; its owner fills this in).
	AudioPackets int `json:"audio_packets"`
}

type frame struct {
	start, end int64 // extended sequence numbers; -1 unknown
	have       map[int64]bool
	keyframe   bool
	done       bool
}

// Recorder accumulates packets of one video stream. It is not safe for concurrent use.
type Recorder struct {
	start     time.Time
	clockRate float64

	seen            map[int64]bool
	first, highest  int64
	cycles          int64
	lastSeq         uint16
	started         bool
	jitter          float64 // timestamp units
	lastTransit     float64
	haveTransit     bool
	bytes           int64
	firstAt, lastAt time.Time
	latency         []float64
	frames          map[uint32]*frame
	completed       []time.Time
	firstKey        time.Time
	res             Result
}

// NewRecorder returns a Recorder for a stream with the given RTP clock rate; start is when the
// subscriber asked for the stream.
func NewRecorder(clockRate uint32, start time.Time) *Recorder {
	return &Recorder{start: start, clockRate: float64(clockRate), seen: map[int64]bool{}, frames: map[uint32]*frame{}}
}

// extend turns a 16-bit sequence number into an extended one.
func (r *Recorder) extend(seq uint16) int64 {
	if !r.started {
		r.started = true
		r.lastSeq = seq
		return int64(seq)
	}
	diff := int16(seq - r.lastSeq)
	ext := r.cycles<<16 + int64(r.lastSeq) + int64(diff)
	if diff > 0 {
		if seq < r.lastSeq {
			r.cycles++
		}
		r.lastSeq = seq
	}
	return ext
}

// Add records one packet.
func (r *Recorder) Add(p Packet) {
	ext := r.extend(p.Seq)
	if r.seen[ext] {
		return // duplicate
	}
	if len(r.seen) == 0 {
		r.first, r.highest = ext, ext
		r.firstAt = p.Arrival
	}
	r.seen[ext] = true
	r.res.Packets++
	r.bytes += int64(p.Size)
	r.lastAt = p.Arrival
	if ext < r.first {
		r.first = ext
	}
	inOrder := ext >= r.highest
	if inOrder {
		r.highest = ext
		// RFC 3550 A.8: only packets in sequence order (a retransmission's transit is its repair time).
		transit := p.Arrival.Sub(r.start).Seconds()*r.clockRate - float64(p.Timestamp)
		if r.haveTransit {
			d := math.Abs(transit - r.lastTransit)
			if d > 1<<31 { // timestamp wrap between two packets
				d = math.Abs(d - 1<<32)
			}
			r.jitter += (d - r.jitter) / 16
		}
		r.lastTransit, r.haveTransit = transit, true
	} else {
		r.res.Repaired++
	}
	if p.Capture.IsZero() {
		r.res.NoCapture++
	} else if len(r.latency) < maxSamples {
		r.latency = append(r.latency, float64(p.Arrival.Sub(p.Capture).Microseconds())/1000)
	}
	r.addToFrame(ext, p)
}

func (r *Recorder) addToFrame(ext int64, p Packet) {
	f := r.frames[p.Timestamp]
	if f == nil {
		if len(r.frames) >= maxSamples {
			return
		}
		f = &frame{start: -1, end: -1, have: map[int64]bool{}}
		r.frames[p.Timestamp] = f
	}
	if f.done {
		return
	}
	f.have[ext] = true
	if p.FrameStart {
		f.start = ext
		f.keyframe = p.Keyframe
	}
	if p.Marker {
		f.end = ext
	}
	if f.start < 0 || f.end < 0 || f.end < f.start || int64(len(f.have)) < f.end-f.start+1 {
		return
	}
	for s := f.start; s <= f.end; s++ {
		if !f.have[s] {
			return
		}
	}
	f.done = true
	f.have = nil
	r.res.Frames++
	r.completed = append(r.completed, p.Arrival)
	if f.keyframe && r.firstKey.IsZero() {
		r.firstKey = p.Arrival
	}
}

// Result computes the figures so far.
func (r *Recorder) Result() Result {
	res := r.res
	res.Latency = Percentile(r.latency)
	res.JitterMs = 0
	if r.clockRate > 0 {
		res.JitterMs = r.jitter / r.clockRate * 1000
	}
	if len(r.seen) > 0 {
		expected := r.highest - r.first + 1
		res.LossPct = float64(expected-int64(len(r.seen))) / float64(expected) * 100
	}
	if d := r.lastAt.Sub(r.firstAt).Seconds(); d > 0 {
		res.BitrateMbps = float64(r.bytes) * 8 / d / 1e6
	}
	res.FirstFrameMs = -1
	if !r.firstKey.IsZero() {
		res.FirstFrameMs = float64(r.firstKey.Sub(r.start).Microseconds()) / 1000
	}
	var total time.Duration
	res.Freezes, total = Freezes(r.completed, FreezeGap)
	res.FreezeMs = float64(total.Microseconds()) / 1000
	return res
}

// Percentile returns the nearest-rank p50, p95, p99 and the mean of samples (all zero when
// there are none). samples is not modified.
func Percentile(samples []float64) Percentiles {
	if len(samples) == 0 {
		return Percentiles{}
	}
	s := append([]float64(nil), samples...)
	sort.Float64s(s)
	rank := func(p float64) float64 {
		i := int(math.Ceil(p/100*float64(len(s)))) - 1
		return s[max(0, min(i, len(s)-1))]
	}
	sum := 0.0
	for _, v := range s {
		sum += v
	}
	return Percentiles{P50: rank(50), P95: rank(95), P99: rank(99), Mean: sum / float64(len(s))}
}

// Freezes counts the gaps longer than gap between consecutive completion times (sorted
// first) and returns their count and total length.
func Freezes(times []time.Time, gap time.Duration) (int, time.Duration) {
	t := append([]time.Time(nil), times...)
	sort.Slice(t, func(i, j int) bool { return t[i].Before(t[j]) })
	n, total := 0, time.Duration(0)
	for i := 1; i < len(t); i++ {
		if d := t[i].Sub(t[i-1]); d > gap {
			n++
			total += d
		}
	}
	return n, total
}
