package agent

import (
	"context"
	"os/exec"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/rtp/codecs"
)

// frameLog records, per frame sent, whether it was a keyframe.
type frameLog struct {
	mu     sync.Mutex
	frames []bool
}

func (l *frameLog) WriteRTP(p *rtp.Packet) error {
	var vp8 codecs.VP8Packet
	if _, err := vp8.Unmarshal(p.Payload); err == nil && vp8.S == 1 && vp8.PID == 0 && len(vp8.Payload) > 0 {
		l.mu.Lock()
		l.frames = append(l.frames, vp8.Payload[0]&0x01 == 0)
		l.mu.Unlock()
	}
	return nil
}

func (l *frameLog) snapshot() []bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]bool(nil), l.frames...)
}

// The lab's publisher answers a keyframe request with the file's next keyframe at once, as a
// live encoder would, instead of leaving the subscriber to wait for the file's keyframe
// interval (2 s here).
func TestPublisherAnswersKeyframeRequest(t *testing.T) {
	ffmpeg, err := exec.LookPath("ffmpeg")
	if err != nil {
		t.Fatal("ffmpeg is needed (make test installs it through .ci/run): ", err)
	}
	ivf := filepath.Join(t.TempDir(), "v.ivf")
	if out, err := exec.Command(ffmpeg, "-y", "-nostdin", "-loglevel", "error", "-f", "lavfi", "-i", "testsrc=size=320x240:rate=30",
		"-t", "4", "-c:v", "libvpx", "-b:v", "300k", "-g", "60", "-deadline", "realtime", ivf).CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg: %v\n%s", err, out)
	}
	if !wantsKeyframe([]rtcp.Packet{&rtcp.ReceiverReport{}, &rtcp.PictureLossIndication{}}) || wantsKeyframe([]rtcp.Packet{&rtcp.ReceiverReport{}}) {
		t.Fatal("wantsKeyframe misreads RTCP")
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	log := &frameLog{}
	var wanted atomic.Bool
	done := make(chan error, 1)
	go func() { done <- sendVideo(ctx, log, ivf, 0, &wanted) }()

	deadline := time.Now().Add(20 * time.Second)
	for len(log.snapshot()) < 5 {
		if time.Now().After(deadline) {
			t.Fatal("the publisher sent fewer than 5 frames in 20 s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	asked := len(log.snapshot())
	wanted.Store(true)
	for len(log.snapshot()) < asked+3 {
		if time.Now().After(deadline) {
			t.Fatal("the publisher stopped after the keyframe request")
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	<-done
	frames := log.snapshot()
	if !frames[0] {
		t.Error("the first frame sent is not a keyframe")
	}
	// The request is seen before the next frame or the one after (it races the ticker).
	if !frames[asked] && !frames[asked+1] {
		t.Fatalf("frames after the request: keyframe %v, %v; want a keyframe at once (frames %d on)", frames[asked], frames[asked+1], asked)
	}
	if asked+1 < 59 && frames[asked+2] {
		t.Error("keyframes went on after the one asked for")
	}
}
