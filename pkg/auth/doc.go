// Package auth issues and verifies Cascade access tokens.
//
// An access token is an HS256-signed JWT that names one room and one
// participant identity and carries that participant's grants (publish,
// subscribe, publish data, room admin). The token's issuer (iss) is the API
// key; the API secret belonging to that key signs it. Clients present the
// token in the signalling join message or in an "Authorization: Bearer"
// header (see [BearerToken]).
//
// The package owns the token format: the claim names, which algorithms are
// accepted (HS256 only), which claims are required (exp, sub, room) and the
// validation rules for room names ([ValidRoomName]) and identities
// ([ValidIdentity]). It knows nothing about rooms, sessions or HTTP servers.
//
// Every failure of [Verifier.Verify] wraps exactly one of the sentinel
// errors in errors.go, so callers can map failures to protocol errors with
// [errors.Is] without looking at the underlying JWT library.
//
// # Concurrency
//
// [Sign], [BearerToken] and the validation helpers are pure functions. A
// [Verifier] is immutable after [NewVerifier] returns and is safe for
// concurrent use by any number of goroutines.
package auth
