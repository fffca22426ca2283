package relay

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/cascade-sfu/cascade/pkg/cluster"
	"github.com/cascade-sfu/cascade/pkg/rtc"
)

// DefaultOfferTimeout bounds the set-up of a link, from the offer to the open control channel.
const DefaultOfferTimeout = 10 * time.Second

// closeNotifyTimeout bounds the relay_close a closing link sends its peer.
const closeNotifyTimeout = 2 * time.Second

// Config sets up a Manager.
type Config struct {
	// Self is this node's id. Between two nodes the one with the lexically smaller id offers
	// when both try at once.
	Self cluster.NodeID
	// Engine creates the links' PeerConnections (the node's ICE UDP mux and codecs).
	Engine *rtc.Engine
	// Bus carries offers, answers and close notices to other nodes.
	Bus cluster.Bus
	// OfferTimeout bounds a link's set-up, from the offer to the open control channel
	// (default DefaultOfferTimeout).
	OfferTimeout time.Duration
	// OnLink, if set, is called when a link opens, on either side, before any control message
	// of it is delivered to an OnControl handler set in the callback. It runs on a pion
	// goroutine and must not block.
	OnLink func(*Link)
	Logger *slog.Logger
}

// DefaultConfig returns a Config with the default timeouts; the caller fills in Self, Engine
// and Bus.
func DefaultConfig() Config { return Config{OfferTimeout: DefaultOfferTimeout} }

// Manager keeps at most one link per peer node: it opens links on demand, answers the peers'
// offers and removes links that fail or close.
type Manager struct {
	cfg Config
	log *slog.Logger
	// ctx lives until Close has waited for every goroutine: the parent of all bus sends.
	ctx       context.Context
	cancel    context.CancelFunc
	wg        sync.WaitGroup // one per link (its run goroutine) and per asynchronous send
	closeOnce sync.Once

	mu sync.Mutex // guards the fields below
	// links holds the current link per peer, connecting or open.
	links map[cluster.NodeID]*Link
	// last holds the newest link per peer until its PeerConnection is closed. The node's ICE
	// UDP mux routes packets by remote address, so two PeerConnections between the same two
	// nodes cannot coexist: a new link starts only once the one before it is closed.
	last   map[cluster.NodeID]*Link
	closed bool
}

// NewManager returns a Manager; it does nothing until Link is called or an offer arrives.
func NewManager(cfg Config) *Manager {
	if cfg.OfferTimeout <= 0 {
		cfg.OfferTimeout = DefaultOfferTimeout
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	// The root context of a long-lived component: no caller's context outlives Close.
	ctx, cancel := context.WithCancel(context.Background())
	return &Manager{
		cfg:    cfg,
		log:    cfg.Logger.With("component", "relay"),
		ctx:    ctx,
		cancel: cancel,
		links:  map[cluster.NodeID]*Link{},
		last:   map[cluster.NodeID]*Link{},
	}
}

// Link returns the open link to peer, setting one up if there is none. Concurrent callers
// share one attempt. ctx bounds this caller's wait only: an attempt it started goes on for
// the others, bounded by Config.OfferTimeout.
func (m *Manager) Link(ctx context.Context, peer cluster.NodeID) (*Link, error) {
	if peer == m.cfg.Self || peer == "" {
		return nil, ErrSelf
	}
	for {
		l, err := m.current(peer)
		if err != nil {
			return nil, err
		}
		select {
		case <-l.ready:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		l.mu.Lock()
		state, lerr := l.state, l.err
		l.mu.Unlock()
		switch {
		case state == StateOpen:
			return l, nil
		case errors.Is(lerr, errSuperseded):
			continue // another attempt for this peer took over: wait for that one
		default:
			return nil, lerr
		}
	}
}

// current returns the peer's link, open or being set up, starting a set-up if there is none.
func (m *Manager) current(peer cluster.NodeID) (*Link, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, ErrClosed
	}
	l := m.links[peer]
	if l == nil {
		l = m.startLocked(peer, rand.Text(), true, "")
	}
	return l, nil
}

// startLocked makes a new link the peer's current one and starts its goroutine, which sets it
// up once the link before it is closed, and tears it down when it closes.
func (m *Manager) startLocked(peer cluster.NodeID, id string, offerer bool, offer string) *Link {
	l := newLink(m, peer, id, offerer)
	l.after = m.last[peer]
	m.links[peer] = l
	m.last[peer] = l
	m.wg.Add(1)
	go l.run(offer)
	return l
}

// remove forgets l as the peer's current link.
func (m *Manager) remove(l *Link) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.links[l.peer] == l {
		delete(m.links, l.peer)
	}
}

// released forgets l, whose PeerConnection is closed.
func (m *Manager) released(l *Link) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.last[l.peer] == l {
		delete(m.last, l.peer)
	}
}

// find returns the peer's current link if its id is id.
func (m *Manager) find(peer cluster.NodeID, id string) *Link {
	m.mu.Lock()
	defer m.mu.Unlock()
	if l := m.links[peer]; l != nil && l.id == id {
		return l
	}
	return nil
}

// Links describes every link, open or being set up, ordered by peer.
func (m *Manager) Links() []LinkInfo {
	m.mu.Lock()
	links := make([]*Link, 0, len(m.links))
	for _, l := range m.links {
		links = append(links, l)
	}
	m.mu.Unlock()
	infos := make([]LinkInfo, 0, len(links))
	for _, l := range links {
		infos = append(infos, l.Info())
	}
	slices.SortFunc(infos, func(a, b LinkInfo) int { return cmp.Compare(a.Peer, b.Peer) })
	return infos
}

