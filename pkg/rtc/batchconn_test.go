package rtc

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"sync"
	"testing"
	"time"
)

func listenUDP(t *testing.T) *net.UDPConn {
	t.Helper()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func addrOf(c *net.UDPConn) netip.AddrPort { return c.LocalAddr().(*net.UDPAddr).AddrPort() }

// datagram returns a datagram of n bytes that names its destination and index.
func datagram(dst, i, n int) []byte {
	b := bytes.Repeat([]byte{byte(i)}, n)
	copy(b, fmt.Sprintf("%d/%d:", dst, i))
	return b
}

// expect reads want from c, in order, each datagram whole.
func expect(t *testing.T, c *net.UDPConn, want [][]byte) {
	t.Helper()
	buf := make([]byte, 65536)
	for i, w := range want {
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, err := c.Read(buf)
		if err != nil {
			t.Fatalf("datagram %d of %d: %v", i, len(want), err)
		}
		if !bytes.Equal(buf[:n], w) {
			t.Fatalf("datagram %d: got %d bytes %q…, want %d bytes %q…", i, n, buf[:min(n, 8)], len(w), w[:8])
		}
	}
}

// expectNothing checks that nothing arrives at c within a short while.
func expectNothing(t *testing.T, c *net.UDPConn) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	buf := make([]byte, 65536)
	if n, err := c.Read(buf); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("got a datagram of %d bytes (err %v) while the batch was open", n, err)
	}
}

func TestBatchSendsEachSubscribersFrameInOneSend(t *testing.T) {
	for _, tc := range []struct{ gso, mmsg bool }{{true, true}, {true, false}, {false, true}, {false, false}} {
		t.Run(fmt.Sprintf("gso=%v,sendmmsg=%v", tc.gso, tc.mmsg), func(t *testing.T) {
			gso := tc.gso
			c := newBatchConn(listenUDP(t), nil)
			if gso && !c.gso.Load() {
				t.Fatal("UDP GSO is not available on this kernel (Linux 4.18+ has it)")
			}
			if tc.mmsg && c.mmsg == nil {
				t.Skip("no sendmmsg on this platform") // Linux has it: CI runs this case
			}
			c.gso.Store(gso)
			if !tc.mmsg {
				c.mmsg = nil
			}
			a, b := listenUDP(t), listenUDP(t)
			// A frame of three full packets and a short last one to a, two to b, then one
			// larger than the run's size to a (it cannot join a GSO run).
			toA := [][]byte{datagram(0, 0, 1200), datagram(0, 1, 1200), datagram(0, 2, 1200), datagram(0, 3, 300), datagram(0, 4, 1300)}
			toB := [][]byte{datagram(1, 0, 900), datagram(1, 1, 900)}
			c.BeginBatch()
			for _, p := range toA[:4] {
				if n, err := c.WriteToAddrPort(p, addrOf(a)); n != len(p) || err != nil {
					t.Fatalf("queued write = %d, %v", n, err)
				}
			}
			for _, p := range toB {
				_, _ = c.WriteToAddrPort(p, addrOf(b))
			}
			_, _ = c.WriteToAddrPort(toA[4], addrOf(a))
			expectNothing(t, a)
			c.EndBatch()
			expect(t, a, toA)
			expect(t, b, toB)
			sends, datagrams := c.sends.Load(), c.datagrams.Load()
			if datagrams != 7 {
				t.Fatalf("%d datagrams counted, want 7", datagrams)
			}
			wantSends := uint64(7)
			if gso {
				wantSends = 3 // a's frame, b's two, a's odd one
			}
			if sends != wantSends {
				t.Fatalf("%d sends for 7 datagrams, want %d", sends, wantSends)
			}
			// Outside a batch a write leaves at once.
			p := datagram(0, 9, 100)
			_, _ = c.WriteToAddrPort(p, addrOf(a))
			expect(t, a, [][]byte{p})
		})
	}
}

