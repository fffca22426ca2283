package auth

import (
	"crypto/rand"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/golang-jwt/jwt/v5"
)

// Development credentials. They are public: use them only with a server
// started in dev mode.
const (
	DevAPIKey    = "devkey"
	DevAPISecret = "cascade-dev-secret-not-for-production"
)

// Limits enforced by [Sign], [NewVerifier] and [Verifier.Verify].
const (
	// MinSecretLen is the shortest accepted API secret, in bytes. HS256
	// with a short secret can be brute-forced offline from one token.
	MinSecretLen = 16
	// MaxTTL is the longest token lifetime [Sign] issues.
	MaxTTL = 30 * 24 * time.Hour
	// MaxTokenLen is the longest token [Verifier.Verify] parses, in bytes.
	MaxTokenLen = 8 << 10
	// DefaultLeeway is the clock skew tolerated on exp, nbf and iat.
	DefaultLeeway = 5 * time.Second
	// MaxRoomNameLen is the longest room name, in bytes.
	MaxRoomNameLen = 64
	// MaxIdentityLen is the longest identity, in bytes.
	MaxIdentityLen = 128
	// MaxNameLen is the longest display name, in bytes.
	MaxNameLen = 256
)

// Grants is what a token allows its bearer to do. It is the verified content
// of a token.
type Grants struct {
	Room     string // room the token is for (claim "room")
	Identity string // participant identity (claim "sub")
	Name     string // display name, optional (claim "name")

	CanPublish     bool // may send media (claim "canPublish")
	CanSubscribe   bool // may receive media (claim "canSubscribe")
	CanPublishData bool // may send chat and data messages (claim "canPublishData")
	RoomAdmin      bool // may mute others and kick (claim "roomAdmin")
	// ClusterAdmin may use the operator API (nodes, rooms, relays) of every node
	// (claim "clusterAdmin"). Such a token needs no room.
	ClusterAdmin bool

	// ExpiresAt is the token's exp. [Sign] ignores it and uses now+ttl.
	ExpiresAt time.Time
	// NotBefore is the token's nbf. [Sign] uses it when it is not zero,
	// now otherwise.
	NotBefore time.Time
}

// AllowsRoom reports whether the grants are for room.
func (g Grants) AllowsRoom(room string) bool {
	return room != "" && g.Room == room
}

// validate checks the room, identity and display name. A cluster admin token
// may name no room.
func (g Grants) validate() error {
	if !(g.ClusterAdmin && g.Room == "") {
		if err := ValidRoomName(g.Room); err != nil {
			return err
		}
	}
	if err := ValidIdentity(g.Identity); err != nil {
		return err
	}
	if reason := checkText(g.Name, MaxNameLen); reason != "" {
		return fmt.Errorf("%w: name %s", ErrInvalidClaims, reason)
	}
	return nil
}

// claims is the JSON form of a token's payload.
type claims struct {
	jwt.RegisteredClaims
	Room           string `json:"room,omitempty"`
	Name           string `json:"name,omitempty"`
	CanPublish     bool   `json:"canPublish,omitempty"`
	CanSubscribe   bool   `json:"canSubscribe,omitempty"`
	CanPublishData bool   `json:"canPublishData,omitempty"`
	RoomAdmin      bool   `json:"roomAdmin,omitempty"`
	ClusterAdmin   bool   `json:"clusterAdmin,omitempty"`
}

func newClaims(apiKey string, g Grants, ttl time.Duration, now time.Time) claims {
	nbf := now
	if !g.NotBefore.IsZero() {
		nbf = g.NotBefore
	}
	return claims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    apiKey,
			Subject:   g.Identity,
			ExpiresAt: jwt.NewNumericDate(now.Add(ttl)),
			NotBefore: jwt.NewNumericDate(nbf),
			IssuedAt:  jwt.NewNumericDate(now),
			ID:        rand.Text(),
		},
		Room:           g.Room,
		Name:           g.Name,
		CanPublish:     g.CanPublish,
		CanSubscribe:   g.CanSubscribe,
		CanPublishData: g.CanPublishData,
		RoomAdmin:      g.RoomAdmin,
		ClusterAdmin:   g.ClusterAdmin,
	}
}

func (c *claims) grants() Grants {
	g := Grants{
		Room:           c.Room,
		Identity:       c.Subject,
		Name:           c.Name,
		CanPublish:     c.CanPublish,
		CanSubscribe:   c.CanSubscribe,
		CanPublishData: c.CanPublishData,
		RoomAdmin:      c.RoomAdmin,
		ClusterAdmin:   c.ClusterAdmin,
	}
	if c.ExpiresAt != nil {
		g.ExpiresAt = c.ExpiresAt.Time
	}
	if c.NotBefore != nil {
		g.NotBefore = c.NotBefore.Time
	}
	return g
}