// ClosePeer closes the link to peer, e.g. when the cluster reports the peer dead. The next
// Link call sets up a new one.
func (m *Manager) ClosePeer(peer cluster.NodeID) {
	m.mu.Lock()
	l := m.links[peer]
	m.mu.Unlock()
	if l != nil {
		l.shutdown(ErrLinkClosed)
	}
}

// Close closes every link (telling the peers) and waits for the manager's goroutines. Calling
// it again is safe; Link fails with ErrClosed afterwards.
func (m *Manager) Close() {
	m.closeOnce.Do(func() {
		m.mu.Lock()
		m.closed = true
		links := make([]*Link, 0, len(m.links))
		for _, l := range m.links {
			links = append(links, l)
		}
		m.mu.Unlock()
		for _, l := range links {
			l.shutdown(ErrClosed)
		}
		m.wg.Wait()
		m.cancel()
	})
}

// goAsync runs f on a goroutine Close waits for; it does nothing once the manager is closed.
func (m *Manager) goAsync(f func()) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return
	}
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		f()
	}()
}

// HandleBusMessage handles the relay's bus messages (relay_offer, relay_answer, relay_close)
// and reports whether msg was one; the node's bus handler passes every message here first.
// The bus has verified the signature, freshness, uniqueness and sender; this never blocks:
// PeerConnection work runs on the link's goroutine.
func (m *Manager) HandleBusMessage(msg cluster.Message) bool {
	switch msg.Type {
	case MsgOffer, MsgAnswer, MsgClose:
	default:
		return false
	}
	if msg.From == "" || msg.From == m.cfg.Self {
		return true
	}
	var err error
	switch msg.Type {
	case MsgOffer:
		var b offerBody
		if err = json.Unmarshal(msg.Body, &b); err == nil && b.Req != "" && b.SDP != "" {
			m.onOffer(msg.From, b)
		}
	case MsgAnswer:
		var b answerBody
		if err = json.Unmarshal(msg.Body, &b); err == nil && b.Req != "" {
			m.onAnswer(msg.From, b)
		}
	case MsgClose:
		var b closeBody
		if err = json.Unmarshal(msg.Body, &b); err == nil && b.Req != "" {
			m.onClose(msg.From, b)
		}
	}
	if err != nil {
		m.log.Warn("malformed relay message", "type", msg.Type, "from", msg.From, "err", err)
	}
	return true
}

// onOffer answers a peer's offer, unless this node wins a glare. With the peer's current
// link, if any:
//   - it has this request id: a duplicate, ignored;
//   - it is our own offer, still connecting, and our id is smaller: glare, we stay the offerer
//     and ignore theirs (the peer abandons its attempt when our offer arrives);
//   - it is our own offer, still connecting, and our id is larger: we abandon it and answer
//     theirs; callers waiting for ours move to this one;
//   - it is our answer to an older offer, still connecting: the peer gave up on that one;
//   - it is open: the peer has lost it (a node offers only when it has no link), so it is
//     replaced.
//
// The new link's PeerConnection starts once the replaced one is closed, and sends nothing
// before. So if a glare loser's offer was already on its way, it reaches the winner before
// the answer does, while the winner's attempt is still pending, and is ignored there.
func (m *Manager) onOffer(peer cluster.NodeID, b offerBody) {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return
	}
	old := m.links[peer]
	if old != nil && old.id == b.Req {
		m.mu.Unlock()
		return
	}
	if old != nil && old.offerer && !old.opened.Load() && m.cfg.Self < peer {
		m.mu.Unlock()
		m.log.Debug("glare: keeping our offer", "peer", peer)
		return
	}
	m.startLocked(peer, b.Req, false, b.SDP)
	m.mu.Unlock()
	switch {
	case old == nil:
	case old.opened.Load():
		m.log.Info("the peer set up a new link: replacing ours", "peer", peer)
		old.shutdown(ErrReplaced)
	default:
		m.log.Debug("answering the peer's offer instead of our pending attempt", "peer", peer)
		old.shutdown(errSuperseded)
	}
}

// onAnswer hands an answer to the attempt it answers. An answer nobody waits for (the attempt
// timed out or lost a glare) is refused with a relay_close, so the peer drops its half.
func (m *Manager) onAnswer(peer cluster.NodeID, b answerBody) {
	if l := m.find(peer, b.Req); l != nil && l.offerer {
		select {
		case l.answers <- b:
		default: // a duplicate
		}
		return
	}
	if b.Error != "" {
		return
	}
	m.goAsync(func() {
		ctx, cancel := context.WithTimeout(m.ctx, closeNotifyTimeout)
		defer cancel()
		if err := m.cfg.Bus.Send(ctx, peer, MsgClose, closeBody{Req: b.Req, Reason: "no such attempt"}); err != nil {
			m.log.Debug("cannot refuse a stray answer", "peer", peer, "err", err)
		}
	})
}

// onClose closes the link or attempt the peer says is gone at its side.
func (m *Manager) onClose(peer cluster.NodeID, b closeBody) {
	if l := m.find(peer, b.Req); l != nil {
		l.shutdown(peerClosedError(b.Reason))
	}
}
