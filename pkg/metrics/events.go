package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cascade-sfu/cascade/pkg/room"
)

// Events counts what happens once per message, join or subscription: signalling messages and
// errors, join latency and time to first packet. It implements signal.Observer, and its
// FirstPacket method fits room.Config.FirstPacket. Every label value is known in advance
// (created at construction, so every series exists from the first scrape); anything else is
// counted as "other", so the number of series is fixed.
type Events struct {
	messages     *prometheus.CounterVec
	errors       *prometheus.CounterVec
	joins        *prometheus.HistogramVec
	firstPacket  [2]prometheus.Observer // audio, video
	types, codes map[string]bool        // known label values, read-only after construction
	collectors   []prometheus.Collector
}

// Bucket bounds, in seconds. A join is token check, cluster admission (a Redis round trip)
// and room entry; the first packet waits for ICE, DTLS and a keyframe.
var (
	joinBuckets        = []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5}
	firstPacketBuckets = []float64{0.05, 0.1, 0.25, 0.5, 1, 2, 3, 5, 10, 20, 30}
)

// NewEvents returns the event metrics for nodeID. types and codes are the message types and
// error codes the signalling server reports (signal.MessageTypes, signal.ErrorCodes).
func NewEvents(nodeID string, types, codes []string) *Events {
	l := prometheus.Labels{"node": nodeID}
	e := &Events{
		messages: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cascade_signal_messages_total", Help: "WebSocket messages received from clients, by type.", ConstLabels: l,
		}, []string{"type"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cascade_signal_errors_total", Help: "Errors sent to clients (WebSocket error messages and HTTP refusals), by code.", ConstLabels: l,
		}, []string{"code"}),
		joins: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "cascade_join_duration_seconds", Help: "Time from a verified token to the participant in its room, by transport.",
			ConstLabels: l, Buckets: joinBuckets,
		}, []string{"transport"}),
		types: map[string]bool{}, codes: map[string]bool{},
	}
	first := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "cascade_first_packet_seconds", Help: "Time from a subscription's creation to its first packet sent to the subscriber, by kind.",
		ConstLabels: l, Buckets: firstPacketBuckets,
	}, []string{"kind"})
	e.firstPacket[0] = first.WithLabelValues("audio")
	e.firstPacket[1] = first.WithLabelValues("video")
	for _, t := range append(types, "other") {
		e.types[t] = true
		e.messages.WithLabelValues(t)
	}
	for _, c := range append(codes, "other") {
		e.codes[c] = true
		e.errors.WithLabelValues(c)
	}
	for _, t := range []string{"ws", "whip", "whep"} {
		e.joins.WithLabelValues(t)
	}
	e.collectors = []prometheus.Collector{e.messages, e.errors, e.joins, first}
	return e
}

// Collectors returns what to register.
func (e *Events) Collectors() []prometheus.Collector { return e.collectors }

// Message counts one WebSocket message by type.
func (e *Events) Message(typ string) { e.messages.WithLabelValues(label(e.types, typ)).Inc() }

// Error counts one error sent to a client, by code.
func (e *Events) Error(code string) { e.errors.WithLabelValues(label(e.codes, code)).Inc() }

// Joined observes one join's duration.
func (e *Events) Joined(transport string, took time.Duration) {
	switch transport {
	case "ws", "whip", "whep":
		e.joins.WithLabelValues(transport).Observe(took.Seconds())
	}
}

// FirstPacket observes one subscription's time to first packet. It allocates nothing.
func (e *Events) FirstPacket(kind room.Kind, after time.Duration) {
	i := 1
	if kind == room.KindAudio {
		i = 0
	}
	e.firstPacket[i].Observe(after.Seconds())
}

func label(known map[string]bool, v string) string {
	if known[v] {
		return v
	}
	return "other"
}
