package rtputil

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// oggPage builds one Ogg page holding the given segments (lacing values) of data. The CRC is
// left zero: the reader does not check it.
func oggPage(serial uint32, flags byte, lacing []byte, data []byte) []byte {
	h := make([]byte, 27)
	copy(h, "OggS")
	h[5] = flags
	binary.LittleEndian.PutUint32(h[14:], serial)
	h[26] = byte(len(lacing))
	return append(append(h, lacing...), data...)
}

func TestOggOpusReaderSplitsPagesIntoPackets(t *testing.T) {
	// Two 20 ms CELT packets (config 31, code 0: TOC 0xf8) in one page, a 600-byte packet
	// continued on the next page, and a page of another logical stream in between.
	small := func(b byte) []byte { return append([]byte{0xf8}, bytes.Repeat([]byte{b}, 99)...) }
	big := append([]byte{0xf9, 0}, bytes.Repeat([]byte{7}, 598)...) // code 1: two frames, 40 ms
	var f bytes.Buffer
	f.Write(oggPage(1, 2, []byte{19}, append([]byte("OpusHead"), make([]byte, 11)...)))
	f.Write(oggPage(1, 0, []byte{8}, []byte("OpusTags")))
	f.Write(oggPage(9, 2, []byte{3}, []byte("xyz")))
	f.Write(oggPage(1, 0, []byte{100, 100, 255, 255}, append(append(small(1), small(2)...), big[:510]...)))
	f.Write(oggPage(1, 1, []byte{90}, big[510:]))

	r := NewOggOpusReader(&f)
	want := []struct {
		data    []byte
		samples int
	}{{small(1), 960}, {small(2), 960}, {big, 1920}}
	for i, w := range want {
		p, n, err := r.NextPacket()
		if err != nil {
			t.Fatalf("packet %d: %v", i, err)
		}
		if !bytes.Equal(p, w.data) || n != w.samples {
			t.Fatalf("packet %d: %d bytes, %d samples; want %d bytes, %d samples", i, len(p), n, len(w.data), w.samples)
		}
	}
	if _, _, err := r.NextPacket(); !errors.Is(err, io.EOF) {
		t.Fatalf("after the last packet: %v, want io.EOF", err)
	}
}

func TestOggOpusReaderRefusesBadStreams(t *testing.T) {
	for name, data := range map[string][]byte{
		"not ogg":        []byte("RIFF....WAVEfmt and some more bytes to fill a header"),
		"not opus":       oggPage(1, 2, []byte{8}, []byte("OggVorbi")),
		"truncated page": oggPage(1, 2, []byte{19}, []byte("OpusHead")),
	} {
		if _, _, err := NewOggOpusReader(bytes.NewReader(data)).NextPacket(); !errors.Is(err, ErrBadOgg) {
			t.Errorf("%s: %v, want ErrBadOgg", name, err)
		}
	}
}

func TestOpusSamples(t *testing.T) {
	for _, c := range []struct {
		p    []byte
		want int
	}{
		{[]byte{0x08}, 960},        // SILK NB 20 ms
		{[]byte{0x18}, 2880},       // SILK NB 60 ms
		{[]byte{0x60}, 480},        // hybrid 10 ms
		{[]byte{0x80}, 120},        // CELT 2.5 ms
		{[]byte{0xf8}, 960},        // CELT FB 20 ms
		{[]byte{0xfb, 0x03}, 2880}, // code 3, three 20 ms frames
		{[]byte{0x1b, 0x02}, 5760}, // two 60 ms frames: 120 ms
	} {
		if n, err := OpusSamples(c.p); err != nil || n != c.want {
			t.Errorf("TOC %#x: %d, %v; want %d", c.p[0], n, err, c.want)
		}
	}
	for _, bad := range [][]byte{nil, {0xfb}, {0xfb, 0x00}, {0x1b, 0x03}} {
		if _, err := OpusSamples(bad); !errors.Is(err, ErrBadOgg) {
			t.Errorf("%x: %v, want ErrBadOgg", bad, err)
		}
	}
}

// TestOggOpusReaderReadsFFmpegOutput reads a file as ffmpeg writes it by default (about a
// second of packets per page): 3 s of audio come out as 20 ms packets adding up to 3 s.
func TestOggOpusReaderReadsFFmpegOutput(t *testing.T) {
	ffmpeg, err := exec.LookPath("ffmpeg")
	if err != nil {
		t.Fatal("ffmpeg is needed (make test installs it through .ci/run): ", err)
	}
	path := filepath.Join(t.TempDir(), "a.ogg")
	if out, err := exec.Command(ffmpeg, "-y", "-nostdin", "-loglevel", "error", "-f", "lavfi", "-i", "sine=f=440",
		"-t", "3", "-c:a", "libopus", path).CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg: %v\n%s", err, out)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r := NewOggOpusReader(f)
	total, packets := 0, 0
	for {
		p, n, err := r.NextPacket()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if len(p) > 1275 {
			t.Fatalf("packet %d: %d bytes: pages were not split", packets, len(p))
		}
		total += n
		packets++
	}
	// ffmpeg adds the encoder's pre-skip (312 samples) rounded up to a packet.
	if total < 3*48000 || total > 3*48000+2*960 || packets < 150 {
		t.Fatalf("%d packets, %d samples: want 3 s of 20 ms packets", packets, total)
	}
}

// FuzzOggOpusReader feeds arbitrary bytes: the reader ends with an error or io.EOF, never
// panics, and never returns a packet over MaxOpusPacket.
func FuzzOggOpusReader(f *testing.F) {
	f.Add(oggPage(1, 2, []byte{19}, append([]byte("OpusHead"), make([]byte, 11)...)))
	f.Add(append(oggPage(1, 2, []byte{8}, []byte("OpusHead")), oggPage(1, 0, []byte{8}, []byte("OpusTags"))...))
	f.Fuzz(func(t *testing.T, data []byte) {
		r := NewOggOpusReader(bytes.NewReader(data))
		for i := 0; i < 1000; i++ {
			p, _, err := r.NextPacket()
			if err != nil {
				return
			}
			if len(p) > MaxOpusPacket {
				t.Fatalf("packet of %d bytes", len(p))
			}
		}
	})
}
