package main

import (
	"bytes"
	"errors"
	"flag"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/cascade-sfu/cascade/pkg/auth"
)

const (
	testKey    = "prodkey"
	testSecret = "production-secret-0123456789"
	serfKey16  = "MDEyMzQ1Njc4OWFiY2RlZg==" // base64 of 16 bytes
)

// creds is an environment with valid production credentials.
func creds() map[string]string {
	return map[string]string{"CASCADE_API_KEY": testKey, "CASCADE_API_SECRET": testSecret}
}

// with returns a copy of env with the extra pairs k1, v1, k2, v2...
func with(env map[string]string, kv ...string) map[string]string {
	out := make(map[string]string, len(env)+len(kv)/2)
	for k, v := range env {
		out[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		out[kv[i]] = kv[i+1]
	}
	return out
}

func getenv(env map[string]string) func(string) string {
	return func(k string) string { return env[k] }
}

// writeFile writes a config file in a temporary directory.
func writeFile(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "sfu.yaml")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func load(t *testing.T, args []string, env map[string]string) (Config, error) {
	t.Helper()
	return LoadConfig(args, getenv(env), io.Discard)
}

func mustLoad(t *testing.T, args []string, env map[string]string) Config {
	t.Helper()
	cfg, err := load(t, args, env)
	if err != nil {
		t.Fatalf("LoadConfig(%q): %v", args, err)
	}
	return cfg
}

func TestLoadDefaults(t *testing.T) {
	cfg := mustLoad(t, nil, creds())
	if cfg.NodeID == "" || checkID("node-id", cfg.NodeID) != nil {
		t.Errorf("NodeID = %q, want a valid generated id", cfg.NodeID)
	}
	want := DefaultConfig()
	want.NodeID = cfg.NodeID
	want.APIKey, want.APISecret = testKey, testSecret
	if !reflect.DeepEqual(cfg, want) {
		t.Errorf("LoadConfig = %+v\nwant %+v", cfg, want)
	}
	if want.HTTP != "127.0.0.1:7880" || want.UDPPort != 7882 || want.MaxParticipants != 100 ||
		want.ShutdownTimeout != 10*time.Second || want.JoinRate != 20 || want.JoinBurst != 100 || want.FailedJoinRate != 1 || want.FailedJoinBurst != 10 ||
		want.Region != "local" || want.LogLevel != "info" || want.LogFormat != "text" {
		t.Errorf("DefaultConfig = %+v", want)
	}
}

func TestNodeIDDefaultIsUnique(t *testing.T) {
	a := mustLoad(t, nil, creds()).NodeID
	b := mustLoad(t, nil, creds()).NodeID
	if a == b {
		t.Errorf("two default node IDs are both %q", a)
	}
}

func TestPrecedence(t *testing.T) {
	yamlFile := `
http: "10.0.0.1:1000"
udp_port: 1001
log_level: warn
join: [yaml-a, yaml-b]
shutdown_timeout: 20s
dev: true
`
	tests := []struct {
		name string
		yaml bool
		env  map[string]string
		args []string
		get  func(Config) any
		want any
	}{
		{"default http", false, nil, nil, func(c Config) any { return c.HTTP }, "127.0.0.1:7880"},
		{"yaml http", true, nil, nil, func(c Config) any { return c.HTTP }, "10.0.0.1:1000"},
		{"env beats yaml", true, map[string]string{"CASCADE_HTTP": ":2000"}, nil, func(c Config) any { return c.HTTP }, ":2000"},
		{"flag beats env", true, map[string]string{"CASCADE_HTTP": ":2000"}, []string{"--http", ":3000"}, func(c Config) any { return c.HTTP }, ":3000"},
		{"flag beats yaml", true, nil, []string{"-http=:3000"}, func(c Config) any { return c.HTTP }, ":3000"},
		{"yaml port", true, nil, nil, func(c Config) any { return c.UDPPort }, 1001},
		{"env port", true, map[string]string{"CASCADE_UDP_PORT": "2001"}, nil, func(c Config) any { return c.UDPPort }, 2001},
		{"flag port", true, map[string]string{"CASCADE_UDP_PORT": "2001"}, []string{"--udp-port", "0"}, func(c Config) any { return c.UDPPort }, 0},
		{"yaml level", true, nil, nil, func(c Config) any { return c.LogLevel }, "warn"},
		{"env level", true, map[string]string{"CASCADE_LOG_LEVEL": "debug"}, nil, func(c Config) any { return c.LogLevel }, "debug"},
		{"flag level", true, map[string]string{"CASCADE_LOG_LEVEL": "debug"}, []string{"--log-level", "error"}, func(c Config) any { return c.LogLevel }, "error"},
		{"yaml list", true, nil, nil, func(c Config) any { return c.Join }, []string{"yaml-a", "yaml-b"}},
		{"env list", true, map[string]string{"CASCADE_JOIN": "env-a"}, nil, func(c Config) any { return c.Join }, []string{"env-a"}},
		{"flag list", true, map[string]string{"CASCADE_JOIN": "env-a"}, []string{"--join", "f1:7946,f2"}, func(c Config) any { return c.Join }, []string{"f1:7946", "f2"}},
		{"yaml duration", true, nil, nil, func(c Config) any { return c.ShutdownTimeout }, 20 * time.Second},
		{"env duration", true, map[string]string{"CASCADE_SHUTDOWN_TIMEOUT": "1m"}, nil, func(c Config) any { return c.ShutdownTimeout }, time.Minute},
		{"flag duration", true, map[string]string{"CASCADE_SHUTDOWN_TIMEOUT": "1m"}, []string{"--shutdown-timeout=2s"}, func(c Config) any { return c.ShutdownTimeout }, 2 * time.Second},
		{"yaml bool", true, nil, nil, func(c Config) any { return c.Dev }, true},
		{"env false beats yaml true", true, map[string]string{"CASCADE_DEV": "false"}, nil, func(c Config) any { return c.Dev }, false},
		{"bare bool flag beats env", true, map[string]string{"CASCADE_DEV": "false"}, []string{"--dev"}, func(c Config) any { return c.Dev }, true},
		{"bool flag false beats yaml", true, nil, []string{"--dev=false"}, func(c Config) any { return c.Dev }, false},
		{"empty env is unset", true, map[string]string{"CASCADE_HTTP": ""}, nil, func(c Config) any { return c.HTTP }, "10.0.0.1:1000"},
	}
	path := writeFile(t, yamlFile)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			env := with(creds())
			for k, v := range tc.env {
				env[k] = v
			}
			args := tc.args
			if tc.yaml {
				args = append([]string{"--config", path}, args...)
			}
			cfg := mustLoad(t, args, env)
			if got := tc.get(cfg); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %#v, want %#v", got, tc.want)
			}
		})
	}
}

