package cluster

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// Request/response over the signed bus. A caller sends an "rpc.req" message carrying a
// request id and a method to a node; that node runs the method's handler and sends an
// "rpc.resp" message with the same id back to the caller's own channel, where Call is
// waiting. A request to this node itself runs its handler directly, so a node without Redis
// (single-node mode) answers everything locally.
//
// # Concurrency
//
// HandleMessage never blocks (it runs on the bus goroutine): each request runs in its own
// goroutine, at most RPCConfig.MaxInFlight at a time (further requests are answered busy).
// Close waits for every handler goroutine.

// Message types of the RPC layer on the bus.
const (
	rpcRequestType  = "rpc.req"
	rpcResponseType = "rpc.resp"
)

// RPCHandler answers one method. The returned value is marshalled as the response body; an
// error is sent back as a RemoteError (with its Code from ErrorCode, if the error has one).
type RPCHandler func(ctx context.Context, from NodeID, body json.RawMessage) (any, error)

// RemoteError is an error a remote handler returned.
type RemoteError struct {
	Node    NodeID
	Code    string // a machine-readable code ("not_found", "conflict", ...) or ""
	Message string
}

func (e *RemoteError) Error() string { return fmt.Sprintf("node %s: %s", e.Node, e.Message) }

// CodedError is an error with a machine-readable code that crosses the bus.
type CodedError struct {
	Code string
	Err  error
}

func (e *CodedError) Error() string { return e.Err.Error() }
func (e *CodedError) Unwrap() error { return e.Err }

// ErrorCode returns the code of err (from a CodedError or a RemoteError), or "".
func ErrorCode(err error) string {
	var ce *CodedError
	if errors.As(err, &ce) {
		return ce.Code
	}
	var re *RemoteError
	if errors.As(err, &re) {
		return re.Code
	}
	return ""
}

// RPCConfig sets up an RPC endpoint.
type RPCConfig struct {
	Self NodeID
	// Bus carries requests to other nodes; nil in single-node mode (only Self is reachable).
	Bus Bus
	// Timeout bounds a call that has no earlier context deadline (default 5 s).
	Timeout time.Duration
	// HandlerTimeout bounds one handler run (default 10 s).
	HandlerTimeout time.Duration
	// MaxInFlight bounds the handlers running at once (default 64).
	MaxInFlight int
	Logger      *slog.Logger
}

// RPC is one node's request/response endpoint.
type RPC struct {
	cfg RPCConfig
	log *slog.Logger
	sem chan struct{}
	wg  sync.WaitGroup

	mu       sync.Mutex // guards the fields below
	handlers map[string]RPCHandler
	pending  map[string]chan rpcResponse
	closed   bool
	ctx      context.Context // cancelled by Close: handlers stop
	cancel   context.CancelFunc
}

type rpcRequest struct {
	ID     string          `json:"id"`
	Method string          `json:"method"`
	Body   json.RawMessage `json:"body"`
}

type rpcResponse struct {
	ID      string          `json:"id"`
	Code    string          `json:"code,omitempty"`
	Error   string          `json:"error,omitempty"`
	Body    json.RawMessage `json:"body,omitempty"`
	from    NodeID
	isError bool
}

// NewRPC returns an endpoint. Feed it the bus's messages with HandleMessage.
func NewRPC(cfg RPCConfig) *RPC {
	if cfg.Timeout <= 0 {
		cfg.Timeout = 5 * time.Second
	}
	if cfg.HandlerTimeout <= 0 {
		cfg.HandlerTimeout = 10 * time.Second
	}
	if cfg.MaxInFlight <= 0 {
		cfg.MaxInFlight = 64
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &RPC{
		cfg: cfg, log: cfg.Logger.With("component", "rpc"), sem: make(chan struct{}, cfg.MaxInFlight),
		handlers: map[string]RPCHandler{}, pending: map[string]chan rpcResponse{}, ctx: ctx, cancel: cancel,
	}
}

// Handle registers the handler of a method (replacing any earlier one).
func (r *RPC) Handle(method string, h RPCHandler) {
	r.mu.Lock()
	r.handlers[method] = h
	r.mu.Unlock()
}

// Call runs method on node to with req and decodes the answer into resp (nil: ignore it).
// A handler's error comes back as a *RemoteError; ErrRPCTimeout when no answer came in time.
func (r *RPC) Call(ctx context.Context, to NodeID, method string, req, resp any) error {
	body, err := json.Marshal(req)
	if err != nil {
		return fmt.Errorf("rpc: encode request: %w", err)
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, r.cfg.Timeout)
		defer cancel()
	}
	var res rpcResponse
	if to == r.cfg.Self {
		res, err = r.callLocal(ctx, method, body)
	} else {
		res, err = r.callRemote(ctx, to, method, body)
	}
	if err != nil {
		return err
	}
	if res.isError || res.Error != "" {
		return &RemoteError{Node: to, Code: res.Code, Message: res.Error}
	}
	if resp == nil || len(res.Body) == 0 {
		return nil
	}
	if err := json.Unmarshal(res.Body, resp); err != nil {
		return fmt.Errorf("rpc: decode answer of %s: %w", to, err)
	}
	return nil
}

