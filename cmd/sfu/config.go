package main

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/netip"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/cascade-sfu/cascade/pkg/auth"
	"github.com/cascade-sfu/cascade/pkg/signal"
)

// errInvalidConfig is wrapped by every error LoadConfig returns, except
// flag.ErrHelp.
var errInvalidConfig = errors.New("invalid configuration")

const envPrefix = "CASCADE_"

// Config is the configuration of one SFU node. Every field comes, in order
// of precedence, from its command-line flag, its environment variable
// CASCADE_<FLAG> (flag name upper-cased, '-' as '_'), the YAML config file
// (flag name with '-' as '_') or DefaultConfig. The API credentials have no
// flag: secrets on command lines leak through ps and shell history.
type Config struct {
	// HTTP is the listen address (host:port) of the HTTP server:
	// signalling WebSocket, WHIP/WHEP and the API.
	HTTP string `yaml:"http"`
	// UDPPort is the single UDP port that carries all WebRTC media (ICE
	// UDP mux); 0 picks any free port.
	UDPPort int `yaml:"udp_port"`
	// PublicIP is the IP address advertised in ICE candidates, for a node
	// behind 1:1 NAT. Empty advertises the bound addresses.
	PublicIP string `yaml:"public_ip"`

	// NodeID names this node in the cluster. Default: the host name plus
	// a random suffix, so several nodes can share a host.
	NodeID string `yaml:"node_id"`
	// Region is a free-form region label used for routing.
	Region string `yaml:"region"`
	// Lat and Lon are the node's position in degrees, for picking the
	// nearest node.
	Lat float64 `yaml:"lat"`
	Lon float64 `yaml:"lon"`

	// Dev enables development mode: the dev token endpoint and, when no
	// credentials are configured, the public dev API key pair.
	Dev bool `yaml:"dev"`
	// APIKey and APISecret sign and verify access tokens. Environment
	// (CASCADE_API_KEY, CASCADE_API_SECRET) or config file only; required
	// outside dev mode.
	APIKey    string `yaml:"api_key"`
	APISecret string `yaml:"api_secret"`
	// UsingDevKeys reports that LoadConfig filled in auth.DevAPIKey and
	// auth.DevAPISecret because Dev is set and no credentials were given.
	UsingDevKeys bool `yaml:"-"`

	// MaxParticipants caps each room, counted per identity.
	MaxParticipants int `yaml:"max_participants"`
	// LogLevel is one of debug, info, warn, error.
	LogLevel string `yaml:"log_level"`
	// LogFormat is text or json.
	LogFormat string `yaml:"log_format"`
	// ShutdownTimeout bounds the graceful shutdown.
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout"`
	// JoinRate and JoinBurst limit joins with a valid token per client IP:
	// a token bucket refilled at JoinRate per second holding at most
	// JoinBurst. FailedJoinRate and FailedJoinBurst limit joins whose token
	// is refused; an address past that budget is refused before any work.
	JoinRate        float64 `yaml:"join_rate"`
	JoinBurst       int     `yaml:"join_burst"`
	FailedJoinRate  float64 `yaml:"join_fail_rate"`
	FailedJoinBurst int     `yaml:"join_fail_burst"`
	// ResumeGrace is how long a session whose WebSocket dropped is kept for the client to
	// resume it (its media keeps flowing; the others see it leave only after); 0 disables.
	ResumeGrace time.Duration `yaml:"resume_grace"`

	// SerfBind is the host:port of the cluster gossip listener; empty
	// runs the node alone.
	SerfBind string `yaml:"serf_bind"`
	// Join lists gossip addresses (host or host:port) of nodes to join.
	Join []string `yaml:"join"`
	// SerfKey is the base64 gossip encryption key (16, 24 or 32 bytes).
	SerfKey string `yaml:"serf_key"`
	// Redis is the URL (redis://, rediss:// or unix://) of the shared
	// room directory; empty keeps the directory in memory.
	Redis string `yaml:"redis"`
	// GeoIP is the path of a GeoIP database used to locate clients.
	GeoIP string `yaml:"geoip"`
	// RedisPrefix starts every Redis key, so that clusters can share a Redis.
	RedisPrefix string `yaml:"redis_prefix"`
	// PublicURL is the base URL clients use to reach this node (advertised to the cluster and
	// returned by /v1/route). Default: http://<http address>.
	PublicURL string `yaml:"public_url"`
	// DrainTimeout is how long a node that was told to stop keeps its sessions, draining, before
	// it tells the remaining clients to go (0: tell them at once).
	DrainTimeout time.Duration `yaml:"drain_timeout"`
	// HealthTTL is the lifetime of the node's health record in the registry.
	HealthTTL time.Duration `yaml:"health_ttl"`
	// RelayVia is the relay path policy: "" (direct links only), "auto" (through a third node
	// when the RTT through it is at least 20% lower: measured on the relay links where they
	// exist, else estimated from gossip coordinates; a chosen path changes only for one 20%
	// faster), or "to=via,..." pairs.
	RelayVia string `yaml:"relay_via"`
	// RelayPrewarm keeps a relay link to every live node, so that rooms never wait for one.
	RelayPrewarm bool `yaml:"relay_prewarm"`
	// RelayLinger is how long a relay link that carries no room stays open.
	RelayLinger time.Duration `yaml:"relay_linger"`
	// MetricsTopRooms is how many of the largest rooms get a cascade_room_participants series
	// (0: none, so the number of series does not grow with the number of rooms).
	MetricsTopRooms int `yaml:"metrics_top_rooms"`

	// Pprof serves net/http/pprof under /debug/pprof on the HTTP address, for cluster-admin
	// tokens only.
	Pprof bool `yaml:"pprof"`

	// DashboardFailedRetention is how long /dashboard keeps showing a failed node.
	DashboardFailedRetention time.Duration `yaml:"dashboard_failed_retention"`

	// ConfigFile is the YAML file the configuration was read from, if any.
	ConfigFile string `yaml:"-"`
}

