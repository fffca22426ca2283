package geo

import "errors"

var (
	// ErrNoNode is returned by Pick when no node can take the client: the list
	// is empty, or every node is draining or full.
	ErrNoNode = errors.New("geo: no eligible node")

	// ErrInvalidPoint is returned by Pick when the client location is not a
	// valid latitude/longitude pair (see Point.Valid).
	ErrInvalidPoint = errors.New("geo: invalid point")

	// ErrGeoIP wraps every failure to open or read a GeoIP database.
	ErrGeoIP = errors.New("geo: geoip database")
)