// Sign issues an HS256 token for g, signed with apiSecret and naming apiKey
// as its issuer. The token is valid from g.NotBefore (now when zero) until
// now+ttl; times are truncated to whole seconds. A random jti makes every
// token distinct.
//
// Sign fails with [ErrInvalidCredentials] for an empty key or a secret
// shorter than [MinSecretLen], [ErrInvalidTTL] unless 0 < ttl <= [MaxTTL]
// and the token would be valid at some instant, and with
// [ErrInvalidRoomName], [ErrInvalidIdentity] or [ErrInvalidClaims] for bad
// grants.
func Sign(apiKey, apiSecret string, g Grants, ttl time.Duration, now time.Time) (string, error) {
	if err := checkCredentials(apiKey, apiSecret); err != nil {
		return "", err
	}
	if ttl <= 0 || ttl > MaxTTL {
		return "", fmt.Errorf("%w: %v is not in (0, %v]", ErrInvalidTTL, ttl, MaxTTL)
	}
	if err := g.validate(); err != nil {
		return "", err
	}
	c := newClaims(apiKey, g, ttl, now)
	if !c.NotBefore.Before(c.ExpiresAt.Time) {
		return "", fmt.Errorf("%w: not-before %v is not before expiry %v",
			ErrInvalidTTL, c.NotBefore.Time, c.ExpiresAt.Time)
	}
	return jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString([]byte(apiSecret))
}

func checkCredentials(apiKey, apiSecret string) error {
	if apiKey == "" {
		return fmt.Errorf("%w: empty API key", ErrInvalidCredentials)
	}
	if len(apiSecret) < MinSecretLen {
		return fmt.Errorf("%w: secret for key %q is shorter than %d bytes",
			ErrInvalidCredentials, apiKey, MinSecretLen)
	}
	return nil
}

// Verifier checks tokens against a fixed set of API keys. It is immutable
// and safe for concurrent use.
type Verifier struct {
	keys   map[string][]byte // API key -> secret
	leeway time.Duration
	now    func() time.Time
	parser *jwt.Parser
}

// Option configures a [Verifier].
type Option func(*Verifier)

// WithLeeway sets the clock skew tolerated on exp, nbf and iat (default
// [DefaultLeeway]). A negative leeway counts as zero.
func WithLeeway(d time.Duration) Option {
	return func(v *Verifier) { v.leeway = max(d, 0) }
}

// WithClock sets the clock used to check exp, nbf and iat (default
// time.Now). A nil clock is ignored.
func WithClock(now func() time.Time) Option {
	return func(v *Verifier) {
		if now != nil {
			v.now = now
		}
	}
}

// NewVerifier returns a Verifier accepting tokens issued by any of keys
// (API key -> API secret). The map is copied. It fails with
// [ErrInvalidCredentials] when keys is empty, a key is empty or a secret is
// shorter than [MinSecretLen].
func NewVerifier(keys map[string]string, opts ...Option) (*Verifier, error) {
	if len(keys) == 0 {
		return nil, fmt.Errorf("%w: no API keys", ErrInvalidCredentials)
	}
	v := &Verifier{
		keys:   make(map[string][]byte, len(keys)),
		leeway: DefaultLeeway,
		now:    time.Now,
	}
	for key, secret := range keys {
		if err := checkCredentials(key, secret); err != nil {
			return nil, err
		}
		v.keys[key] = []byte(secret)
	}
	for _, opt := range opts {
		opt(v)
	}
	v.parser = jwt.NewParser(
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(v.leeway),
		jwt.WithTimeFunc(v.now),
	)
	return v, nil
}

// Verify checks token and returns its grants. The token must be HS256,
// signed with the secret of the API key named by its iss claim, carry an
// exp claim, be within its exp/nbf/iat window (give or take the leeway),
// and name a valid room and identity. Every error wraps exactly one of
// [ErrMissingToken], [ErrTooLarge], [ErrMalformed], [ErrUnknownKey],
// [ErrBadSignature], [ErrExpired], [ErrNotYetValid] or [ErrInvalidClaims].
func (v *Verifier) Verify(token string) (Grants, error) {
	if token == "" {
		return Grants{}, ErrMissingToken
	}
	if len(token) > MaxTokenLen {
		return Grants{}, fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, len(token), MaxTokenLen)
	}
	var c claims
	if _, err := v.parser.ParseWithClaims(token, &c, v.secret); err != nil {
		if errors.Is(err, ErrUnknownKey) {
			return Grants{}, fmt.Errorf("%w %q", ErrUnknownKey, c.Issuer)
		}
		return Grants{}, fmt.Errorf("%w: %v", classify(err), err)
	}
	g := c.grants()
	if err := g.validate(); err != nil {
		if errors.Is(err, ErrInvalidClaims) {
			return Grants{}, err
		}
		return Grants{}, fmt.Errorf("%w: %w", ErrInvalidClaims, err)
	}
	return g, nil
}

