package cluster

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// MessageOrder numbers the data messages (chat, room state) of each room in one order for
// every node: a counter per room. Next takes the next number; Current returns the last one
// taken, 0 for none. A node delivers a room's messages in number order (pkg/room), so two
// clients on different nodes see them in the same order.
type MessageOrder interface {
	Next(ctx context.Context, room string) (uint64, error)
	Current(ctx context.Context, room string) (uint64, error)
}

// MemoryOrder is the MessageOrder of a node without Redis.
type MemoryOrder struct {
	mu sync.Mutex // guards n
	n  map[string]uint64
}

// NewMemoryOrder returns counters that start at 0.
func NewMemoryOrder() *MemoryOrder { return &MemoryOrder{n: map[string]uint64{}} }

// Next implements MessageOrder.
func (o *MemoryOrder) Next(_ context.Context, room string) (uint64, error) {
	if err := checkName("room", room); err != nil {
		return 0, err
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	o.n[room]++
	return o.n[room], nil
}

// Current implements MessageOrder.
func (o *MemoryOrder) Current(_ context.Context, room string) (uint64, error) {
	if err := checkName("room", room); err != nil {
		return 0, err
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.n[room], nil
}

// orderTTL is how long a room's counter outlives its last message in Redis. A counter that
// expires, or that a Redis restart loses, starts again at 1: nodes take a number far below
// the one they expect as a new start (pkg/room).
const orderTTL = 24 * time.Hour

// RedisOrder keeps each room's counter in Redis at <prefix>seq:<room>.
type RedisOrder struct {
	rdb    redis.UniversalClient
	prefix string
}

// NewRedisOrder returns counters in rdb under prefix (the cluster's key prefix).
func NewRedisOrder(rdb redis.UniversalClient, prefix string) *RedisOrder {
	return &RedisOrder{rdb: rdb, prefix: prefix}
}

func (o *RedisOrder) key(room string) string { return o.prefix + "seq:" + room }

// Next implements MessageOrder: INCR, and the key's expiry pushed back, in one transaction.
func (o *RedisOrder) Next(ctx context.Context, room string) (uint64, error) {
	if err := checkName("room", room); err != nil {
		return 0, err
	}
	var incr *redis.IntCmd
	_, err := o.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		incr = p.Incr(ctx, o.key(room))
		p.Expire(ctx, o.key(room), orderTTL)
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	return uint64(incr.Val()), nil
}

// Current implements MessageOrder.
func (o *RedisOrder) Current(ctx context.Context, room string) (uint64, error) {
	if err := checkName("room", room); err != nil {
		return 0, err
	}
	n, err := o.rdb.Get(ctx, o.key(room)).Uint64()
	switch {
	case errors.Is(err, redis.Nil):
		return 0, nil
	case err != nil:
		return 0, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	return n, nil
}
