package dashboard

import "errors"

// ErrClosed is returned by Subscribe after Close.
var ErrClosed = errors.New("dashboard: closed")

// ErrTooManyStreams is returned by Subscribe when the stream limit is reached.
var ErrTooManyStreams = errors.New("dashboard: too many open streams")