// DefaultConfig returns the defaults. NodeID is left empty: LoadConfig
// derives it from the host name.
func DefaultConfig() Config {
	return Config{
		HTTP:            "127.0.0.1:7880",
		UDPPort:         7882,
		Region:          "local",
		MaxParticipants: 100,
		LogLevel:        "info",
		LogFormat:       "text",
		ShutdownTimeout: 10 * time.Second,
		JoinRate:        signal.DefaultJoinRate,
		JoinBurst:       signal.DefaultJoinBurst,
		FailedJoinRate:  signal.DefaultFailedJoinRate,
		FailedJoinBurst: signal.DefaultFailedJoinBurst,
		ResumeGrace:     signal.DefaultResumeGrace,
		RedisPrefix:     "cascade:",
		HealthTTL:       10 * time.Second,
		RelayLinger:     30 * time.Second,

		DashboardFailedRetention: 5 * time.Minute,
	}
}

// SlogLevel returns LogLevel as a slog.Level.
func (c Config) SlogLevel() slog.Level {
	switch c.LogLevel {
	case "debug":
		return slog.LevelDebug
	case "warn":
		return slog.LevelWarn
	case "error":
		return slog.LevelError
	default:
		return slog.LevelInfo
	}
}

// option describes one setting: its flag, environment variable and field.
type option struct {
	name    string              // flag name; env envVar(name); YAML key with '_'
	arg     string              // value placeholder in the usage, "" for a boolean
	usage   string              // one-line description
	envOnly bool                // no flag: the value is a secret
	field   func(c *Config) any // pointer to the field the option sets
}

