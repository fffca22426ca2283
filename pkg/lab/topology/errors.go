package topology

import "errors"

// Sentinel errors.
var (
	// ErrInvalid wraps every problem found in a topology file.
	ErrInvalid = errors.New("invalid topology")
	// ErrNotLinked is returned by CheckLinked for a pair of sites with no link.
	ErrNotLinked = errors.New("sites not linked")
	// ErrUnknownSite is returned for a site name the topology does not have.
	ErrUnknownSite = errors.New("unknown site")
)
