package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/cascade-sfu/cascade/pkg/auth"
)

const (
	testKey    = "prodkey"
	testSecret = "a-long-enough-production-secret"
)

// env returns a getenv backed by m.
func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

type result struct {
	code           int
	stdout, stderr string
}

func runArgs(t *testing.T, environ map[string]string, args ...string) result {
	t.Helper()
	var out, errOut bytes.Buffer
	code := run(args, env(environ), &out, &errOut)
	return result{code, out.String(), errOut.String()}
}

func verify(t *testing.T, key, secret, stdout string) auth.Grants {
	t.Helper()
	if strings.Count(stdout, "\n") != 1 || !strings.HasSuffix(stdout, "\n") {
		t.Fatalf("stdout = %q, want one line", stdout)
	}
	v, err := auth.NewVerifier(map[string]string{key: secret})
	if err != nil {
		t.Fatal(err)
	}
	g, err := v.Verify(strings.TrimSpace(stdout))
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	return g
}

func TestTokenGrants(t *testing.T) {
	creds := []string{"--api-key", testKey, "--api-secret", testSecret}
	tests := []struct {
		name string
		args []string
		want auth.Grants
	}{
		{"default participant", []string{"--room", "demo", "--identity", "alice"},
			auth.Grants{Room: "demo", Identity: "alice", CanPublish: true, CanSubscribe: true, CanPublishData: true}},
		{"subscribe only", []string{"--room", "demo", "--identity", "viewer", "--subscribe"},
			auth.Grants{Room: "demo", Identity: "viewer", CanSubscribe: true}},
		{"publish and data", []string{"--room", "r", "--identity", "cam", "--publish", "--data"},
			auth.Grants{Room: "r", Identity: "cam", CanPublish: true, CanPublishData: true}},
		{"admin keeps default grants", []string{"--room", "r", "--identity", "host", "--admin", "--name", "The Host"},
			auth.Grants{Room: "r", Identity: "host", Name: "The Host", CanPublish: true, CanSubscribe: true, CanPublishData: true, RoomAdmin: true}},
		{"explicit false counts as not given", []string{"--room", "r", "--identity", "i", "--publish=false"},
			auth.Grants{Room: "r", Identity: "i", CanPublish: true, CanSubscribe: true, CanPublishData: true}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"token"}, append(creds, tc.args...)...)
			res := runArgs(t, nil, args...)
			if res.code != exitOK {
				t.Fatalf("exit %d, stderr %q", res.code, res.stderr)
			}
			got := verify(t, testKey, testSecret, res.stdout)
			got.ExpiresAt, got.NotBefore = time.Time{}, time.Time{}
			if got != tc.want {
				t.Errorf("grants = %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestTokenTTL(t *testing.T) {
	res := runArgs(t, nil, "token", "--dev", "--room", "r", "--identity", "i", "--ttl", "90m")
	if res.code != exitOK {
		t.Fatalf("exit %d, stderr %q", res.code, res.stderr)
	}
	g := verify(t, auth.DevAPIKey, auth.DevAPISecret, res.stdout)
	if d := time.Until(g.ExpiresAt); d < 89*time.Minute || d > 90*time.Minute {
		t.Errorf("token expires in %v, want about 90m", d)
	}
}

func TestTokenCredentialSources(t *testing.T) {
	envCreds := map[string]string{envAPIKey: "envkey", envAPISecret: "env-secret-0123456789"}
	tests := []struct {
		name        string
		environ     map[string]string
		args        []string
		key, secret string
	}{
		{"flags", nil, []string{"--api-key", testKey, "--api-secret", testSecret}, testKey, testSecret},
		{"env", envCreds, nil, "envkey", "env-secret-0123456789"},
		{"flags beat env", envCreds, []string{"--api-key", testKey, "--api-secret", testSecret}, testKey, testSecret},
		{"key flag with env secret", envCreds, []string{"--api-key", testKey}, testKey, "env-secret-0123456789"},
		{"dev pair", nil, []string{"--dev"}, auth.DevAPIKey, auth.DevAPISecret},
		{"env beats dev", envCreds, []string{"--dev"}, "envkey", "env-secret-0123456789"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"token", "--room", "r", "--identity", "i"}, tc.args...)
			res := runArgs(t, tc.environ, args...)
			if res.code != exitOK {
				t.Fatalf("exit %d, stderr %q", res.code, res.stderr)
			}
			verify(t, tc.key, tc.secret, res.stdout)
		})
	}
}

