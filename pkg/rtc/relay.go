package rtc

import (
	"github.com/pion/interceptor/pkg/cc"
	"github.com/pion/webrtc/v4"
)

// NewRelayPeerConnection creates the PeerConnection of a node-to-node relay link. Unlike a
// participant's PeerConnections it carries media both ways, so it gets both interceptor sets:
// on the receive side NACK generation, receiver reports and transport-wide congestion feedback
// (as for a Publisher), on the send side sender reports, transport-wide sequence numbers and a
// GCC bandwidth estimate delivered to onBWE (as for a Subscriber). Codecs are the participants'
// (no transcoding across a relay either). The caller owns the PeerConnection and closes it.
func (e *Engine) NewRelayPeerConnection(onBWE func(cc.BandwidthEstimator)) (*webrtc.PeerConnection, error) {
	api, err := e.newRelayAPI(onBWE)
	if err != nil {
		return nil, err
	}
	return api.NewPeerConnection(webrtc.Configuration{})
}

// newRelayAPI builds the pion API of a relay link: both interceptor sets on one registry.
func (e *Engine) newRelayAPI(onBWE func(cc.BandwidthEstimator)) (*webrtc.API, error) {
	return e.newAPI(e.relaySettings(), onBWE, bweLimits{RelayMaxBitrate, RelayMaxBitrate}, true)
}

// RelayMaxBitrate is the ceiling of a relay link's bandwidth estimate, where it also starts:
// pion's GCC cannot estimate more (its loss-based part stops at 100 Mbps). Links between nodes
// are rarely the bottleneck, so the estimate starts unconstrained and only GCC's response to
// growing delay or loss brings it down; an estimate at the ceiling means "not limited".
const RelayMaxBitrate = 100_000_000

// relaySettings returns the node's settings with two round trips less in a link's set-up;
// both ends are Cascade nodes, so neither needs to interoperate with a browser:
//   - the SCTP association is set up in the SDP (SNAP, draft-hancke-tsvwg-snap): the INIT
//     exchange of the control channel's association costs no round trip on the link;
//   - the DTLS server skips HelloVerifyRequest. The cookie round trip protects a server from
//     amplifying spoofed ClientHellos; here DTLS starts only after ICE has checked the peer's
//     address with the credentials of the signed offer/answer.
func (e *Engine) relaySettings() webrtc.SettingEngine {
	se := e.se
	se.EnableSctpSnap(true)
	se.SetDTLSInsecureSkipHelloVerify(true)
	return se
}
