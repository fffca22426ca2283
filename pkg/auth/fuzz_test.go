package auth_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/cascade-sfu/cascade/pkg/auth"
)

// FuzzVerify checks that Verify never panics, that every failure wraps
// exactly one sentinel, and that whatever verifies names a valid room and
// identity. The fuzzer cannot forge an HMAC, so besides the raw token it
// also feeds a payload that the test signs with the real secret: that
// exercises claim decoding and validation behind a good signature.
func FuzzVerify(f *testing.F) {
	valid := mustSign(f, testKey, testSecret, participant(), time.Hour, t0)
	seeds := []struct{ token, payload string }{
		{valid, payload(nil)},
		{"", `{}`},
		{"a.b.c", `{"iss":"key1","exp":1e300,"room":"r","sub":"s"}`},
		{craft(`{"alg":"none"}`, payload(nil), nil), `{"iss":"key1","exp":-1,"room":".x","sub":"s"}`},
		{mustSign(f, testKey, testSecret, participant(), time.Hour, t0.Add(-3*time.Hour)), `null`},
		{strings.Repeat("A", auth.MaxTokenLen+1), `{"iss":"key1","exp":"x"}`},
		{valid[:len(valid)-3], `{"iss":"key1","exp":1741068367,"room":"demo","sub":"a\u0000"}`},
	}
	for _, s := range seeds {
		f.Add(s.token, []byte(s.payload))
	}
	v := newVerifier(f)
	f.Fuzz(func(t *testing.T, token string, claims []byte) {
		checkVerify(t, v, token)
		checkVerify(t, v, craft(hs256Header, string(claims), []byte(testSecret)))
	})
}

func checkVerify(t *testing.T, v *auth.Verifier, token string) {
	g, err := v.Verify(token)
	if err != nil {
		if n := countSentinels(err); n != 1 {
			t.Fatalf("Verify(%q) error %q wraps %d sentinels, want 1", token, err, n)
		}
		if len(token) > auth.MaxTokenLen && !errors.Is(err, auth.ErrTooLarge) {
			t.Fatalf("Verify of %d bytes: err = %v, want ErrTooLarge", len(token), err)
		}
		return
	}
	if err := auth.ValidRoomName(g.Room); err != nil {
		t.Fatalf("Verify(%q) accepted bad room: %v", token, err)
	}
	if err := auth.ValidIdentity(g.Identity); err != nil {
		t.Fatalf("Verify(%q) accepted bad identity: %v", token, err)
	}
	if g.ExpiresAt.IsZero() {
		t.Fatalf("Verify(%q) accepted a token without exp", token)
	}
}

// FuzzBearerToken checks that BearerToken never panics, fails only with
// ErrMissingToken or ErrMalformed, and that what it extracts is a single
// non-empty word that round-trips.
func FuzzBearerToken(f *testing.F) {
	for _, s := range []string{
		"Bearer abc.def.ghi", "bearer x", "", " ", "Bearer", "Basic Zm9v",
		"Bearer a b", "Bearer ==", "BEARER\tx", "Bearer \x00", "Bearer é",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, header string) {
		tok, err := auth.BearerToken(header)
		if err != nil {
			if !errors.Is(err, auth.ErrMissingToken) && !errors.Is(err, auth.ErrMalformed) {
				t.Fatalf("BearerToken(%q) = %v: unexpected error kind", header, err)
			}
			if tok != "" {
				t.Fatalf("BearerToken(%q) returned %q with an error", header, tok)
			}
			return
		}
		if tok == "" || strings.ContainsAny(tok, " \t\r\n\"\\,;") || !strings.Contains(header, tok) {
			t.Fatalf("BearerToken(%q) = %q: not a single word of the header", header, tok)
		}
		again, err := auth.BearerToken("Bearer " + tok)
		if err != nil || again != tok {
			t.Fatalf("round trip of %q = %q, %v", tok, again, err)
		}
	})
}