func TestConfigFileFromEnv(t *testing.T) {
	path := writeFile(t, "region: eu-west\n")
	other := writeFile(t, "region: us-east\n")
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"env", nil, "eu-west"},
		{"flag beats env", []string{"--config", other}, "us-east"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := mustLoad(t, tc.args, with(creds(), "CASCADE_CONFIG", path))
			if cfg.Region != tc.want {
				t.Errorf("Region = %q, want %q", cfg.Region, tc.want)
			}
		})
	}
}

func TestEnvParsing(t *testing.T) {
	tests := []struct {
		env  string
		val  string
		get  func(Config) any
		want any
	}{
		{"CASCADE_HTTP", "0.0.0.0:8080", func(c Config) any { return c.HTTP }, "0.0.0.0:8080"},
		{"CASCADE_UDP_PORT", "9000", func(c Config) any { return c.UDPPort }, 9000},
		{"CASCADE_PUBLIC_IP", "203.0.113.7", func(c Config) any { return c.PublicIP }, "203.0.113.7"},
		{"CASCADE_NODE_ID", "node-a.1", func(c Config) any { return c.NodeID }, "node-a.1"},
		{"CASCADE_REGION", "eu_west", func(c Config) any { return c.Region }, "eu_west"},
		{"CASCADE_LAT", "49.28", func(c Config) any { return c.Lat }, 49.28},
		{"CASCADE_LON", "-123.12", func(c Config) any { return c.Lon }, -123.12},
		{"CASCADE_DEV", "1", func(c Config) any { return c.Dev }, true},
		{"CASCADE_MAX_PARTICIPANTS", "8", func(c Config) any { return c.MaxParticipants }, 8},
		{"CASCADE_LOG_LEVEL", "DEBUG", func(c Config) any { return c.LogLevel }, "debug"},
		{"CASCADE_LOG_FORMAT", "json", func(c Config) any { return c.LogFormat }, "json"},
		{"CASCADE_SHUTDOWN_TIMEOUT", "1m30s", func(c Config) any { return c.ShutdownTimeout }, 90 * time.Second},
		{"CASCADE_JOIN_RATE", "0.5", func(c Config) any { return c.JoinRate }, 0.5},
		{"CASCADE_JOIN_BURST", "3", func(c Config) any { return c.JoinBurst }, 3},
		{"CASCADE_JOIN_FAIL_RATE", "0.2", func(c Config) any { return c.FailedJoinRate }, 0.2},
		{"CASCADE_JOIN_FAIL_BURST", "4", func(c Config) any { return c.FailedJoinBurst }, 4},
		{"CASCADE_SERF_BIND", "0.0.0.0:7946", func(c Config) any { return c.SerfBind }, "0.0.0.0:7946"},
		{"CASCADE_JOIN", " a:7946 , ,b ", func(c Config) any { return c.Join }, []string{"a:7946", "b"}},
		{"CASCADE_SERF_KEY", serfKey16, func(c Config) any { return c.SerfKey }, serfKey16},
		{"CASCADE_REDIS", "redis://127.0.0.1:6379/0", func(c Config) any { return c.Redis }, "redis://127.0.0.1:6379/0"},
		{"CASCADE_GEOIP", "/var/lib/geo.mmdb", func(c Config) any { return c.GeoIP }, "/var/lib/geo.mmdb"},
		{"CASCADE_DASHBOARD_FAILED_RETENTION", "90s", func(c Config) any { return c.DashboardFailedRetention }, 90 * time.Second},
	}
	for _, tc := range tests {
		t.Run(tc.env, func(t *testing.T) {
			cfg := mustLoad(t, nil, with(creds(), tc.env, tc.val))
			if got := tc.get(cfg); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("%s=%q: got %#v, want %#v", tc.env, tc.val, got, tc.want)
			}
		})
	}
}

