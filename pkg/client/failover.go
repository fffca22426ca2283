package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/pion/webrtc/v4"
)

// FailoverOptions configure a Session.
type FailoverOptions struct {
	// Options of each Client; URL is ignored (the route chooses the node). An API of your
	// own should use NewSettingEngine's ICE timeouts, or an ICE failure is noticed only
	// after pion's (30 s).
	Options
	// Route is the HTTP base URL of any node (http://host:port): its /v1/route picks the node.
	Route string
	// Room is passed to /v1/route (a node already hosting the room is preferred); optional.
	Room string
	// RouteQuery adds parameters to /v1/route (lat, lon, region).
	RouteQuery url.Values
	// SilenceTimeout: a socket that answers no ping for this long is lost (default 2 s). Pings
	// are sent every quarter of it.
	SilenceTimeout time.Duration
	// ResumeTimeout bounds the attempt to resume on the same node (default 1 s).
	ResumeTimeout time.Duration
	// GiveUpAfter: a failover that has not succeeded in this long fails (default 30 s).
	GiveUpAfter time.Duration
	// OnEvent is told of failovers.
	OnEvent func(FailoverEvent)
}

// FailoverEventKind says what happened.
type FailoverEventKind string

const (
	// EventReconnecting: the node was lost; a resume or failover is under way.
	EventReconnecting FailoverEventKind = "reconnecting"
	// EventReconnected: the session goes on, resumed on the same node or joined on another.
	EventReconnected FailoverEventKind = "reconnected"
	// EventFailed: no node took the session back within GiveUpAfter; the Session is over.
	EventFailed FailoverEventKind = "failed"
)

// FailoverEvent is one step of a failover.
type FailoverEvent struct {
	Kind FailoverEventKind
	// Node is the node lost (reconnecting) or now serving the session (reconnected).
	Node string
	// Resumed is true when the session was resumed on the same node.
	Resumed bool
	// Took is the time from noticing the loss to reconnected or failed.
	Took time.Duration
	// Reason is why the node was considered lost (reconnecting) or the last error (failed).
	Reason string
}

// ErrFailoverFailed is returned by Session methods after the Session failed over in vain.
var ErrFailoverFailed = errors.New("client: failover failed")

const (
	defaultSilence    = 2 * time.Second
	defaultResume     = time.Second
	defaultGiveUp     = 30 * time.Second
	routeTimeout      = time.Second
	maxKnownNodes     = 8
	maxRouteBodyBytes = 64 << 10
)

type knownNode struct{ id, url string }

type publication struct {
	tracks    []webrtc.TrackLocal
	simulcast []*webrtc.TrackLocalStaticRTP
}

// A Session is a Client that survives the death of its node (issue 11, docs/protocol.md
// "Failover to another node"). It joins through /v1/route and remembers the nodes the answer
// names. When its node is lost — the WebSocket closes, no pong comes for SilenceTimeout, or a
// PeerConnection's ICE fails — it first tries to resume the session on the same node (a network
// blip; not after an ICE failure, which a new socket does not repair); if that fails it asks another known node's /v1/route for the next-closest live node,
// excluding the lost one, joins the same room there as the same identity (the same token),
// publishes its tracks again and re-sends its layer preferences. The other participants see
// one participant that moved (participant_moved), not a leave and a join.
//
// # Concurrency
//
// A Session runs one monitor goroutine; Close ends it and waits, then closes the current
// Client. OnEvent is called from the monitor goroutine, never with a lock held.
type Session struct {
	opts   FailoverOptions
	http   *http.Client
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	lost   chan string // a PeerConnection's ICE failed (reason), buffered

	mu    sync.Mutex // guards the fields below
	cur   *Client
	node  knownNode
	known []knownNode
	pubs  []publication
	prefs map[string]string // track id → quality
	err   error
}

