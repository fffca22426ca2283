package room

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtp"
)

// deadlineFakeSource is a fakeSource whose reads time out, as pion's remote tracks' do.
type deadlineFakeSource struct {
	*fakeSource
	mu       sync.Mutex
	deadline time.Time
}

type timeoutError struct{}

func (timeoutError) Error() string { return "i/o timeout" }
func (timeoutError) Timeout() bool { return true }

func (s *deadlineFakeSource) SetReadDeadline(t time.Time) error {
	s.mu.Lock()
	s.deadline = t
	s.mu.Unlock()
	return nil
}

func (s *deadlineFakeSource) ReadRTP(buf []byte) (int, error) {
	s.mu.Lock()
	d := s.deadline
	s.mu.Unlock()
	var expired <-chan time.Time
	if !d.IsZero() {
		t := time.NewTimer(time.Until(d))
		defer t.Stop()
		expired = t.C
	}
	select {
	case b := <-s.ch:
		return copy(buf, b), nil
	case <-s.done:
		return 0, fmt.Errorf("source closed")
	case <-expired:
		return 0, timeoutError{}
	}
}

// writeLog records, in one order, the batches opened and closed and the packets written by
// every subscriber's writer.
type writeLog struct {
	mu  sync.Mutex
	log []string
}

func (l *writeLog) add(s string) {
	l.mu.Lock()
	l.log = append(l.log, s)
	l.mu.Unlock()
}

func (l *writeLog) BeginBatch() { l.add("[") }
func (l *writeLog) EndBatch()   { l.add("]") }

func (l *writeLog) waitFor(t *testing.T, writes int) string {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		l.mu.Lock()
		n := 0
		for _, s := range l.log {
			if s != "[" && s != "]" {
				n++
			}
		}
		got := strings.Join(l.log, " ")
		l.mu.Unlock()
		if n >= writes {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d writes after 5 s: %s", n, writes, got)
		}
		time.Sleep(time.Millisecond)
	}
}

type logWriter struct {
	name string
	log  *writeLog
}

func (w logWriter) WriteRTP(h *rtp.Header, p []byte) (int, error) {
	w.log.add(fmt.Sprintf("%s%d", w.name, len(p)))
	return 12 + len(p), nil
}

// framePacket is a VP8 packet of size bytes; marker ends its frame.
func framePacket(seq uint16, ts uint32, keyframe, marker bool, size int) []byte {
	var p rtp.Packet
	if err := p.Unmarshal(vp8Packet(1, seq, ts, keyframe, size)); err != nil {
		panic(err)
	}
	p.Marker = marker
	b, err := p.Marshal()
	if err != nil {
		panic(err)
	}
	return b
}

// batchedTrack is a video track read from a source that can time out, with subscribers a and b
// writing to log, and log as the transport's write batcher.
func batchedTrack(t *testing.T, info TrackInfo) (*deadlineFakeSource, *writeLog) {
	t.Helper()
	log := &writeLog{}
	cfg := testConfig()
	track := newUpTrack(info, &Stats{}, cfg.Logger, cfg.KeyframeInterval, log, nil)
	src := &deadlineFakeSource{fakeSource: newFakeSource()}
	if err := track.AddLayer("", src); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"a", "b"} {
		d := newDownTrack(track, ParticipantSID(name), track.stats)
		d.Bind(Binding{Writer: logWriter{name, log}, SSRC: 5, PayloadType: 96})
		if err := track.addDownTrack(d); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(track.Close)
	return src, log
}

// A video frame's packets are held until its last one and then written subscriber by
// subscriber, each subscriber's in one batch: the transport can send them in one go.
func TestFramePacketsGoToEachSubscriberTogether(t *testing.T) {
	src, log := batchedTrack(t, vp8Info())
	// Sizes tell the packets apart in the log (payload bytes).
	src.ch <- framePacket(1, 0, true, false, 101)
	src.ch <- framePacket(2, 0, true, false, 102)
	src.ch <- framePacket(3, 0, true, true, 103)
	got := log.waitFor(t, 6)
	if want := "[ a101 a102 a103 ] [ b101 b102 b103 ]"; got != want {
		t.Fatalf("writes %q, want %q", got, want)
	}
	// A frame of one packet goes at once, packet by packet.
	src.ch <- framePacket(4, 3000, false, true, 104)
	got = log.waitFor(t, 8)
	if want := " a104 b104"; !strings.HasSuffix(got, want) {
		t.Fatalf("writes %q, want them to end with %q", got, want)
	}
}

// A frame whose last packet never comes is not held forever: its packets go after the
// hold's bound, and the next frame is forwarded as usual.
func TestFrameWithoutItsLastPacketIsNotHeldForever(t *testing.T) {
	src, log := batchedTrack(t, vp8Info())
	src.ch <- framePacket(1, 0, true, false, 101)
	src.ch <- framePacket(2, 0, true, false, 102)
	got := log.waitFor(t, 4)
	if want := "[ a101 a102 ] [ b101 b102 ]"; got != want {
		t.Fatalf("writes %q, want %q", got, want)
	}
	src.ch <- framePacket(4, 3000, false, false, 104)
	src.ch <- framePacket(5, 3000, false, true, 105)
	got = log.waitFor(t, 8)
	if want := "[ a104 a105 ] [ b104 b105 ]"; !strings.HasSuffix(got, want) {
		t.Fatalf("writes %q, want them to end with %q", got, want)
	}
}

// A packet of a new frame (timestamp) ends the batch held before it.
func TestNewFrameEndsTheHeldOne(t *testing.T) {
	src, log := batchedTrack(t, vp8Info())
	src.ch <- framePacket(1, 0, true, false, 101)
	src.ch <- framePacket(2, 3000, false, false, 102) // the first frame's marker was lost
	src.ch <- framePacket(3, 3000, false, true, 103)
	got := log.waitFor(t, 6)
	if want := "[ a101 a102 ] [ b101 b102 ] a103 b103"; got != want {
		t.Fatalf("writes %q, want %q", got, want)
	}
}

// Audio is never held: every packet goes at once.
func TestAudioIsNotHeld(t *testing.T) {
	info := TrackInfo{Kind: KindAudio, Source: SourceMicrophone, Codec: CodecParams{MimeType: "audio/opus", ClockRate: 48000, Channels: 2}}
	src, log := batchedTrack(t, info)
	for seq := range uint16(3) {
		var p rtp.Packet
		_ = p.Unmarshal(audioPacket(seq+1, 30))
		p.Marker = false
		b, _ := p.Marshal()
		src.ch <- b
	}
	got := log.waitFor(t, 6)
	if slices.Contains(strings.Fields(got), "[") {
		t.Fatalf("audio was batched: %q", got)
	}
}