func TestYAMLFile(t *testing.T) {
	path := writeFile(t, `
http: ":9000"
udp_port: 0
public_ip: "2001:db8::1"
node_id: yaml-node
region: ap-south
lat: -33.9
lon: 151.2
dev: false
api_key: yamlkey
api_secret: yaml-secret-0123456789
resume_grace: 20s
max_participants: 12
log_level: debug
log_format: json
shutdown_timeout: 1m
join_rate: 1.5
join_burst: 4
serf_bind: "127.0.0.1:7946"
join: ["10.0.0.2", "10.0.0.3:7946"]
serf_key: "`+serfKey16+`"
redis: "rediss://cache:6380"
geoip: /data/geo.mmdb
redis_prefix: "eu:"
public_url: "https://eu.example.net"
drain_timeout: 30s
health_ttl: 6s
relay_via: "hcm=sgp"
relay_linger: 5s
dashboard_failed_retention: 2m
`)
	got := mustLoad(t, []string{"--config", path}, nil)
	want := Config{
		HTTP: ":9000", PublicIP: "2001:db8::1", NodeID: "yaml-node", Region: "ap-south",
		Lat: -33.9, Lon: 151.2, APIKey: "yamlkey", APISecret: "yaml-secret-0123456789",
		MaxParticipants: 12, LogLevel: "debug", LogFormat: "json", ShutdownTimeout: time.Minute,
		JoinRate: 1.5, JoinBurst: 4, FailedJoinRate: 1, FailedJoinBurst: 10, ResumeGrace: 20 * time.Second, SerfBind: "127.0.0.1:7946", Join: []string{"10.0.0.2", "10.0.0.3:7946"},
		SerfKey: serfKey16, Redis: "rediss://cache:6380", GeoIP: "/data/geo.mmdb", ConfigFile: path,
		RedisPrefix: "eu:", PublicURL: "https://eu.example.net", DrainTimeout: 30 * time.Second, HealthTTL: 6 * time.Second,
		RelayVia: "hcm=sgp", RelayLinger: 5 * time.Second, DashboardFailedRetention: 2 * time.Minute,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("LoadConfig =\n%+v\nwant\n%+v", got, want)
	}
}

