package relay

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/pion/webrtc/v4"
)

// Send sends msg to the peer on the control channel: ordered and reliable. It waits while
// the channel's queue is full (more than 1 MiB), until ctx ends.
func (l *Link) Send(ctx context.Context, msg ControlMessage) error {
	b, err := json.Marshal(msg)
	if err != nil {
		return err
	}
	if len(b) > MaxControlMessage {
		return fmt.Errorf("%w: %d bytes, at most %d", ErrTooLarge, len(b), MaxControlMessage)
	}
	l.mu.Lock()
	state, dc := l.state, l.dc
	l.mu.Unlock()
	if state != StateOpen {
		return ErrLinkClosed
	}
	for dc.BufferedAmount() > maxBuffered {
		select {
		case <-l.bufLow:
		case <-l.done:
			return ErrLinkClosed
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if err := dc.Send(b); err != nil {
		return fmt.Errorf("%w: %v", ErrLinkFailed, err)
	}
	return nil
}

// OnControl sets the handler of the peer's control messages. Messages that arrived before a
// handler was set (up to 256) are delivered first, in order. The handler is called from one
// goroutine at a time and must not block; it must not call Close (see there).
func (l *Link) OnControl(f func(ControlMessage)) {
	l.deliverMu.Lock()
	defer l.deliverMu.Unlock()
	l.mu.Lock()
	l.onControl = f
	backlog := l.backlog
	l.backlog = nil
	l.mu.Unlock()
	if f == nil {
		return
	}
	for _, msg := range backlog {
		f(msg)
	}
}

// receive decodes a control message and delivers it, or keeps it until a handler is set.
func (l *Link) receive(raw webrtc.DataChannelMessage) {
	var msg ControlMessage
	if len(raw.Data) > MaxControlMessage || json.Unmarshal(raw.Data, &msg) != nil || msg.Type == "" {
		l.mu.Lock()
		l.dropped++
		l.mu.Unlock()
		l.log.Debug("dropped a malformed control message", "bytes", len(raw.Data))
		return
	}
	l.deliverMu.Lock()
	defer l.deliverMu.Unlock()
	l.mu.Lock()
	f := l.onControl
	if f == nil {
		if len(l.backlog) < maxBacklog {
			l.backlog = append(l.backlog, msg)
		} else {
			l.dropped++
		}
	}
	l.mu.Unlock()
	if f != nil {
		f(msg)
	}
}
