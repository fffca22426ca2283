package room

import "errors"

// Sentinel errors returned by this package. Callers match them with errors.Is.
var (
	ErrRoomFull        = errors.New("room is full")
	ErrRoomClosed      = errors.New("room is closed")
	ErrNotAllowed      = errors.New("not allowed by the participant's grants")
	ErrTrackNotFound   = errors.New("track not found")
	ErrTrackClosed     = errors.New("track is closed")
	ErrTooManyTracks   = errors.New("too many published tracks")
	ErrTooManyLayers   = errors.New("too many simulcast layers")
	ErrLayerExists     = errors.New("simulcast layer already published")
	ErrParticipantGone = errors.New("participant has left")
	ErrNotFound        = errors.New("participant not found")
	ErrCodecMismatch   = errors.New("subscriber does not support the track's codec")
	ErrManagerClosed   = errors.New("room manager is closed")
	ErrUnordered       = errors.New("cannot number the message in the room's order: the cluster store is unreachable; retry")
)