func options() []option {
	return []option{
		{"config", "FILE", "YAML config file; keys are the flag names with '_' for '-'", false, func(c *Config) any { return &c.ConfigFile }},
		{"http", "ADDR", "HTTP listen address (signalling, WHIP, API)", false, func(c *Config) any { return &c.HTTP }},
		{"udp-port", "PORT", "UDP port for all WebRTC media; 0 = any free port", false, func(c *Config) any { return &c.UDPPort }},
		{"public-ip", "IP", "IP address to advertise in ICE candidates (empty: the bound addresses)", false, func(c *Config) any { return &c.PublicIP }},
		{"node-id", "ID", "node name in the cluster (default: host name plus a random suffix)", false, func(c *Config) any { return &c.NodeID }},
		{"region", "NAME", "region label of this node", false, func(c *Config) any { return &c.Region }},
		{"lat", "DEG", "latitude of this node, -90..90", false, func(c *Config) any { return &c.Lat }},
		{"lon", "DEG", "longitude of this node, -180..180", false, func(c *Config) any { return &c.Lon }},
		{"dev", "", "development mode: dev token endpoint, dev API keys when none are set", false, func(c *Config) any { return &c.Dev }},
		{"api-key", "KEY", "API key that signs access tokens (required outside dev mode)", true, func(c *Config) any { return &c.APIKey }},
		{"api-secret", "SECRET", fmt.Sprintf("API secret, at least %d bytes (required outside dev mode)", auth.MinSecretLen), true, func(c *Config) any { return &c.APISecret }},
		{"max-participants", "N", "participants per room, counted per identity", false, func(c *Config) any { return &c.MaxParticipants }},
		{"log-level", "LEVEL", "debug, info, warn or error", false, func(c *Config) any { return &c.LogLevel }},
		{"log-format", "FORMAT", "text or json", false, func(c *Config) any { return &c.LogFormat }},
		{"shutdown-timeout", "DURATION", "time allowed for a graceful shutdown", false, func(c *Config) any { return &c.ShutdownTimeout }},
		{"join-rate", "RATE", "joins with a valid token per second allowed per client IP", false, func(c *Config) any { return &c.JoinRate }},
		{"join-burst", "N", "burst of joins with a valid token allowed per client IP", false, func(c *Config) any { return &c.JoinBurst }},
		{"join-fail-rate", "RATE", "joins with a refused token per second allowed per client IP; past it the address is refused", false, func(c *Config) any { return &c.FailedJoinRate }},
		{"join-fail-burst", "N", "burst of joins with a refused token allowed per client IP", false, func(c *Config) any { return &c.FailedJoinBurst }},
		{"resume-grace", "DURATION", "how long a session whose WebSocket dropped waits to be resumed (0: not at all)", false, func(c *Config) any { return &c.ResumeGrace }},
		{"serf-bind", "ADDR", "cluster gossip listen address host:port (empty: no cluster)", false, func(c *Config) any { return &c.SerfBind }},
		{"join", "ADDRS", "comma-separated gossip addresses of nodes to join", false, func(c *Config) any { return &c.Join }},
		{"serf-key", "KEY", "base64 gossip encryption key, 16/24/32 bytes (prefer the env var)", false, func(c *Config) any { return &c.SerfKey }},
		{"redis", "URL", "Redis URL of the shared room directory (empty: in memory)", false, func(c *Config) any { return &c.Redis }},
		{"geoip", "FILE", "GeoIP database used to locate clients", false, func(c *Config) any { return &c.GeoIP }},
		{"redis-prefix", "PREFIX", "prefix of every Redis key (several clusters can share a Redis)", false, func(c *Config) any { return &c.RedisPrefix }},
		{"public-url", "URL", "base URL clients use to reach this node (default: http://<http address>)", false, func(c *Config) any { return &c.PublicURL }},
		{"drain-timeout", "DURATION", "on SIGTERM, how long sessions may go on while draining before clients are told to leave", false, func(c *Config) any { return &c.DrainTimeout }},
		{"health-ttl", "DURATION", "lifetime of the node's health record; refreshed every third of it", false, func(c *Config) any { return &c.HealthTTL }},
		{"relay-prewarm", "", "keep a relay link to every live node, so that a room spanning nodes never waits for a link's set-up", false, func(c *Config) any { return &c.RelayPrewarm }},
		{"relay-linger", "DURATION", "how long a relay link that carries no room stays open", false, func(c *Config) any { return &c.RelayLinger }},
		{"metrics-top-rooms", "N", fmt.Sprintf("export per-room participant counts for the N largest rooms (0: off; at most %d)", maxTopRooms), false, func(c *Config) any { return &c.MetricsTopRooms }},
		{"pprof", "", "serve Go profiles under /debug/pprof on the HTTP address (cluster-admin token required)", false, func(c *Config) any { return &c.Pprof }},
		{"dashboard-failed-retention", "DURATION", "how long the dashboard keeps showing a failed node", false, func(c *Config) any { return &c.DashboardFailedRetention }},
		{"relay-via", "POLICY", "relay paths: empty = direct, auto = through a node when it is 20% faster by RTT (measured on the relay links, else estimated by gossip), or to=via,... pairs", false, func(c *Config) any { return &c.RelayVia }},
	}
}

