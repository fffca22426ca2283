package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/cascade-sfu/cascade/pkg/cluster/redistest"
)

// rpcPair starts two nodes' buses and RPC endpoints on a real Redis.
func rpcPair(t *testing.T, timeout time.Duration) (a, b *RPC) {
	t.Helper()
	srv := redistest.Start(t)
	members := func(_ context.Context, id NodeID) bool { return id == "a" || id == "b" }
	a = NewRPC(RPCConfig{Self: "a", Timeout: timeout})
	b = NewRPC(RPCConfig{Self: "b", Timeout: timeout})
	busA, err := NewRedisBus(context.Background(), srv.Client(), "t:", BusConfig{Self: "a", Secret: busSecret, IsMember: members, Handler: func(m Message) { a.HandleMessage(m) }})
	if err != nil {
		t.Fatal(err)
	}
	busB, err := NewRedisBus(context.Background(), srv.Client(), "t:", BusConfig{Self: "b", Secret: busSecret, IsMember: members, Handler: func(m Message) { b.HandleMessage(m) }})
	if err != nil {
		t.Fatal(err)
	}
	a.cfg.Bus, b.cfg.Bus = busA, busB
	t.Cleanup(func() {
		a.Close()
		b.Close()
		_ = busA.Close()
		_ = busB.Close()
	})
	return a, b
}

type echoReq struct {
	Text string `json:"text"`
}

func TestRPCCallsAnotherNodeOverRedis(t *testing.T) {
	a, b := rpcPair(t, 5*time.Second)
	b.Handle("echo", func(_ context.Context, from NodeID, body json.RawMessage) (any, error) {
		var r echoReq
		if err := json.Unmarshal(body, &r); err != nil {
			return nil, err
		}
		return echoReq{Text: string(from) + ":" + r.Text}, nil
	})
	b.Handle("missing", func(context.Context, NodeID, json.RawMessage) (any, error) {
		return nil, &CodedError{Code: "not_found", Err: errors.New("no such participant")}
	})
	var out echoReq
	if err := a.Call(context.Background(), "b", "echo", echoReq{Text: "hi"}, &out); err != nil {
		t.Fatal(err)
	}
	if out.Text != "a:hi" {
		t.Fatalf("answer %q, want a:hi", out.Text)
	}
	err := a.Call(context.Background(), "b", "missing", nil, nil)
	var re *RemoteError
	if !errors.As(err, &re) || re.Code != "not_found" || re.Node != "b" || ErrorCode(err) != "not_found" {
		t.Fatalf("handler error came back as %v", err)
	}
	err = a.Call(context.Background(), "b", "nope", nil, nil)
	if ErrorCode(err) != "no_method" {
		t.Fatalf("unknown method: %v", err)
	}
}

func TestRPCTimesOutWhenTheNodeDoesNotAnswer(t *testing.T) {
	a, _ := rpcPair(t, 300*time.Millisecond)
	// "c" listens on no channel: nothing answers.
	err := a.Call(context.Background(), "c", "echo", echoReq{}, nil)
	if !errors.Is(err, ErrRPCTimeout) {
		t.Fatalf("got %v, want ErrRPCTimeout", err)
	}
}

func TestRPCRunsLocallyWithoutABus(t *testing.T) {
	r := NewRPC(RPCConfig{Self: "solo"})
	defer r.Close()
	r.Handle("echo", func(_ context.Context, from NodeID, body json.RawMessage) (any, error) {
		return echoReq{Text: string(from)}, nil
	})
	var out echoReq
	if err := r.Call(context.Background(), "solo", "echo", nil, &out); err != nil || out.Text != "solo" {
		t.Fatalf("local call: %v %+v", err, out)
	}
	if err := r.Call(context.Background(), "other", "echo", nil, nil); !errors.Is(err, ErrRPCNoBus) {
		t.Fatalf("remote call without a bus: %v", err)
	}
	r.Close()
	if err := r.Call(context.Background(), "solo", "echo", nil, nil); !errors.Is(err, ErrRPCClosed) {
		t.Fatalf("call after Close: %v", err)
	}
}

func TestRPCCloseReleasesAWaitingCall(t *testing.T) {
	a, _ := rpcPair(t, time.Minute)
	errc := make(chan error, 1)
	go func() { errc <- a.Call(context.Background(), "c", "echo", echoReq{}, nil) }()
	time.Sleep(100 * time.Millisecond) // let the call send and wait
	a.Close()
	select {
	case err := <-errc:
		if !errors.Is(err, ErrRPCClosed) {
			t.Fatalf("got %v, want ErrRPCClosed", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Close left a call waiting")
	}
}
