package lab

import "errors"

// Sentinel errors.
var (
	ErrNotRoot     = errors.New("the lab needs root (network namespaces, TAP devices)")
	ErrNoIP        = errors.New("the lab needs the ip command (iproute2)")
	ErrNoTUN       = errors.New("the lab needs /dev/net/tun")
	ErrExists      = errors.New("a lab is already up (run 'relayctl lab down')")
	ErrNoLab       = errors.New("no lab is up")
	ErrUnknownSite = errors.New("unknown lab site")
	ErrNotReady    = errors.New("lab did not become ready")
	ErrBadOptions  = errors.New("bad lab options")
)
