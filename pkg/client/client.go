// Package client is a Go client of the Cascade signalling protocol (docs/protocol.md) built on
// pion: it joins a room over the WebSocket, publishes tracks on its publisher PeerConnection and
// answers the server's offers on its subscriber PeerConnection. Tests, load bots and the latency
// lab use it. [PostOffer] does a WHIP or WHEP exchange for a PeerConnection of the caller's.
//
// # Concurrency
//
// A Client runs one goroutine that reads the WebSocket; Close ends it and waits. Methods are
// safe for concurrent use. Messages() delivers every server message in order; a caller that
// does not read them loses the oldest once 1024 are queued.
package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	"github.com/pion/webrtc/v4"

	"github.com/cascade-sfu/cascade/pkg/signal"
)

// Options configure a Client.
type Options struct {
	// URL of the signalling endpoint, e.g. ws://127.0.0.1:7880/v1/rtc.
	URL   string
	Token string
	Name  string
	// API builds the PeerConnections; nil uses pion's defaults. Tests pass an API with their own
	// interceptors (loss, bandwidth limits) or a virtual network.
	API *webrtc.API
	// OnTrack is called for every track received on the subscriber PeerConnection.
	OnTrack func(*webrtc.TrackRemote, *webrtc.RTPReceiver)
	// HTTPClient dials the WebSocket; nil uses http.DefaultClient.
	HTTPClient *http.Client
}

// Client is one participant.
type Client struct {
	opts   Options
	api    *webrtc.API
	ctx    context.Context
	cancel context.CancelFunc
	nextID atomic.Uint64

	// Joined is the server's welcome.
	Joined signal.Joined

	msgs chan signal.Envelope

	mu       sync.Mutex // guards the fields below
	conn     *websocket.Conn
	done     chan struct{} // closed when the current socket's reader ends
	token    string        // the current resume token
	pub, sub *webrtc.PeerConnection
	waiting  map[string]chan signal.Envelope
	subQueue []webrtc.ICECandidateInit // remote candidates before the sub offer
	err      error
}

// ICE timings of NewSettingEngine.
const (
	iceKeepalive    = 500 * time.Millisecond
	iceDisconnected = 1500 * time.Millisecond
	iceFailed       = time.Second
)

// NewSettingEngine returns the pion settings of a Client whose Options.API is nil: an ICE
// keepalive every 500 ms, the connection disconnected after 1.5 s without anything received
// and failed 1 s later, so that a Session notices a dead media path (its node unreachable
// while the WebSocket still answers) in about 2.5 s; pion's defaults (2 s, 5 s, 25 s) take
// 30 s. A node answers every keepalive, so a live path is never silent that long. An
// application that builds its own API should start from these settings.
func NewSettingEngine() webrtc.SettingEngine {
	var se webrtc.SettingEngine
	se.SetICETimeouts(iceDisconnected, iceFailed, iceKeepalive)
	return se
}

// ErrClosed is returned once the connection has ended.
var errClosed = errors.New("client: connection closed")

// Dial connects and joins. It returns when the server has answered join.
func Dial(ctx context.Context, opts Options) (*Client, error) {
	conn, err := dial(ctx, opts)
	if err != nil {
		return nil, err
	}
	api := opts.API
	if api == nil {
		api = webrtc.NewAPI(webrtc.WithSettingEngine(NewSettingEngine()))
	}
	cctx, cancel := context.WithCancel(context.Background())
	c := &Client{
		opts: opts, conn: conn, api: api, ctx: cctx, cancel: cancel,
		done:    make(chan struct{}),
		msgs:    make(chan signal.Envelope, 1024),
		waiting: map[string]chan signal.Envelope{},
	}
	sub, err := c.newPC("sub")
	if err != nil {
		_ = conn.CloseNow()
		cancel()
		return nil, err
	}
	c.sub = sub
	sub.OnTrack(func(t *webrtc.TrackRemote, r *webrtc.RTPReceiver) {
		if opts.OnTrack != nil {
			opts.OnTrack(t, r)
		}
	})
	go c.readLoop(conn, c.done)
	reply, err := c.request(ctx, "join", signal.JoinRequest{Token: opts.Token, Name: opts.Name, InlineOffer: true})
	if err != nil {
		c.Close()
		return nil, err
	}
	if err := json.Unmarshal(reply.Data, &c.Joined); err != nil {
		c.Close()
		return nil, err
	}
	c.mu.Lock()
	c.token = c.Joined.ResumeToken
	c.mu.Unlock()
	return c, nil
}

