package auth_test

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/cascade-sfu/cascade/pkg/auth"
)

const (
	testKey    = "key1"
	testSecret = "0123456789abcdef-test-secret"
	otherKey   = "key2"
	otherSec   = "another-secret-for-key-two"
)

// t0 is the fixed "now" of the tests, on a whole second.
var t0 = time.Date(2025, 3, 4, 5, 6, 7, 0, time.UTC)

// verifyErrors lists the sentinels of which every Verify error wraps one.
func verifyErrors() []error {
	return []error{
		auth.ErrMissingToken, auth.ErrTooLarge, auth.ErrMalformed, auth.ErrUnknownKey,
		auth.ErrBadSignature, auth.ErrExpired, auth.ErrNotYetValid, auth.ErrInvalidClaims,
	}
}

// countSentinels returns how many of verifyErrors err wraps.
func countSentinels(err error) int {
	n := 0
	for _, s := range verifyErrors() {
		if errors.Is(err, s) {
			n++
		}
	}
	return n
}

func clockAt(t time.Time) auth.Option {
	return auth.WithClock(func() time.Time { return t })
}

func newVerifier(t testing.TB, opts ...auth.Option) *auth.Verifier {
	t.Helper()
	keys := map[string]string{testKey: testSecret, otherKey: otherSec}
	v, err := auth.NewVerifier(keys, append([]auth.Option{clockAt(t0)}, opts...)...)
	if err != nil {
		t.Fatalf("NewVerifier: %v", err)
	}
	return v
}

func participant() auth.Grants {
	return auth.Grants{
		Room:           "demo",
		Identity:       "alice",
		Name:           "Alice",
		CanPublish:     true,
		CanSubscribe:   true,
		CanPublishData: true,
	}
}

func mustSign(t testing.TB, key, secret string, g auth.Grants, ttl time.Duration, now time.Time) string {
	t.Helper()
	tok, err := auth.Sign(key, secret, g, ttl, now)
	if err != nil {
		t.Fatalf("Sign: %v", err)
	}
	return tok
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// craft builds a token from raw header and payload JSON. With a nil secret
// the signature is empty; otherwise it is HMAC-SHA256 whatever the header
// says.
func craft(header, payload string, secret []byte) string {
	input := b64([]byte(header)) + "." + b64([]byte(payload))
	if secret == nil {
		return input + "."
	}
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(input))
	return input + "." + b64(mac.Sum(nil))
}

// payload returns valid claims JSON for t0, changed by edit.
func payload(edit func(m map[string]any)) string {
	m := map[string]any{
		"iss":  testKey,
		"sub":  "alice",
		"room": "demo",
		"iat":  t0.Unix(),
		"nbf":  t0.Unix(),
		"exp":  t0.Add(time.Hour).Unix(),
	}
	if edit != nil {
		edit(m)
	}
	b, err := json.Marshal(m)
	if err != nil {
		panic(err) // test helper with static input
	}
	return string(b)
}

const hs256Header = `{"alg":"HS256","typ":"JWT"}`

func TestSignVerifyRoundTrip(t *testing.T) {
	v := newVerifier(t)
	tests := []struct {
		name  string
		key   string
		sec   string
		g     auth.Grants
		ttl   time.Duration
		wantN time.Time
	}{
		{"participant", testKey, testSecret, participant(), time.Hour, t0},
		{"subscribe only", testKey, testSecret, auth.Grants{Room: "r", Identity: "bob", CanSubscribe: true}, time.Minute, t0},
		{"admin second key", otherKey, otherSec, auth.Grants{Room: "a.b-c_d", Identity: "héloïse ✓", RoomAdmin: true}, auth.MaxTTL, t0},
		{"not before in past", testKey, testSecret, auth.Grants{Room: "r", Identity: "i", NotBefore: t0.Add(-time.Hour)}, time.Hour, t0.Add(-time.Hour)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tok := mustSign(t, tc.key, tc.sec, tc.g, tc.ttl, t0)
			got, err := v.Verify(tok)
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			want := tc.g
			want.ExpiresAt = t0.Add(tc.ttl)
			want.NotBefore = tc.wantN
			if !got.ExpiresAt.Equal(want.ExpiresAt) || !got.NotBefore.Equal(want.NotBefore) {
				t.Errorf("times = exp %v nbf %v, want exp %v nbf %v",
					got.ExpiresAt, got.NotBefore, want.ExpiresAt, want.NotBefore)
			}
			got.ExpiresAt, got.NotBefore = want.ExpiresAt, want.NotBefore
			if got != want {
				t.Errorf("grants = %+v, want %+v", got, want)
			}
		})
	}
}