// envVar returns the environment variable of the option called name.
func envVar(name string) string {
	return envPrefix + strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
}

// LoadConfig builds the configuration from args (without the program
// name), the environment read through getenv and the optional YAML file,
// then validates it. On --help it writes the usage to usage and returns
// flag.ErrHelp. An empty environment variable counts as unset. Every other
// error wraps errInvalidConfig.
func LoadConfig(args []string, getenv func(string) string, usage io.Writer) (Config, error) {
	opts := options()
	flags, err := parseFlags(opts, args)
	if errors.Is(err, flag.ErrHelp) {
		writeUsage(usage, opts)
		return Config{}, err
	}
	if err != nil {
		return Config{}, fmt.Errorf("%w: %w", errInvalidConfig, err)
	}
	cfg, err := layer(opts, flags, getenv)
	if err != nil {
		return Config{}, fmt.Errorf("%w: %w", errInvalidConfig, err)
	}
	cfg.complete()
	if err := cfg.validate(); err != nil {
		return Config{}, fmt.Errorf("%w: %w", errInvalidConfig, err)
	}
	return cfg, nil
}

// layer applies defaults, the YAML file, the environment and the flags, in
// that order, so later layers win.
func layer(opts []option, flags map[string]string, getenv func(string) string) (Config, error) {
	cfg := DefaultConfig()
	path := flags["config"]
	if path == "" {
		path = getenv(envVar("config"))
	}
	if path != "" {
		if err := loadYAML(path, &cfg); err != nil {
			return Config{}, err
		}
	}
	for _, o := range opts {
		if v := getenv(envVar(o.name)); v != "" {
			if err := setField(o.field(&cfg), v); err != nil {
				return Config{}, fmt.Errorf("$%s: %w", envVar(o.name), err)
			}
		}
	}
	for _, o := range opts {
		if v, ok := flags[o.name]; ok {
			if err := setField(o.field(&cfg), v); err != nil {
				return Config{}, fmt.Errorf("--%s: %w", o.name, err)
			}
		}
	}
	return cfg, nil
}

// rawFlag records a flag's value as given; the value is parsed later, by
// the same code as the environment's.
type rawFlag struct {
	name   string
	isBool bool
	seen   map[string]string
}

func (f rawFlag) String() string   { return "" }
func (f rawFlag) IsBoolFlag() bool { return f.isBool }

func (f rawFlag) Set(s string) error {
	f.seen[f.name] = s
	return nil
}

// parseFlags returns the flags given in args, by name.
func parseFlags(opts []option, args []string) (map[string]string, error) {
	seen := make(map[string]string)
	fs := flag.NewFlagSet("sfu", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	for _, o := range opts {
		if !o.envOnly {
			fs.Var(rawFlag{name: o.name, isBool: o.arg == "", seen: seen}, o.name, o.usage)
		}
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	return seen, nil
}

func loadYAML(path string, cfg *Config) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("config file: %w", err)
	}
	defer f.Close()
	dec := yaml.NewDecoder(f)
	dec.KnownFields(true)
	if err := dec.Decode(cfg); err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("config file %s: %w", path, err)
	}
	return nil
}

