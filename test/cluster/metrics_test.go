package cluster

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/cascade-sfu/cascade/pkg/auth"
)

// contractNames is the metric-name contract the Grafana dashboard (deploy/grafana) is built on
// (docs/metrics.md lists them all). Every one must be in /metrics of a node carrying media.
var contractNames = []string{
	"cascade_rooms", "cascade_participants", "cascade_tracks", "cascade_subscriptions",
	"cascade_rtp_packets_total", "cascade_rtp_bytes_total", "cascade_nacks_received_total",
	"cascade_retransmits_total", "cascade_retransmit_misses_total", "cascade_retransmits_suppressed_total",
	"cascade_plis_received_total", "cascade_keyframe_requests_total", "cascade_layer_switches_total",
	"cascade_dropped_packets_total", "cascade_keyframe_replays_total",
	"cascade_media_port_batch_sends_total", "cascade_media_port_batch_datagrams_total",
	"cascade_media_port_own_path_packets_total",
	"cascade_media_port_own_path_rtcp_total",
	"cascade_relay_link_open", "cascade_relay_link_setup_seconds", "cascade_relay_link_rtt_seconds",
	"cascade_relay_link_bytes_total", "cascade_relay_link_throughput_bytes_per_second",
	"cascade_relay_link_bandwidth_estimate_bytes_per_second", "cascade_relay_link_control_dropped_total",
	"cascade_relay_link_nacks_received_total", "cascade_relay_link_plis_total",
	"cascade_relay_link_loss_ratio", "cascade_relay_link_residual_loss_ratio", "cascade_relay_link_paused_layers",
	"cascade_node_info", "cascade_node_state", "cascade_room_participants",
	"cascade_join_duration_seconds", "cascade_first_packet_seconds",
	"cascade_signal_messages_total", "cascade_signal_errors_total",
	"cascade_redis_operation_duration_seconds", "cascade_redis_errors_total",
	"cascade_serf_members", "cascade_cluster_nodes",
	"go_goroutines", "go_memstats_alloc_bytes", "process_cpu_seconds_total", "process_resident_memory_bytes",
}

// scrape returns a node's /metrics body.
func scrape(t *testing.T, p *proc) []byte {
	t.Helper()
	resp, err := http.Get(p.url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics on %s: %d %v", p.name, resp.StatusCode, err)
	}
	return b
}

func parseMetrics(t *testing.T, b []byte) map[string]*dto.MetricFamily {
	t.Helper()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	return fams
}