func TestYAMLErrors(t *testing.T) {
	tests := []struct {
		name    string
		content string
		want    string
	}{
		{"unknown key", "http: ':1'\nmax_participant: 3\n", "max_participant"},
		{"camelCase key", "udpPort: 1\n", "udpPort"},
		{"derived field", "using_dev_keys: true\n", "using_dev_keys"},
		{"wrong type", "http: ':1'\nudp_port: lots\n", "line 2"},
		{"integer duration", "shutdown_timeout: 10\n", "line 1"},
		{"bad duration", "shutdown_timeout: soon\n", "line 1"},
		{"not a mapping", "- a\n- b\n", "sfu.yaml"},
		{"bad syntax", "http: [\n", "sfu.yaml"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := load(t, []string{"--config", writeFile(t, tc.content)}, creds())
			if !errors.Is(err, errInvalidConfig) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want errInvalidConfig mentioning %q", err, tc.want)
			}
		})
	}
}

func TestYAMLEmptyFile(t *testing.T) {
	cfg := mustLoad(t, []string{"--config", writeFile(t, "# nothing\n")}, creds())
	if cfg.HTTP != DefaultConfig().HTTP {
		t.Errorf("HTTP = %q, want the default", cfg.HTTP)
	}
}

func TestMissingConfigFile(t *testing.T) {
	_, err := load(t, []string{"--config", filepath.Join(t.TempDir(), "absent.yaml")}, creds())
	if !errors.Is(err, errInvalidConfig) || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("err = %v, want errInvalidConfig wrapping os.ErrNotExist", err)
	}
}