// setField parses s into the field p points to.
func setField(p any, s string) error {
	switch p := p.(type) {
	case *string:
		*p = s
	case *[]string:
		*p = splitList(s)
	case *bool:
		v, err := strconv.ParseBool(s)
		if err != nil {
			return fmt.Errorf("%q is not a boolean (true or false)", s)
		}
		*p = v
	case *int:
		v, err := strconv.Atoi(s)
		if err != nil {
			return fmt.Errorf("%q is not an integer", s)
		}
		*p = v
	case *float64:
		v, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return fmt.Errorf("%q is not a number", s)
		}
		*p = v
	case *time.Duration:
		v, err := time.ParseDuration(s)
		if err != nil {
			return fmt.Errorf("%q is not a duration (like 10s or 1m30s)", s)
		}
		*p = v
	default:
		return fmt.Errorf("unsupported field type %T", p)
	}
	return nil
}

// splitList splits a comma-separated list, dropping blank entries.
func splitList(s string) []string {
	var out []string
	for e := range strings.SplitSeq(s, ",") {
		if e = strings.TrimSpace(e); e != "" {
			out = append(out, e)
		}
	}
	return out
}

// complete fills in derived defaults: the node ID and the dev keys.
func (c *Config) complete() {
	c.LogLevel = strings.ToLower(c.LogLevel)
	c.LogFormat = strings.ToLower(c.LogFormat)
	if c.NodeID == "" {
		c.NodeID = defaultNodeID()
	}
	if c.Dev && c.APIKey == "" && c.APISecret == "" {
		c.APIKey, c.APISecret = auth.DevAPIKey, auth.DevAPISecret
		c.UsingDevKeys = true
	}
}

// defaultNodeID is the first label of the host name, reduced to
// [a-z0-9-], plus a random suffix.
func defaultNodeID() string {
	host, _ := os.Hostname()
	host, _, _ = strings.Cut(strings.ToLower(host), ".")
	host = strings.Map(func(r rune) rune {
		if ('a' <= r && r <= 'z') || ('0' <= r && r <= '9') || r == '-' {
			return r
		}
		return -1
	}, host)
	host = strings.Trim(host[:min(len(host), 40)], "-")
	if host == "" {
		host = "sfu"
	}
	return host + "-" + strings.ToLower(rand.Text()[:6])
}

// validate reports every invalid field.
func (c *Config) validate() error {
	return errors.Join(
		checkHostPort("http", c.HTTP),
		checkPort("udp-port", c.UDPPort),
		checkPublicIP(c.PublicIP),
		checkID("node-id", c.NodeID),
		checkID("region", c.Region),
		checkRange("lat", c.Lat, -90, 90),
		checkRange("lon", c.Lon, -180, 180),
		c.checkCredentials(),
		checkAtLeast("max-participants", c.MaxParticipants, 1),
		checkOneOf("log-level", c.LogLevel, "debug", "info", "warn", "error"),
		checkOneOf("log-format", c.LogFormat, "text", "json"),
		checkPositive("shutdown-timeout", c.ShutdownTimeout),
		checkPositive("health-ttl", c.HealthTTL),
		checkOptional(c.PublicURL, checkPublicURL),
		checkOptional(c.RelayVia, checkRelayVia),
		checkPositive("relay-linger", c.RelayLinger),
		checkPositive("dashboard-failed-retention", c.DashboardFailedRetention),
		checkNonNegative("drain-timeout", c.DrainTimeout),
		checkRate("join-rate", c.JoinRate),
		checkAtLeast("join-burst", c.JoinBurst, 1),
		checkRate("join-fail-rate", c.FailedJoinRate),
		checkAtLeast("join-fail-burst", c.FailedJoinBurst, 1),
		checkNonNegative("resume-grace", c.ResumeGrace),
		checkOptional(c.SerfBind, func(s string) error { return checkHostPort("serf-bind", s) }),
		checkJoin(c.Join),
		checkOptional(c.SerfKey, checkSerfKey),
		checkOptional(c.Redis, checkRedis),
		checkRange("metrics-top-rooms", float64(c.MetricsTopRooms), 0, maxTopRooms),
	)
}

