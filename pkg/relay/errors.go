package relay

import "errors"

// Sentinel errors of this package.
var (
	ErrClosed     = errors.New("relay: manager closed")
	ErrSelf       = errors.New("relay: no link to this node itself")
	ErrTimeout    = errors.New("relay: link set-up timed out")
	ErrRefused    = errors.New("relay: the peer refused the link")
	ErrLinkFailed = errors.New("relay: link failed")
	ErrLinkClosed = errors.New("relay: link closed")
	ErrPeerClosed = errors.New("relay: the peer closed the link")
	ErrReplaced   = errors.New("relay: link replaced by a newer one")
	ErrTooLarge   = errors.New("relay: control message too large")

	// errSuperseded ends a set-up attempt that lost to another one for the same peer (glare,
	// or the peer retried); Link's callers then wait for the attempt that replaced it.
	errSuperseded = errors.New("relay: set-up superseded by another attempt")
)
