package room

import (
	"sync"
	"testing"
	"time"
)

// Config.FirstPacket hears once per subscription, when its first packet reached the
// subscriber, not for the packets after it nor for a subscription that got nothing yet.
func TestFirstPacketIsReportedOncePerSubscription(t *testing.T) {
	var mu sync.Mutex
	var seen []Kind
	cfg := testConfig()
	cfg.FirstPacket = func(kind Kind, after time.Duration) {
		if after < 0 {
			t.Errorf("negative time to first packet %v", after)
		}
		mu.Lock()
		seen = append(seen, kind)
		mu.Unlock()
	}
	count := func() int { mu.Lock(); defer mu.Unlock(); return len(seen) }
	m := NewManager(cfg)
	defer m.Close()
	pub, _, _ := join(t, m, "r", "pub")
	_, _, a := join(t, m, "r", "a")
	_, _, b := join(t, m, "r", "b")
	track, err := pub.Publish(vp8Info())
	if err != nil {
		t.Fatal(err)
	}
	src := newFakeSource()
	if err := track.AddLayer("", src); err != nil {
		t.Fatal(err)
	}
	b.track(track.ID()).Unbind() // b's transport is not negotiated: nothing reaches b
	for i := range 10 {
		src.ch <- vp8Packet(42, uint16(100+i), uint32(9000+3000*i), i == 0, 100)
	}
	a.writer(track.ID()).waitN(t, 10)
	if n := count(); n != 1 {
		t.Fatalf("FirstPacket called %d times for one subscription that got 10 packets (and one that got none), want 1", n)
	}
	mu.Lock()
	defer mu.Unlock()
	if seen[0] != KindVideo {
		t.Fatalf("kind %v, want video", seen[0])
	}
}