func TestSignTruncatesToSeconds(t *testing.T) {
	now := t0.Add(700 * time.Millisecond)
	tok := mustSign(t, testKey, testSecret, participant(), time.Hour, now)
	g, err := newVerifier(t, clockAt(now)).Verify(tok)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if !g.ExpiresAt.Equal(t0.Add(time.Hour)) {
		t.Errorf("ExpiresAt = %v, want %v", g.ExpiresAt, t0.Add(time.Hour))
	}
}

func TestSignUniqueTokens(t *testing.T) {
	a := mustSign(t, testKey, testSecret, participant(), time.Hour, t0)
	b := mustSign(t, testKey, testSecret, participant(), time.Hour, t0)
	if a == b {
		t.Error("two tokens with the same grants and time are identical; jti should differ")
	}
}

func TestSignClaimNames(t *testing.T) {
	g := participant()
	g.RoomAdmin = true
	tok := mustSign(t, testKey, testSecret, g, time.Hour, t0)
	raw, err := base64.RawURLEncoding.DecodeString(strings.Split(tok, ".")[1])
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"iss": testKey, "sub": "alice", "room": "demo", "name": "Alice",
		"canPublish": true, "canSubscribe": true, "canPublishData": true, "roomAdmin": true,
		"exp": float64(t0.Add(time.Hour).Unix()), "nbf": float64(t0.Unix()), "iat": float64(t0.Unix()),
	}
	for k, w := range want {
		if m[k] != w {
			t.Errorf("claim %q = %v, want %v", k, m[k], w)
		}
	}
	if jti, _ := m["jti"].(string); len(jti) < 16 {
		t.Errorf("jti = %q, want a random id", m["jti"])
	}
}

func TestSignErrors(t *testing.T) {
	long := strings.Repeat("x", 300)
	tests := []struct {
		name string
		key  string
		sec  string
		edit func(g *auth.Grants)
		ttl  time.Duration
		want error
	}{
		{"empty key", "", testSecret, nil, time.Hour, auth.ErrInvalidCredentials},
		{"empty secret", testKey, "", nil, time.Hour, auth.ErrInvalidCredentials},
		{"short secret", testKey, "fifteen-bytes!!", nil, time.Hour, auth.ErrInvalidCredentials},
		{"zero ttl", testKey, testSecret, nil, 0, auth.ErrInvalidTTL},
		{"negative ttl", testKey, testSecret, nil, -time.Second, auth.ErrInvalidTTL},
		{"ttl too long", testKey, testSecret, nil, auth.MaxTTL + time.Second, auth.ErrInvalidTTL},
		{"not before after expiry", testKey, testSecret, func(g *auth.Grants) { g.NotBefore = t0.Add(2 * time.Hour) }, time.Hour, auth.ErrInvalidTTL},
		{"empty room", testKey, testSecret, func(g *auth.Grants) { g.Room = "" }, time.Hour, auth.ErrInvalidRoomName},
		{"bad room", testKey, testSecret, func(g *auth.Grants) { g.Room = "a/b" }, time.Hour, auth.ErrInvalidRoomName},
		{"empty identity", testKey, testSecret, func(g *auth.Grants) { g.Identity = "" }, time.Hour, auth.ErrInvalidIdentity},
		{"control identity", testKey, testSecret, func(g *auth.Grants) { g.Identity = "a\nb" }, time.Hour, auth.ErrInvalidIdentity},
		{"name too long", testKey, testSecret, func(g *auth.Grants) { g.Name = long }, time.Hour, auth.ErrInvalidClaims},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g := participant()
			if tc.edit != nil {
				tc.edit(&g)
			}
			tok, err := auth.Sign(tc.key, tc.sec, g, tc.ttl, t0)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Sign err = %v, want %v", err, tc.want)
			}
			if tok != "" {
				t.Errorf("Sign returned token %q with an error", tok)
			}
		})
	}
}

