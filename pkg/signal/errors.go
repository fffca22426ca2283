package signal

import (
	"errors"
	"net/http"

	"github.com/cascade-sfu/cascade/pkg/auth"
	"github.com/cascade-sfu/cascade/pkg/room"
	"github.com/cascade-sfu/cascade/pkg/rtc"
)

// Error codes of the protocol (docs/protocol.md).
const (
	CodeBadRequest         = "bad_request"
	CodeUnsupportedVersion = "unsupported_version"
	CodeUnknownType        = "unknown_type"
	CodeTooLarge           = "too_large"
	CodeRateLimited        = "rate_limited"
	CodeUnauthorized       = "unauthorized"
	CodeForbidden          = "forbidden"
	CodeRoomFull           = "room_full"
	CodeNotJoined          = "not_joined"
	CodeAlreadyJoined      = "already_joined"
	CodeInvalidSDP         = "invalid_sdp"
	CodeNegotiationFailed  = "negotiation_failed"
	CodeNotFound           = "not_found"
	CodeUnavailable        = "unavailable"
	CodeInternal           = "internal"
	CodeResumeFailed       = "resume_failed"
)

// ErrOccupancyUnavailable is what an Occupancy returns when the cluster's room state cannot be
// reached or is busy; the client is told to try again.
var ErrOccupancyUnavailable = errors.New("room state unavailable; try again")

// Error is a protocol error: a code, and a message for people.
type Error struct {
	Code    string
	Message string
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

func newError(code, msg string) *Error { return &Error{Code: code, Message: msg} }

// classify maps an error from the layers below to a protocol error.
func classify(err error) *Error {
	var pe *Error
	switch {
	case errors.As(err, &pe):
		return pe
	case errors.Is(err, auth.ErrMissingToken), errors.Is(err, auth.ErrTooLarge), errors.Is(err, auth.ErrMalformed),
		errors.Is(err, auth.ErrUnknownKey), errors.Is(err, auth.ErrBadSignature), errors.Is(err, auth.ErrExpired),
		errors.Is(err, auth.ErrNotYetValid), errors.Is(err, auth.ErrInvalidClaims):
		return newError(CodeUnauthorized, err.Error())
	case errors.Is(err, room.ErrNotAllowed), errors.Is(err, rtc.ErrNotPublisher):
		return newError(CodeForbidden, err.Error())
	case errors.Is(err, room.ErrRoomFull):
		return newError(CodeRoomFull, err.Error())
	case errors.Is(err, room.ErrTrackNotFound), errors.Is(err, room.ErrNotFound):
		return newError(CodeNotFound, err.Error())
	case errors.Is(err, room.ErrTooManyTracks), errors.Is(err, room.ErrTooManyLayers):
		return newError(CodeTooLarge, err.Error())
	case errors.Is(err, rtc.ErrInvalidSDP), errors.Is(err, rtc.ErrNothingUsable):
		return newError(CodeInvalidSDP, err.Error())
	case errors.Is(err, rtc.ErrNegotiationFailed), errors.Is(err, rtc.ErrNoPendingOffer):
		return newError(CodeNegotiationFailed, err.Error())
	case errors.Is(err, room.ErrManagerClosed), errors.Is(err, room.ErrParticipantGone), errors.Is(err, rtc.ErrClosed),
		errors.Is(err, ErrOccupancyUnavailable), errors.Is(err, room.ErrUnordered):
		return newError(CodeUnavailable, err.Error())
	}
	return newError(CodeInternal, "internal error")
}

// httpStatus maps a protocol error code to an HTTP status for WHIP/WHEP.
func httpStatus(code string) int {
	switch code {
	case CodeUnauthorized:
		return http.StatusUnauthorized
	case CodeForbidden:
		return http.StatusForbidden
	case CodeRoomFull:
		return http.StatusConflict
	case CodeNotFound:
		return http.StatusNotFound
	case CodeTooLarge:
		return http.StatusRequestEntityTooLarge
	case CodeRateLimited:
		return http.StatusTooManyRequests
	case CodeInvalidSDP, CodeBadRequest, CodeNegotiationFailed:
		return http.StatusBadRequest
	case CodeUnavailable:
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}
