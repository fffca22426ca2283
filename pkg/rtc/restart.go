package rtc

import (
	"fmt"
	"strings"

	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"
)

// RestartICE applies a WHIP client's ICE restart (RFC 9725 §4.3): its new credentials and
// candidates replace those of its last offer, and the server answers with fresh credentials.
// It returns the server's side as an SDP fragment (RFC 8840) for the PATCH response.
func (p *Publisher) RestartICE(ufrag, pwd string, cands []webrtc.ICECandidateInit) (string, error) {
	return restartICE(p.pc, ufrag, pwd, cands)
}

// RestartICE applies a WHEP client's ICE restart; see Publisher.RestartICE.
func (v *Viewer) RestartICE(ufrag, pwd string, cands []webrtc.ICECandidateInit) (string, error) {
	return restartICE(v.pc, ufrag, pwd, cands)
}

func restartICE(pc *webrtc.PeerConnection, ufrag, pwd string, cands []webrtc.ICECandidateInit) (string, error) {
	if ufrag == "" || pwd == "" || strings.ContainsAny(ufrag+pwd, "\r\n ") {
		return "", fmt.Errorf("%w: an ICE restart needs a=ice-ufrag and a=ice-pwd", ErrInvalidSDP)
	}
	prev := pc.RemoteDescription()
	if prev == nil {
		return "", ErrNoPendingOffer
	}
	var d sdp.SessionDescription
	if err := d.UnmarshalString(prev.SDP); err != nil {
		return "", fmt.Errorf("%w: %v", ErrInvalidSDP, err)
	}
	d.Attributes = withCredentials(d.Attributes, ufrag, pwd, false)
	for _, m := range d.MediaDescriptions {
		m.Attributes = withCredentials(m.Attributes, ufrag, pwd, true)
	}
	offer, err := d.Marshal()
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrInvalidSDP, err)
	}
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: string(offer)}); err != nil {
		return "", fmt.Errorf("%w: %v", ErrNegotiationFailed, err)
	}
	local, err := answer(pc)
	if err != nil {
		return "", err
	}
	for _, c := range cands {
		if err := pc.AddICECandidate(c); err != nil {
			return "", fmt.Errorf("%w: candidate: %v", ErrNegotiationFailed, err)
		}
	}
	return sdpFrag(local)
}

// withCredentials replaces ICE credentials and drops the old candidates. Credentials are only
// added where they were (session or media level), or at media level when add is set and the
// section had none.
func withCredentials(attrs []sdp.Attribute, ufrag, pwd string, add bool) []sdp.Attribute {
	out := attrs[:0:0]
	had := false
	for _, a := range attrs {
		switch a.Key {
		case "ice-ufrag":
			out = append(out, sdp.Attribute{Key: "ice-ufrag", Value: ufrag})
			had = true
		case "ice-pwd":
			out = append(out, sdp.Attribute{Key: "ice-pwd", Value: pwd})
		case "candidate", "end-of-candidates":
		default:
			out = append(out, a)
		}
	}
	if add && !had {
		out = append(out, sdp.Attribute{Key: "ice-ufrag", Value: ufrag}, sdp.Attribute{Key: "ice-pwd", Value: pwd})
	}
	return out
}

// sdpFrag extracts the ICE credentials and candidates of a description as an SDP fragment.
func sdpFrag(desc string) (string, error) {
	var d sdp.SessionDescription
	if err := d.UnmarshalString(desc); err != nil {
		return "", err
	}
	var b strings.Builder
	ufrag, _ := d.Attribute("ice-ufrag")
	pwd, _ := d.Attribute("ice-pwd")
	for _, m := range d.MediaDescriptions {
		if ufrag == "" {
			ufrag, _ = m.Attribute("ice-ufrag")
			pwd, _ = m.Attribute("ice-pwd")
		}
	}
	fmt.Fprintf(&b, "a=ice-ufrag:%s\r\na=ice-pwd:%s\r\n", ufrag, pwd)
	for _, m := range d.MediaDescriptions {
		mid, _ := m.Attribute("mid")
		fmt.Fprintf(&b, "m=%s %d %s %s\r\na=mid:%s\r\n", m.MediaName.Media, m.MediaName.Port.Value,
			strings.Join(m.MediaName.Protos, "/"), strings.Join(m.MediaName.Formats, " "), mid)
		for _, a := range m.Attributes {
			if a.Key == "candidate" {
				fmt.Fprintf(&b, "a=candidate:%s\r\n", a.Value)
			}
		}
	}
	return b.String(), nil
}