// DialFailover routes, connects and joins, and starts watching the connection.
func DialFailover(ctx context.Context, opts FailoverOptions) (*Session, error) {
	if opts.Route == "" {
		return nil, errors.New("client: FailoverOptions.Route is required")
	}
	if opts.SilenceTimeout <= 0 {
		opts.SilenceTimeout = defaultSilence
	}
	if opts.ResumeTimeout <= 0 {
		opts.ResumeTimeout = defaultResume
	}
	if opts.GiveUpAfter <= 0 {
		opts.GiveUpAfter = defaultGiveUp
	}
	hc := opts.HTTPClient
	if hc == nil {
		hc = http.DefaultClient
	}
	s := &Session{opts: opts, http: hc, lost: make(chan string, 4), prefs: map[string]string{}}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	base := strings.TrimRight(opts.Route, "/")
	r, err := s.route(ctx, base, nil)
	if err != nil {
		s.cancel()
		return nil, err
	}
	c, err := s.join(ctx, r)
	if err != nil {
		s.cancel()
		return nil, err
	}
	s.mu.Lock()
	s.cur = c
	s.node = knownNode{id: r.NodeID, url: r.URL}
	s.remember(r, base)
	s.mu.Unlock()
	s.wg.Add(1)
	go s.run()
	return s, nil
}

// Client returns the current Client (a new one after each failover).
func (s *Session) Client() *Client {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cur
}

// Node returns the id of the node that serves the session now.
func (s *Session) Node() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.node.id
}

// Publish publishes tracks on the current node and again after every failover.
func (s *Session) Publish(ctx context.Context, tracks ...webrtc.TrackLocal) error {
	c, err := s.client()
	if err != nil {
		return err
	}
	if _, err := c.Publish(ctx, tracks...); err != nil {
		return err
	}
	s.mu.Lock()
	s.pubs = append(s.pubs, publication{tracks: tracks})
	s.mu.Unlock()
	return nil
}

// PublishSimulcast publishes one simulcast video track, now and after every failover.
func (s *Session) PublishSimulcast(ctx context.Context, layers ...*webrtc.TrackLocalStaticRTP) error {
	c, err := s.client()
	if err != nil {
		return err
	}
	if _, err := c.PublishSimulcast(ctx, layers...); err != nil {
		return err
	}
	s.mu.Lock()
	s.pubs = append(s.pubs, publication{simulcast: layers})
	s.mu.Unlock()
	return nil
}

// SetQuality sets a track's highest wanted layer, now and after every failover.
func (s *Session) SetQuality(trackID, quality string) error {
	c, err := s.client()
	if err != nil {
		return err
	}
	s.mu.Lock()
	if _, ok := s.prefs[trackID]; ok || len(s.prefs) < 256 {
		s.prefs[trackID] = quality
	}
	s.mu.Unlock()
	return c.SetQuality(trackID, quality)
}

// Close leaves the room and ends the session.
func (s *Session) Close() {
	s.cancel()
	s.wg.Wait()
	s.mu.Lock()
	c := s.cur
	s.mu.Unlock()
	if c != nil {
		_ = c.Leave()
		c.Close()
	}
}

func (s *Session) client() (*Client, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return nil, s.err
	}
	return s.cur, nil
}

func (s *Session) emit(ev FailoverEvent) {
	if s.opts.OnEvent != nil {
		s.opts.OnEvent(ev)
	}
}

// run watches the current client and fails over when its node is lost.
func (s *Session) run() {
	defer s.wg.Done()
	for {
		reason := s.watch(s.Client())
		if s.ctx.Err() != nil {
			return
		}
		s.mu.Lock()
		lost := s.node
		s.mu.Unlock()
		start := time.Now()
		s.emit(FailoverEvent{Kind: EventReconnecting, Node: lost.id, Reason: reason})
		resumed, err := s.recover(lost, reason)
		if s.ctx.Err() != nil {
			return
		}
		if err != nil {
			s.mu.Lock()
			s.err = fmt.Errorf("%w: %v", ErrFailoverFailed, err)
			s.mu.Unlock()
			s.emit(FailoverEvent{Kind: EventFailed, Node: lost.id, Took: time.Since(start), Reason: err.Error()})
			return
		}
		s.emit(FailoverEvent{Kind: EventReconnected, Node: s.Node(), Resumed: resumed, Took: time.Since(start)})
	}
}

