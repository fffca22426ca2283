package signal

import "time"

// Observer is told about signalling events, for metrics. Its methods are called from request
// and session goroutines: they must be cheap, safe for concurrent use and must not block.
type Observer interface {
	// Message counts one WebSocket message received, by type: one of MessageTypes, or
	// "unknown" for a frame that is not a valid message of a known type.
	Message(typ string)
	// Error counts one error sent to a client (a WebSocket error message or an HTTP refusal),
	// by code: one of ErrorCodes.
	Error(code string)
	// Joined observes how long a join took from the verified token to the participant in its
	// room, by transport: "ws", "whip" or "whep".
	Joined(transport string, took time.Duration)
}

// MessageTypes lists the WebSocket message types a client may send, plus "unknown": the
// values Observer.Message is called with.
func MessageTypes() []string {
	return []string{"join", "offer", "answer", "candidate", "ice_restart", "mute", "subscription", "chat",
		"data", "kick", "leave", "ping", "unknown"}
}

// ErrorCodes lists every error code sent to clients: the values Observer.Error is called with.
func ErrorCodes() []string {
	return []string{CodeBadRequest, CodeUnsupportedVersion, CodeUnknownType, CodeTooLarge, CodeRateLimited,
		CodeUnauthorized, CodeForbidden, CodeRoomFull, CodeNotJoined, CodeAlreadyJoined, CodeInvalidSDP,
		CodeNegotiationFailed, CodeNotFound, CodeUnavailable, CodeInternal, codeUnsupportedMediaType}
}

// codeUnsupportedMediaType refuses a WHIP/WHEP body that is not application/sdp.
const codeUnsupportedMediaType = "unsupported_media_type"

// Transports a join can come through, for Observer.Joined.
const (
	TransportWS   = "ws"
	TransportWHIP = "whip"
	TransportWHEP = "whep"
)

// messageLabel is typ if it is a known client message type, else "unknown".
func messageLabel(typ string) string {
	if handlerFor(typ) == nil {
		return "unknown"
	}
	return typ
}

type nopObserver struct{}

func (nopObserver) Message(string)               {}
func (nopObserver) Error(string)                 {}
func (nopObserver) Joined(string, time.Duration) {}
