package integration

import (
	"sync"
	"time"

	"github.com/pion/interceptor"
	"github.com/pion/rtp"
)

// impairment is a receive-side interceptor that drops incoming RTP before the rest of the
// stack (NACK generator, TWCC recorder) sees it: it emulates loss and a bandwidth limit on the
// subscriber's last mile.
type impairment struct {
	// dropFirst drops the first arrival of every sequence number for which it returns true;
	// retransmissions of it pass.
	dropFirst func(seq uint16) bool
	// rateBps, if set, polices incoming RTP to this many bits per second (token bucket, 100 ms
	// of burst).
	rateBps int

	mu      sync.Mutex
	dropped map[uint32]map[uint16]bool
	tokens  float64
	last    time.Time
	drops   int
}

func (m *impairment) NewInterceptor(string) (interceptor.Interceptor, error) {
	return &impairedPC{m: m}, nil
}

func (m *impairment) dropCount() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.drops
}

type impairedPC struct {
	interceptor.NoOp
	m *impairment
}

func (i *impairedPC) BindRemoteStream(_ *interceptor.StreamInfo, reader interceptor.RTPReader) interceptor.RTPReader {
	return interceptor.RTPReaderFunc(func(b []byte, a interceptor.Attributes) (int, interceptor.Attributes, error) {
		for {
			n, attrs, err := reader.Read(b, a)
			if err != nil {
				return n, attrs, err
			}
			var h rtp.Header
			if _, err := h.Unmarshal(b[:n]); err != nil || !i.m.drop(&h, n) {
				return n, attrs, nil
			}
		}
	})
}

func (m *impairment) drop(h *rtp.Header, size int) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.dropped == nil {
		m.dropped = map[uint32]map[uint16]bool{}
	}
	if m.dropFirst != nil && m.dropFirst(h.SequenceNumber) {
		seen := m.dropped[h.SSRC]
		if seen == nil {
			seen = map[uint16]bool{}
			m.dropped[h.SSRC] = seen
		}
		if !seen[h.SequenceNumber] {
			seen[h.SequenceNumber] = true
			m.drops++
			return true
		}
	}
	if m.rateBps > 0 {
		now := time.Now()
		burst := float64(m.rateBps) / 8 / 10
		if m.last.IsZero() {
			m.tokens = burst
		} else {
			m.tokens += now.Sub(m.last).Seconds() * float64(m.rateBps) / 8
			if m.tokens > burst {
				m.tokens = burst
			}
		}
		m.last = now
		if m.tokens < float64(size) {
			m.drops++
			return true
		}
		m.tokens -= float64(size)
	}
	return false
}