// watch returns why c's node is lost, or "" when the Session is closing. It pings twice per
// SilenceTimeout; the node is lost when no pong came for SilenceTimeout.
func (s *Session) watch(c *Client) string {
	tick := time.NewTicker(s.opts.SilenceTimeout / 4)
	defer tick.Stop()
	lastOK := time.Now()
	for {
		select {
		case <-s.ctx.Done():
			return ""
		case <-c.Done():
			return "socket closed"
		case r := <-s.lost:
			return r
		case <-tick.C:
			ctx, cancel := context.WithDeadline(s.ctx, lastOK.Add(s.opts.SilenceTimeout))
			err := c.socket().Ping(ctx)
			cancel()
			switch {
			case s.ctx.Err() != nil:
				return ""
			case err == nil:
				lastOK = time.Now()
			case time.Since(lastOK) >= s.opts.SilenceTimeout:
				return "no answer to pings for " + s.opts.SilenceTimeout.String()
			}
		}
	}
}

// watchICE reports a PeerConnection whose ICE failed.
func (s *Session) watchICE(name string, pc *webrtc.PeerConnection) {
	pc.OnICEConnectionStateChange(func(st webrtc.ICEConnectionState) {
		if st == webrtc.ICEConnectionStateFailed {
			select {
			case s.lost <- name + " ICE failed":
			default:
			}
		}
	})
}

// recover resumes on the lost node or moves to another; it returns whether it resumed.
func (s *Session) recover(lost knownNode, reason string) (bool, error) {
	old := s.Client()
	if !strings.Contains(reason, "ICE failed") { // a new socket does not repair the media path
		rctx, cancel := context.WithTimeout(s.ctx, s.opts.ResumeTimeout)
		err := old.Resume(rctx)
		cancel()
		if err == nil {
			return true, nil
		}
	}
	old.abandon()
	for len(s.lost) > 0 {
		<-s.lost // from the abandoned client
	}
	deadline := time.Now().Add(s.opts.GiveUpAfter)
	exclude := []string{lost.id}
	backoff := 100 * time.Millisecond
	for {
		c, r, err := s.failover(exclude)
		if err == nil {
			s.mu.Lock()
			s.cur = c
			s.node = knownNode{id: r.NodeID, url: r.URL}
			s.mu.Unlock()
			return false, nil
		}
		if time.Now().Add(backoff).After(deadline) {
			return false, err
		}
		select {
		case <-s.ctx.Done():
			return false, s.ctx.Err()
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 2*time.Second)
	}
}

// failover asks the known nodes but the excluded ones for a route, joins the node chosen and
// restores the session's publications and preferences there.
func (s *Session) failover(exclude []string) (*Client, routeAnswer, error) {
	s.mu.Lock()
	known := append([]knownNode(nil), s.known...)
	s.mu.Unlock()
	lostURL := map[string]bool{}
	for _, n := range known {
		if n.id != "" && contains(exclude, n.id) {
			lostURL[n.url] = true
		}
	}
	var lastErr error = errors.New("no other node known")
	for _, n := range known {
		if lostURL[n.url] {
			continue
		}
		r, err := s.route(s.ctx, n.url, exclude)
		if err != nil {
			lastErr = err
			continue
		}
		ctx, cancel := context.WithTimeout(s.ctx, 10*time.Second)
		c, err := s.join(ctx, r)
		if err == nil {
			err = s.restore(ctx, c)
			if err != nil {
				c.abandon()
			}
		}
		cancel()
		if err != nil {
			lastErr = fmt.Errorf("join %s: %w", r.NodeID, err)
			continue
		}
		s.mu.Lock()
		s.remember(r, n.url)
		s.mu.Unlock()
		return c, r, nil
	}
	return nil, routeAnswer{}, lastErr
}

// restore publishes the session's tracks on c and re-sends the layer preferences.
func (s *Session) restore(ctx context.Context, c *Client) error {
	s.mu.Lock()
	pubs := append([]publication(nil), s.pubs...)
	prefs := make(map[string]string, len(s.prefs))
	for k, v := range s.prefs {
		prefs[k] = v
	}
	s.mu.Unlock()
	for _, p := range pubs {
		var err error
		if len(p.simulcast) > 0 {
			_, err = c.PublishSimulcast(ctx, p.simulcast...)
		} else {
			_, err = c.Publish(ctx, p.tracks...)
		}
		if err != nil {
			return fmt.Errorf("publish again: %w", err)
		}
	}
	for id, q := range prefs {
		_ = c.SetQuality(id, q) // a track that is gone answers an error message; nothing to do
	}
	return nil
}