func TestValidationErrors(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		args []string
		want string // substring of the error
	}{
		{"unknown flag", nil, []string{"--colour"}, "colour"},
		{"api key is not a flag", nil, []string{"--api-key", "k"}, "api-key"},
		{"api secret is not a flag", nil, []string{"--api-secret", "s"}, "api-secret"},
		{"positional argument", nil, []string{"serve"}, `unexpected argument "serve"`},
		{"flag not int", nil, []string{"--udp-port", "x"}, `--udp-port: "x" is not an integer`},
		{"env not int", map[string]string{"CASCADE_UDP_PORT": "x"}, nil, "$CASCADE_UDP_PORT"},
		{"env bad duration", map[string]string{"CASCADE_SHUTDOWN_TIMEOUT": "10"}, nil, "$CASCADE_SHUTDOWN_TIMEOUT: \"10\" is not a duration"},
		{"env bad bool", map[string]string{"CASCADE_DEV": "yes"}, nil, "$CASCADE_DEV"},
		{"env bad float", map[string]string{"CASCADE_LAT": "north"}, nil, "$CASCADE_LAT"},
		{"http no port", nil, []string{"--http", "localhost"}, "http:"},
		{"http bad port", nil, []string{"--http", ":99999"}, "http:"},
		{"http port not numeric", nil, []string{"--http", ":web"}, "http:"},
		{"udp port negative", nil, []string{"--udp-port", "-1"}, "udp-port"},
		{"udp port too big", nil, []string{"--udp-port", "65536"}, "udp-port"},
		{"public ip hostname", nil, []string{"--public-ip", "sfu.example.com"}, "public-ip"},
		{"public ip unspecified", nil, []string{"--public-ip", "0.0.0.0"}, "public-ip"},
		{"node id bad char", nil, []string{"--node-id", "a b"}, "node-id"},
		{"node id too long", nil, []string{"--node-id", strings.Repeat("n", 65)}, "node-id"},
		{"empty region", nil, []string{"--region", ""}, "region"},
		{"lat too big", nil, []string{"--lat", "90.5"}, "lat:"},
		{"lat NaN", nil, []string{"--lat", "NaN"}, "lat:"},
		{"lon too small", nil, []string{"--lon", "-180.1"}, "lon:"},
		{"max participants zero", nil, []string{"--max-participants", "0"}, "max-participants"},
		{"unknown log level", nil, []string{"--log-level", "verbose"}, "log-level"},
		{"unknown log format", nil, []string{"--log-format", "xml"}, "log-format"},
		{"zero shutdown", nil, []string{"--shutdown-timeout", "0s"}, "shutdown-timeout"},
		{"zero join rate", nil, []string{"--join-rate", "0"}, "join-rate"},
		{"infinite join rate", nil, []string{"--join-rate", "+Inf"}, "join-rate"},
		{"zero join burst", nil, []string{"--join-burst", "0"}, "join-burst"},
		{"serf bind no port", nil, []string{"--serf-bind", "0.0.0.0"}, "serf-bind"},
		{"join with space", map[string]string{"CASCADE_JOIN": "a b"}, nil, "join:"},
		{"serf key not base64", nil, []string{"--serf-key", "not-base64!"}, "serf-key"},
		{"serf key wrong size", nil, []string{"--serf-key", "c2hvcnQ="}, "serf-key"},
		{"redis wrong scheme", nil, []string{"--redis", "http://x"}, "redis:"},
		{"redis no host", nil, []string{"--redis", "redis://"}, "redis:"},
		{"short secret", map[string]string{"CASCADE_API_SECRET": "short"}, nil, "CASCADE_API_SECRET must be at least"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			env := creds()
			for k, v := range tc.env {
				env[k] = v
			}
			_, err := load(t, tc.args, env)
			if !errors.Is(err, errInvalidConfig) {
				t.Fatalf("err = %v, want errInvalidConfig", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %q, want it to mention %q", err, tc.want)
			}
		})
	}
}

func TestValidationReportsEveryError(t *testing.T) {
	_, err := load(t, []string{"--udp-port", "-5", "--lat", "100", "--log-format", "yaml"}, creds())
	for _, want := range []string{"udp-port", "lat", "log-format"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("err = %v, want it to mention %q", err, want)
		}
	}
}

