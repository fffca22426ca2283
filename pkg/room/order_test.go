package room

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

// counter is a Sequencer shared by "nodes" (managers) in a test, like the Redis counter.
type counter struct {
	mu   sync.Mutex
	n    map[Name]uint64
	fail bool
}

func (c *counter) Next(_ context.Context, room Name) (uint64, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.fail {
		return 0, errors.New("store unreachable")
	}
	if c.n == nil {
		c.n = map[Name]uint64{}
	}
	c.n[room]++
	return c.n[room], nil
}

func (c *counter) Current(_ context.Context, room Name) (uint64, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.fail {
		return 0, errors.New("store unreachable")
	}
	return c.n[room], nil
}

func chats(s *sink) (texts []string, seqs []uint64) {
	for _, ev := range s.all() {
		if m, ok := ev.(DataMessage); ok && m.Kind == DataChat {
			texts = append(texts, m.Text)
			seqs = append(seqs, m.Seq)
		}
	}
	return texts, seqs
}

func joinRemote(t *testing.T, m *Manager, room Name, identity, origin string) *Participant {
	t.Helper()
	p, err := m.Join(room, JoinParams{
		Identity: Identity(identity), Session: SessionID(NewID("SE")), Permissions: allGrants,
		Sink: &sink{}, Transport: newTransport(), Origin: origin,
	})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// Messages numbered by the shared Sequencer are delivered in number order on every node, the
// sender's own copy included: a message relayed from another node that arrives before an
// earlier one waits for it.
func TestDataMessagesFollowTheSharedOrder(t *testing.T) {
	seq := &counter{}
	cfg := testConfig()
	cfg.Sequencer = seq
	m := NewManager(cfg)
	defer m.Close()
	alice, aliceSink, _ := join(t, m, "r", "alice")
	bob := joinRemote(t, m, "r", "bob", "hcm") // bob is on hcm; the relay shows him here

	// On hcm, bob's two messages got numbers 1 and 3, and alice's here gets 2. The relay
	// brings 3 before 1.
	eventually(t, "the room knows where its order stands", func() bool {
		r := m.Room("r")
		r.eventMu.Lock()
		defer r.eventMu.Unlock()
		return r.order.ready
	})
	seq.mu.Lock()
	seq.n = map[Name]uint64{"r": 0}
	seq.mu.Unlock()
	if err := bob.RelayData(DataMessage{Seq: 3, Kind: DataChat, Text: "bob-3"}); err != nil {
		t.Fatal(err)
	}
	seq.mu.Lock()
	seq.n["r"] = 1 // 1 was taken on hcm
	seq.mu.Unlock()
	if err := alice.SendChat("alice-2", "ref"); err != nil {
		t.Fatal(err)
	}
	if texts, _ := chats(aliceSink); len(texts) != 0 {
		t.Fatalf("delivered %v before message 1 arrived", texts)
	}
	if err := bob.RelayData(DataMessage{Seq: 1, Kind: DataChat, Text: "bob-1"}); err != nil {
		t.Fatal(err)
	}
	texts, seqs := chats(aliceSink)
	if want := []string{"bob-1", "alice-2", "bob-3"}; !equal(texts, want) {
		t.Fatalf("alice saw %v (seq %v), want %v", texts, seqs, want)
	}
}

// A number that never arrives (its node died after taking it) holds the rest back for about
// gapTimeout only; a late message is still delivered; a counter that starts again (the store
// lost it) starts the order again.
func TestDataOrderSkipsGapsAndResets(t *testing.T) {
	cfg := testConfig()
	cfg.Sequencer = &counter{n: map[Name]uint64{"r": 9}} // 9 messages before this node had the room
	m := NewManager(cfg)
	defer m.Close()
	_, aliceSink, _ := join(t, m, "r", "alice")
	bob := joinRemote(t, m, "r", "bob", "hcm")
	send := func(n uint64, text string) {
		t.Helper()
		if err := bob.RelayData(DataMessage{Seq: n, Kind: DataChat, Text: text}); err != nil {
			t.Fatal(err)
		}
	}
	send(10, "10")
	send(12, "12") // 11 is lost
	start := time.Now()
	eventually(t, "message 12 after the gap times out", func() bool {
		texts, _ := chats(aliceSink)
		return len(texts) == 2
	})
	if waited := time.Since(start); waited < gapTimeout/2 {
		t.Fatalf("12 went out after %v, before the gap could be filled", waited)
	}
	send(11, "11") // late: delivered anyway
	send(1, "restart")
	send(2, "after-restart")
	texts, _ := chats(aliceSink)
	if want := []string{"10", "12", "11", "restart", "after-restart"}; !equal(texts, want) {
		t.Fatalf("alice saw %v, want %v", texts, want)
	}
}

// Without the shared store a chat message is refused with a clear error, and nothing is
// delivered out of order.
func TestDataRefusedWhenUnordered(t *testing.T) {
	seq := &counter{fail: true}
	cfg := testConfig()
	cfg.Sequencer = seq
	m := NewManager(cfg)
	defer m.Close()
	alice, aliceSink, _ := join(t, m, "r", "alice")
	if err := alice.SendChat("hello", ""); !errors.Is(err, ErrUnordered) {
		t.Fatalf("SendChat with the store down: %v, want ErrUnordered", err)
	}
	if texts, _ := chats(aliceSink); len(texts) != 0 {
		t.Fatalf("delivered %v", texts)
	}
	local := joinRemote(t, m, "r", "carol", "")
	if err := local.RelayData(DataMessage{Seq: 5, Kind: DataChat, Text: "x"}); !errors.Is(err, ErrNotAllowed) {
		t.Fatalf("RelayData from a local participant: %v, want ErrNotAllowed", err)
	}
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