// secret is the jwt.Keyfunc: it picks the secret by the token's issuer.
func (v *Verifier) secret(t *jwt.Token) (any, error) {
	iss, err := t.Claims.GetIssuer()
	if err != nil {
		return nil, err
	}
	secret, ok := v.keys[iss]
	if !ok {
		return nil, ErrUnknownKey
	}
	return secret, nil
}

// classify maps an error from the jwt parser to one of ours.
func classify(err error) error {
	switch {
	case errors.Is(err, jwt.ErrTokenMalformed):
		return ErrMalformed
	case errors.Is(err, jwt.ErrTokenSignatureInvalid), errors.Is(err, jwt.ErrTokenUnverifiable):
		return ErrBadSignature
	case errors.Is(err, jwt.ErrTokenExpired):
		return ErrExpired
	case errors.Is(err, jwt.ErrTokenNotValidYet), errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		return ErrNotYetValid
	default: // jwt.ErrTokenRequiredClaimMissing, jwt.ErrTokenInvalidClaims
		return ErrInvalidClaims
	}
}

// ValidRoomName reports whether s is a valid room name: 1 to
// [MaxRoomNameLen] characters from A-Z a-z 0-9 '_' '.' '-', not starting
// with '.'. The error wraps [ErrInvalidRoomName].
func ValidRoomName(s string) error {
	switch {
	case s == "":
		return fmt.Errorf("%w: empty", ErrInvalidRoomName)
	case len(s) > MaxRoomNameLen:
		return fmt.Errorf("%w: longer than %d characters", ErrInvalidRoomName, MaxRoomNameLen)
	case s[0] == '.':
		return fmt.Errorf("%w %q: starts with '.'", ErrInvalidRoomName, s)
	}
	if i := strings.IndexFunc(s, isNotRoomChar); i >= 0 {
		r, _ := utf8.DecodeRuneInString(s[i:])
		return fmt.Errorf("%w %q: character %q not allowed (use A-Z a-z 0-9 _ . -)",
			ErrInvalidRoomName, s, r)
	}
	return nil
}

func isNotRoomChar(r rune) bool {
	switch {
	case 'a' <= r && r <= 'z', 'A' <= r && r <= 'Z', '0' <= r && r <= '9':
		return false
	default:
		return r != '_' && r != '.' && r != '-'
	}
}

// ValidIdentity reports whether s is a valid participant identity: 1 to
// [MaxIdentityLen] bytes of valid UTF-8 without control characters. The
// error wraps [ErrInvalidIdentity].
func ValidIdentity(s string) error {
	if s == "" {
		return fmt.Errorf("%w: empty", ErrInvalidIdentity)
	}
	if reason := checkText(s, MaxIdentityLen); reason != "" {
		return fmt.Errorf("%w: %s", ErrInvalidIdentity, reason)
	}
	return nil
}

// checkText returns why s is not acceptable text of at most maxLen bytes,
// or "" when it is.
func checkText(s string, maxLen int) string {
	switch {
	case len(s) > maxLen:
		return fmt.Sprintf("longer than %d bytes", maxLen)
	case !utf8.ValidString(s):
		return "not valid UTF-8"
	case strings.ContainsFunc(s, unicode.IsControl):
		return "contains control characters"
	}
	return ""
}

// BearerToken extracts the token from an Authorization header value of the
// form "Bearer TOKEN" (scheme case-insensitive). It fails with
// [ErrMissingToken] when the header or the token is empty, and with
// [ErrMalformed] for another scheme or a token that is not an RFC 6750
// token68 string.
func BearerToken(header string) (string, error) {
	h := strings.TrimSpace(header)
	if h == "" {
		return "", ErrMissingToken
	}
	scheme, token, _ := strings.Cut(h, " ")
	if !strings.EqualFold(scheme, "Bearer") {
		return "", fmt.Errorf("%w: authorization scheme is not Bearer", ErrMalformed)
	}
	token = strings.TrimLeft(token, " ")
	if token == "" {
		return "", fmt.Errorf("%w: empty bearer token", ErrMissingToken)
	}
	if !isToken68(token) {
		return "", fmt.Errorf("%w: bearer token contains invalid characters", ErrMalformed)
	}
	return token, nil
}

// isToken68 reports whether s matches RFC 7235 token68:
// 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"=".
func isToken68(s string) bool {
	body := strings.TrimRight(s, "=")
	if body == "" {
		return false
	}
	for i := range len(body) {
		if !isToken68Char(body[i]) {
			return false
		}
	}
	return true
}

func isToken68Char(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	default:
		return strings.IndexByte("-._~+/", c) >= 0
	}
}
