package cluster

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"

	"github.com/cascade-sfu/cascade/pkg/auth"
	"github.com/cascade-sfu/cascade/pkg/signal"
)

func bytesOut(t *testing.T, p *proc) int {
	t.Helper()
	resp, err := http.Get(p.url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	m := regexp.MustCompile(`cascade_rtp_bytes_total\{direction="out",node="[^"]+"\} (\d+(?:\.\d+)?(?:e\+\d+)?)`).FindSubmatch(b)
	if m == nil {
		t.Fatalf("no bytes-out metric on %s", p.name)
	}
	f, _ := strconv.ParseFloat(string(m[1]), 64)
	return int(f)
}

// rate measures a node's outgoing RTP bytes per second over d.
func rate(t *testing.T, p *proc, d time.Duration) float64 {
	before := bytesOut(t, p)
	time.Sleep(d)
	return float64(bytesOut(t, p)-before) / d.Seconds()
}

// Only the simulcast layers the remote node's subscribers want cross the link.
func TestRelayCarriesOnlyWantedLayers(t *testing.T) {
	eu, hcm := twoNodes(t)

	alice := dialWith(t, eu, "layers", "alice", auth.Grants{CanPublish: true}, nil)
	defer alice.Close()
	var layers []*webrtc.TrackLocalStaticRTP
	for _, rid := range []string{"q", "h", "f"} {
		layers = append(layers, newVP8(t, "s", webrtc.WithRTPStreamID(rid)))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	sender, err := alice.PublishSimulcast(ctx, layers...)
	cancel()
	if err != nil {
		t.Fatal(err)
	}
	pc, _ := alice.Publisher()
	var midID, ridID uint8
	for _, h := range sender.GetParameters().HeaderExtensions {
		switch h.URI {
		case "urn:ietf:params:rtp-hdrext:sdes:mid":
			midID = uint8(h.ID)
		case "urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id":
			ridID = uint8(h.ID)
		}
	}
	mid := ""
	for _, tr := range pc.GetTransceivers() {
		if tr.Sender() == sender {
			mid = tr.Mid()
		}
	}
	mctx, stopMedia := context.WithCancel(context.Background())
	var media sync.WaitGroup
	defer func() { stopMedia(); media.Wait() }()
	media.Add(1)
	go func() { // about 60 kbps, 240 kbps and 960 kbps
		defer media.Done()
		tick := time.NewTicker(33 * time.Millisecond)
		defer tick.Stop()
		for i := uint16(0); ; i++ {
			select {
			case <-mctx.Done():
				return
			case <-tick.C:
			}
			for l, tr := range layers {
				payload := make([]byte, []int{250, 1000, 1150}[l])
				payload[0] = 0x10
				if i%30 != 0 {
					payload[1] = 0x01
				}
				n := []int{1, 1, 4}[l]
				for k := range n {
					p := &rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: i*4 + uint16(k), Timestamp: uint32(i) * 3000, Marker: k == n-1}, Payload: payload}
					_ = p.Header.SetExtension(midID, []byte(mid))
					_ = p.Header.SetExtension(ridID, []byte(tr.RID()))
					_ = tr.WriteRTP(p)
				}
			}
		}
	}()

	var rx counter
	carol := dialWith(t, hcm, "layers", "carol", auth.Grants{CanSubscribe: true}, rx.onTrack)
	defer func() { carol.Close(); rx.wg.Wait() }()
	var track signal.TrackPublishedMsg
	waitFor(t, carol, "track_published", func(d json.RawMessage) bool { return json.Unmarshal(d, &track) == nil })
	eventuallyT(t, 15*time.Second, "carol receives", func() bool { return rx.count() > 30 }, func() string { return "" })
	time.Sleep(time.Second)
	high := rate(t, eu, 2*time.Second)

	if err := carol.SetQuality(track.Track.ID, "low"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second) // the next reconcile asks eu for layer q only
	low := rate(t, eu, 2*time.Second)
	t.Logf("eu sends %.0f B/s while hcm wants the full layer, %.0f B/s when it wants the low one", high, low)
	if low > 0.3*high {
		t.Fatalf("eu still sends %.0f B/s of %.0f B/s after hcm asked for the low layer only", low, high)
	}
	got := rx.count()
	eventuallyT(t, 5*time.Second, "carol keeps receiving the low layer", func() bool { return rx.count() > got+30 }, func() string { return "" })
}