func dial(ctx context.Context, opts Options) (*websocket.Conn, error) {
	conn, _, err := websocket.Dial(ctx, opts.URL, &websocket.DialOptions{HTTPClient: opts.HTTPClient})
	if err != nil {
		return nil, err
	}
	conn.SetReadLimit(1 << 20)
	return conn, nil
}

// Resume opens a new WebSocket and takes over this client's session on the server, after the
// old socket broke (Done is closed): the PeerConnections are kept and nothing is renegotiated.
// An error wrapping ErrResumeFailed means the server no longer has the session: join afresh.
func (c *Client) Resume(ctx context.Context) error {
	c.mu.Lock()
	old, done, tok := c.conn, c.done, c.token
	c.mu.Unlock()
	if tok == "" {
		return fmt.Errorf("%w: the server gave no resume token", ErrResumeFailed)
	}
	_ = old.CloseNow()
	<-done
	conn, err := dial(ctx, c.opts)
	if err != nil {
		return err
	}
	done = make(chan struct{})
	c.mu.Lock()
	c.conn, c.done, c.err = conn, done, nil
	c.mu.Unlock()
	go c.readLoop(conn, done)
	reply, err := c.request(ctx, "resume", signal.ResumeRequest{Token: tok})
	if err != nil {
		var se *signal.Error
		if errors.As(err, &se) && se.Code == signal.CodeResumeFailed {
			return fmt.Errorf("%w: %v", ErrResumeFailed, err)
		}
		return err
	}
	var r signal.Resumed
	if err := json.Unmarshal(reply.Data, &r); err != nil {
		return err
	}
	c.mu.Lock()
	c.token = r.ResumeToken
	c.mu.Unlock()
	return nil
}

// ErrResumeFailed is returned by Resume when the server refused the session's token.
var ErrResumeFailed = errors.New("client: resume refused")

func (c *Client) newPC(name string) (*webrtc.PeerConnection, error) {
	pc, err := c.api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		return nil, err
	}
	pc.OnICECandidate(func(cand *webrtc.ICECandidate) {
		if cand == nil {
			return
		}
		init := cand.ToJSON()
		_ = c.Send("candidate", signal.CandidateMessage{PC: name, Candidate: &init})
	})
	return pc, nil
}

// Messages returns every message the server sent, in order.
func (c *Client) Messages() <-chan signal.Envelope { return c.msgs }

// Publisher returns the publisher PeerConnection, creating it on first use.
func (c *Client) Publisher() (*webrtc.PeerConnection, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.pub != nil {
		return c.pub, nil
	}
	pc, err := c.newPC("pub")
	if err != nil {
		return nil, err
	}
	c.pub = pc
	return pc, nil
}

// Subscriber returns the subscriber PeerConnection.
func (c *Client) Subscriber() *webrtc.PeerConnection { return c.sub }

// Negotiate offers the publisher PeerConnection's current state and applies the answer.
func (c *Client) Negotiate(ctx context.Context, meta ...signal.TrackMeta) error {
	pc, err := c.Publisher()
	if err != nil {
		return err
	}
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		return err
	}
	if err := pc.SetLocalDescription(offer); err != nil {
		return err
	}
	reply, err := c.request(ctx, "offer", signal.SDPMessage{PC: "pub", SDP: offer.SDP, Tracks: meta})
	if err != nil {
		return err
	}
	var ans signal.SDPMessage
	if err := json.Unmarshal(reply.Data, &ans); err != nil {
		return err
	}
	return pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: ans.SDP})
}

