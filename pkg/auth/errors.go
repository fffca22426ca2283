package auth

import "errors"

// Errors returned by [Verifier.Verify] and [BearerToken]. Each failure wraps
// exactly one of them.
var (
	// ErrMissingToken: no token was presented.
	ErrMissingToken = errors.New("auth: missing token")
	// ErrTooLarge: the token is longer than MaxTokenLen.
	ErrTooLarge = errors.New("auth: token too large")
	// ErrMalformed: the token or header is not well formed.
	ErrMalformed = errors.New("auth: malformed token")
	// ErrUnknownKey: the token's issuer is not a known API key.
	ErrUnknownKey = errors.New("auth: unknown API key")
	// ErrBadSignature: the signature does not verify, or the algorithm is
	// not HS256.
	ErrBadSignature = errors.New("auth: bad token signature")
	// ErrExpired: the token's exp is in the past.
	ErrExpired = errors.New("auth: token expired")
	// ErrNotYetValid: the token's nbf or iat is in the future.
	ErrNotYetValid = errors.New("auth: token not yet valid")
	// ErrInvalidClaims: a required claim is missing or a claim is invalid
	// (for example a bad room name).
	ErrInvalidClaims = errors.New("auth: invalid token claims")
)

// Errors returned by [Sign], [NewVerifier] and the validation helpers.
var (
	// ErrInvalidRoomName: see [ValidRoomName].
	ErrInvalidRoomName = errors.New("invalid room name")
	// ErrInvalidIdentity: see [ValidIdentity].
	ErrInvalidIdentity = errors.New("invalid identity")
	// ErrInvalidCredentials: an API key is empty or an API secret is
	// shorter than MinSecretLen.
	ErrInvalidCredentials = errors.New("auth: invalid API key or secret")
	// ErrInvalidTTL: the token lifetime is not in (0, MaxTTL].
	ErrInvalidTTL = errors.New("auth: invalid token lifetime")
)
