package signal

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cascade-sfu/cascade/pkg/auth"
	"github.com/cascade-sfu/cascade/pkg/room"
	"github.com/cascade-sfu/cascade/pkg/rtc"
)

// Occupancy records who is in which room across the cluster, where room capacity is counted
// (per identity) and a refresh replaces the identity's previous session on whichever node.
// A single node may leave it nil.
type Occupancy interface {
	Join(ctx context.Context, room, identity, session string, host bool) error
	// Leave is called once per session that joined, after it ended; it must not remove a newer
	// session of the same identity.
	Leave(ctx context.Context, room, identity, session string)
}

// Config sets up a Server.
type Config struct {
	// Occupancy, if set, admits every join cluster-wide first.
	Occupancy Occupancy
	Rooms     *room.Manager
	Engine    *rtc.Engine
	Verifier  *auth.Verifier
	Logger    *slog.Logger
	// Observer, if set, is told of messages, errors and joins (for metrics).
	Observer Observer
	// Dev enables POST /v1/dev/token, signing with DevKey and DevSecret.
	Dev               bool
	DevKey, DevSecret string
	// JoinRate and JoinBurst limit new sessions (WebSocket joins, WHIP, WHEP) with a valid
	// token per client IP: a token bucket refilled at JoinRate per second holding JoinBurst.
	// Generous by default (20/s, burst 100), so that a crowd behind one NAT or a load test
	// joining a town hall is not refused.
	JoinRate  float64
	JoinBurst int
	// FailedJoinRate and FailedJoinBurst limit join attempts that fail authentication (bad,
	// expired or foreign tokens) per client IP, tightly (1/s, burst 10 by default). Once an
	// address has used its budget every join from it is refused before any work, valid token
	// or not, until the bucket refills.
	FailedJoinRate  float64
	FailedJoinBurst int
	// MessageRate and MessageBurst limit messages per WebSocket session.
	MessageRate  float64
	MessageBurst int
	// JoinTimeout is how long a new WebSocket may take to send join.
	JoinTimeout time.Duration
	// PingInterval and PingTimeout keep WebSockets alive and detect dead ones.
	PingInterval, PingTimeout time.Duration
	// ResumeGrace is how long a joined session whose WebSocket dropped is kept (its media
	// flowing) for a new WebSocket to resume it; 0 means DefaultResumeGrace, negative disables
	// resumption.
	ResumeGrace time.Duration
}

// Default join limits per client IP (see Config).
const (
	DefaultJoinRate        = 20
	DefaultJoinBurst       = 100
	DefaultFailedJoinRate  = 1
	DefaultFailedJoinBurst = 10
)

// DefaultResumeGrace is how long a session whose WebSocket dropped is kept for resumption. The
// others see the participant leave only after it, so it is a compromise: long enough for a
// network change or a proxy restart, short enough that a vanished participant does not linger.
const DefaultResumeGrace = 15 * time.Second

func (c Config) withDefaults() Config {
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Observer == nil {
		c.Observer = nopObserver{}
	}
	if c.JoinRate <= 0 {
		c.JoinRate = DefaultJoinRate
	}
	if c.JoinBurst <= 0 {
		c.JoinBurst = DefaultJoinBurst
	}
	if c.FailedJoinRate <= 0 {
		c.FailedJoinRate = DefaultFailedJoinRate
	}
	if c.FailedJoinBurst <= 0 {
		c.FailedJoinBurst = DefaultFailedJoinBurst
	}
	if c.MessageRate <= 0 {
		c.MessageRate = 50
	}
	if c.MessageBurst <= 0 {
		c.MessageBurst = 100
	}
	if c.ResumeGrace == 0 {
		c.ResumeGrace = DefaultResumeGrace
	}
	if c.JoinTimeout <= 0 {
		c.JoinTimeout = 10 * time.Second
	}
	if c.PingInterval <= 0 {
		c.PingInterval = 10 * time.Second
	}
	if c.PingTimeout <= 0 {
		c.PingTimeout = 20 * time.Second
	}
	return c
}

// Server speaks to clients: the WebSocket protocol, WHIP and WHEP.
type Server struct {
	cfg      Config
	log      *slog.Logger
	joins    *ipLimiter // sessions with a valid token, per address
	failures *ipLimiter // joins refused for their token, per address
	draining atomic.Bool
	ctx      context.Context // cancelled by Close: ends every WebSocket session
	cancel   context.CancelFunc
	wg       sync.WaitGroup // WebSocket sessions and background teardowns

	mu      sync.Mutex // guards the fields below
	https   map[string]*httpSession
	resumes map[string]*wsSession // resume token → joined WebSocket session
	closed  bool                  // no more background work may start
}

// enter registers work that Close must wait for; false once Close has begun. The caller
// calls s.wg.Done when the work ends.
func (s *Server) enter() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.wg.Add(1)
	return true
}

// spawn runs f on a goroutine that Close waits for; after Close it runs f inline.
func (s *Server) spawn(f func()) {
	if !s.enter() {
		f()
		return
	}
	go func() {
		defer s.wg.Done()
		f()
	}()
}

// NewServer returns a server; Register adds its routes to a mux.
func NewServer(cfg Config) *Server {
	cfg = cfg.withDefaults()
	ctx, cancel := context.WithCancel(context.Background())
	return &Server{
		cfg:      cfg,
		log:      cfg.Logger,
		joins:    newIPLimiter(cfg.JoinRate, cfg.JoinBurst, 10000),
		failures: newIPLimiter(cfg.FailedJoinRate, cfg.FailedJoinBurst, 10000),
		ctx:      ctx,
		cancel:   cancel,
		https:    map[string]*httpSession{},
		resumes:  map[string]*wsSession{},
	}
}