func TestCredentials(t *testing.T) {
	tests := []struct {
		name     string
		env      map[string]string
		args     []string
		wantErr  string // substring; "" for success
		wantKey  string
		wantDevK bool
	}{
		{"production", creds(), nil, "", testKey, false},
		{"missing outside dev", nil, nil, "CASCADE_API_KEY and CASCADE_API_SECRET are required", "", false},
		{"key without secret", map[string]string{"CASCADE_API_KEY": "k"}, nil, "CASCADE_API_SECRET is required", "", false},
		{"secret without key", map[string]string{"CASCADE_API_SECRET": testSecret}, nil, "CASCADE_API_KEY is required", "", false},
		{"dev without keys", nil, []string{"--dev"}, "", auth.DevAPIKey, true},
		{"dev from env", map[string]string{"CASCADE_DEV": "true"}, nil, "", auth.DevAPIKey, true},
		{"dev with own keys", creds(), []string{"--dev"}, "", testKey, false},
		{"dev with half the keys", map[string]string{"CASCADE_API_KEY": "k"}, []string{"--dev"}, "CASCADE_API_SECRET is required", "", false},
		{"dev secret outside dev", map[string]string{"CASCADE_API_KEY": "k", "CASCADE_API_SECRET": auth.DevAPISecret}, nil, "public dev secret", "", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := load(t, tc.args, tc.env)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want it to mention %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("LoadConfig: %v", err)
			}
			if cfg.APIKey != tc.wantKey || cfg.UsingDevKeys != tc.wantDevK {
				t.Errorf("APIKey %q UsingDevKeys %v, want %q %v", cfg.APIKey, cfg.UsingDevKeys, tc.wantKey, tc.wantDevK)
			}
			if tc.wantDevK && cfg.APISecret != auth.DevAPISecret {
				t.Errorf("APISecret = %q, want the dev secret", cfg.APISecret)
			}
		})
	}
}

func TestCredentialsFromYAML(t *testing.T) {
	path := writeFile(t, "api_key: filekey\napi_secret: file-secret-0123456789\n")
	cfg := mustLoad(t, []string{"--config", path}, map[string]string{"CASCADE_API_KEY": "envkey"})
	if cfg.APIKey != "envkey" || cfg.APISecret != "file-secret-0123456789" {
		t.Errorf("APIKey %q APISecret %q, want env key and file secret", cfg.APIKey, cfg.APISecret)
	}
}

func TestHelp(t *testing.T) {
	var out bytes.Buffer
	_, err := LoadConfig([]string{"--help"}, getenv(nil), &out)
	if !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("err = %v, want flag.ErrHelp", err)
	}
	help := out.String()
	for _, o := range options() {
		if !strings.Contains(help, envVar(o.name)) {
			t.Errorf("help does not mention %s", envVar(o.name))
		}
		if !o.envOnly && !strings.Contains(help, "--"+o.name) {
			t.Errorf("help does not mention --%s", o.name)
		}
		if o.envOnly && strings.Contains(help, "--"+o.name) {
			t.Errorf("help offers secret flag --%s", o.name)
		}
	}
	for _, want := range []string{`"127.0.0.1:7880"`, "7882", "10s", "Precedence"} {
		if !strings.Contains(help, want) {
			t.Errorf("help does not mention %q", want)
		}
	}
}

// TestOptionsMatchConfig checks that every YAML key is an option and every
// option sets a field whose YAML key is its own name.
func TestOptionsMatchConfig(t *testing.T) {
	keys := make(map[string]bool)
	typ := reflect.TypeFor[Config]()
	for i := range typ.NumField() {
		if tag := typ.Field(i).Tag.Get("yaml"); tag != "-" {
			keys[tag] = true
		}
	}
	var c Config
	for _, o := range options() {
		if o.name == "config" {
			continue
		}
		if !keys[yamlKey(o.name)] {
			t.Errorf("option %q has no YAML key %q", o.name, yamlKey(o.name))
		}
		delete(keys, yamlKey(o.name))
		if err := setField(o.field(&c), "1"); err != nil && strings.Contains(err.Error(), "unsupported") {
			t.Errorf("option %q: %v", o.name, err)
		}
	}
	for k := range keys {
		t.Errorf("YAML key %q has no option", k)
	}
}

func TestSlogLevel(t *testing.T) {
	tests := []struct {
		in   string
		want slog.Level
	}{
		{"debug", slog.LevelDebug},
		{"info", slog.LevelInfo},
		{"warn", slog.LevelWarn},
		{"error", slog.LevelError},
	}
	for _, tc := range tests {
		if got := (Config{LogLevel: tc.in}).SlogLevel(); got != tc.want {
			t.Errorf("SlogLevel(%q) = %v, want %v", tc.in, got, tc.want)
		}
	}
}