// Publish adds tracks to the publisher PeerConnection and negotiates.
func (c *Client) Publish(ctx context.Context, tracks ...webrtc.TrackLocal) ([]*webrtc.RTPSender, error) {
	pc, err := c.Publisher()
	if err != nil {
		return nil, err
	}
	var senders []*webrtc.RTPSender
	for _, t := range tracks {
		s, err := pc.AddTrack(t)
		if err != nil {
			return nil, err
		}
		senders = append(senders, s)
		go drainRTCP(s)
	}
	return senders, c.Negotiate(ctx)
}

// PublishSimulcast publishes one video track as several rid layers (lowest first) and
// negotiates.
func (c *Client) PublishSimulcast(ctx context.Context, layers ...*webrtc.TrackLocalStaticRTP) (*webrtc.RTPSender, error) {
	pc, err := c.Publisher()
	if err != nil {
		return nil, err
	}
	tr, err := pc.AddTransceiverFromTrack(layers[0], webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly})
	if err != nil {
		return nil, err
	}
	s := tr.Sender()
	for _, l := range layers[1:] {
		if err := s.AddEncoding(l); err != nil {
			return nil, err
		}
	}
	go drainRTCP(s)
	return s, c.Negotiate(ctx)
}

// drainRTCP reads a sender's RTCP so that pion's interceptors process it.
func drainRTCP(s *webrtc.RTPSender) {
	buf := make([]byte, 1500)
	for {
		if _, _, err := s.Read(buf); err != nil {
			return
		}
	}
}

// Send sends one message without waiting for a reply.
func (c *Client) Send(typ string, payload any) error {
	return c.send(typ, "", payload)
}

func (c *Client) send(typ, id string, payload any) error {
	data, err := json.Marshal(payload)
	if err != nil {
		return err
	}
	frame, err := json.Marshal(signal.Envelope{V: signal.ProtocolVersion, Type: typ, ID: id, Data: data})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(c.ctx, 10*time.Second)
	defer cancel()
	return c.socket().Write(ctx, websocket.MessageText, frame)
}

func (c *Client) socket() *websocket.Conn {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.conn
}

// SendRaw writes a raw frame (for tests of bad input).
func (c *Client) SendRaw(ctx context.Context, frame []byte) error {
	return c.socket().Write(ctx, websocket.MessageText, frame)
}

// request sends a message with an id and waits for the reply with that id (or an error).
func (c *Client) request(ctx context.Context, typ string, payload any) (signal.Envelope, error) {
	id := strconv.FormatUint(c.nextID.Add(1), 10)
	ch := make(chan signal.Envelope, 1)
	c.mu.Lock()
	c.waiting[id] = ch
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		delete(c.waiting, id)
		c.mu.Unlock()
	}()
	done := c.Done()
	if err := c.send(typ, id, payload); err != nil {
		return signal.Envelope{}, err
	}
	select {
	case env := <-ch:
		if env.Type == "error" {
			var e signal.ErrorMsg
			_ = json.Unmarshal(env.Data, &e)
			return env, &signal.Error{Code: e.Code, Message: e.Message}
		}
		return env, nil
	case <-ctx.Done():
		return signal.Envelope{}, ctx.Err()
	case <-done:
		return signal.Envelope{}, c.closedErr()
	}
}

func (c *Client) closedErr() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return fmt.Errorf("%w: %v", errClosed, c.err)
	}
	return errClosed
}

// Done is closed when the connection has ended.
func (c *Client) Done() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.done
}

