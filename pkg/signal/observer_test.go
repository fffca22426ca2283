package signal_test

import (
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/cascade-sfu/cascade/pkg/signal"
)

// recordingObserver keeps what the server reported.
type recordingObserver struct {
	mu       sync.Mutex
	messages map[string]int
	errors   map[string]int
	joins    map[string]int
}

func newRecordingObserver() *recordingObserver {
	return &recordingObserver{messages: map[string]int{}, errors: map[string]int{}, joins: map[string]int{}}
}

func (o *recordingObserver) Message(typ string) { o.mu.Lock(); o.messages[typ]++; o.mu.Unlock() }
func (o *recordingObserver) Error(code string)  { o.mu.Lock(); o.errors[code]++; o.mu.Unlock() }
func (o *recordingObserver) Joined(transport string, took time.Duration) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if took >= 0 {
		o.joins[transport]++
	}
}

func (o *recordingObserver) snapshot() (m, e, j map[string]int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	cp := func(x map[string]int) map[string]int {
		y := map[string]int{}
		for k, v := range x {
			y[k] = v
		}
		return y
	}
	return cp(o.messages), cp(o.errors), cp(o.joins)
}

// The observer hears every WebSocket message by type (garbage as "unknown"), every error sent
// to a client by code (HTTP refusals too) and every join by transport.
func TestObserverSeesMessagesErrorsAndJoins(t *testing.T) {
	obs := newRecordingObserver()
	n := newTestNode(t, func(c *signal.Config) { c.Observer = obs })

	ws := dialWS(t, n)
	ws.send(t, `{"v":1,"type":"frobnicate","id":"u1"}`)
	ws.expectError(t, signal.CodeUnknownType, "frobnicate", "u1")
	ws.send(t, `{"v":1,"type":`)
	ws.expectError(t, signal.CodeBadRequest, "", "")
	ws.join(t, token(t, testRoom, "alice", nil))
	ws.ping(t, "p1")

	n.goodRoundTrip(t, "whip", clientOffer(t, false))
	n.goodRoundTrip(t, "whep", clientOffer(t, true))
	if r := n.request(t, http.MethodPost, "/whip/"+testRoom, "", "application/sdp", "v=0"); r.status != http.StatusUnauthorized {
		t.Fatalf("WHIP without a token: %d", r.status)
	}
	if r := n.request(t, http.MethodPost, "/whip/"+testRoom, "Bearer "+token(t, testRoom, "x", nil), "text/plain", "v=0"); r.status != http.StatusUnsupportedMediaType {
		t.Fatalf("WHIP with a text body: %d", r.status)
	}

	m, e, j := obs.snapshot()
	wantM := map[string]int{"unknown": 2, "join": 1, "ping": 1}
	wantE := map[string]int{signal.CodeUnknownType: 1, signal.CodeBadRequest: 1, signal.CodeUnauthorized: 1, "unsupported_media_type": 1}
	wantJ := map[string]int{"ws": 1, "whip": 1, "whep": 1}
	for name, c := range []struct{ got, want map[string]int }{{m, wantM}, {e, wantE}, {j, wantJ}} {
		for k, v := range c.want {
			if c.got[k] != v {
				t.Errorf("%d: %s = %d, want %d (all: %v)", name, k, c.got[k], v, c.got)
			}
		}
	}
	// Every reported label is one the metrics know in advance.
	for k := range m {
		if !slices.Contains(signal.MessageTypes(), k) {
			t.Errorf("message type %q is not in MessageTypes", k)
		}
	}
	for k := range e {
		if !slices.Contains(signal.ErrorCodes(), k) {
			t.Errorf("error code %q is not in ErrorCodes", k)
		}
	}
}
