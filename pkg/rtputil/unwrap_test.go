package rtputil

import (
	"slices"
	"testing"
)

func TestSeqUnwrapper(t *testing.T) {
	const b = 1 << 16
	tests := []struct {
		name string
		in   []uint16
		want []uint64
	}{
		{"first value", []uint16{0}, []uint64{b}},
		{"first value high", []uint16{65535}, []uint64{b + 65535}},
		{"in order", []uint16{10, 11, 12}, []uint64{b + 10, b + 11, b + 12}},
		{"wrap forward", []uint16{65534, 65535, 0, 1}, []uint64{b + 65534, b + 65535, 2 * b, 2*b + 1}},
		{"backward across wrap", []uint16{0, 65535, 65534}, []uint64{b, b - 1, b - 2}},
		{"reorder across wrap", []uint16{65535, 1, 0, 2}, []uint64{b + 65535, 2*b + 1, 2 * b, 2*b + 2}},
		{"late packet does not move the reference", []uint16{100, 50, 101}, []uint64{b + 100, b + 50, b + 101}},
		{"largest forward step", []uint16{0, 32767, 65534, 0}, []uint64{b, b + 32767, b + 65534, 2 * b}},
		{"exactly half is older", []uint16{0, 32768}, []uint64{b, b - 32768}},
		{"duplicate", []uint16{7, 7}, []uint64{b + 7, b + 7}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var u SeqUnwrapper
			got := make([]uint64, len(tc.in))
			for i, s := range tc.in {
				got[i] = u.Unwrap(s)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("Unwrap(%v) = %v, want %v", tc.in, got, tc.want)
			}
		})
	}
}

func TestSeqUnwrapperManyCycles(t *testing.T) {
	var u SeqUnwrapper
	if _, ok := u.Highest(); ok {
		t.Fatal("Highest of a zero SeqUnwrapper reports ok")
	}
	start := uint64(1<<16 + 40000)
	for i := range uint64(5 * 65536 / 1000) {
		want := start + i*1000
		if got := u.Unwrap(uint16(want)); got != want {
			t.Fatalf("step %d: Unwrap = %d, want %d", i, got, want)
		}
		// An older packet within the window extends below, without
		// disturbing the reference.
		if got := u.Unwrap(uint16(want - 3000)); got != want-3000 {
			t.Fatalf("step %d: late Unwrap = %d, want %d", i, got, want-3000)
		}
		if h, _ := u.Highest(); h != want {
			t.Fatalf("step %d: Highest = %d, want %d", i, h, want)
		}
	}
}

func TestTSUnwrapper(t *testing.T) {
	const b = 1 << 32
	tests := []struct {
		name string
		in   []uint32
		want []uint64
	}{
		{"first value", []uint32{3000}, []uint64{b + 3000}},
		{"wrap forward", []uint32{0xffffff00, 0x100}, []uint64{b + 0xffffff00, 2*b + 0x100}},
		{"backward across wrap", []uint32{0x10, 0xfffffff0}, []uint64{b + 0x10, b - 0x10}},
		{"reorder across wrap", []uint32{0xfffffffe, 2, 0xffffffff, 3}, []uint64{b + 0xfffffffe, 2*b + 2, b + 0xffffffff, 2*b + 3}},
		{"exactly half is older", []uint32{0, 1 << 31}, []uint64{b, b - 1<<31}},
		{"largest forward step", []uint32{0, 1<<31 - 1}, []uint64{b, b + 1<<31 - 1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var u TSUnwrapper
			got := make([]uint64, len(tc.in))
			for i, s := range tc.in {
				got[i] = u.Unwrap(s)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("Unwrap(%v) = %v, want %v", tc.in, got, tc.want)
			}
		})
	}
}

func TestTSUnwrapperVideoClock(t *testing.T) {
	// 90 kHz at 30 fps for long enough to wrap 32 bits twice
	// (2^33 / 3000 frames).
	var u TSUnwrapper
	ts := uint64(1<<32 + 0xfff00000)
	for range 3_000_000 {
		if got := u.Unwrap(uint32(ts)); got != ts {
			t.Fatalf("Unwrap = %d, want %d", got, ts)
		}
		ts += 3000
	}
	if h, ok := u.Highest(); !ok || h != ts-3000 {
		t.Errorf("Highest = %d, %v; want %d", h, ok, ts-3000)
	}
}