// join dials the node r names and joins with the session's token.
func (s *Session) join(ctx context.Context, r routeAnswer) (*Client, error) {
	o := s.opts.Options
	o.URL = wsURL(r.URL)
	c, err := Dial(ctx, o)
	if err != nil {
		return nil, err
	}
	s.watchICE("sub", c.Subscriber())
	if pc, err := c.Publisher(); err == nil {
		s.watchICE("pub", pc)
	}
	return c, nil
}

// routeAnswer is the part of /v1/route's answer the Session uses.
type routeAnswer struct {
	NodeID       string `json:"node_id"`
	URL          string `json:"url"`
	Alternatives []struct {
		NodeID string `json:"node_id"`
		URL    string `json:"url"`
	} `json:"alternatives"`
}

// route asks base's /v1/route for a node, leaving out the excluded ones.
func (s *Session) route(ctx context.Context, base string, exclude []string) (routeAnswer, error) {
	q := url.Values{}
	for k, v := range s.opts.RouteQuery {
		q[k] = v
	}
	if s.opts.Room != "" {
		q.Set("room", s.opts.Room)
	}
	for _, id := range exclude {
		q.Add("exclude", id)
	}
	ctx, cancel := context.WithTimeout(ctx, routeTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/v1/route?"+q.Encode(), nil)
	if err != nil {
		return routeAnswer{}, err
	}
	resp, err := s.http.Do(req)
	if err != nil {
		return routeAnswer{}, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxRouteBodyBytes))
	if err != nil {
		return routeAnswer{}, err
	}
	if resp.StatusCode != http.StatusOK {
		return routeAnswer{}, fmt.Errorf("route from %s: %s: %s", base, resp.Status, strings.TrimSpace(string(body)))
	}
	var r routeAnswer
	if err := json.Unmarshal(body, &r); err != nil {
		return routeAnswer{}, fmt.Errorf("route from %s: %w", base, err)
	}
	if !strings.HasPrefix(r.URL, "http://") && !strings.HasPrefix(r.URL, "https://") {
		return routeAnswer{}, fmt.Errorf("route from %s: node URL %q is not http(s)", base, r.URL)
	}
	return r, nil
}

// remember adds the nodes of a route answer (and the node that gave it) to the known ones,
// the chosen node and its alternatives first. s.mu held.
func (s *Session) remember(r routeAnswer, asked string) {
	next := []knownNode{{id: r.NodeID, url: strings.TrimRight(r.URL, "/")}}
	for _, a := range r.Alternatives {
		next = append(next, knownNode{id: a.NodeID, url: strings.TrimRight(a.URL, "/")})
	}
	next = append(next, knownNode{url: strings.TrimRight(asked, "/")})
	next = append(next, s.known...)
	seen := map[string]bool{}
	s.known = s.known[:0:0]
	for _, n := range next {
		if seen[n.url] || len(s.known) >= maxKnownNodes {
			continue
		}
		seen[n.url] = true
		s.known = append(s.known, n)
	}
}

func wsURL(httpURL string) string {
	u := strings.TrimRight(httpURL, "/")
	switch {
	case strings.HasPrefix(u, "https://"):
		u = "wss://" + strings.TrimPrefix(u, "https://")
	case strings.HasPrefix(u, "http://"):
		u = "ws://" + strings.TrimPrefix(u, "http://")
	}
	return u + "/v1/rtc"
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// abandon drops a client whose node is lost: no close handshake (nobody would answer).
func (c *Client) abandon() {
	c.mu.Lock()
	conn, done, pub := c.conn, c.done, c.pub
	c.mu.Unlock()
	_ = conn.CloseNow()
	c.cancel()
	<-done
	if pub != nil {
		_ = pub.Close()
	}
	_ = c.sub.Close()
}
