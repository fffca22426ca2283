package relay_test

import (
	"context"
	"encoding/binary"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtp"

	"github.com/cascade-sfu/cascade/pkg/cluster"
	"github.com/cascade-sfu/cascade/pkg/room"
)

// sendPackets publishes a video track in room name on pub's node and feeds it count packets
// from sequence number firstSeq, a keyframe every 25, at one per tick (or as fast as the
// source takes them with tick 0). It returns when all are sent or stop closes.
func sendPackets(t *testing.T, pub *room.Participant, firstSeq uint16, count int, tick time.Duration, stop <-chan struct{}) *room.UpTrack {
	t.Helper()
	track, err := pub.Publish(room.TrackInfo{Kind: room.KindVideo, Codec: room.CodecParams{MimeType: "video/VP8", ClockRate: 90000}})
	if err != nil {
		t.Fatal(err)
	}
	src := &chanSource{ch: make(chan []byte, 64), done: make(chan struct{})}
	if err := track.AddLayer("", src); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; i < count; i++ {
			if tick > 0 {
				select {
				case <-stop:
					return
				case <-time.After(tick):
				}
			}
			payload := make([]byte, 200)
			payload[0] = 0x10
			if i%25 != 0 {
				payload[1] = 0x01
			}
			binary.BigEndian.PutUint64(payload[2:10], uint64(time.Now().UnixNano()))
			seq := firstSeq + uint16(i)
			b, _ := (&rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 96, SequenceNumber: seq, Timestamp: uint32(seq) * 3000, SSRC: 7, Marker: true}, Payload: payload}).Marshal()
			select {
			case src.ch <- b:
			case <-stop:
				return
			}
		}
	}()
	t.Cleanup(wg.Wait)
	return track
}

// A relay slot carries one track after another (a room ends and the next one starts, or a
// relay path moves). The second track's packets must reach the far subscriber at once, even
// though its publisher's sequence numbers start far below where the first track's ended: the
// slot's numbering goes on, so SRTP's replay check on the far side does not drop them.
func TestSlotReusedByAnotherTrackDeliversAtOnce(t *testing.T) {
	netA, netB := vnetHost(t, "198.51.100.1"), vnetHost(t, "198.51.100.2")
	startWAN(t, 10*time.Millisecond, netA, netB)
	c := newCluster(t, "eu", "hcm")
	dir := cluster.NewMemoryStore()
	eu := startSpanNode(t, c, "eu", netA, dir)
	hcm := startSpanNode(t, c, "hcm", netB, dir)
	ctx := context.Background()
	stop := make(chan struct{})
	defer close(stop)

	join := func(name room.Name, w *stampWriter) *room.Participant {
		pub, err := eu.rooms.Join(name, room.JoinParams{Identity: "alice", Session: room.SessionID("pub-" + name), Permissions: room.Permissions{Publish: true}, Sink: nopSink{}})
		if err != nil {
			t.Fatal(err)
		}
		_, _ = dir.Join(ctx, cluster.Occupant{Room: string(name), Identity: "alice", SessionID: "pub-" + string(name), Node: "eu"}, 0)
		if _, err := hcm.rooms.Join(name, room.JoinParams{Identity: "bob", Session: room.SessionID("sub-" + name), Permissions: room.Permissions{Subscribe: true}, Sink: nopSink{}, Transport: bindAll{w}}); err != nil {
			t.Fatal(err)
		}
		_, _ = dir.Join(ctx, cluster.Occupant{Room: string(name), Identity: "bob", SessionID: "sub-" + string(name), Node: "hcm"}, 0)
		return pub
	}

	// First room: a track whose numbering is high when it ends.
	w1 := &stampWriter{}
	pub1 := join("first", w1)
	sendPackets(t, pub1, 30000, 2000, 2*time.Millisecond, stop)
	eventually(t, 30*time.Second, "bob receives the first room's track", func() bool { return w1.count() > 1500 })
	pub1.Leave(room.ReasonLeft)
	_, _ = dir.Leave(ctx, "first", "alice", "pub-first")
	eventually(t, 10*time.Second, "hcm drops the first room's remote track, freeing its slot", func() bool {
		r := hcm.rooms.Room("first")
		return r == nil || len(r.Tracks()) == 0
	})
	time.Sleep(500 * time.Millisecond) // eu hears of it and detaches the slot

	// Second room, on the same link: its publisher numbers from 0.
	w2 := &stampWriter{}
	pub2 := join("second", w2)
	sendPackets(t, pub2, 0, 3000, 20*time.Millisecond, stop)
	// Without the slot's numbering going on, the far side drops packets until this track has
	// sent as many as the first did (40 s here).
	eventually(t, 15*time.Second, "bob receives the second room's track through the reused slot", func() bool { return w2.count() > 100 })
}
