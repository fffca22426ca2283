package room

import (
	"context"
	"slices"
	"time"
)

// Sequencer numbers a room's data messages in one order for every node that hosts the room
// (a counter in the cluster's shared store). Next takes a number; Current returns the last
// number taken (0 for none), which is where a room new on this node starts. Both are called
// without any room lock held.
type Sequencer interface {
	Next(ctx context.Context, room Name) (uint64, error)
	Current(ctx context.Context, room Name) (uint64, error)
}

const (
	// sequenceTimeout bounds the wait for a number from the Sequencer.
	sequenceTimeout = 2 * time.Second
	// gapTimeout is how long messages wait for a missing number before it is skipped (its
	// sender's node died between numbering and sending, or the message was dropped).
	gapTimeout = time.Second
	// maxPending bounds the messages held back waiting for a missing number.
	maxPending = 256
	// resetWindow: a number this far below the next expected one means the counter restarted
	// (the shared store lost it): the order starts again from it.
	resetWindow = 1 << 16
)

// ordering delivers a room's numbered data messages in number order. Guarded by the room's
// eventMu.
type ordering struct {
	ready   bool   // next is known: from the Sequencer's Current, or after waiting gapTimeout
	next    uint64 // the number delivered next
	pending map[uint64]DataMessage
	since   time.Time // when the oldest pending message arrived
}

// number gives msg its number from the Sequencer. Called without locks.
func (r *Room) number(msg *DataMessage) error {
	ctx, cancel := context.WithTimeout(context.Background(), sequenceTimeout)
	defer cancel()
	n, err := r.cfg.Sequencer.Next(ctx, r.name)
	if err != nil {
		r.log.Warn("cannot number a data message", "err", err)
		return ErrUnordered
	}
	msg.Seq = n
	return nil
}

// startOrder learns where the room's order stands before any message is delivered: run by
// the room goroutine when the room opens on this node. Messages that arrive meanwhile wait.
func (r *Room) startOrder() {
	if r.cfg.Sequencer == nil {
		return // ready from the start (newRoom)
	}
	ctx, cancel := context.WithTimeout(context.Background(), sequenceTimeout)
	cur, err := r.cfg.Sequencer.Current(ctx, r.name)
	cancel()
	r.eventMu.Lock()
	defer r.eventMu.Unlock()
	o := &r.order
	if o.ready {
		return
	}
	if err != nil {
		r.log.Warn("cannot read the room's message order; starting from the first message seen", "err", err)
		return // flushLocked starts from the first pending message after gapTimeout
	}
	o.ready, o.next = true, cur+1
	if len(o.pending) > 0 {
		o.next = min(o.next, slices.Min(mapKeys(o.pending)))
	}
	r.flushLocked(time.Now())
}

// enqueueLocked takes a numbered message and delivers what is now in order. A message below
// the next number (late, after its gap was skipped) is delivered at once rather than lost.
// eventMu must be held.
func (r *Room) enqueueLocked(msg DataMessage, now time.Time) {
	o := &r.order
	switch {
	case !o.ready:
	case msg.Seq+resetWindow < o.next:
		o.next = msg.Seq
	case msg.Seq < o.next:
		r.deliverLocked(msg, nil)
		return
	}
	if o.pending == nil {
		o.pending = map[uint64]DataMessage{}
	}
	if len(o.pending) == 0 {
		o.since = now
	}
	o.pending[msg.Seq] = msg
	r.flushLocked(now)
}

// flushLocked delivers the pending messages that are in order; when the oldest has waited
// gapTimeout, or too many wait, the missing numbers before it are skipped. eventMu held.
func (r *Room) flushLocked(now time.Time) {
	o := &r.order
	if !o.ready {
		if len(o.pending) == 0 || now.Sub(o.since) < gapTimeout {
			return
		}
		o.ready, o.next = true, slices.Min(mapKeys(o.pending))
	}
	for len(o.pending) > 0 {
		msg, ok := o.pending[o.next]
		if !ok {
			if now.Sub(o.since) < gapTimeout && len(o.pending) < maxPending {
				return
			}
			o.next = slices.Min(mapKeys(o.pending)) // skip the gap
			r.log.Warn("data messages lost before the next in order; skipped", "next", o.next)
			continue
		}
		delete(o.pending, o.next)
		o.next++
		o.since = now
		r.deliverLocked(msg, nil)
	}
}

// flushStale is run by the room goroutine: messages stuck behind a gap go out after
// gapTimeout even when nothing else arrives.
func (r *Room) flushStale(now time.Time) {
	r.eventMu.Lock()
	defer r.eventMu.Unlock()
	if len(r.order.pending) > 0 {
		r.flushLocked(now)
	}
}

func mapKeys(m map[uint64]DataMessage) []uint64 {
	keys := make([]uint64, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	return keys
}