func (c *Client) readLoop(conn *websocket.Conn, done chan struct{}) {
	defer close(done)
	for {
		_, data, err := conn.Read(c.ctx)
		if err != nil {
			c.mu.Lock()
			c.err = err
			c.mu.Unlock()
			return
		}
		var env signal.Envelope
		if json.Unmarshal(data, &env) != nil {
			continue
		}
		c.dispatch(env)
	}
}

func (c *Client) dispatch(env signal.Envelope) {
	if env.Type == "joined" {
		// The subscriber's first offer may come inside joined (inline_offer): answered here,
		// on the reader, in order with the candidates and offers after it.
		var j struct {
			SDP string `json:"sub_offer_sdp"`
		}
		if json.Unmarshal(env.Data, &j) == nil && j.SDP != "" {
			c.answerSubSDP(j.SDP)
		}
	}
	if env.ID != "" {
		c.mu.Lock()
		ch := c.waiting[env.ID]
		c.mu.Unlock()
		if ch != nil {
			ch <- env
		}
	}
	switch env.Type {
	case "offer":
		c.answerSub(env)
	case "candidate":
		c.addCandidate(env)
	}
	select {
	case c.msgs <- env:
	default:
		select { // full: drop the oldest
		case <-c.msgs:
		default:
		}
		select {
		case c.msgs <- env:
		default:
		}
	}
}

func (c *Client) answerSub(env signal.Envelope) {
	var m signal.SDPMessage
	if json.Unmarshal(env.Data, &m) != nil || m.PC != "sub" {
		return
	}
	c.answerSubSDP(m.SDP)
}

// answerSubSDP answers a subscriber offer.
func (c *Client) answerSubSDP(sdp string) {
	if err := c.sub.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: sdp}); err != nil {
		return
	}
	c.mu.Lock()
	queued := c.subQueue
	c.subQueue = nil
	c.mu.Unlock()
	for _, cand := range queued {
		_ = c.sub.AddICECandidate(cand)
	}
	ans, err := c.sub.CreateAnswer(nil)
	if err != nil {
		return
	}
	if err := c.sub.SetLocalDescription(ans); err != nil {
		return
	}
	_ = c.send("answer", "", signal.SDPMessage{PC: "sub", SDP: ans.SDP})
}

func (c *Client) addCandidate(env signal.Envelope) {
	var m signal.CandidateMessage
	if json.Unmarshal(env.Data, &m) != nil || m.Candidate == nil {
		return
	}
	switch m.PC {
	case "pub":
		if pc, _ := c.Publisher(); pc != nil {
			_ = pc.AddICECandidate(*m.Candidate)
		}
	case "sub":
		if c.sub.RemoteDescription() == nil {
			c.mu.Lock()
			c.subQueue = append(c.subQueue, *m.Candidate)
			c.mu.Unlock()
			return
		}
		_ = c.sub.AddICECandidate(*m.Candidate)
	}
}

// Chat sends a chat message.
func (c *Client) Chat(text string) error { return c.Send("chat", signal.ChatRequest{Text: text}) }

// SetMuted mutes or unmutes a track.
func (c *Client) SetMuted(trackID string, muted bool) error {
	return c.Send("mute", signal.MuteRequest{TrackID: trackID, Muted: muted})
}

// SetQuality sets the highest simulcast layer wanted for a track.
func (c *Client) SetQuality(trackID, quality string) error {
	return c.Send("subscription", signal.SubscriptionRequest{TrackID: trackID, Quality: quality})
}

// Leave leaves the room; the server closes the socket.
func (c *Client) Leave() error { return c.Send("leave", struct{}{}) }

// Close ends the connection and both PeerConnections, and waits for the reader.
func (c *Client) Close() {
	c.mu.Lock()
	conn, done := c.conn, c.done
	c.mu.Unlock()
	_ = conn.Close(websocket.StatusNormalClosure, "")
	c.cancel()
	<-done
	c.mu.Lock()
	pub := c.pub
	c.mu.Unlock()
	if pub != nil {
		_ = pub.Close()
	}
	_ = c.sub.Close()
}
