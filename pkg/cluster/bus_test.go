package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/cascade-sfu/cascade/pkg/cluster/redistest"
)

var busSecret = []byte("cluster-secret-for-tests")

func TestBusDeliversSignedMessages(t *testing.T) {
	srv := redistest.Start(t)
	got := make(chan Message, 4)
	members := map[NodeID]bool{"a": true, "b": true}
	isMember := func(_ context.Context, id NodeID) bool { return members[id] }
	ctx := context.Background()
	a, err := NewRedisBus(ctx, srv.Client(), "t:", BusConfig{Self: "a", Secret: busSecret, IsMember: isMember})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := NewRedisBus(ctx, srv.Client(), "t:", BusConfig{Self: "b", Secret: busSecret, IsMember: isMember, Handler: func(m Message) { got <- m }})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if err := a.Send(ctx, "b", "kick", map[string]string{"session": "SE_1"}); err != nil {
		t.Fatal(err)
	}
	select {
	case m := <-got:
		var body map[string]string
		if m.Type != "kick" || m.From != "a" || json.Unmarshal(m.Body, &body) != nil || body["session"] != "SE_1" {
			t.Fatalf("got %+v", m)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("message not delivered")
	}
	// A forged message published straight to b's channel is dropped.
	forged, _ := json.Marshal(Message{Type: "kick", ID: "x", From: "a", To: "b", TS: time.Now().UnixMilli(), Body: json.RawMessage(`{}`), MAC: "AAAA"})
	srv.Client().Publish(ctx, "t:bus:b", forged)
	// So is one from a node that is not a member, even correctly signed.
	delete(members, "a")
	_ = a.Send(ctx, "b", "kick", map[string]string{})
	select {
	case m := <-got:
		t.Fatalf("accepted %+v", m)
	case <-time.After(300 * time.Millisecond):
	}
}

func TestBusRefusesForgedStaleReplayedAndMisaddressed(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	cfg := BusConfig{Self: "b", Secret: busSecret, now: func() time.Time { return now }}
	cfg.defaults()
	recv := &signer{cfg: cfg}
	sendCfg := cfg
	sendCfg.Self = "a"
	send := &signer{cfg: sendCfg}
	ctx := context.Background()

	good, _ := send.seal("b", "offer", map[string]int{"n": 1})
	if _, err := recv.open(ctx, good); err != nil {
		t.Fatalf("good message refused: %v", err)
	}
	if _, err := recv.open(ctx, good); !errors.Is(err, ErrReplayed) {
		t.Fatalf("replay: %v", err)
	}
	var m Message
	_ = json.Unmarshal(good, &m)
	m.Body = json.RawMessage(`{"n":2}`)
	tampered, _ := json.Marshal(m)
	if _, err := recv.open(ctx, tampered); !errors.Is(err, ErrBadMAC) {
		t.Fatalf("tampered: %v", err)
	}
	wrongKey := &signer{cfg: BusConfig{Self: "a", Secret: []byte("another-secret"), now: cfg.now}}
	other, _ := wrongKey.seal("b", "offer", nil)
	if _, err := recv.open(ctx, other); !errors.Is(err, ErrBadMAC) {
		t.Fatalf("other secret: %v", err)
	}
	toC, _ := send.seal("c", "offer", nil)
	if _, err := recv.open(ctx, toC); !errors.Is(err, ErrWrongNode) {
		t.Fatalf("misaddressed: %v", err)
	}
	old, _ := send.seal("b", "offer", nil)
	now = now.Add(time.Minute)
	if _, err := recv.open(ctx, old); !errors.Is(err, ErrStale) {
		t.Fatalf("stale: %v", err)
	}
	for _, junk := range [][]byte{nil, []byte("{"), []byte(`{"type":"x"}`), make([]byte, maxBusMessage+1)} {
		if _, err := recv.open(ctx, junk); err == nil {
			t.Fatalf("junk %q accepted", junk)
		}
	}
}
