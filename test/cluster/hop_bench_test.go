package cluster

import (
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"

	"github.com/cascade-sfu/cascade/pkg/auth"
)

// latencies collects one-way delays of packets that carry their send time (bytes 2..10 of
// the payload, unix nanoseconds) — sender and receivers are in this process, so one clock.
type latencies struct {
	mu sync.Mutex
	d  []time.Duration
	wg sync.WaitGroup
}

func (l *latencies) onTrack(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		buf := make([]byte, 1500)
		var p rtp.Packet
		for {
			n, _, err := tr.Read(buf)
			if err != nil {
				return
			}
			now := time.Now().UnixNano()
			if p.Unmarshal(buf[:n]) != nil || len(p.Payload) < 10 {
				continue
			}
			sent := int64(binary.BigEndian.Uint64(p.Payload[2:10]))
			l.mu.Lock()
			l.d = append(l.d, time.Duration(now-sent))
			l.mu.Unlock()
		}
	}()
}

func (l *latencies) reset() {
	l.mu.Lock()
	l.d = l.d[:0]
	l.mu.Unlock()
}

func (l *latencies) quantiles() (p50, p99 time.Duration, n int) {
	l.mu.Lock()
	d := append([]time.Duration(nil), l.d...)
	l.mu.Unlock()
	if len(d) == 0 {
		return 0, 0, 0
	}
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
	return d[len(d)/2], d[len(d)*99/100], len(d)
}

// BenchmarkRelayHop measures the time one relay hop adds: a publisher on node eu, one
// subscriber on eu (direct) and one on node hcm (through the relay link), on loopback. Each
// packet carries its send time. It reports p50 and p99 of both paths and their difference, at
// light load (30 packets/s) and heavy load (2,000 packets/s of 1,100 bytes, ≈ 18 Mbit/s).
// b.N is not used: each sub-benchmark measures for a fixed time.
func BenchmarkRelayHop(b *testing.B) {
	eu, hcm := twoNodes(b, "--log-level", "warn")

	var direct, relayed latencies
	pub := dialWith(b, eu, "hop", "pub", auth.Grants{CanPublish: true}, nil)
	defer pub.Close()
	d := dialWith(b, eu, "hop", "direct", auth.Grants{CanSubscribe: true}, direct.onTrack)
	defer func() { d.Close(); direct.wg.Wait() }()
	r := dialWith(b, hcm, "hop", "relayed", auth.Grants{CanSubscribe: true}, relayed.onTrack)
	defer func() { r.Close(); relayed.wg.Wait() }()
	track := newVP8(b, "s")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	if _, err := pub.Publish(ctx, track); err != nil {
		b.Fatal(err)
	}
	cancel()

	for _, load := range []struct {
		name string
		pps  int
		size int
	}{{"light", 30, 200}, {"heavy", 2000, 1100}} {
		b.Run(load.name, func(b *testing.B) {
			seq := 0
			send := func(dur time.Duration) int {
				// Bursts every 10 ms keep the rate without a timer per packet.
				perTick := max(1, load.pps/100)
				period := 10 * time.Millisecond
				if load.pps < 100 {
					period = time.Second / time.Duration(load.pps)
				}
				tick := time.NewTicker(period)
				defer tick.Stop()
				sent := 0
				for end := time.Now().Add(dur); time.Now().Before(end); {
					<-tick.C
					for range perTick {
						payload := make([]byte, load.size)
						payload[0] = 0x10
						if seq%load.pps != 0 {
							payload[1] = 0x01 // a keyframe every second
						}
						binary.BigEndian.PutUint64(payload[2:10], uint64(time.Now().UnixNano()))
						_ = track.WriteRTP(&rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: uint16(seq), Timestamp: uint32(seq) * 90, Marker: true}, Payload: payload})
						seq++
						sent++
					}
				}
				return sent
			}
			send(3 * time.Second) // warm up: both subscribers started, the relay link is up
			direct.reset()
			relayed.reset()
			idle0 := cpuTime(b, hcm)
			time.Sleep(2 * time.Second)
			idlePerSec := (cpuTime(b, hcm) - idle0) / 2
			cpu0 := cpuTime(b, hcm)
			b.ResetTimer()
			sent := send(5 * time.Second)
			b.StopTimer()
			cpu := cpuTime(b, hcm) - cpu0 - 5*idlePerSec
			time.Sleep(200 * time.Millisecond)
			d50, d99, dn := direct.quantiles()
			r50, r99, rn := relayed.quantiles()
			if dn == 0 || rn == 0 {
				b.Fatalf("no packets measured (direct %d, relayed %d)", dn, rn)
			}
			b.ReportMetric(float64(d50.Microseconds())/1000, "direct-p50-ms")
			b.ReportMetric(float64(d99.Microseconds())/1000, "direct-p99-ms")
			b.ReportMetric(float64(r50.Microseconds())/1000, "relayed-p50-ms")
			b.ReportMetric(float64(r99.Microseconds())/1000, "relayed-p99-ms")
			b.ReportMetric(float64((r50-d50).Microseconds())/1000, "hop-p50-ms")
			b.ReportMetric(float64((r99-d99).Microseconds())/1000, "hop-p99-ms")
			b.ReportMetric(float64(sent)/5, "sent-pps")
			// The receiving node's process CPU above its idle baseline (relay link in, one
			// subscriber out, SRTP both ways) per relayed packet. 10 ms resolution.
			b.ReportMetric(float64(cpu.Microseconds())/float64(rn), "hcm-cpu-us/pkt")
			b.Logf("%s: sent %d packets in 5 s; direct p50 %v p99 %v (%d received); relayed p50 %v p99 %v (%d received)",
				load.name, sent, d50, d99, dn, r50, r99, rn)
		})
	}
}

// cpuTime returns a process's user+system CPU time from /proc (Linux; clock ticks of 10 ms).
func cpuTime(b *testing.B, p *proc) time.Duration {
	b.Helper()
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.cmd.Process.Pid))
	if err != nil {
		b.Fatal(err)
	}
	// Fields after the command name (which is in parentheses): utime is the 12th, stime the 13th.
	f := strings.Fields(string(raw[strings.LastIndexByte(string(raw), ')')+2:]))
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * 10 * time.Millisecond
}
