// Package metrics exports a node's state and forwarding counters to Prometheus (docs/metrics.md
// lists every metric).
//
// The collectors read the room manager, its atomic counters, the relay links and the cluster
// caches at scrape time; nothing per packet touches Prometheus. Events (signalling messages and
// errors, joins, a subscription's first packet) are observed once per event through Events,
// which pkg/signal and pkg/room see only as a small interface and a func; RedisHook times the
// node's Redis commands. Every label takes values from a fixed set, except room (top N rooms
// only) and the relay link's dst.
package metrics

import (
	"cmp"
	"slices"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cascade-sfu/cascade/pkg/room"
)

// RoomCollector reports rooms, participants, tracks and the forwarding counters.
type RoomCollector struct {
	rooms    *room.Manager
	topRooms int // per-room series for this many of the largest rooms; 0: none

	roomsDesc, participantsDesc, tracksDesc, subscriptionsDesc *prometheus.Desc
	packetsDesc, bytesDesc                                     *prometheus.Desc
	nacksDesc, retransmitsDesc, retransmitMissesDesc           *prometheus.Desc
	retransmitsSuppressedDesc                                  *prometheus.Desc
	plisDesc, keyframeReqDesc, layerSwitchesDesc, dropsDesc    *prometheus.Desc
	keyframeReplaysDesc                                        *prometheus.Desc
	roomParticipantsDesc                                       *prometheus.Desc
}

// NewRoomCollector returns a collector for m. nodeID is attached as a constant label.
// topRooms > 0 adds cascade_room_participants for that many of the largest rooms (by local
// participants); the bound keeps the number of series fixed however many rooms there are.
func NewRoomCollector(m *room.Manager, nodeID string, topRooms int) *RoomCollector {
	l := prometheus.Labels{"node": nodeID}
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc("cascade_"+name, help, labels, l)
	}
	return &RoomCollector{
		rooms:                     m,
		topRooms:                  max(0, topRooms),
		roomParticipantsDesc:      d("room_participants", "Participants connected to this node, per room, for the largest rooms only (--metrics-top-rooms).", "room"),
		roomsDesc:                 d("rooms", "Rooms open on this node."),
		participantsDesc:          d("participants", "Participants in this node's rooms, by kind: visible, hidden (WHEP viewers) or remote (on another node, shown here by the relay).", "kind"),
		tracksDesc:                d("tracks", "Published tracks on this node, by kind.", "kind"),
		subscriptionsDesc:         d("subscriptions", "Down tracks (one subscriber's copy of a track) on this node."),
		packetsDesc:               d("rtp_packets_total", "RTP packets received from publishers (in) and sent to subscribers (out).", "direction"),
		bytesDesc:                 d("rtp_bytes_total", "RTP bytes received (in) and sent (out).", "direction"),
		nacksDesc:                 d("nacks_received_total", "Sequence numbers NACKed by subscribers."),
		retransmitsDesc:           d("retransmits_total", "Packets resent from the cache after a NACK."),
		retransmitMissesDesc:      d("retransmit_misses_total", "NACKed packets that were no longer in the cache."),
		retransmitsSuppressedDesc: d("retransmits_suppressed_total", "NACKs not answered because the packet was resent too recently (250 ms) or already three times."),
		plisDesc:                  d("plis_received_total", "PLI/FIR received from subscribers."),
		keyframeReqDesc:           d("keyframe_requests_total", "Keyframe requests sent to publishers after aggregation and throttling."),
		layerSwitchesDesc:         d("layer_switches_total", "Simulcast layer switches done for subscribers."),
		keyframeReplaysDesc:       d("keyframe_replays_total", "New subscribers started from a layer's cached keyframe instead of a keyframe request to the publisher."),
		dropsDesc:                 d("dropped_packets_total", "Packets not forwarded, by reason.", "reason"),
	}
}

// Describe implements prometheus.Collector.
func (c *RoomCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{
		c.roomsDesc, c.participantsDesc, c.tracksDesc, c.subscriptionsDesc, c.packetsDesc, c.bytesDesc,
		c.nacksDesc, c.retransmitsDesc, c.retransmitMissesDesc, c.retransmitsSuppressedDesc, c.plisDesc, c.keyframeReqDesc,
		c.layerSwitchesDesc, c.dropsDesc, c.roomParticipantsDesc, c.keyframeReplaysDesc,
	} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *RoomCollector) Collect(ch chan<- prometheus.Metric) {
	rooms := c.rooms.Rooms()
	var visible, hidden, remote, audio, video, subs int
	var sizes []roomSize
	if c.topRooms > 0 {
		sizes = make([]roomSize, 0, len(rooms))
	}
	for _, r := range rooms {
		local := 0
		for _, p := range r.Participants() {
			switch {
			case p.Origin() != "":
				remote++
			case p.Hidden():
				hidden++
				local++
			default:
				visible++
				local++
			}
			subs += len(p.Subscriptions())
		}
		if c.topRooms > 0 {
			sizes = append(sizes, roomSize{string(r.Name()), local})
		}
		for _, t := range r.Tracks() {
			if t.Kind() == room.KindAudio {
				audio++
			} else {
				video++
			}
		}
	}
	gauge := func(d *prometheus.Desc, v int, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, float64(v), labels...)
	}
	gauge(c.roomsDesc, len(rooms))
	gauge(c.participantsDesc, visible, "visible")
	gauge(c.participantsDesc, hidden, "hidden")
	gauge(c.participantsDesc, remote, "remote")
	gauge(c.tracksDesc, audio, "audio")
	gauge(c.tracksDesc, video, "video")
	gauge(c.subscriptionsDesc, subs)
	for _, rs := range largest(sizes, c.topRooms) {
		gauge(c.roomParticipantsDesc, rs.participants, rs.name)
	}

	s := c.rooms.Stats()
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	counter(c.packetsDesc, s.PacketsIn.Load(), "in")
	counter(c.packetsDesc, s.PacketsOut.Load(), "out")
	counter(c.bytesDesc, s.BytesIn.Load(), "in")
	counter(c.bytesDesc, s.BytesOut.Load(), "out")
	counter(c.nacksDesc, s.NACKsReceived.Load())
	counter(c.retransmitsDesc, s.Retransmits.Load())
	counter(c.retransmitMissesDesc, s.RetransmitMisses.Load())
	counter(c.retransmitsSuppressedDesc, s.RetransmitsSuppressed.Load())
	counter(c.plisDesc, s.PLIsReceived.Load())
	counter(c.keyframeReqDesc, s.KeyframeRequests.Load())
	counter(c.layerSwitchesDesc, s.LayerSwitches.Load())
	counter(c.keyframeReplaysDesc, s.KeyframeReplays.Load())
	for _, r := range room.DropReasons() {
		counter(c.dropsDesc, s.Drops(r), r.String())
	}
}

type roomSize struct {
	name         string
	participants int
}

// largest returns the n largest rooms, largest first; ties go to the smaller name, so the
// series do not flap between equal rooms from one scrape to the next.
func largest(sizes []roomSize, n int) []roomSize {
	slices.SortFunc(sizes, func(a, b roomSize) int {
		if c := cmp.Compare(b.participants, a.participants); c != 0 {
			return c
		}
		return cmp.Compare(a.name, b.name)
	})
	return sizes[:min(n, len(sizes))]
}
