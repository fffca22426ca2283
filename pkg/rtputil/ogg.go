package rtputil

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// ErrBadOgg is returned for a stream that is not Ogg, or not Opus in Ogg.
var ErrBadOgg = errors.New("rtputil: bad Ogg stream")

// MaxOpusPacket bounds one Opus packet read from Ogg: RFC 6716 §3.4 allows 1275 bytes per
// frame and 48 frames, so a larger packet is a broken file, not audio.
const MaxOpusPacket = 61440

// OggOpusReader reads the Opus packets of the first logical stream of an Ogg file (RFC 7845),
// one per RTP packet, undoing the page framing: a page holds many packets (ffmpeg writes about
// a second per page by default) and a packet may continue on the next page. The ID and
// comment headers are skipped.
type OggOpusReader struct {
	r       *bufio.Reader
	serial  uint32
	started bool
	headers int      // OpusHead and OpusTags seen
	lacing  []byte   // segment table of the current page
	seg     int      // next segment of the page
	pending []byte   // a packet continued across pages
	hdr     [27]byte // page header scratch
}

// NewOggOpusReader returns a reader of r's Opus packets.
func NewOggOpusReader(r io.Reader) *OggOpusReader {
	return &OggOpusReader{r: bufio.NewReaderSize(r, 64<<10)}
}

// NextPacket returns the next Opus audio packet and its duration in 48 kHz samples. At the
// end of the stream it returns io.EOF. The packet is a fresh slice.
func (o *OggOpusReader) NextPacket() ([]byte, int, error) {
	for {
		p, err := o.nextRaw()
		if err != nil {
			return nil, 0, err
		}
		if o.headers < 2 {
			o.headers++
			want := "OpusHead"
			if o.headers == 2 {
				want = "OpusTags"
			}
			if !bytes.HasPrefix(p, []byte(want)) {
				return nil, 0, fmt.Errorf("%w: header %d is not %s", ErrBadOgg, o.headers, want)
			}
			continue
		}
		n, err := OpusSamples(p)
		if err != nil {
			return nil, 0, err
		}
		return p, n, nil
	}
}

// nextRaw returns the next packet of the stream, whatever it holds.
func (o *OggOpusReader) nextRaw() ([]byte, error) {
	for {
		for o.seg < len(o.lacing) {
			size := int(o.lacing[o.seg])
			o.seg++
			if len(o.pending)+size > MaxOpusPacket {
				return nil, fmt.Errorf("%w: a packet of over %d bytes", ErrBadOgg, MaxOpusPacket)
			}
			start := len(o.pending)
			o.pending = append(o.pending, make([]byte, size)...)
			if _, err := io.ReadFull(o.r, o.pending[start:]); err != nil {
				return nil, fmt.Errorf("%w: page ends early: %w", ErrBadOgg, err)
			}
			if size < 255 { // a lacing value under 255 ends the packet
				p := o.pending
				o.pending = nil
				return p, nil
			}
		}
		if err := o.nextPage(); err != nil {
			return nil, err
		}
	}
}

// nextPage reads the next page header of the stream and its segment table, skipping the
// pages of other logical streams.
func (o *OggOpusReader) nextPage() error {
	for {
		if _, err := io.ReadFull(o.r, o.hdr[:]); err != nil {
			if errors.Is(err, io.EOF) {
				return io.EOF
			}
			return fmt.Errorf("%w: page header: %w", ErrBadOgg, err)
		}
		if string(o.hdr[:4]) != "OggS" || o.hdr[4] != 0 {
			return fmt.Errorf("%w: no OggS page here", ErrBadOgg)
		}
		serial := binary.LittleEndian.Uint32(o.hdr[14:18])
		if !o.started {
			o.serial, o.started = serial, true
		}
		n := int(o.hdr[26])
		o.lacing = append(o.lacing[:0], make([]byte, n)...)
		if _, err := io.ReadFull(o.r, o.lacing); err != nil {
			return fmt.Errorf("%w: segment table: %w", ErrBadOgg, err)
		}
		o.seg = 0
		if serial == o.serial {
			if o.hdr[5]&0x01 == 0 { // not a continuation: nothing may be pending
				o.pending = nil
			}
			return nil
		}
		total := 0
		for _, l := range o.lacing {
			total += int(l)
		}
		if _, err := o.r.Discard(total); err != nil {
			return fmt.Errorf("%w: page ends early: %w", ErrBadOgg, err)
		}
		o.lacing = o.lacing[:0]
	}
}

// OpusSamples returns the duration of an Opus packet in 48 kHz samples, from its TOC byte and
// frame count (RFC 6716 §3.1–3.2).
func OpusSamples(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, fmt.Errorf("%w: empty Opus packet", ErrBadOgg)
	}
	config := p[0] >> 3
	var tenths int // frame duration in tenths of a millisecond
	switch {
	case config < 12: // SILK: 10, 20, 40, 60 ms
		tenths = [4]int{100, 200, 400, 600}[config%4]
	case config < 16: // hybrid: 10, 20 ms
		tenths = [2]int{100, 200}[config%2]
	default: // CELT: 2.5, 5, 10, 20 ms
		tenths = [4]int{25, 50, 100, 200}[config%4]
	}
	frames := 1
	switch p[0] & 3 {
	case 1, 2:
		frames = 2
	case 3:
		if len(p) < 2 {
			return 0, fmt.Errorf("%w: Opus code 3 packet without a frame count", ErrBadOgg)
		}
		frames = int(p[1] & 0x3f)
	}
	samples := tenths * 48 * frames / 10
	if samples == 0 || samples > 5760 { // 120 ms is Opus's longest packet
		return 0, fmt.Errorf("%w: Opus packet of %d samples", ErrBadOgg, samples)
	}
	return samples, nil
}
