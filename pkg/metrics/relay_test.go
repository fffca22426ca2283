package metrics

import (
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/cascade-sfu/cascade/pkg/relay"
	"github.com/cascade-sfu/cascade/pkg/room"
)

// fakeLinks is a LinkSource with fixed links; it counts the reads.
type fakeLinks struct {
	mu    sync.Mutex
	links []relay.LinkInfo
	reads int
}

func (f *fakeLinks) Links() []relay.LinkInfo {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reads++
	return append([]relay.LinkInfo(nil), f.links...)
}

// gather registers c on a pedantic registry (which checks the metrics against Describe) and
// returns every sample as "name{label=value,...}" → value.
func gather(t *testing.T, c prometheus.Collector) map[string]float64 {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			var labels []string
			for _, lp := range m.GetLabel() {
				labels = append(labels, lp.GetName()+"="+lp.GetValue())
			}
			sort.Strings(labels)
			key := mf.GetName() + "{" + strings.Join(labels, ",") + "}"
			switch mf.GetType() {
			case dto.MetricType_COUNTER:
				out[key] = m.GetCounter().GetValue()
			case dto.MetricType_GAUGE:
				out[key] = m.GetGauge().GetValue()
			case dto.MetricType_HISTOGRAM:
				out[mf.GetName()+"_count{"+strings.Join(labels, ",")+"}"] = float64(m.GetHistogram().GetSampleCount())
			default:
				t.Fatalf("%s: unexpected type %v", key, mf.GetType())
			}
		}
	}
	return out
}

func TestRelayCollector(t *testing.T) {
	src := &fakeLinks{links: []relay.LinkInfo{
		{
			Peer: "hcm", State: relay.StateOpen, Created: time.Now(), OpenedAfter: 420 * time.Millisecond,
			RTT: 180 * time.Millisecond, BytesSent: 1_000_000, BytesReceived: 250_000,
			SendBitrate: 2_500_000, RecvBitrate: 64_000, BandwidthEstimate: 3_000_000, ControlDropped: 2,
			NACKsReceived: 17, PLIsReceived: 3, PLIsSent: 5, PausedLayers: 2, LossOut: 0.125, ResidualLossOut: 0.01,
		},
		// Being set up: no RTT, no estimate yet.
		{Peer: "sgp", State: relay.StateConnecting, Created: time.Now(), BytesSent: 300},
		// Closing while listed: skipped.
		{Peer: "syd", State: relay.StateClosed, BytesSent: 5},
	}}
	got := gather(t, NewRelayCollector(src, "eu"))
	want := map[string]float64{
		"cascade_relay_link_open{dst=hcm,src=eu}":                                      1,
		"cascade_relay_link_setup_seconds{dst=hcm,src=eu}":                             0.42,
		"cascade_relay_link_rtt_seconds{dst=hcm,src=eu}":                               0.18,
		"cascade_relay_link_bytes_total{direction=out,dst=hcm,src=eu}":                 1_000_000,
		"cascade_relay_link_bytes_total{direction=in,dst=hcm,src=eu}":                  250_000,
		"cascade_relay_link_throughput_bytes_per_second{direction=out,dst=hcm,src=eu}": 2_500_000 / 8,
		"cascade_relay_link_throughput_bytes_per_second{direction=in,dst=hcm,src=eu}":  64_000 / 8,
		"cascade_relay_link_bandwidth_estimate_bytes_per_second{dst=hcm,src=eu}":       3_000_000 / 8,
		"cascade_relay_link_control_dropped_total{dst=hcm,src=eu}":                     2,
		"cascade_relay_link_nacks_received_total{dst=hcm,src=eu}":                      17,
		"cascade_relay_link_plis_total{direction=in,dst=hcm,src=eu}":                   3,
		"cascade_relay_link_plis_total{direction=out,dst=hcm,src=eu}":                  5,
		"cascade_relay_link_paused_layers{dst=hcm,src=eu}":                             2,
		"cascade_relay_link_loss_ratio{dst=hcm,src=eu}":                                0.125,
		"cascade_relay_link_residual_loss_ratio{dst=hcm,src=eu}":                       0.01,
		"cascade_relay_link_open{dst=sgp,src=eu}":                                      0,
		"cascade_relay_link_bytes_total{direction=out,dst=sgp,src=eu}":                 300,
		"cascade_relay_link_bytes_total{direction=in,dst=sgp,src=eu}":                  0,
		"cascade_relay_link_throughput_bytes_per_second{direction=out,dst=sgp,src=eu}": 0,
		"cascade_relay_link_throughput_bytes_per_second{direction=in,dst=sgp,src=eu}":  0,
		"cascade_relay_link_control_dropped_total{dst=sgp,src=eu}":                     0,
		"cascade_relay_link_nacks_received_total{dst=sgp,src=eu}":                      0,
		"cascade_relay_link_plis_total{direction=in,dst=sgp,src=eu}":                   0,
		"cascade_relay_link_plis_total{direction=out,dst=sgp,src=eu}":                  0,
		"cascade_relay_link_paused_layers{dst=sgp,src=eu}":                             0,
		"cascade_relay_link_loss_ratio{dst=sgp,src=eu}":                                0,
		"cascade_relay_link_residual_loss_ratio{dst=sgp,src=eu}":                       0,
	}
	for k, v := range want {
		if g, ok := got[k]; !ok || g != v {
			t.Errorf("%s = %v (present %v), want %v", k, g, ok, v)
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("unexpected series %s = %v", k, got[k])
		}
	}
	if src.reads != 1 {
		t.Errorf("the source was read %d times in one scrape, want 1", src.reads)
	}
}

func TestRelayCollectorReadsAtScrapeTime(t *testing.T) {
	src := &fakeLinks{}
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(NewRelayCollector(src, "eu"))
	if mfs, err := reg.Gather(); err != nil || len(mfs) != 0 {
		t.Fatalf("no links: %v %v", mfs, err)
	}
	src.mu.Lock()
	src.links = []relay.LinkInfo{{Peer: "hcm", State: relay.StateOpen, BytesSent: 7}}
	src.mu.Unlock()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	if len(mfs) == 0 {
		t.Fatal("a link added after registration is not reported")
	}
}

func TestRelayCollectorWithoutSource(t *testing.T) {
	if got := gather(t, NewRelayCollector(nil, "eu")); len(got) != 0 {
		t.Fatalf("nil source reported %v", got)
	}
	// Beside the room collector on one registry, as the node registers them.
	rooms := room.NewManager(room.DefaultConfig())
	defer rooms.Close()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(NewRoomCollector(rooms, "eu", 0), NewRelayCollector(&fakeLinks{links: []relay.LinkInfo{{Peer: "hcm", State: relay.StateOpen}}}, "eu"))
	if _, err := reg.Gather(); err != nil {
		t.Fatal(err)
	}
}
