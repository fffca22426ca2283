package metrics

import (
	"context"
	"errors"
	"net"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
)

// redisOps are the op label values: the commands Cascade sends, plus "pipeline" (a pipeline
// or transaction, timed as one), "dial" (a new connection) and "other" (any other command),
// so the number of series stays fixed.
var redisOps = []string{
	"get", "set", "del", "exists", "expire", "pexpire", "mget", "hget", "hset", "hdel", "hgetall", "hlen",
	"sadd", "srem", "smembers", "scard", "publish", "subscribe", "psubscribe", "unsubscribe", "ping",
	"watch", "unwatch", "multi", "exec", "eval", "evalsha", "scan", "keys", "incr",
	"pipeline", "dial", "other",
}

// RedisHook times the Redis commands of one client and counts their errors, by command. Add
// it with (*redis.Client).AddHook and register it with a Prometheus registry.
type RedisHook struct {
	known     map[string]bool
	durations *prometheus.HistogramVec
	errs      *prometheus.CounterVec
}

var _ redis.Hook = (*RedisHook)(nil)

// NewRedisHook returns a hook whose metrics carry the node label.
func NewRedisHook(nodeID string) *RedisHook {
	l := prometheus.Labels{"node": nodeID}
	h := &RedisHook{
		known: map[string]bool{},
		durations: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "cascade_redis_operation_duration_seconds", Help: "Redis command latency seen by this node, by command (op).",
			ConstLabels: l, Buckets: []float64{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1},
		}, []string{"op"}),
		errs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cascade_redis_errors_total", Help: "Redis commands that failed (a missing key is not a failure), by command (op).", ConstLabels: l,
		}, []string{"op"}),
	}
	for _, op := range redisOps {
		h.known[op] = true
		h.errs.WithLabelValues(op)
	}
	// Latency series appear as commands run (at most one per op); "pipeline" exists from the
	// start, so the histogram is in every scrape.
	h.durations.WithLabelValues("pipeline")
	return h
}

// Describe implements prometheus.Collector.
func (h *RedisHook) Describe(ch chan<- *prometheus.Desc) {
	h.durations.Describe(ch)
	h.errs.Describe(ch)
}

// Collect implements prometheus.Collector.
func (h *RedisHook) Collect(ch chan<- prometheus.Metric) {
	h.durations.Collect(ch)
	h.errs.Collect(ch)
}

// DialHook implements redis.Hook: it counts failed dials.
func (h *RedisHook) DialHook(next redis.DialHook) redis.DialHook {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		start := time.Now()
		c, err := next(ctx, network, addr)
		h.done("dial", start, err)
		return c, err
	}
}

// ProcessHook implements redis.Hook.
func (h *RedisHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		start := time.Now()
		err := next(ctx, cmd)
		h.done(h.op(cmd.Name()), start, err)
		return err
	}
}

// ProcessPipelineHook implements redis.Hook: a pipeline or transaction is one "pipeline" op.
func (h *RedisHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		start := time.Now()
		err := next(ctx, cmds)
		h.done("pipeline", start, err)
		return err
	}
}

func (h *RedisHook) done(op string, start time.Time, err error) {
	h.durations.WithLabelValues(op).Observe(time.Since(start).Seconds())
	if err != nil && !errors.Is(err, redis.Nil) {
		h.errs.WithLabelValues(op).Inc()
	}
}

// op is the bounded label for a command name.
func (h *RedisHook) op(name string) string {
	if n := strings.ToLower(name); h.known[n] && n != "pipeline" && n != "dial" {
		return n
	}
	return "other"
}
