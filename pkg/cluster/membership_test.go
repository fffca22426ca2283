package cluster

import (
	"maps"
	"net"
	"strconv"
	"testing"
	"time"
)

func freeGossipAddr(t *testing.T) string {
	t.Helper()
	for range 20 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		u, err := net.ListenPacket("udp", "127.0.0.1:"+strconv.Itoa(port))
		l.Close()
		if err == nil {
			u.Close()
			return "127.0.0.1:" + strconv.Itoa(port)
		}
	}
	t.Fatal("no free port")
	return ""
}

func startMember(t *testing.T, id string, key []byte, join ...string) *Membership {
	t.Helper()
	m, err := NewMembership(MembershipConfig{
		Self:     Node{ID: NodeID(id), Region: id, Lat: 1, Lon: 2, URL: "http://" + id, State: StateActive},
		BindAddr: freeGossipAddr(t), SecretKey: key, Fast: true, Join: join, RetryJoin: 100 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close() })
	return m
}

func gossipAddr(m *Membership) string {
	for _, mem := range m.Members() {
		if mem.ID == m.Self().ID {
			return mem.Addr
		}
	}
	return ""
}

func waitMembers(t *testing.T, m *Membership, n int) []Member {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if got := m.Members(); len(got) == n {
			return got
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s sees %d members, want %d", m.Self().ID, len(m.Members()), n)
	return nil
}

func TestMembershipTagsStateAndRTT(t *testing.T) {
	a := startMember(t, "a", nil)
	b := startMember(t, "b", nil, gossipAddr(a))
	c := startMember(t, "c", nil, gossipAddr(a))
	for _, m := range []*Membership{a, b, c} {
		waitMembers(t, m, 3)
	}
	if err := c.Update(func(n *Node) { n.State, n.Load, n.Participants = StateDraining, 0.5, 42 }); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		var seen Node
		for _, mem := range a.Members() {
			if mem.ID == "c" {
				seen = mem.Node
			}
		}
		if seen.State == StateDraining && seen.Participants == 42 && seen.Load == 0.5 && seen.URL == "http://c" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("a sees c as %+v", seen)
		}
		time.Sleep(50 * time.Millisecond)
	}
	deadline = time.Now().Add(10 * time.Second)
	for {
		if rtt, ok := a.RTT("b"); ok && rtt > 0 && rtt < time.Second {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no RTT estimate from a to b")
		}
		time.Sleep(50 * time.Millisecond)
	}
	// A member that leaves is no longer listed.
	if err := b.Leave(); err != nil {
		t.Fatal(err)
	}
	waitMembers(t, a, 2)
}

func TestMembershipGossipKey(t *testing.T) {
	key := []byte("0123456789abcdef")
	a := startMember(t, "a", key)
	b := startMember(t, "b", key, gossipAddr(a))
	waitMembers(t, b, 2)
	// A node with another key cannot join.
	stranger := startMember(t, "stranger", []byte("fedcba9876543210"))
	if _, err := stranger.Join([]string{gossipAddr(a)}); err == nil {
		time.Sleep(300 * time.Millisecond)
		if len(a.Members()) != 2 {
			t.Fatalf("a node with the wrong gossip key joined: %d members", len(a.Members()))
		}
	}
}

func TestMembershipRetriesJoinUntilPeerExists(t *testing.T) {
	addr := freeGossipAddr(t)
	b := startMember(t, "b", nil, addr) // a is not there yet
	a, err := NewMembership(MembershipConfig{Self: Node{ID: "a", State: StateActive}, BindAddr: addr, Fast: true})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	waitMembers(t, b, 2)
}

// Measured link RTTs stay out of Serf tags: they grow with the cluster and Serf limits a
// member's tags to 512 bytes.
func TestTagsLeaveOutLinkRTT(t *testing.T) {
	n := Node{ID: "a", Region: "eu", URL: "http://a", State: StateActive}
	without := n.tags()
	n.LinkRTT = map[NodeID]time.Duration{}
	for i := range 100 {
		n.LinkRTT[NodeID("node-"+strconv.Itoa(i))] = time.Duration(i+1) * time.Millisecond
		n.Links = append(n.Links, LinkSummary{Peer: NodeID("node-" + strconv.Itoa(i)), BitrateOut: 1e6})
	}
	if !maps.Equal(without, n.tags()) {
		t.Fatalf("link RTTs changed the tags: %v", n.tags())
	}
}