// value returns the value of the series of family name whose labels include want (a counter,
// gauge, or a histogram's count), and whether there is one.
func value(fams map[string]*dto.MetricFamily, name string, want map[string]string) (float64, bool) {
	f := fams[name]
	if f == nil {
		return 0, false
	}
next:
	for _, m := range f.GetMetric() {
		got := map[string]string{}
		for _, l := range m.GetLabel() {
			got[l.GetName()] = l.GetValue()
		}
		for k, v := range want {
			if got[k] != v {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.GetCounter().GetValue(), true
		case m.Gauge != nil:
			return m.GetGauge().GetValue(), true
		case m.Histogram != nil:
			return float64(m.GetHistogram().GetSampleCount()), true
		}
	}
	return 0, false
}

// promtoolCheck runs `promtool check metrics` on a scrape. promtool is part of the test
// environment (.ci/run installs Debian's prometheus package): missing, the test fails.
func promtoolCheck(t *testing.T, node string, b []byte) {
	t.Helper()
	path, err := exec.LookPath("promtool")
	if err != nil {
		t.Fatalf("promtool not found (apt-get install prometheus): %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, path, "check", "metrics")
	cmd.Stdin = bytes.NewReader(b)
	out, err := cmd.CombinedOutput()
	if err == nil {
		return
	}
	t.Fatalf("promtool check metrics on %s's /metrics: %v\n%s", node, err, out)
}

// Two nodes carry a room with real media (a WebSocket publisher on eu, a subscriber on eu and
// one on hcm across a relay link): /metrics of both passes promtool, holds every name of the
// metric contract, and its values say what happened.
func TestMetricsOfNodesCarryingMedia(t *testing.T) {
	eu, hcm := twoNodes(t, "--metrics-top-rooms", "3")

	mediaAcrossRelay(t, eu, hcm, "metrics")

	// A refusal a user would see: WHIP without a token.
	resp, err := http.Post(eu.url+"/whip/metrics", "application/sdp", strings.NewReader("v=0\r\n"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("WHIP without a token: %d, want 401", resp.StatusCode)
	}

	for _, p := range []*proc{eu, hcm} {
		promtoolCheck(t, p.name, scrape(t, p))
	}

	type want struct {
		name   string
		labels map[string]string
		min    float64
		max    float64 // < 0: no upper bound
	}
	checks := []want{
		{"cascade_node_info", map[string]string{"node": "eu", "region": "eu"}, 1, 1},
		{"cascade_node_state", map[string]string{"state": "active"}, 1, 1},
		{"cascade_node_state", map[string]string{"state": "draining"}, 0, 0},
		{"cascade_rooms", nil, 1, 1},
		{"cascade_room_participants", map[string]string{"room": "metrics"}, 2, 2}, // alice, dave (carol is on hcm)
		{"cascade_participants", map[string]string{"kind": "remote"}, 1, 1},       // carol, shown by the relay
		{"cascade_join_duration_seconds", map[string]string{"transport": "ws"}, 2, 2},
		{"cascade_first_packet_seconds", map[string]string{"kind": "video"}, 1, 1}, // dave's copy; the relay's is no subscriber
		{"cascade_signal_messages_total", map[string]string{"type": "join"}, 2, 2},
		{"cascade_signal_messages_total", map[string]string{"type": "offer"}, 1, -1},
		{"cascade_signal_errors_total", map[string]string{"code": "unauthorized"}, 1, 1},
		{"cascade_rtp_packets_total", map[string]string{"direction": "out"}, 60, -1},
		{"cascade_redis_operation_duration_seconds", map[string]string{"op": "pipeline"}, 1, -1},
		{"cascade_relay_link_open", map[string]string{"src": "eu", "dst": "hcm"}, 1, 1},
		{"cascade_serf_members", map[string]string{"state": "alive"}, 2, 2},
		{"cascade_cluster_nodes", map[string]string{"state": "active"}, 2, 2},
	}
	var fams map[string]*dto.MetricFamily
	eventuallyT(t, 15*time.Second, "eu's metrics show the room, the joins, the media and the cluster", func() bool {
		fams = parseMetrics(t, scrape(t, eu))
		for _, c := range checks {
			v, ok := value(fams, c.name, c.labels)
			if !ok || v < c.min || (c.max >= 0 && v > c.max) {
				return false
			}
		}
		return true
	}, func() string {
		var bad []string
		for _, c := range checks {
			v, ok := value(fams, c.name, c.labels)
			if !ok || v < c.min || (c.max >= 0 && v > c.max) {
				bad = append(bad, c.name+formatLabels(c.labels)+"="+formatValue(v, ok))
			}
		}
		return strings.Join(bad, ", ")
	})
	for _, name := range contractNames {
		if f := fams[name]; f == nil || len(f.GetMetric()) == 0 {
			t.Errorf("%s is missing from eu's /metrics", name)
		}
	}
	// Every series but the relay links' carries the node label.
	for name, f := range fams {
		if strings.HasPrefix(name, "cascade_relay_link_") {
			continue
		}
		for _, m := range f.GetMetric() {
			if _, ok := labelOf(m, "node"); !ok && strings.HasPrefix(name, "cascade_") {
				t.Errorf("%s has a series without the node label", name)
				break
			}
		}
	}
	// hcm got its first packet across the relay: its subscriber's histogram counts it too.
	hf := parseMetrics(t, scrape(t, hcm))
	if v, _ := value(hf, "cascade_first_packet_seconds", map[string]string{"kind": "video"}); v != 1 {
		t.Errorf("hcm cascade_first_packet_seconds{kind=video} count = %v, want 1", v)
	}
}

func labelOf(m *dto.Metric, name string) (string, bool) {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue(), true
		}
	}
	return "", false
}

func formatLabels(l map[string]string) string {
	var parts []string
	for k, v := range l {
		parts = append(parts, k+"="+v)
	}
	sort.Strings(parts)
	return "{" + strings.Join(parts, ",") + "}"
}

func formatValue(v float64, ok bool) string {
	if !ok {
		return "absent"
	}
	return model.SampleValue(v).String()
}

// mediaAcrossRelay puts a room with real media on two nodes: alice publishes VP8 on eu, dave
// subscribes on eu and carol on hcm (across a relay link). It returns once both receive;
// everything stops when the test ends.
func mediaAcrossRelay(t *testing.T, eu, hcm *proc, roomName string) {
	t.Helper()
	alice := dialWith(t, eu, roomName, "alice", auth.Grants{CanPublish: true, CanSubscribe: true}, nil)
	t.Cleanup(alice.Close)
	video := newVP8(t, "s")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := alice.Publish(ctx, video); err != nil {
		t.Fatal(err)
	}
	mctx, stopMedia := context.WithCancel(context.Background())
	var media sync.WaitGroup
	t.Cleanup(func() { stopMedia(); media.Wait() })
	sendVP8(mctx, &media, video)
	var onEU, onHCM counter
	dave := dialWith(t, eu, roomName, "dave", auth.Grants{CanSubscribe: true}, onEU.onTrack)
	t.Cleanup(func() { dave.Close(); onEU.wg.Wait() })
	carol := dialWith(t, hcm, roomName, "carol", auth.Grants{CanSubscribe: true}, onHCM.onTrack)
	t.Cleanup(func() { carol.Close(); onHCM.wg.Wait() })
	eventuallyT(t, 20*time.Second, "dave on eu and carol on hcm receive alice's video", func() bool {
		return onEU.count() > 30 && onHCM.count() > 30
	}, func() string { return fmt.Sprintf("eu %d, hcm %d packets", onEU.count(), onHCM.count()) })
}
