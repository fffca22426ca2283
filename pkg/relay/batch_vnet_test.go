package relay_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtp"

	"github.com/cascade-sfu/cascade/pkg/cluster"
	"github.com/cascade-sfu/cascade/pkg/room"
)

// batchLog is a room.WriteBatcher that records, with the writes of batchWriters, the order of
// batches and packets: "[ a1 a2 ] [ b1 b2 ]".
type batchLog struct {
	mu  sync.Mutex
	log []string
}

func (l *batchLog) add(s string) {
	l.mu.Lock()
	l.log = append(l.log, s)
	l.mu.Unlock()
}

func (l *batchLog) BeginBatch() { l.add("[") }
func (l *batchLog) EndBatch()   { l.add("]") }

func (l *batchLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.log, " ")
}

// batchWriter logs each packet written as name+frame number (the payload's first byte after
// the VP8 descriptor).
type batchWriter struct {
	name string
	log  *batchLog
	mu   sync.Mutex
	n    int
}

func (w *batchWriter) WriteRTP(_ *rtp.Header, payload []byte) (int, error) {
	w.mu.Lock()
	w.n++
	w.mu.Unlock()
	w.log.add(fmt.Sprintf("%s%d", w.name, payload[2]))
	return 12 + len(payload), nil
}

func (w *batchWriter) count() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.n
}

// A relayed track's frames are held on the far node too, until their last packet: each of that
// node's subscribers gets a frame's packets in one write batch (one UDP GSO send).
func TestRelayedFramesGoToEachSubscriberTogether(t *testing.T) {
	netA, netB := vnetHost(t, "198.51.100.1"), vnetHost(t, "198.51.100.2")
	startWAN(t, 5*time.Millisecond, netA, netB)
	c := newCluster(t, "eu", "hcm")
	dir := cluster.NewMemoryStore()
	eu := startSpanNode(t, c, "eu", netA, dir)
	hcm := startSpanNode(t, c, "hcm", netB, dir)
	ctx := context.Background()

	pub, err := eu.rooms.Join("batch", room.JoinParams{Identity: "alice", Session: "pub", Permissions: room.Permissions{Publish: true}, Sink: nopSink{}})
	if err != nil {
		t.Fatal(err)
	}
	_, _ = dir.Join(ctx, cluster.Occupant{Room: "batch", Identity: "alice", SessionID: "pub", Node: "eu"}, 0)
	writers := map[string]*batchWriter{}
	for _, name := range []string{"a", "b"} {
		w := &batchWriter{name: name, log: hcm.batches}
		writers[name] = w
		if _, err := hcm.rooms.Join("batch", room.JoinParams{Identity: room.Identity(name), Session: room.SessionID("sub-" + name), Permissions: room.Permissions{Subscribe: true}, Sink: nopSink{}, Transport: bindAll{w}}); err != nil {
			t.Fatal(err)
		}
		_, _ = dir.Join(ctx, cluster.Occupant{Room: "batch", Identity: name, SessionID: "sub-" + name, Node: "hcm"}, 0)
	}
	track, err := pub.Publish(room.TrackInfo{Kind: room.KindVideo, Codec: room.CodecParams{MimeType: "video/VP8", ClockRate: 90000}})
	if err != nil {
		t.Fatal(err)
	}
	src := &chanSource{ch: make(chan []byte, 64), done: make(chan struct{})}
	if err := track.AddLayer("", src); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // 3-packet frames at 25 fps, every frame a keyframe
		defer wg.Done()
		seq := uint16(0)
		for f := 1; ; f++ {
			for i := range 3 {
				payload := make([]byte, 300)
				payload[0], payload[2] = 0x10, byte(f)
				if i > 0 {
					payload[0] = 0x00 // not the start of the partition
				}
				seq++
				b, _ := (&rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 96, SequenceNumber: seq, Timestamp: uint32(f) * 3600, SSRC: 7, Marker: i == 2}, Payload: payload}).Marshal()
				select {
				case src.ch <- b:
				case <-stop:
					return
				}
			}
			select {
			case <-time.After(40 * time.Millisecond):
			case <-stop:
				return
			}
		}
	}()
	defer func() { close(stop); wg.Wait() }()

	eventually(t, 30*time.Second, "both subscribers on hcm receive 30 frames", func() bool {
		return writers["a"].count() >= 90 && writers["b"].count() >= 90
	})
	// Past the start (keyframe wait, link set-up), every frame reaches each subscriber as one
	// batch of its three packets.
	log := strings.Fields(hcm.batches.String())
	grouped := 0
	for i := 0; i+4 < len(log); i++ {
		if log[i] == "[" && log[i+4] == "]" && log[i+1] == log[i+2] && log[i+2] == log[i+3] {
			grouped++
		}
	}
	if grouped < 40 {
		t.Fatalf("%d frames written as one batch of three on hcm; log: %s", grouped, strings.Join(log[:min(len(log), 120)], " "))
	}
}
