package rtc

import (
	"net"
	"strings"
	"sync/atomic"

	"github.com/pion/ice/v4"
	"github.com/pion/interceptor/pkg/cc"
	"github.com/pion/stun/v4"
	"github.com/pion/webrtc/v4"
)

// NewRelayPeerConnection creates the PeerConnection of a node-to-node relay link. Unlike a
// participant's PeerConnections it carries media both ways, so it gets both interceptor sets:
// on the receive side NACK generation, receiver reports and transport-wide congestion feedback
// (as for a Publisher), on the send side sender reports, transport-wide sequence numbers and a
// GCC bandwidth estimate delivered to onBWE (as for a Subscriber). Codecs are the participants'
// (no transcoding across a relay either). The caller owns the PeerConnection and closes it, and
// arms the returned EarlyStart once it knows both descriptions.
func (e *Engine) NewRelayPeerConnection(onBWE func(cc.BandwidthEstimator)) (*webrtc.PeerConnection, *EarlyStart, error) {
	early := &EarlyStart{}
	se := e.relaySettings()
	se.SetICEBindingRequestHandler(early.onBindingRequest)
	api, err := e.newAPI(se, onBWE, bweLimits{RelayMaxBitrate, RelayMaxBitrate}, true)
	if err != nil {
		return nil, nil, err
	}
	pc, err := api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		return nil, nil, err
	}
	return pc, early, nil
}

// RelayMaxBitrate is the ceiling of a relay link's bandwidth estimate, where it also starts:
// pion's GCC cannot estimate more (its loss-based part stops at 100 Mbps). Links between nodes
// are rarely the bottleneck, so the estimate starts unconstrained and only GCC's response to
// growing delay or loss brings it down; an estimate at the ceiling means "not limited".
const RelayMaxBitrate = 100_000_000

// relaySettings returns the node's settings with round trips less in a link's set-up; both
// ends are Cascade nodes, so neither needs to interoperate with a browser:
//   - the SCTP association is set up in the SDP (SNAP, draft-hancke-tsvwg-snap): the INIT
//     exchange of the control channel's association costs no round trip on the link;
//   - the DTLS server skips HelloVerifyRequest. The cookie round trip protects a server from
//     amplifying spoofed ClientHellos; here DTLS starts only after ICE has checked the peer's
//     address with the credentials of the signed offer/answer;
//   - the answerer is the DTLS client (pion's default, made explicit): it is the ICE-controlled
//     end, the first to have a pair, so its ClientHello leaves first (see EarlyStart).
//
// On pion's virtual network (tests) the relay gathers no loopback candidate: vnet forwards
// what a node sends from its loopback address to the other node, which a kernel would not,
// but drops the answers, so such a pair looks half alive and defeats EarlyStart's one-pair
// rule. On a real network the node's address (and the IP filter) decides, as for participants.
func (e *Engine) relaySettings() webrtc.SettingEngine {
	se := e.se
	se.EnableSctpSnap(true)
	se.SetDTLSInsecureSkipHelloVerify(true)
	_ = se.SetAnsweringDTLSRole(webrtc.DTLSRoleClient) // a valid role: cannot fail
	if e.cfg.Net != nil {
		se.SetIncludeLoopbackCandidate(false)
	}
	return se
}

// EarlyStart lets the ends of a relay link start DTLS one round trip before standard ICE
// would let them. With standard ICE the controlling end (the offerer) nominates the pair once
// its own check has succeeded; the controlled end (the answerer, DTLS client) selects the pair
// when the nomination reaches it, half a round trip later, and the offerer only when the
// nomination's answer is back, a full round trip later; DTLS starts after that. Here, on the
// binding requests each end receives (pion's binding request handler):
//   - the controlled end selects the pair on the first authenticated check from the peer,
//     and sends its ClientHello at once, right behind its answer to that check;
//   - the controlling end selects the pair on the peer's first check that follows a success
//     answer on that pair, the moment pion itself nominates it (a check from the peer on a
//     pair that has succeeded is pion's trigger for an immediate nomination), so its DTLS
//     server is ready when the ClientHello arrives, instead of one round trip later.
//
// Nomination still happens as ICE specifies; only the wait for it is skipped. That is safe
// only when there is one candidate pair: both ends then agree on the pair without being
// told, the controlling end's check proves the path both ways, and pion nominates that pair
// in the same step. So EarlyStart does nothing until [EarlyStart.Arm] has seen exactly one
// candidate address on each side (a node whose media address is a specific IP), and it only
// acts on checks from the peer's signalled host candidate. Otherwise ICE runs as usual.
type EarlyStart struct {
	armed    atomic.Bool // one candidate address on each side
	selected atomic.Bool // a pair was selected here (at most once)
}

// Arm enables EarlyStart if the local and remote session descriptions (with their
// candidates) each hold exactly one candidate address, and reports whether it did. It must be
// called before the peer can send its first check: by the offerer before it applies the
// answer, by the answerer before it sends its answer.
func (s *EarlyStart) Arm(local, remote string) bool {
	if candidateAddrs(local) != 1 || candidateAddrs(remote) != 1 {
		return false
	}
	s.armed.Store(true)
	return true
}

// onBindingRequest is pion's binding request handler: it runs on the ICE agent's goroutine
// for every authenticated check received, after pion has answered it (and, on the
// controlling end, nominated if it was going to). Returning true selects the pair.
func (s *EarlyStart) onBindingRequest(m *stun.Message, _, remote ice.Candidate, pair *ice.CandidatePair) bool {
	if !s.armed.Load() || s.selected.Load() || remote.Type() != ice.CandidateTypeHost {
		return false
	}
	// The peer's check carries ICE-CONTROLLING when this end is the controlled one.
	if !m.Contains(stun.AttrICEControlling) && pair.ResponsesReceived() == 0 {
		return false
	}
	s.selected.Store(true)
	return true
}

// candidateAddrs counts the distinct candidate addresses of an SDP's first component.
func candidateAddrs(sdp string) int {
	addrs := map[string]bool{}
	for line := range strings.Lines(sdp) {
		rest, ok := strings.CutPrefix(strings.TrimRight(line, "\r\n"), "a=candidate:")
		if !ok {
			continue
		}
		// foundation component transport priority address port typ type ...
		f := strings.Fields(rest)
		if len(f) < 8 || f[1] != "1" {
			continue
		}
		addrs[net.JoinHostPort(f[4], f[5])] = true
	}
	return len(addrs)
}
