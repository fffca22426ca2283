package main

import (
	"context"
	"log/slog"
	"runtime/debug"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/redis/go-redis/v9"

	"github.com/cascade-sfu/cascade/pkg/cluster"
	"github.com/cascade-sfu/cascade/pkg/metrics"
	"github.com/cascade-sfu/cascade/pkg/rtc"
	"github.com/cascade-sfu/cascade/pkg/signal"
)

// maxTopRooms bounds --metrics-top-rooms, and so the number of per-room series.
const maxTopRooms = 1000

// redisLogEvery is the least time between two log lines of one go-redis message pattern.
const redisLogEvery = 10 * time.Second

// nodeMetrics are the metrics fed by events (signalling, first packets, Redis commands), made
// before the parts that report to them.
type nodeMetrics struct {
	events *metrics.Events
	redis  *metrics.RedisHook
}

func newNodeMetrics(cfg Config) *nodeMetrics {
	return &nodeMetrics{
		events: metrics.NewEvents(cfg.NodeID, signal.MessageTypes(), signal.ErrorCodes()),
		redis:  metrics.NewRedisHook(cfg.NodeID),
	}
}

// registry returns the registry /metrics serves: every collector of the node.
func (n *node) registry() *prometheus.Registry {
	var links metrics.LinkSource // none without relays (no --redis)
	if n.cluster.relays != nil {
		links = n.cluster.relays.Links()
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		metrics.NewRoomCollector(n.rooms, n.cfg.NodeID, n.cfg.MetricsTopRooms),
		metrics.NewRelayCollector(links, n.cfg.NodeID),
		metrics.NewNodeCollector(metrics.NodeSource{
			NodeID: n.cfg.NodeID, Region: n.cfg.Region, Version: version(),
			Draining:     n.cluster.draining.Load,
			ClusterNodes: n.cluster.nodeCounts,
			SerfMembers: func() map[string]int {
				if n.cluster.membership == nil {
					return nil
				}
				return n.cluster.membership.MemberCounts()
			},
		}),
		n.metrics.redis,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	reg.MustRegister(n.metrics.events.Collectors()...)
	port := func(name, help string, v func(rtc.MediaPortStats) uint64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "cascade_media_port_" + name, Help: help, ConstLabels: prometheus.Labels{"node": n.cfg.NodeID},
		}, func() float64 { return float64(v(n.engine.MediaPortStats())) })
	}
	reg.MustRegister(
		port("batch_sends_total", "Messages made of the datagrams of write batches; with UDP GSO one message carries a subscriber's packets of a frame (up to 64 messages leave in one sendmmsg call).",
			func(s rtc.MediaPortStats) uint64 { return s.BatchSends }),
		port("batch_datagrams_total", "Datagrams sent in write batches.",
			func(s rtc.MediaPortStats) uint64 { return s.BatchDatagrams }),
		port("own_path_packets_total", "RTP packets sent to subscribers on the node's own SRTP write path rather than pion's.",
			func(s rtc.MediaPortStats) uint64 { return s.OwnPathPackets }),
		port("own_path_rtcp_total", "Subscribers' SRTCP datagrams handled on the node's own read path rather than pion's.",
			func(s rtc.MediaPortStats) uint64 { return s.OwnPathRTCP }),
	)
	return reg
}

// nodeCounts counts the registry's nodes by state: from the background cache with Redis (no
// I/O at scrape time), else from the in-memory registry.
func (c *clusterParts) nodeCounts() map[string]int {
	var nodes []cluster.Node
	if c.nodes != nil {
		nodes = c.nodes.Nodes()
	} else {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		nodes, _ = c.registry.Nodes(ctx) // in memory: cannot fail or block
		cancel()
	}
	out := map[string]int{}
	for _, nd := range nodes {
		out[string(nd.State)]++
	}
	return out
}

// version is the module version the binary was built from; for a build from a checkout,
// "devel-" and the commit (with "-dirty" for uncommitted changes).
func version() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	if v := bi.Main.Version; v != "" && v != "(devel)" {
		return v
	}
	rev, dirty := "", false
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value[:min(12, len(s.Value))]
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if rev == "" {
		return "devel"
	}
	if dirty {
		rev += "-dirty"
	}
	return "devel-" + rev
}

// installLibLoggers routes go-redis's process-global logger through slog, rate-limited. Only
// main calls it: it changes state shared by every Redis client of the process.
func installLibLoggers(log *slog.Logger) {
	redis.SetLogger(cluster.NewRedisLogger(log.With("component", "redis"), redisLogEvery))
}