func TestUsageErrors(t *testing.T) {
	dev := []string{"--dev"}
	tests := []struct {
		name    string
		environ map[string]string
		args    []string
		stderr  string // substring expected on stderr
	}{
		{"no command", nil, nil, "missing command"},
		{"unknown command", nil, []string{"launch"}, `unknown command "launch"`},
		{"unknown global flag", nil, []string{"--bogus", "token"}, "bogus"},
		{"bad server flag", nil, []string{"--server", "ftp://x", "token"}, "--server"},
		{"bad server env", map[string]string{envServer: "not a url"}, []string{"token"}, "--server"},
		{"missing room", nil, append([]string{"token", "--identity", "i"}, dev...), "--room and --identity are required"},
		{"missing identity", nil, append([]string{"token", "--room", "r"}, dev...), "--room and --identity are required"},
		{"bad room", nil, append([]string{"token", "--room", ".x", "--identity", "i"}, dev...), "invalid room name"},
		{"bad identity", nil, append([]string{"token", "--room", "r", "--identity", "a\x01"}, dev...), "invalid identity"},
		{"no credentials", nil, []string{"token", "--room", "r", "--identity", "i"}, envAPIKey},
		{"key without secret", nil, []string{"token", "--room", "r", "--identity", "i", "--api-key", "k"}, "without an API secret"},
		{"secret without key", map[string]string{envAPISecret: testSecret}, []string{"token", "--room", "r", "--identity", "i"}, "without an API key"},
		{"short secret", nil, []string{"token", "--room", "r", "--identity", "i", "--api-key", "k", "--api-secret", "short"}, "shorter than"},
		{"zero ttl", nil, append([]string{"token", "--room", "r", "--identity", "i", "--ttl", "0s"}, dev...), "--ttl"},
		{"ttl too long", nil, append([]string{"token", "--room", "r", "--identity", "i", "--ttl", "721h"}, dev...), "--ttl"},
		{"bad ttl", nil, append([]string{"token", "--room", "r", "--identity", "i", "--ttl", "soon"}, dev...), "ttl"},
		{"unknown token flag", nil, []string{"token", "--colour"}, "colour"},
		{"extra argument", nil, append([]string{"token", "--room", "r", "--identity", "i", "extra"}, dev...), `unexpected argument "extra"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res := runArgs(t, tc.environ, tc.args...)
			if res.code != exitUsage {
				t.Errorf("exit %d, want %d", res.code, exitUsage)
			}
			if res.stdout != "" {
				t.Errorf("stdout = %q, want nothing", res.stdout)
			}
			if !strings.Contains(res.stderr, tc.stderr) {
				t.Errorf("stderr = %q, want it to mention %q", res.stderr, tc.stderr)
			}
		})
	}
}

func TestHelp(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want []string
	}{
		{"global", []string{"--help"}, []string{"--server", envServer, defaultServer, "token", "COMMAND --help"}},
		{"global short", []string{"-h"}, []string{"--server", "token"}},
		{"token", []string{"token", "--help"}, []string{
			"-room", "-identity", "-name", "-publish", "-subscribe", "-data", "-admin",
			"-ttl", "-api-key", "-api-secret", "-dev", envAPIKey, envAPISecret, "6h0m0s",
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res := runArgs(t, nil, tc.args...)
			if res.code != exitOK {
				t.Errorf("exit %d, want 0; stderr %q", res.code, res.stderr)
			}
			for _, w := range tc.want {
				if !strings.Contains(res.stdout, w) {
					t.Errorf("help does not mention %q:\n%s", w, res.stdout)
				}
			}
		})
	}
}

func TestServerFlag(t *testing.T) {
	tests := []struct {
		name    string
		environ map[string]string
		args    []string
	}{
		{"flag", nil, []string{"--server", "https://sfu.example.com"}},
		{"env", map[string]string{envServer: "http://10.0.0.1:7880"}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			args := append(tc.args, "token", "--dev", "--room", "r", "--identity", "i")
			if res := runArgs(t, tc.environ, args...); res.code != exitOK {
				t.Errorf("exit %d, stderr %q", res.code, res.stderr)
			}
		})
	}
}
