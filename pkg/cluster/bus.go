package cluster

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// Bus carries signed control messages between nodes: one channel per node (Redis pub/sub in a
// cluster). A receiver drops anything unsigned, badly signed, stale, replayed, addressed to
// another node or sent by a node that is not a live member.
type Bus interface {
	Send(ctx context.Context, to NodeID, typ string, body any) error
	Close() error
}

// Message is one control message on the bus.
type Message struct {
	Type string          `json:"type"`
	ID   string          `json:"id"`
	From NodeID          `json:"from"`
	To   NodeID          `json:"to"`
	TS   int64           `json:"ts"` // unix milliseconds
	Body json.RawMessage `json:"body"`
	MAC  string          `json:"mac"`
}

// Reasons a message is dropped.
var (
	ErrBadMAC    = errors.New("bus: bad or missing signature")
	ErrStale     = errors.New("bus: message too old or from the future")
	ErrReplayed  = errors.New("bus: message replayed")
	ErrNotMember = errors.New("bus: sender is not a live member")
	ErrWrongNode = errors.New("bus: message for another node")
	ErrMalformed = errors.New("bus: malformed message")
)

// maxBusMessage bounds a control message.
const maxBusMessage = 64 << 10

// BusConfig sets up a bus endpoint.
type BusConfig struct {
	Self   NodeID
	Secret []byte // the cluster secret shared by all nodes
	// MaxSkew bounds the age of an accepted message (default 30 s).
	MaxSkew time.Duration
	// IsMember reports whether a node is a live member of the cluster.
	IsMember func(ctx context.Context, id NodeID) bool
	// Handler receives every accepted message, on the bus goroutine; it must not block long.
	Handler func(Message)
	Logger  *slog.Logger
	now     func() time.Time
}

func (c *BusConfig) defaults() {
	if c.MaxSkew <= 0 {
		c.MaxSkew = 30 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.now == nil {
		c.now = time.Now
	}
}

// signer signs and verifies messages and remembers recent ids.
type signer struct {
	cfg BusConfig

	mu   sync.Mutex // guards seen
	seen map[string]int64
}

func (s *signer) mac(m *Message) string {
	h := hmac.New(sha256.New, s.cfg.Secret)
	for _, part := range []string{m.Type, m.ID, string(m.From), string(m.To), strconv.FormatInt(m.TS, 10)} {
		h.Write([]byte(part))
		h.Write([]byte{0})
	}
	h.Write(m.Body)
	return base64.RawStdEncoding.EncodeToString(h.Sum(nil))
}

func (s *signer) seal(to NodeID, typ string, body any) ([]byte, error) {
	b, err := json.Marshal(body)
	if err != nil {
		return nil, err
	}
	m := Message{Type: typ, ID: rand.Text(), From: s.cfg.Self, To: to, TS: s.cfg.now().UnixMilli(), Body: b}
	m.MAC = s.mac(&m)
	return json.Marshal(m)
}

// open verifies a received payload.
func (s *signer) open(ctx context.Context, payload []byte) (Message, error) {
	var m Message
	if len(payload) > maxBusMessage || json.Unmarshal(payload, &m) != nil || m.ID == "" || m.Type == "" {
		return Message{}, ErrMalformed
	}
	if !hmac.Equal([]byte(s.mac(&m)), []byte(m.MAC)) {
		return Message{}, ErrBadMAC
	}
	if m.To != s.cfg.Self {
		return Message{}, ErrWrongNode
	}
	now := s.cfg.now().UnixMilli()
	if d := now - m.TS; d > s.cfg.MaxSkew.Milliseconds() || -d > s.cfg.MaxSkew.Milliseconds() {
		return Message{}, ErrStale
	}
	if !s.remember(m.ID, now) {
		return Message{}, ErrReplayed
	}
	if s.cfg.IsMember != nil && !s.cfg.IsMember(ctx, m.From) {
		return Message{}, ErrNotMember
	}
	return m, nil
}

// remember records id; false if it was seen within the skew window. Old ids are pruned, so
// memory is bounded by the message rate times twice the skew.
func (s *signer) remember(id string, now int64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.seen == nil {
		s.seen = map[string]int64{}
	}
	if _, dup := s.seen[id]; dup {
		return false
	}
	horizon := 2 * s.cfg.MaxSkew.Milliseconds()
	if len(s.seen) >= 1024 {
		for k, at := range s.seen {
			if now-at > horizon {
				delete(s.seen, k)
			}
		}
	}
	s.seen[id] = now
	return true
}

// RedisBus is a Bus over Redis pub/sub: node X listens on "<prefix>bus:X".
type RedisBus struct {
	rdb    redis.UniversalClient
	prefix string
	sign   *signer
	log    *slog.Logger
	sub    *redis.PubSub
	done   chan struct{}
	once   sync.Once
}

// NewRedisBus subscribes to this node's channel and starts delivering to cfg.Handler.
func NewRedisBus(ctx context.Context, rdb redis.UniversalClient, prefix string, cfg BusConfig) (*RedisBus, error) {
	cfg.defaults()
	if len(cfg.Secret) == 0 {
		return nil, fmt.Errorf("bus: a cluster secret is required")
	}
	b := &RedisBus{rdb: rdb, prefix: prefix, sign: &signer{cfg: cfg}, log: cfg.Logger.With("component", "bus"), done: make(chan struct{})}
	b.sub = rdb.Subscribe(ctx, b.channel(cfg.Self))
	if _, err := b.sub.Receive(ctx); err != nil {
		_ = b.sub.Close()
		return nil, fmt.Errorf("bus: subscribe: %w", err)
	}
	go b.run()
	return b, nil
}

func (b *RedisBus) channel(id NodeID) string { return b.prefix + "bus:" + string(id) }

func (b *RedisBus) run() {
	defer close(b.done)
	for msg := range b.sub.Channel() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		m, err := b.sign.open(ctx, []byte(msg.Payload))
		cancel()
		if err != nil {
			b.log.Warn("dropped a bus message", "err", err)
			continue
		}
		if h := b.sign.cfg.Handler; h != nil {
			h(m)
		}
	}
}

// Send signs and publishes a message to another node's channel.
func (b *RedisBus) Send(ctx context.Context, to NodeID, typ string, body any) error {
	payload, err := b.sign.seal(to, typ, body)
	if err != nil {
		return err
	}
	return b.rdb.Publish(ctx, b.channel(to), payload).Err()
}

// Close unsubscribes and waits for the delivery goroutine.
func (b *RedisBus) Close() error {
	var err error
	b.once.Do(func() {
		err = b.sub.Close()
		<-b.done
	})
	return err
}
