package cluster

import (
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/cascade-sfu/cascade/pkg/auth"
	"github.com/cascade-sfu/cascade/pkg/client"
	"github.com/cascade-sfu/cascade/pkg/signal"
)

// chatLog collects the chat texts one client receives, in order, with their room sequence.
func chatLog(t *testing.T, c *client.Client, want int) ([]string, []uint64) {
	t.Helper()
	var texts []string
	var seqs []uint64
	deadline := time.After(30 * time.Second)
	for len(texts) < want {
		select {
		case env := <-c.Messages():
			if env.Type != "data" {
				continue
			}
			var m signal.DataMsg
			if err := json.Unmarshal(env.Data, &m); err != nil || m.Kind != "chat" {
				continue
			}
			texts, seqs = append(texts, m.Text), append(seqs, m.Seq)
		case <-deadline:
			t.Fatalf("received %d of %d chat messages: %v", len(texts), want, texts)
		}
	}
	return texts, seqs
}

// Clients on two nodes chat at once: every client sees every message, in one and the same
// order (the room's cluster-wide sequence), its own included — what the watch-together
// pattern ("play only when your own play comes back") needs when friends are on different
// nodes.
func TestChatHasOneOrderAcrossNodes(t *testing.T) {
	eu, hcm := twoNodes(t)
	g := auth.Grants{CanPublishData: true, CanSubscribe: true}
	clients := map[string]*client.Client{
		"alice": dialWith(t, eu, "order", "alice", g, nil),
		"carol": dialWith(t, eu, "order", "carol", g, nil),
		"bob":   dialWith(t, hcm, "order", "bob", g, nil),
		"dave":  dialWith(t, hcm, "order", "dave", g, nil),
	}
	for _, c := range clients {
		t.Cleanup(c.Close)
	}
	// Wait for the room to span both nodes: a message from each side reaches the other (a
	// message sent before the link and the other node's proxies exist does not cross).
	crosses := func(from, to *client.Client, text string) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for time.Now().Before(deadline) {
			if err := from.Chat(text); err != nil {
				t.Fatal(err)
			}
			wait := time.After(500 * time.Millisecond)
		read:
			for {
				select {
				case env := <-to.Messages():
					var m signal.DataMsg
					if env.Type == "data" && json.Unmarshal(env.Data, &m) == nil && m.Text == text {
						return
					}
				case <-wait:
					break read
				}
			}
		}
		t.Fatalf("%q never crossed", text)
	}
	crosses(clients["alice"], clients["bob"], "ready-eu")
	crosses(clients["bob"], clients["alice"], "ready-hcm")
	// Drain what the others received of the warm-up.
	time.Sleep(500 * time.Millisecond)
	for _, c := range clients {
		for len(c.Messages()) > 0 {
			<-c.Messages()
		}
	}

	const each = 15
	var wg sync.WaitGroup
	for name, c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				if err := c.Chat(fmt.Sprintf("%s-%d", name, i)); err != nil {
					t.Errorf("%s: %v", name, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	var first []string
	var firstName string
	for name, c := range clients {
		texts, seqs := chatLog(t, c, len(clients)*each)
		if !slices.IsSorted(seqs) || slices.Compact(slices.Clone(seqs)) == nil || len(slices.Compact(slices.Clone(seqs))) != len(seqs) {
			t.Fatalf("%s received sequence numbers out of order or repeated: %v", name, seqs)
		}
		if first == nil {
			first, firstName = texts, name
			continue
		}
		if !slices.Equal(texts, first) {
			t.Fatalf("%s and %s saw different orders:\n%v\n%v", firstName, name, first, texts)
		}
	}
	t.Logf("%d clients on 2 nodes saw the same order of %d concurrent messages", len(clients), len(first))
}