func checkOptional(s string, check func(string) error) error {
	if s == "" {
		return nil
	}
	return check(s)
}

func checkHostPort(name, s string) error {
	_, port, err := net.SplitHostPort(s)
	if err != nil {
		return fmt.Errorf("%s: %q is not host:port", name, s)
	}
	p, err := strconv.Atoi(port)
	if err != nil {
		return fmt.Errorf("%s: %q has a bad port", name, s)
	}
	return checkPort(name, p)
}

func checkPort(name string, p int) error {
	if p < 0 || p > 65535 {
		return fmt.Errorf("%s: %d is not a port (0-65535)", name, p)
	}
	return nil
}

func checkPublicIP(s string) error {
	if s == "" {
		return nil
	}
	ip, err := netip.ParseAddr(s)
	if err != nil || ip.IsUnspecified() || ip.Zone() != "" {
		return fmt.Errorf("public-ip: %q is not a usable IP address", s)
	}
	return nil
}

// checkID accepts 1 to 64 characters of [A-Za-z0-9_.-].
func checkID(name, s string) error {
	if s == "" || len(s) > 64 || strings.ContainsFunc(s, isNotIDChar) {
		return fmt.Errorf("%s: %q must be 1 to 64 characters of A-Z a-z 0-9 _ . -", name, s)
	}
	return nil
}

func isNotIDChar(r rune) bool {
	return !('a' <= r && r <= 'z') && !('A' <= r && r <= 'Z') && !('0' <= r && r <= '9') &&
		r != '_' && r != '.' && r != '-'
}

func checkRange(name string, v, lo, hi float64) error {
	if !(v >= lo && v <= hi) { // also rejects NaN
		return fmt.Errorf("%s: %v is not in %v..%v", name, v, lo, hi)
	}
	return nil
}

func checkAtLeast(name string, v, lo int) error {
	if v < lo {
		return fmt.Errorf("%s: %d is less than %d", name, v, lo)
	}
	return nil
}

func checkPositive(name string, d time.Duration) error {
	if d <= 0 {
		return fmt.Errorf("%s: %v must be positive", name, d)
	}
	return nil
}

func checkRate(name string, r float64) error {
	if !(r > 0) || math.IsInf(r, 1) {
		return fmt.Errorf("%s: %v must be a positive number", name, r)
	}
	return nil
}

func checkOneOf(name, v string, allowed ...string) error {
	for _, a := range allowed {
		if v == a {
			return nil
		}
	}
	return fmt.Errorf("%s: %q is not one of %s", name, v, strings.Join(allowed, ", "))
}

func (c *Config) checkCredentials() error {
	key, secret := envVar("api-key"), envVar("api-secret")
	switch {
	case c.APIKey == "" && c.APISecret == "":
		return fmt.Errorf("%s and %s are required (or api_key and api_secret in the config file); use --dev for development",
			key, secret)
	case c.APIKey == "":
		return fmt.Errorf("%s is required when %s is set", key, secret)
	case c.APISecret == "":
		return fmt.Errorf("%s is required when %s is set", secret, key)
	case len(c.APISecret) < auth.MinSecretLen:
		return fmt.Errorf("%s must be at least %d bytes", secret, auth.MinSecretLen)
	case !c.Dev && c.APISecret == auth.DevAPISecret:
		return fmt.Errorf("%s is the public dev secret: outside dev mode use a secret of your own", secret)
	}
	return nil
}

func checkJoin(addrs []string) error {
	for _, a := range addrs {
		if a == "" || strings.ContainsFunc(a, func(r rune) bool { return r <= ' ' }) {
			return fmt.Errorf("join: %q is not an address", a)
		}
	}
	return nil
}

