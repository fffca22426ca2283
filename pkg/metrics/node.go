package metrics

import "github.com/prometheus/client_golang/prometheus"

// NodeStates are the states a node can be in, in the registry and in cascade_node_state.
var nodeStates = [...]string{"active", "draining"}

// serfStates are the member states Serf knows.
var serfStates = [...]string{"alive", "leaving", "left", "failed"}

// NodeSource is what the node collector reads at scrape time. Every func must be cheap and
// must not do I/O (read a cache, not Redis); a nil func reports zeros.
type NodeSource struct {
	NodeID, Region, Version string
	// Draining reports whether this node is draining.
	Draining func() bool
	// ClusterNodes counts the nodes in the registry by state ("active", "draining").
	ClusterNodes func() map[string]int
	// SerfMembers counts gossip members by state ("alive", "leaving", "left", "failed").
	SerfMembers func() map[string]int
}

// NodeCollector reports the node's identity and state and its view of the cluster.
type NodeCollector struct {
	src                                        NodeSource
	infoDesc, stateDesc, clusterDesc, serfDesc *prometheus.Desc
}

// NewNodeCollector returns a collector reading src.
func NewNodeCollector(src NodeSource) *NodeCollector {
	l := prometheus.Labels{"node": src.NodeID}
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc("cascade_"+name, help, labels, l)
	}
	return &NodeCollector{
		src:         src,
		infoDesc:    d("node_info", "Always 1; the labels describe the node.", "region", "version"),
		stateDesc:   d("node_state", "1 for the node's current state, 0 for the others.", "state"),
		clusterDesc: d("cluster_nodes", "Nodes in the cluster registry, by state, as this node last read it.", "state"),
		serfDesc:    d("serf_members", "Gossip (Serf) members this node knows, by state; all 0 without gossip.", "state"),
	}
}

// Describe implements prometheus.Collector.
func (c *NodeCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.infoDesc
	ch <- c.stateDesc
	ch <- c.clusterDesc
	ch <- c.serfDesc
}

// Collect implements prometheus.Collector.
func (c *NodeCollector) Collect(ch chan<- prometheus.Metric) {
	gauge := func(d *prometheus.Desc, v int, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, float64(v), labels...)
	}
	gauge(c.infoDesc, 1, c.src.Region, c.src.Version)
	state := "active"
	if c.src.Draining != nil && c.src.Draining() {
		state = "draining"
	}
	for _, s := range nodeStates {
		gauge(c.stateDesc, boolInt(s == state), s)
	}
	counts := call(c.src.ClusterNodes)
	for _, s := range nodeStates {
		gauge(c.clusterDesc, counts[s], s)
	}
	counts = call(c.src.SerfMembers)
	for _, s := range serfStates {
		gauge(c.serfDesc, counts[s], s)
	}
}

func call(f func() map[string]int) map[string]int {
	if f == nil {
		return nil
	}
	return f()
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