// A frame's fan-out to many subscribers leaves in one sendmmsg per 64 messages, each message a
// subscriber's GSO run, every datagram whole and in order at its subscriber; from a dual-stack
// socket as from an IPv4 one.
func TestBatchFanOutLeavesInFewSystemCalls(t *testing.T) {
	for _, network := range []string{"udp4", "udp"} {
		t.Run(network, func(t *testing.T) {
			laddr := &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)}
			if network == "udp" {
				laddr = &net.UDPAddr{IP: net.IPv6unspecified}
			}
			conn, err := net.ListenUDP(network, laddr)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { conn.Close() })
			c := newBatchConn(conn, nil)
			if c.mmsg == nil {
				t.Skip("no sendmmsg on this platform") // Linux has it: CI runs this test
			}
			const subs, perFrame = 150, 3
			dsts := make([]*net.UDPConn, subs)
			for i := range dsts {
				dsts[i] = listenUDP(t)
			}
			c.BeginBatch()
			for i, d := range dsts {
				for k := range perFrame {
					_, _ = c.WriteToAddrPort(datagram(i, k, 1100-200*(k/2)), addrOf(d))
				}
			}
			c.EndBatch()
			for i, d := range dsts {
				want := make([][]byte, perFrame)
				for k := range want {
					want[k] = datagram(i, k, 1100-200*(k/2))
				}
				expect(t, d, want)
			}
			wantSends := uint64(subs)
			if !c.gso.Load() {
				wantSends = subs * perFrame
			}
			if got := c.sends.Load(); got != wantSends {
				t.Fatalf("%d messages for %d subscribers' frames, want %d", got, subs, wantSends)
			}
			if want := (wantSends + mmsgMax - 1) / mmsgMax; c.mmsg.syscalls != want {
				t.Fatalf("%d sendmmsg calls for %d messages, want %d", c.mmsg.syscalls, wantSends, want)
			}
		})
	}
}

func TestOverlappingBatchesSendAtEachEnd(t *testing.T) {
	c := newBatchConn(listenUDP(t), nil)
	a := listenUDP(t)
	c.BeginBatch()
	c.BeginBatch()
	first := datagram(0, 0, 500)
	_, _ = c.WriteToAddrPort(first, addrOf(a))
	c.EndBatch() // the other batch is still open: what is queued goes now all the same
	expect(t, a, [][]byte{first})
	second := datagram(0, 1, 500)
	_, _ = c.WriteToAddrPort(second, addrOf(a))
	expectNothing(t, a)
	c.EndBatch()
	expect(t, a, [][]byte{second})
	c.EndBatch() // unbalanced: harmless
}

func TestBatchBeyondItsLimitIsSentEarly(t *testing.T) {
	c := newBatchConn(listenUDP(t), nil)
	a := listenUDP(t)
	_ = a.SetReadBuffer(4 << 20)
	c.BeginBatch()
	var want [][]byte
	for i := range batchMaxPackets {
		p := datagram(0, i, 100)
		want = append(want, p)
		_, _ = c.WriteToAddrPort(p, addrOf(a))
	}
	// The batch is still open, but full: it has been sent.
	expect(t, a, want)
	c.EndBatch()
}

// Goroutines forwarding at once, each in its own batches: every destination gets its
// datagrams whole and in order.
func TestConcurrentBatchesKeepEachDestinationsOrder(t *testing.T) {
	c := newBatchConn(listenUDP(t), nil)
	const writers, frames, perFrame = 4, 50, 5
	dsts := make([]*net.UDPConn, writers)
	for i := range dsts {
		dsts[i] = listenUDP(t)
		_ = dsts[i].SetReadBuffer(4 << 20)
	}
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for f := range frames {
				c.BeginBatch()
				for k := range perFrame {
					_, _ = c.WriteToAddrPort(datagram(w, f*perFrame+k, 1000), addrOf(dsts[w]))
				}
				c.EndBatch()
			}
		}()
	}
	wg.Wait()
	for w := range writers {
		var want [][]byte
		for i := range frames * perFrame {
			want = append(want, datagram(w, i, 1000))
		}
		expect(t, dsts[w], want)
	}
}

func BenchmarkBatchFrame(b *testing.B) {
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	sink, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		b.Fatal(err)
	}
	defer sink.Close()
	c := newBatchConn(conn, nil)
	p := make([]byte, 1200)
	dst := addrOf(sink)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		c.BeginBatch()
		for range 4 {
			_, _ = c.WriteToAddrPort(p, dst)
		}
		c.EndBatch()
	}
}
