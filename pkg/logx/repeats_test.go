package logx

import (
	"fmt"
	"testing"
	"time"
)

func TestRepeatsLetsOneLinePerIntervalThroughWithTheCount(t *testing.T) {
	now := time.Unix(1000, 0)
	r := NewRepeats(10*time.Second, func() time.Time { return now })
	var through []int // suppressed counts of the lines let through
	for range 500 {   // 20 a second for 25 s
		if ok, n := r.Allow("dial failed %v"); ok {
			through = append(through, n)
		}
		now = now.Add(50 * time.Millisecond)
	}
	if fmt.Sprint(through) != "[0 199 199]" {
		t.Fatalf("lines let through with counts %v, want [0 199 199] (at 0 s, 10 s, 20 s)", through)
	}
	if ok, _ := r.Allow("another pattern"); !ok {
		t.Fatal("a new pattern was held back")
	}
}

func TestRepeatsBoundsPatterns(t *testing.T) {
	r := NewRepeats(time.Minute, nil)
	through := 0
	for i := range 1000 {
		if ok, _ := r.Allow(fmt.Sprintf("pattern %d", i)); ok {
			through++
		}
	}
	if r.Len() > MaxPatterns+1 || through != MaxPatterns+1 {
		t.Fatalf("%d patterns remembered, %d lines through; want %d of each (one per pattern, one for the rest)", r.Len(), through, MaxPatterns+1)
	}
}