func checkSerfKey(s string) error {
	k, err := base64.StdEncoding.DecodeString(s)
	if err != nil || (len(k) != 16 && len(k) != 24 && len(k) != 32) {
		return errors.New("serf-key: must be base64 of 16, 24 or 32 bytes")
	}
	return nil
}

// parseRelayVia reads "to=via,..." pairs.
func parseRelayVia(s string) (map[string]string, error) {
	out := map[string]string{}
	for _, pair := range strings.Split(s, ",") {
		to, via, ok := strings.Cut(strings.TrimSpace(pair), "=")
		if !ok || checkID("relay-via", to) != nil || checkID("relay-via", via) != nil || to == via {
			return nil, fmt.Errorf("relay-via: %q is not to=via with two different node ids", pair)
		}
		out[to] = via
	}
	return out, nil
}

func checkRelayVia(s string) error {
	if s == "auto" {
		return nil
	}
	_, err := parseRelayVia(s)
	return err
}

func checkPublicURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("public-url: %q must be an http:// or https:// URL", s)
	}
	return nil
}

func checkNonNegative(name string, d time.Duration) error {
	if d < 0 {
		return fmt.Errorf("%s: must not be negative", name)
	}
	return nil
}

func checkRedis(s string) error {
	u, err := url.Parse(s)
	switch {
	case err != nil:
		return fmt.Errorf("redis: %q is not a URL", s)
	case u.Scheme == "redis" || u.Scheme == "rediss":
		if u.Host == "" {
			return fmt.Errorf("redis: %q has no host", s)
		}
	case u.Scheme == "unix":
		if u.Path == "" {
			return fmt.Errorf("redis: %q has no socket path", s)
		}
	default:
		return fmt.Errorf("redis: %q must start with redis://, rediss:// or unix://", s)
	}
	return nil
}

// writeUsage documents every option, its environment variable and default.
func writeUsage(w io.Writer, opts []option) {
	def := DefaultConfig()
	fmt.Fprintf(w, "Usage: sfu [flags]\n\n")
	fmt.Fprintf(w, "Each flag can also be set by the environment variable shown or by the YAML\n")
	fmt.Fprintf(w, "config file (key = flag name with '_' for '-'). Precedence: flag >\n")
	fmt.Fprintf(w, "environment > config file > default.\n\nFlags:\n")
	for _, o := range opts {
		if !o.envOnly {
			writeOption(w, "--"+strings.TrimSpace(o.name+" "+o.arg), o, def)
		}
	}
	fmt.Fprintf(w, "\nEnvironment or config file only (secrets do not belong on command lines):\n")
	for _, o := range opts {
		if o.envOnly {
			writeOption(w, envVar(o.name), o, def)
		}
	}
}

func writeOption(w io.Writer, head string, o option, def Config) {
	fmt.Fprintf(w, "  %s\n      %s", head, o.usage)
	if d := formatValue(o.field(&def)); d != "" {
		fmt.Fprintf(w, " (default %s)", d)
	}
	var src []string
	if !o.envOnly {
		src = append(src, "env "+envVar(o.name))
	}
	if o.name != "config" {
		src = append(src, "config key "+yamlKey(o.name))
	}
	fmt.Fprintf(w, "\n      %s\n", strings.Join(src, ", "))
}

// yamlKey returns the config file key of the option called name.
func yamlKey(name string) string {
	return strings.ReplaceAll(name, "-", "_")
}

// formatValue renders a field's value for the usage text; "" for zero.
func formatValue(p any) string {
	switch p := p.(type) {
	case *string:
		if *p != "" {
			return strconv.Quote(*p)
		}
	case *[]string:
		return strings.Join(*p, ",")
	case *bool:
		if *p {
			return "true"
		}
	case *int:
		if *p != 0 {
			return strconv.Itoa(*p)
		}
	case *float64:
		if *p != 0 {
			return strconv.FormatFloat(*p, 'g', -1, 64)
		}
	case *time.Duration:
		return p.String()
	}
	return ""
}
