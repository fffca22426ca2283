package loadgen

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media/h264reader"
	"github.com/pion/webrtc/v4/pkg/media/ivfreader"
)

// Source describes the media every publisher sends.
type Source struct {
	// Kind is "pattern", "ivf" or "h264".
	Kind string
	// Path is the file for ivf and h264.
	Path string
	// FPS is the frame rate of an H.264 file (Annex B carries none); default 30.
	FPS int
	// Bitrate of the pattern in bits/s; default 1.5 Mb/s.
	Bitrate int
}

// maxFrame bounds one frame read from a file.
const maxFrame = 4 << 20

// frameReader yields frames, looping its input.
type frameReader interface {
	next() ([]byte, time.Duration, error)
	close()
}

func (s Source) check() error {
	switch s.Kind {
	case "pattern":
		return nil
	case "ivf", "h264":
		if s.Path == "" {
			return fmt.Errorf("%w: a %s source needs a file", ErrConfig, s.Kind)
		}
		r, err := s.open()
		if err != nil {
			return fmt.Errorf("%w: %w", ErrConfig, err)
		}
		defer r.close()
		if _, _, err := r.next(); err != nil {
			return fmt.Errorf("%w: %s: %w", ErrConfig, s.Path, err)
		}
		return nil
	default:
		return fmt.Errorf("%w: unknown source %q", ErrConfig, s.Kind)
	}
}

func (s Source) mime() string {
	if s.Kind == "h264" {
		return webrtc.MimeTypeH264
	}
	return webrtc.MimeTypeVP8
}

func (s Source) open() (frameReader, error) {
	fps := s.FPS
	if fps <= 0 {
		fps = 30
	}
	switch s.Kind {
	case "ivf":
		return openIVF(s.Path)
	case "h264":
		return openH264(s.Path, time.Second/time.Duration(fps))
	default:
		rate := s.Bitrate
		if rate <= 0 {
			rate = 1_500_000
		}
		return newPattern(rate, 30), nil
	}
}

// pattern makes VP8-shaped frames of a fixed size: a key frame every 2 s, others
// inter frames. Receivers only count packets, so the content is filler.
type pattern struct {
	frame []byte
	n     int
	fps   int
	key   bool // the next frame is a key frame
}

// keyframer is a source that can make its next frame a key frame.
type keyframer interface{ forceKeyframe() }

func (p *pattern) forceKeyframe() { p.key = true }

func newPattern(bitrate, fps int) *pattern {
	size := bitrate / 8 / fps
	if size < 16 {
		size = 16
	}
	f := bytes.Repeat([]byte{0x5a}, size)
	return &pattern{frame: f, fps: fps}
}

func (p *pattern) next() ([]byte, time.Duration, error) {
	f := append([]byte(nil), p.frame...)
	size := len(f) - 3
	if p.key || p.n%(2*p.fps) == 0 {
		p.key = false
		// Key frame: frame tag (key bit 0, version 0, shown), start code, 640x360.
		f[0], f[1], f[2] = byte(size<<5)|0x10, byte(size>>3), byte(size>>11)
		copy(f[3:], []byte{0x9d, 0x01, 0x2a, 0x80, 0x02, 0x68, 0x01})
	} else {
		f[0], f[1], f[2] = byte(size<<5)|0x11, byte(size>>3), byte(size>>11)
	}
	p.n++
	return f, time.Second / time.Duration(p.fps), nil
}

func (p *pattern) close() {}

// ivfLoop reads an IVF file's frames, starting again at its end.
type ivfLoop struct {
	path string
	f    *os.File
	r    *ivfreader.IVFReader
	dur  time.Duration
}

func openIVF(path string) (*ivfLoop, error) {
	l := &ivfLoop{path: path}
	if err := l.rewind(); err != nil {
		return nil, err
	}
	return l, nil
}

func (l *ivfLoop) rewind() error {
	l.close()
	f, err := os.Open(l.path)
	if err != nil {
		return err
	}
	r, h, err := ivfreader.NewWith(f)
	if err != nil {
		_ = f.Close()
		return fmt.Errorf("%s: %w", l.path, err)
	}
	if h.TimebaseDenominator == 0 || h.TimebaseNumerator == 0 {
		_ = f.Close()
		return fmt.Errorf("%s: IVF header has no time base", l.path)
	}
	l.f, l.r = f, r
	l.dur = time.Duration(float64(time.Second) * float64(h.TimebaseNumerator) / float64(h.TimebaseDenominator))
	return nil
}

func (l *ivfLoop) next() ([]byte, time.Duration, error) {
	for range 2 {
		frame, fh, err := l.r.ParseNextFrame()
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			if err := l.rewind(); err != nil {
				return nil, 0, err
			}
			continue
		}
		if err != nil {
			return nil, 0, err
		}
		if fh.FrameSize > maxFrame {
			return nil, 0, fmt.Errorf("%s: frame of %d bytes", l.path, fh.FrameSize)
		}
		return frame, l.dur, nil
	}
	return nil, 0, fmt.Errorf("%s: no frame", l.path)
}

func (l *ivfLoop) close() {
	if l.f != nil {
		_ = l.f.Close()
		l.f = nil
	}
}

// h264Loop reads an Annex B H.264 file and groups its NAL units into access units: the NALs
// up to and including each slice, sent as one sample.
type h264Loop struct {
	path string
	f    *os.File
	r    *h264reader.H264Reader
	dur  time.Duration
}

func openH264(path string, dur time.Duration) (*h264Loop, error) {
	l := &h264Loop{path: path, dur: dur}
	if err := l.rewind(); err != nil {
		return nil, err
	}
	return l, nil
}

func (l *h264Loop) rewind() error {
	l.close()
	f, err := os.Open(l.path)
	if err != nil {
		return err
	}
	r, err := h264reader.NewReader(f)
	if err != nil {
		_ = f.Close()
		return fmt.Errorf("%s: %w", l.path, err)
	}
	l.f, l.r = f, r
	return nil
}

func (l *h264Loop) next() ([]byte, time.Duration, error) {
	var au []byte
	for rewound := false; ; {
		nal, err := l.r.NextNAL()
		if errors.Is(err, io.EOF) {
			if rewound || len(au) > 0 {
				if len(au) > 0 {
					return au, l.dur, l.rewind()
				}
				return nil, 0, fmt.Errorf("%s: no slice NAL unit", l.path)
			}
			rewound = true
			if err := l.rewind(); err != nil {
				return nil, 0, err
			}
			continue
		}
		if err != nil {
			return nil, 0, fmt.Errorf("%s: %w", l.path, err)
		}
		au = append(au, 0, 0, 0, 1)
		au = append(au, nal.Data...)
		if len(au) > maxFrame {
			return nil, 0, fmt.Errorf("%s: access unit over %d bytes", l.path, maxFrame)
		}
		if nal.UnitType == h264reader.NalUnitTypeCodedSliceNonIdr || nal.UnitType == h264reader.NalUnitTypeCodedSliceIdr {
			return au, l.dur, nil
		}
	}
}

func (l *h264Loop) close() {
	if l.f != nil {
		_ = l.f.Close()
		l.f = nil
	}
}