// Register adds the server's routes.
func (s *Server) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET /v1/rtc", s.handleWebSocket)
	mux.HandleFunc("POST /whip/{room}", s.handleWHIP)
	mux.HandleFunc("PATCH /whip/{room}/{id}", s.handlePatch)
	mux.HandleFunc("DELETE /whip/{room}/{id}", s.handleDelete)
	mux.HandleFunc("POST /whep/{room}", s.handleWHEP)
	mux.HandleFunc("PATCH /whep/{room}/{id}", s.handlePatch)
	mux.HandleFunc("DELETE /whep/{room}/{id}", s.handleDelete)
	mux.HandleFunc("OPTIONS /whip/{room}", s.handleOptions)
	mux.HandleFunc("OPTIONS /whep/{room}", s.handleOptions)
	if s.cfg.Dev {
		mux.HandleFunc("POST /v1/dev/token", s.handleDevToken)
	}
}

// Drain makes the server refuse new sessions (503) while existing ones go on.
func (s *Server) Drain() { s.draining.Store(true) }

// Draining reports whether Drain was called.
func (s *Server) Draining() bool { return s.draining.Load() }

// Close ends every session and waits for their goroutines. Call it after the room manager
// has told participants why (room.Manager.Close), so that clients get the reason first.
func (s *Server) Close() {
	s.Drain()
	s.cancel()
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.wg.Wait()
	s.mu.Lock()
	sessions := make([]*httpSession, 0, len(s.https))
	for _, h := range s.https {
		sessions = append(sessions, h)
	}
	s.mu.Unlock()
	for _, h := range sessions {
		h.end(room.ReasonShutdown)
	}
}

// admit checks, before any work, that the node takes sessions and that ip has not used up its
// budget of failed joins.
func (s *Server) admit(ip string) *Error {
	if s.draining.Load() {
		return newError(CodeUnavailable, "node is draining; connect to another node")
	}
	if !s.failures.has(ip, time.Now()) {
		return newError(CodeRateLimited, "too many failed joins from this address; wait and retry with a valid token")
	}
	return nil
}

// charge counts one join from ip once its token was checked: err is the authentication's
// outcome, returned as is (a failure is charged to the failed-join budget); a valid join is
// charged to the join budget and refused when it is used up.
func (s *Server) charge(ip string, err error) error {
	now := time.Now()
	if err != nil {
		s.failures.allow(ip, now)
		return err
	}
	if !s.joins.allow(ip, now) {
		return newError(CodeRateLimited, "too many sessions from this address; slow down")
	}
	return nil
}

// authorize verifies a token for a room.
func (s *Server) authorize(token, roomName string) (auth.Grants, error) {
	if err := auth.ValidRoomName(roomName); err != nil {
		return auth.Grants{}, newError(CodeBadRequest, err.Error())
	}
	g, err := s.cfg.Verifier.Verify(token)
	if err != nil {
		return auth.Grants{}, err
	}
	if !g.AllowsRoom(roomName) {
		return auth.Grants{}, newError(CodeForbidden, "token is for another room")
	}
	return g, nil
}

// occupy records a session's presence cluster-wide, if the server has an Occupancy.
func (s *Server) occupy(ctx context.Context, g auth.Grants, session string) error {
	if s.cfg.Occupancy == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	return s.cfg.Occupancy.Join(ctx, g.Room, g.Identity, session, g.RoomAdmin)
}

// vacate removes a session's presence cluster-wide.
func (s *Server) vacate(roomName, identity, session string) {
	if s.cfg.Occupancy == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s.cfg.Occupancy.Leave(ctx, roomName, identity, session)
}

func permissions(g auth.Grants) room.Permissions {
	return room.Permissions{Publish: g.CanPublish, Subscribe: g.CanSubscribe, PublishData: g.CanPublishData, Admin: g.RoomAdmin}
}

// writeHTTPError answers with a status for the code and a plain-text message.
func (s *Server) writeHTTPError(w http.ResponseWriter, e *Error) {
	s.cfg.Observer.Error(e.Code)
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if e.Code == CodeUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="cascade"`)
	}
	w.WriteHeader(httpStatus(e.Code))
	_, _ = w.Write([]byte(e.Code + ": " + e.Message + "\n"))
}

type devTokenRequest struct {
	Room     string `json:"room"`
	Identity string `json:"identity"`
	Name     string `json:"name,omitempty"`
}

// handleDevToken issues a full-grant token in development mode.
func (s *Server) handleDevToken(w http.ResponseWriter, r *http.Request) {
	var req devTokenRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 4<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		s.writeHTTPError(w, newError(CodeBadRequest, "body must be {\"room\",\"identity\"}: "+err.Error()))
		return
	}
	g := auth.Grants{
		Room: req.Room, Identity: req.Identity, Name: req.Name,
		CanPublish: true, CanSubscribe: true, CanPublishData: true,
	}
	tok, err := auth.Sign(s.cfg.DevKey, s.cfg.DevSecret, g, 6*time.Hour, time.Now())
	if err != nil {
		s.writeHTTPError(w, newError(CodeBadRequest, err.Error()))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]string{"token": tok})
}

func (s *Server) handleOptions(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Accept-Post", "application/sdp")
	w.WriteHeader(http.StatusNoContent)
}

var errSessionGone = errors.New("session ended")
