package relay_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cascade-sfu/cascade/pkg/cluster"
	"github.com/cascade-sfu/cascade/pkg/room"
)

// flakyDirectory is the room store as a coordinator sees it through a Redis outage: it can
// fail, or answer with nothing (Redis restarted empty, before the nodes wrote their sessions
// back).
type flakyDirectory struct {
	dir  *cluster.MemoryStore
	mode atomic.Int32 // 0 ok, 1 failing, 2 empty
}

func (d *flakyDirectory) RoomNodes(ctx context.Context, name string) (map[cluster.NodeID]int, error) {
	switch d.mode.Load() {
	case 1:
		return nil, errors.New("redis: connection refused")
	case 2:
		return map[cluster.NodeID]int{}, nil
	}
	return d.dir.RoomNodes(ctx, name)
}

// A room spanning two nodes goes on while the shared store is away or restarts empty: the
// subscriber on hcm keeps receiving the publisher on eu, without a gap, and hcm keeps
// showing the publisher.
func TestRoomOutlivesDirectoryOutage(t *testing.T) {
	netA, netB := vnetHost(t, "198.51.100.1"), vnetHost(t, "198.51.100.2")
	startWAN(t, 5*time.Millisecond, netA, netB)
	c := newCluster(t, "eu", "hcm")
	dir := cluster.NewMemoryStore()
	euDir, hcmDir := &flakyDirectory{dir: dir}, &flakyDirectory{dir: dir}
	eu := startSpanNode(t, c, "eu", netA, dir, spanOpts{dir: euDir})
	hcm := startSpanNode(t, c, "hcm", netB, dir, spanOpts{dir: hcmDir})
	sub := &countingTransport{downs: map[string]*room.DownTrack{}, count: map[string]*atomic.Int64{}}
	pub := spanRoom(t, eu, hcm, dir, sub)
	publishRoomMedia(t, pub)
	eventually(t, 20*time.Second, "media crosses to hcm", func() bool { return sub.received("audio") > 50 })

	for _, outage := range []struct {
		name string
		mode int32
	}{{"unreachable", 1}, {"restarted empty", 2}} {
		euDir.mode.Store(outage.mode)
		hcmDir.mode.Store(outage.mode)
		// 3 s of outage, sampled every 250 ms: audio (50 packets/s) never stops.
		last := sub.received("audio")
		for range 12 {
			time.Sleep(250 * time.Millisecond)
			n := sub.received("audio")
			if n <= last {
				t.Fatalf("store %s: audio stopped on hcm (%d packets, none in 250 ms)", outage.name, n)
			}
			last = n
		}
		if px := len(hcm.rooms.Room("r").Participants()); px < 2 {
			t.Fatalf("store %s: hcm shows %d participants, want bob and eu's alice", outage.name, px)
		}
		euDir.mode.Store(0)
		hcmDir.mode.Store(0)
	}
}
