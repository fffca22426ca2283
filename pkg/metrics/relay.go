package metrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/cascade-sfu/cascade/pkg/relay"
)

// LinkSource lists the node's relay links; relay.Manager (Coordinator.Links()) is one.
type LinkSource interface {
	Links() []relay.LinkInfo
}

// RelayCollector reports the node's relay links, one series per peer, labelled src (this
// node) and dst (the peer). It reads the links when scraped: every scrape reads each link's
// PeerConnection statistics, and may advance the sample its bitrates are computed over (see
// relay.LinkInfo).
//
// Only links open or being set up are listed; a closed link's series disappear, and its
// successor's counters start again at zero (Prometheus treats that as a counter reset).
type RelayCollector struct {
	src LinkSource

	openDesc, setupDesc, rttDesc, bytesDesc, bitrateDesc, estimateDesc, droppedDesc, nacksDesc, plisDesc, pausedDesc, lossDesc, residualDesc *prometheus.Desc
}

// NewRelayCollector returns a collector for the links of src; a nil src (a node without relay
// links) reports nothing. nodeID is the src label.
func NewRelayCollector(src LinkSource, nodeID string) *RelayCollector {
	l := prometheus.Labels{"src": nodeID}
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc("cascade_relay_link_"+name, help, append([]string{"dst"}, labels...), l)
	}
	return &RelayCollector{
		src:          src,
		openDesc:     d("open", "1 when the relay link to dst is open, 0 while it is being set up."),
		setupDesc:    d("setup_seconds", "Time the open link took to set up, from the first step to the open control channel."),
		rttDesc:      d("rtt_seconds", "ICE round-trip time of the link's nominated candidate pair (absent until measured)."),
		bytesDesc:    d("bytes_total", "Bytes on the link's ICE transport (media, RTCP, DTLS, SCTP, STUN) sent to dst (out) and received from it (in).", "direction"),
		bitrateDesc:  d("throughput_bytes_per_second", "Bytes per second on the link each way over the last sample interval (at least a second); ×8 for bits.", "direction"),
		estimateDesc: d("bandwidth_estimate_bytes_per_second", "GCC bandwidth estimate toward dst, bytes per second (absent before set-up); ×8 for bits."),
		droppedDesc:  d("control_dropped_total", "Control messages received from dst and dropped (malformed, or no handler and a full backlog)."),
		nacksDesc:    d("nacks_received_total", "Sequence numbers dst NACKed in the media src sends it (answered from src's cache)."),
		plisDesc:     d("plis_total", "Keyframe requests (PLI/FIR) on the link: in = from dst about src's media, out = sent by src to dst.", "direction"),
		lossDesc:     d("loss_ratio", "Loss on the link from src to dst before repair: sequence numbers dst NACKed per media packet src sent, over the last sample interval."),
		residualDesc: d("residual_loss_ratio", "Fraction of src's media that dst still missed after retransmissions, from its recent RTCP receiver reports (mean over the link's media slots)."),
		pausedDesc:   d("paused_layers", "Track layers src has paused toward dst because the link is congested (video top layers first, never audio)."),
	}
}

func (c *RelayCollector) descs() []*prometheus.Desc {
	return []*prometheus.Desc{
		c.openDesc, c.setupDesc, c.rttDesc, c.bytesDesc, c.bitrateDesc, c.estimateDesc, c.droppedDesc, c.nacksDesc, c.plisDesc, c.pausedDesc, c.lossDesc, c.residualDesc,
	}
}

// Describe implements prometheus.Collector.
func (c *RelayCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range c.descs() {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *RelayCollector) Collect(ch chan<- prometheus.Metric) {
	if c.src == nil {
		return
	}
	for _, info := range c.src.Links() {
		if info.State == relay.StateClosed {
			continue
		}
		dst := string(info.Peer)
		gauge := func(d *prometheus.Desc, v float64, labels ...string) {
			ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, append([]string{dst}, labels...)...)
		}
		counter := func(d *prometheus.Desc, v uint64, labels ...string) {
			ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), append([]string{dst}, labels...)...)
		}
		open := info.State == relay.StateOpen
		if open {
			gauge(c.openDesc, 1)
			gauge(c.setupDesc, info.OpenedAfter.Seconds())
		} else {
			gauge(c.openDesc, 0)
		}
		if info.RTT > 0 {
			gauge(c.rttDesc, info.RTT.Seconds())
		}
		counter(c.bytesDesc, info.BytesSent, "out")
		counter(c.bytesDesc, info.BytesReceived, "in")
		gauge(c.bitrateDesc, float64(info.SendBitrate)/8, "out") // base unit: bytes
		gauge(c.bitrateDesc, float64(info.RecvBitrate)/8, "in")
		if info.BandwidthEstimate > 0 {
			gauge(c.estimateDesc, float64(info.BandwidthEstimate)/8)
		}
		counter(c.droppedDesc, info.ControlDropped)
		counter(c.nacksDesc, info.NACKsReceived)
		counter(c.plisDesc, info.PLIsReceived, "in")
		counter(c.plisDesc, info.PLIsSent, "out")
		gauge(c.pausedDesc, float64(info.PausedLayers))
		gauge(c.lossDesc, info.LossOut)
		gauge(c.residualDesc, info.ResidualLossOut)
	}
}
