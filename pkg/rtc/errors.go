package rtc

import "errors"

// Sentinel errors of this package.
var (
	ErrInvalidSDP        = errors.New("invalid SDP")
	ErrNothingUsable     = errors.New("the offer has nothing this server can use")
	ErrNotPublisher      = errors.New("the offer sends media but the token does not allow publishing")
	ErrNoPendingOffer    = errors.New("no offer is waiting for an answer")
	ErrClosed            = errors.New("peer connection is closed")
	ErrNegotiationFailed = errors.New("negotiation failed")
	errPacketTooLarge    = errors.New("RTP packet too large for the write path")
)
