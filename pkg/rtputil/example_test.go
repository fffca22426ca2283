package rtputil_test

import (
	"fmt"
	"time"

	"github.com/cascade-sfu/cascade/pkg/rtputil"
)

func ExamplePacketCache() {
	cache := rtputil.NewPacketCache(500, 1500) // rounded up to 512 slots
	cache.Put(65535, []byte("last before wrap"))
	cache.Put(0, []byte("first after wrap"))

	dst := make([]byte, cache.MaxPacketSize())
	for _, seq := range []uint16{65535, 0, 1} {
		if n, ok := cache.Get(seq, dst); ok {
			fmt.Printf("%d: %s\n", seq, dst[:n])
		} else {
			fmt.Printf("%d: absent\n", seq)
		}
	}
	// Output:
	// 65535: last before wrap
	// 0: first after wrap
	// 1: absent
}

func ExampleKeyframeThrottle() {
	pli := rtputil.NewKeyframeThrottle(500 * time.Millisecond)
	start := time.Unix(0, 0)
	for _, ms := range []int{0, 10, 20, 499, 500, 600} {
		now := start.Add(time.Duration(ms) * time.Millisecond)
		fmt.Println(ms, pli.Allow(now))
	}
	fmt.Println("suppressed:", pli.Suppressed())
	// Output:
	// 0 true
	// 10 false
	// 20 false
	// 499 false
	// 500 true
	// 600 false
	// suppressed: 4
}

func ExampleCodec_IsKeyframe() {
	codec := rtputil.CodecFromMime("video/vp8")
	// VP8 payload descriptor with S=1, then a key frame payload header.
	payload := []byte{0x10, 0x50, 0x42, 0x00, 0x9d, 0x01, 0x2a}
	fmt.Println(codec, codec.IsVideo(), codec.IsKeyframe(payload))
	// Output: VP8 true true
}
