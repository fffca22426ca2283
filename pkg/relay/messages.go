package relay

import "encoding/json"

// Bus message types of the relay. The node's bus handler routes them to
// [Manager.HandleBusMessage].
const (
	MsgOffer  = "relay_offer"
	MsgAnswer = "relay_answer"
	MsgClose  = "relay_close"
)

// MaxControlMessage bounds an encoded control message.
const MaxControlMessage = 64 << 10

// ControlMessage travels on a link's control data channel, as JSON. Room names the room it
// is about (empty for link-wide messages); Body is defined by Type.
type ControlMessage struct {
	Type string          `json:"type"`
	Room string          `json:"room,omitempty"`
	Body json.RawMessage `json:"body,omitempty"`
}

// offerBody is the body of a relay_offer: Req identifies the attempt and, once open, the link.
type offerBody struct {
	Req string `json:"req"`
	SDP string `json:"sdp"`
}

// answerBody is the body of a relay_answer: an SDP answer, or why the peer refused.
type answerBody struct {
	Req   string `json:"req"`
	SDP   string `json:"sdp,omitempty"`
	Error string `json:"error,omitempty"`
}

// closeBody is the body of a relay_close: the link (or attempt) Req is gone at the sender.
type closeBody struct {
	Req    string `json:"req"`
	Reason string `json:"reason,omitempty"`
}
