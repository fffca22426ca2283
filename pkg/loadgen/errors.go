package loadgen

import "errors"

var (
	// ErrConfig is wrapped by every error about a bad Config.
	ErrConfig = errors.New("loadgen: invalid configuration")
	// ErrNoMedia is a viewer that connected but received no media packet in time.
	ErrNoMedia = errors.New("no media packet received")
	// ErrNoPublisher is a run whose publishers all failed.
	ErrNoPublisher = errors.New("no publisher could publish")
	// ErrProcStat is a /proc/PID/stat that cannot be read or parsed.
	ErrProcStat = errors.New("reading the server's CPU time")
)
