package rtc

import (
	"testing"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/stun/v4"
)

func TestCandidateAddrs(t *testing.T) {
	const (
		a = "a=candidate:1 1 udp 2130706431 198.51.100.1 7882 typ host\r\n"
		b = "a=candidate:2 1 udp 2130706431 198.51.100.9 7882 typ host\r\n"
		// the same address again, in another m-section, and its RTCP component
		aAgain = "a=candidate:1 1 udp 2130706431 198.51.100.1 7882 typ host generation 0\r\n"
		aRTCP  = "a=candidate:1 2 udp 2130706430 198.51.100.1 7883 typ host\r\n"
	)
	for _, tc := range []struct {
		name string
		sdp  string
		want int
	}{
		{"none", "v=0\r\nm=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\n", 0},
		{"one", "v=0\r\n" + a, 1},
		{"one, repeated per m-section, with RTCP", "v=0\r\n" + a + "m=video 9\r\n" + aAgain + aRTCP, 1},
		{"two", "v=0\r\n" + a + b, 2},
		{"no CRLF", "v=0\n" + a[:len(a)-2] + "\n", 1},
		{"truncated line", "v=0\r\na=candidate:1 1 udp 2130706431 198.51.100.1\r\n", 0},
	} {
		if got := candidateAddrs(tc.sdp); got != tc.want {
			t.Errorf("%s: %d candidate addresses, want %d", tc.name, got, tc.want)
		}
	}
}

func TestEarlyStartArm(t *testing.T) {
	one := "a=candidate:1 1 udp 2130706431 198.51.100.1 7882 typ host\r\n"
	two := one + "a=candidate:2 1 udp 2130706431 10.0.0.1 7882 typ host\r\n"
	for _, tc := range []struct {
		local, remote string
		want          bool
	}{
		{one, one, true},
		{two, one, false},
		{one, two, false},
		{"", one, false},
	} {
		var s EarlyStart
		if got := s.Arm(tc.local, tc.remote); got != tc.want {
			t.Errorf("Arm(%q, %q) = %v, want %v", tc.local, tc.remote, got, tc.want)
		}
	}
}

// TestEarlyStartSelection drives the binding request handler as pion's ICE agent calls it.
func TestEarlyStartSelection(t *testing.T) {
	host := func(ip string) ice.Candidate {
		c, err := ice.NewCandidateHost(&ice.CandidateHostConfig{Network: "udp", Address: ip, Port: 7882, Component: 1})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	prflx, err := ice.NewCandidatePeerReflexive(&ice.CandidatePeerReflexiveConfig{
		Network: "udp", Address: "203.0.113.7", Port: 40000, Component: 1,
	})
	if err != nil {
		t.Fatal(err)
	}
	check := func(role stun.Setter) *stun.Message {
		m, err := stun.Build(stun.BindingRequest, stun.TransactionID, role)
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	fromControlling := check(ice.AttrControlling(1)) // this end is controlled
	fromControlled := check(ice.AttrControlled(1))   // this end is controlling
	local, remote := host("198.51.100.1"), host("198.51.100.2")

	t.Run("not armed", func(t *testing.T) {
		var s EarlyStart
		if s.onBindingRequest(fromControlling, local, remote, &ice.CandidatePair{Local: local, Remote: remote}) {
			t.Error("selected a pair before Arm")
		}
	})
	t.Run("controlled: first check selects, once", func(t *testing.T) {
		s := armed(t)
		pair := &ice.CandidatePair{Local: local, Remote: remote}
		if !s.onBindingRequest(fromControlling, local, remote, pair) {
			t.Fatal("the controlled end did not select on the first check")
		}
		if s.onBindingRequest(fromControlling, local, remote, pair) {
			t.Error("selected a second time")
		}
	})
	t.Run("controlling: only after a success answer on the pair", func(t *testing.T) {
		s := armed(t)
		pair := &ice.CandidatePair{Local: local, Remote: remote}
		if s.onBindingRequest(fromControlled, local, remote, pair) {
			t.Fatal("the controlling end selected a pair its own check has not proved")
		}
		pair.UpdateRoundTripTime(100 * time.Millisecond) // what pion does on a success answer
		if !s.onBindingRequest(fromControlled, local, remote, pair) {
			t.Error("the controlling end did not select the proved pair")
		}
	})
	t.Run("peer-reflexive remote", func(t *testing.T) {
		s := armed(t)
		if s.onBindingRequest(fromControlling, local, prflx, &ice.CandidatePair{Local: local, Remote: prflx}) {
			t.Error("selected a pair with a remote the signalling did not name")
		}
	})
}

func armed(t *testing.T) *EarlyStart {
	t.Helper()
	one := "a=candidate:1 1 udp 2130706431 198.51.100.1 7882 typ host\r\n"
	var s EarlyStart
	if !s.Arm(one, one) {
		t.Fatal("Arm refused one candidate on each side")
	}
	return &s
}