func TestNewVerifierErrors(t *testing.T) {
	tests := []struct {
		name string
		keys map[string]string
	}{
		{"nil map", nil},
		{"empty map", map[string]string{}},
		{"empty key", map[string]string{"": testSecret}},
		{"short secret", map[string]string{testKey: "short"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v, err := auth.NewVerifier(tc.keys)
			if !errors.Is(err, auth.ErrInvalidCredentials) || v != nil {
				t.Fatalf("NewVerifier = %v, %v; want nil, ErrInvalidCredentials", v, err)
			}
		})
	}
}

func TestNewVerifierCopiesKeys(t *testing.T) {
	keys := map[string]string{testKey: testSecret}
	v, err := auth.NewVerifier(keys, clockAt(t0))
	if err != nil {
		t.Fatal(err)
	}
	keys[testKey] = "changed-secret-after-construction"
	delete(keys, testKey)
	tok := mustSign(t, testKey, testSecret, participant(), time.Hour, t0)
	if _, err := v.Verify(tok); err != nil {
		t.Errorf("Verify after the caller changed its map: %v", err)
	}
}

// rsaToken returns a genuine RS256 token with valid claims.
func rsaToken(t *testing.T) string {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	c := jwt.MapClaims{"iss": testKey, "sub": "alice", "room": "demo", "exp": t0.Add(time.Hour).Unix()}
	tok, err := jwt.NewWithClaims(jwt.SigningMethodRS256, c).SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// hs512Token returns an HS512 token signed with the right secret.
func hs512Token(t *testing.T) string {
	t.Helper()
	c := jwt.MapClaims{"iss": testKey, "sub": "alice", "room": "demo", "exp": t0.Add(time.Hour).Unix()}
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS512, c).SignedString([]byte(testSecret))
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// spliced returns a valid token whose payload was replaced by another valid
// token's payload: the signature no longer matches.
func spliced(t *testing.T) string {
	a := strings.Split(mustSign(t, testKey, testSecret, participant(), time.Hour, t0), ".")
	g := participant()
	g.RoomAdmin = true
	b := strings.Split(mustSign(t, testKey, testSecret, g, time.Hour, t0), ".")
	return a[0] + "." + b[1] + "." + a[2]
}

func TestVerifyErrors(t *testing.T) {
	secret := []byte(testSecret)
	set := func(k string, v any) func(map[string]any) { return func(m map[string]any) { m[k] = v } }
	del := func(k string) func(map[string]any) { return func(m map[string]any) { delete(m, k) } }
	valid := payload(nil)
	tests := []struct {
		name  string
		token func(t *testing.T) string
		want  error
	}{
		{"empty", func(*testing.T) string { return "" }, auth.ErrMissingToken},
		{"oversize", func(*testing.T) string { return strings.Repeat("a", auth.MaxTokenLen+1) }, auth.ErrTooLarge},
		{"garbage", func(*testing.T) string { return "not a token" }, auth.ErrMalformed},
		{"two segments", func(*testing.T) string { return "abc.def" }, auth.ErrMalformed},
		{"four segments", func(*testing.T) string { return craft(hs256Header, valid, secret) + ".x" }, auth.ErrMalformed},
		{"bad base64 header", func(*testing.T) string { return "!!!." + b64([]byte(valid)) + ".sig" }, auth.ErrMalformed},
		{"header not json", func(*testing.T) string { return craft("nope", valid, secret) }, auth.ErrMalformed},
		{"payload not json", func(*testing.T) string { return craft(hs256Header, "[1,2", secret) }, auth.ErrMalformed},
		{"grant wrong type", func(*testing.T) string { return craft(hs256Header, payload(set("canPublish", "yes")), secret) }, auth.ErrMalformed},
		{"exp wrong type", func(*testing.T) string { return craft(hs256Header, payload(set("exp", "tomorrow")), secret) }, auth.ErrMalformed},
		{"wrong secret", func(*testing.T) string { return craft(hs256Header, valid, []byte("wrong-secret-0123456789")) }, auth.ErrBadSignature},
		{"other key's secret", func(*testing.T) string { return craft(hs256Header, valid, []byte(otherSec)) }, auth.ErrBadSignature},
		{"spliced payload", spliced, auth.ErrBadSignature},
		{"alg none", func(*testing.T) string { return craft(`{"alg":"none","typ":"JWT"}`, valid, nil) }, auth.ErrBadSignature},
		{"alg None", func(*testing.T) string { return craft(`{"alg":"None"}`, valid, nil) }, auth.ErrBadSignature},
		{"alg missing", func(*testing.T) string { return craft(`{"typ":"JWT"}`, valid, secret) }, auth.ErrBadSignature},
		{"alg RS256 genuine", rsaToken, auth.ErrBadSignature},
		{"alg RS256 header HMAC signature", func(*testing.T) string { return craft(`{"alg":"RS256"}`, valid, secret) }, auth.ErrBadSignature},
		{"alg HS512 right secret", hs512Token, auth.ErrBadSignature},
		{"unknown key", func(t *testing.T) string {
			return mustSign(t, "stranger", testSecret, participant(), time.Hour, t0)
		}, auth.ErrUnknownKey},
		{"missing iss", func(*testing.T) string { return craft(hs256Header, payload(del("iss")), secret) }, auth.ErrUnknownKey},
		{"expired", func(t *testing.T) string {
			return mustSign(t, testKey, testSecret, participant(), time.Hour, t0.Add(-2*time.Hour))
		}, auth.ErrExpired},
		{"nbf in future", func(t *testing.T) string {
			g := participant()
			g.NotBefore = t0.Add(time.Minute)
			return mustSign(t, testKey, testSecret, g, time.Hour, t0)
		}, auth.ErrNotYetValid},
		{"iat in future", func(*testing.T) string {
			return craft(hs256Header, payload(set("iat", t0.Add(time.Hour).Unix())), secret)
		}, auth.ErrNotYetValid},
		{"missing exp", func(*testing.T) string { return craft(hs256Header, payload(del("exp")), secret) }, auth.ErrInvalidClaims},
		{"missing room", func(*testing.T) string { return craft(hs256Header, payload(del("room")), secret) }, auth.ErrInvalidClaims},
		{"bad room name", func(*testing.T) string { return craft(hs256Header, payload(set("room", "../etc")), secret) }, auth.ErrInvalidClaims},
		{"long room name", func(*testing.T) string {
			return craft(hs256Header, payload(set("room", strings.Repeat("r", 65))), secret)
		}, auth.ErrInvalidClaims},
		{"missing sub", func(*testing.T) string { return craft(hs256Header, payload(del("sub")), secret) }, auth.ErrInvalidClaims},
		{"control char identity", func(*testing.T) string { return craft(hs256Header, payload(set("sub", "al\x00ice")), secret) }, auth.ErrInvalidClaims},
		{"name too long", func(*testing.T) string {
			return craft(hs256Header, payload(set("name", strings.Repeat("n", 257))), secret)
		}, auth.ErrInvalidClaims},
	}
	v := newVerifier(t)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g, err := v.Verify(tc.token(t))
			if !errors.Is(err, tc.want) {
				t.Fatalf("Verify err = %v, want %v", err, tc.want)
			}
			if n := countSentinels(err); n != 1 {
				t.Errorf("error %q wraps %d sentinels, want exactly 1", err, n)
			}
			if g != (auth.Grants{}) {
				t.Errorf("Verify returned grants %+v with an error", g)
			}
		})
	}
}