func (r *RPC) callLocal(ctx context.Context, method string, body json.RawMessage) (rpcResponse, error) {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return rpcResponse{}, ErrRPCClosed
	}
	r.wg.Add(1)
	r.mu.Unlock()
	defer r.wg.Done()
	return r.run(ctx, r.cfg.Self, rpcRequest{Method: method, Body: body}), nil
}

func (r *RPC) callRemote(ctx context.Context, to NodeID, method string, body json.RawMessage) (rpcResponse, error) {
	if r.cfg.Bus == nil {
		return rpcResponse{}, fmt.Errorf("%w (node %s)", ErrRPCNoBus, to)
	}
	id := rand.Text()
	ch := make(chan rpcResponse, 1)
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return rpcResponse{}, ErrRPCClosed
	}
	r.pending[id] = ch
	r.mu.Unlock()
	defer func() {
		r.mu.Lock()
		delete(r.pending, id)
		r.mu.Unlock()
	}()
	if err := r.cfg.Bus.Send(ctx, to, rpcRequestType, rpcRequest{ID: id, Method: method, Body: body}); err != nil {
		return rpcResponse{}, fmt.Errorf("rpc: send to %s: %w", to, err)
	}
	select {
	case res := <-ch:
		return res, nil
	case <-r.ctx.Done():
		return rpcResponse{}, ErrRPCClosed
	case <-ctx.Done():
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return rpcResponse{}, fmt.Errorf("%w (node %s, method %s)", ErrRPCTimeout, to, method)
		}
		return rpcResponse{}, ctx.Err()
	}
}

// HandleMessage consumes the RPC messages of the bus; it reports whether m was one. It
// never blocks.
func (r *RPC) HandleMessage(m Message) bool {
	switch m.Type {
	case rpcResponseType:
		var res rpcResponse
		if json.Unmarshal(m.Body, &res) != nil || res.ID == "" {
			return true
		}
		r.mu.Lock()
		ch := r.pending[res.ID]
		r.mu.Unlock()
		if ch != nil {
			select {
			case ch <- res:
			default: // a duplicate answer
			}
		}
		return true
	case rpcRequestType:
		var req rpcRequest
		if json.Unmarshal(m.Body, &req) != nil || req.ID == "" || req.Method == "" {
			r.log.Warn("malformed rpc request", "from", m.From)
			return true
		}
		r.serve(m.From, req)
		return true
	}
	return false
}

// serve runs a remote request in its own goroutine and sends the answer back.
func (r *RPC) serve(from NodeID, req rpcRequest) {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return
	}
	select {
	case r.sem <- struct{}{}:
	default:
		r.mu.Unlock()
		r.reply(from, rpcResponse{ID: req.ID, Code: "busy", Error: ErrRPCBusy.Error()})
		return
	}
	r.wg.Add(1)
	r.mu.Unlock()
	go func() {
		defer r.wg.Done()
		defer func() { <-r.sem }()
		ctx, cancel := context.WithTimeout(r.ctx, r.cfg.HandlerTimeout)
		res := r.run(ctx, from, req)
		cancel()
		res.ID = req.ID
		r.reply(from, res)
	}()
}

func (r *RPC) reply(to NodeID, res rpcResponse) {
	ctx, cancel := context.WithTimeout(r.ctx, 5*time.Second)
	defer cancel()
	if err := r.cfg.Bus.Send(ctx, to, rpcResponseType, res); err != nil {
		r.log.Warn("cannot send an rpc answer", "to", to, "err", err)
	}
}

// run calls the method's handler.
func (r *RPC) run(ctx context.Context, from NodeID, req rpcRequest) rpcResponse {
	r.mu.Lock()
	h := r.handlers[req.Method]
	r.mu.Unlock()
	if h == nil {
		return rpcResponse{Code: "no_method", Error: fmt.Sprintf("%v: %q", ErrRPCNoMethod, req.Method), isError: true}
	}
	out, err := h(ctx, from, req.Body)
	if err != nil {
		return rpcResponse{Code: ErrorCode(err), Error: err.Error(), isError: true}
	}
	b, err := json.Marshal(out)
	if err != nil {
		return rpcResponse{Code: "internal", Error: "encode answer: " + err.Error(), isError: true}
	}
	if len(b) > maxBusMessage-1024 {
		return rpcResponse{Code: "too_large", Error: "answer too large for the bus", isError: true}
	}
	return rpcResponse{Body: b}
}

// Close fails new and waiting calls, cancels running handlers and waits for them.
func (r *RPC) Close() {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return
	}
	r.closed = true
	r.mu.Unlock()
	r.cancel()
	r.wg.Wait()
}
