package cluster

import "errors"

// Sentinel errors of membership and the registry.
var (
	ErrNodeNotFound = errors.New("node not found")
	ErrBadTags      = errors.New("member tags are not a Cascade node's")
)