func TestVerifyCraftedValid(t *testing.T) {
	// Guards TestVerifyErrors: the unedited crafted token is accepted.
	g, err := newVerifier(t).Verify(craft(hs256Header, payload(nil), []byte(testSecret)))
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if g.Room != "demo" || g.Identity != "alice" || g.CanPublish {
		t.Errorf("grants = %+v", g)
	}
}

func TestVerifyBadRoomWrapsRoomError(t *testing.T) {
	tok := craft(hs256Header, payload(func(m map[string]any) { m["room"] = ".hidden" }), []byte(testSecret))
	_, err := newVerifier(t).Verify(tok)
	if !errors.Is(err, auth.ErrInvalidClaims) || !errors.Is(err, auth.ErrInvalidRoomName) {
		t.Errorf("err = %v, want ErrInvalidClaims wrapping ErrInvalidRoomName", err)
	}
}

func TestVerifyLeeway(t *testing.T) {
	exp := t0.Add(time.Hour)
	tests := []struct {
		name   string
		nbf    time.Time // zero: t0
		now    time.Time
		leeway *time.Duration
		want   error
	}{
		{"just valid", time.Time{}, exp.Add(-time.Second), nil, nil},
		{"expired within default leeway", time.Time{}, exp.Add(4 * time.Second), nil, nil},
		{"expired beyond default leeway", time.Time{}, exp.Add(6 * time.Second), nil, auth.ErrExpired},
		{"expired at exp without leeway", time.Time{}, exp, ptr(time.Duration(0)), auth.ErrExpired},
		{"expired within custom leeway", time.Time{}, exp.Add(time.Minute), ptr(2 * time.Minute), nil},
		{"negative leeway is zero", time.Time{}, exp.Add(-time.Second), ptr(-time.Hour), nil},
		{"nbf within default leeway", t0.Add(4 * time.Second), t0, nil, nil},
		{"nbf beyond default leeway", t0.Add(6 * time.Second), t0, nil, auth.ErrNotYetValid},
		{"nbf within custom leeway", t0.Add(time.Minute), t0, ptr(2 * time.Minute), nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g := participant()
			g.NotBefore = tc.nbf
			tok := mustSign(t, testKey, testSecret, g, time.Hour, t0)
			opts := []auth.Option{clockAt(tc.now)}
			if tc.leeway != nil {
				opts = append(opts, auth.WithLeeway(*tc.leeway))
			}
			_, err := newVerifier(t, opts...).Verify(tok)
			if !errors.Is(err, tc.want) || (tc.want == nil && err != nil) {
				t.Errorf("Verify err = %v, want %v", err, tc.want)
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

func TestVerifyConcurrent(t *testing.T) {
	v := newVerifier(t)
	tok := mustSign(t, testKey, testSecret, participant(), time.Hour, t0)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 50 {
				if _, err := v.Verify(tok); err != nil {
					t.Errorf("Verify: %v", err)
					return
				}
			}
		})
	}
	wg.Wait()
}

func TestDevCredentialsSign(t *testing.T) {
	tok := mustSign(t, auth.DevAPIKey, auth.DevAPISecret, participant(), time.Hour, t0)
	v, err := auth.NewVerifier(map[string]string{auth.DevAPIKey: auth.DevAPISecret}, clockAt(t0))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(tok); err != nil {
		t.Errorf("Verify dev token: %v", err)
	}
}

func TestAllowsRoom(t *testing.T) {
	g := auth.Grants{Room: "demo", Identity: "a"}
	tests := []struct {
		room string
		want bool
	}{
		{"demo", true},
		{"Demo", false},
		{"demo2", false},
		{"", false},
	}
	for _, tc := range tests {
		if got := g.AllowsRoom(tc.room); got != tc.want {
			t.Errorf("AllowsRoom(%q) = %v, want %v", tc.room, got, tc.want)
		}
	}
	if (auth.Grants{}).AllowsRoom("") {
		t.Error("zero Grants allow the empty room")
	}
}

func TestValidRoomName(t *testing.T) {
	tests := []struct {
		in string
		ok bool
	}{
		{"demo", true},
		{"a", true},
		{"A-Z_a.z-0.9", true},
		{"room.", true},
		{strings.Repeat("r", 64), true},
		{"", false},
		{strings.Repeat("r", 65), false},
		{".hidden", false},
		{"..", false},
		{"a b", false},
		{"a/b", false},
		{"é", false},
		{"a\x00", false},
		{"café", false},
	}
	for _, tc := range tests {
		err := auth.ValidRoomName(tc.in)
		if (err == nil) != tc.ok {
			t.Errorf("ValidRoomName(%q) = %v, want ok=%v", tc.in, err, tc.ok)
		}
		if err != nil && !errors.Is(err, auth.ErrInvalidRoomName) {
			t.Errorf("ValidRoomName(%q) error %v does not wrap ErrInvalidRoomName", tc.in, err)
		}
	}
}

func TestValidIdentity(t *testing.T) {
	tests := []struct {
		in string
		ok bool
	}{
		{"alice", true},
		{"Alice Smith", true},
		{"héloïse ✓ 日本", true},
		{"user@example.com", true},
		{strings.Repeat("i", 128), true},
		{strings.Repeat("é", 64), true}, // 128 bytes
		{"", false},
		{strings.Repeat("i", 129), false},
		{strings.Repeat("é", 65), false},
		{"a\nb", false},
		{"a\tb", false},
		{"\x7f", false},
		{"a\u0085b", false}, // C1 control
		{"\xff\xfe", false},
	}
	for _, tc := range tests {
		err := auth.ValidIdentity(tc.in)
		if (err == nil) != tc.ok {
			t.Errorf("ValidIdentity(%q) = %v, want ok=%v", tc.in, err, tc.ok)
		}
		if err != nil && !errors.Is(err, auth.ErrInvalidIdentity) {
			t.Errorf("ValidIdentity(%q) error %v does not wrap ErrInvalidIdentity", tc.in, err)
		}
	}
}

func TestBearerToken(t *testing.T) {
	tests := []struct {
		header string
		want   string
		err    error
	}{
		{"Bearer abc.def.ghi", "abc.def.ghi", nil},
		{"bearer abc", "abc", nil},
		{"BEARER abc", "abc", nil},
		{"  Bearer   abc  ", "abc", nil},
		{"Bearer a-b_c~d+e/f==", "a-b_c~d+e/f==", nil},
		{"", "", auth.ErrMissingToken},
		{"   ", "", auth.ErrMissingToken},
		{"Bearer", "", auth.ErrMissingToken},
		{"Bearer   ", "", auth.ErrMissingToken},
		{"Basic dXNlcjpwYXNz", "", auth.ErrMalformed},
		{"Bearerabc", "", auth.ErrMalformed},
		{"Token abc", "", auth.ErrMalformed},
		{"abc.def.ghi", "", auth.ErrMalformed},
		{"Bearer a b", "", auth.ErrMalformed},
		{"Bearer a\tb", "", auth.ErrMalformed},
		{"Bearer ==", "", auth.ErrMalformed},
		{"Bearer a=b", "", auth.ErrMalformed},
		{"Bearer a\"b", "", auth.ErrMalformed},
	}
	for _, tc := range tests {
		got, err := auth.BearerToken(tc.header)
		if got != tc.want || !errors.Is(err, tc.err) || (tc.err == nil && err != nil) {
			t.Errorf("BearerToken(%q) = %q, %v; want %q, %v", tc.header, got, err, tc.want, tc.err)
		}
	}
}

func BenchmarkVerify(b *testing.B) {
	v := newVerifier(b)
	tok := mustSign(b, testKey, testSecret, participant(), time.Hour, t0)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Verify(tok); err != nil {
			b.Fatal(err)
		}
	}
}

func TestClusterAdminTokenNeedsNoRoom(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	v, err := auth.NewVerifier(map[string]string{"k": "0123456789abcdef"}, auth.WithClock(func() time.Time { return now }))
	if err != nil {
		t.Fatal(err)
	}
	tok, err := auth.Sign("k", "0123456789abcdef", auth.Grants{Identity: "ops", ClusterAdmin: true}, time.Hour, now)
	if err != nil {
		t.Fatal(err)
	}
	g, err := v.Verify(tok)
	if err != nil || !g.ClusterAdmin || g.Room != "" || g.AllowsRoom("") {
		t.Fatalf("admin token: %+v, %v", g, err)
	}
	if _, err := auth.Sign("k", "0123456789abcdef", auth.Grants{Identity: "ops"}, time.Hour, now); err == nil {
		t.Fatal("a token without room and without clusterAdmin was signed")
	}
}
