package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/cascade-sfu/cascade/pkg/auth"
)

const (
	envAPIKey    = "CASCADE_API_KEY"
	envAPISecret = "CASCADE_API_SECRET"
)

// errUsage marks errors caused by the command line rather than by the work.
var errUsage = errors.New("usage")

// tokenFlags holds the parsed flags of "relayctl token".
type tokenFlags struct {
	room, identity, name     string
	publish, subscribe, data bool
	admin                    bool
	clusterAdmin             bool
	ttl                      time.Duration
	apiKey, apiSecret        string
	dev                      bool
}

func newTokenFlagSet(f *tokenFlags) *flag.FlagSet {
	fs := flag.NewFlagSet("relayctl token", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&f.room, "room", "", "room the token is for (required)")
	fs.StringVar(&f.identity, "identity", "", "participant identity (required)")
	fs.StringVar(&f.name, "name", "", "display name")
	fs.BoolVar(&f.publish, "publish", false, "grant canPublish (send media)")
	fs.BoolVar(&f.subscribe, "subscribe", false, "grant canSubscribe (receive media)")
	fs.BoolVar(&f.data, "data", false, "grant canPublishData (send chat and data messages)")
	fs.BoolVar(&f.admin, "admin", false, "grant roomAdmin (mute others, kick) in --room")
	fs.BoolVar(&f.clusterAdmin, "cluster-admin", false, "mint an operator token instead (admin API, dashboard login): no room, no media grants; --identity defaults to \"operator\"")
	fs.DurationVar(&f.ttl, "ttl", 6*time.Hour, "token lifetime (at most 720h)")
	fs.StringVar(&f.apiKey, "api-key", "", "API key (default $"+envAPIKey+")")
	fs.StringVar(&f.apiSecret, "api-secret", "", "API secret (default $"+envAPISecret+"; prefer the env var, command lines leak)")
	fs.BoolVar(&f.dev, "dev", false, "with no key or secret given, use the public dev pair (dev-mode servers only)")
	return fs
}

// runToken implements "relayctl token".
func runToken(g globals, args []string) int {
	var f tokenFlags
	fs := newTokenFlagSet(&f)
	if err := fs.Parse(args); err != nil {
		return parseFailure(err, "relayctl token", g.stdout, g.stderr, func(w io.Writer) { tokenUsage(w, fs) })
	}
	tok, err := f.sign(g.getenv, fs.Args(), time.Now())
	if err != nil {
		fmt.Fprintf(g.stderr, "relayctl token: %v\n", err)
		if errors.Is(err, errUsage) {
			fmt.Fprintln(g.stderr, "run 'relayctl token --help' for usage")
			return exitUsage
		}
		return exitError
	}
	fmt.Fprintln(g.stdout, tok)
	return exitOK
}

func tokenUsage(w io.Writer, fs *flag.FlagSet) {
	fmt.Fprint(w, `Usage: relayctl token --room ROOM --identity ID [flags]

Prints a signed access token on stdout.

Without --publish, --subscribe or --data the token grants all three (an
ordinary participant); with any of them it grants exactly those given.
--admin adds roomAdmin (a host of --room: mute others, kick).

   or: relayctl token --cluster-admin [--identity ID] [--ttl D]

prints an operator token with the cluster admin grant, for the admin API
(Authorization: Bearer) and the dashboard login.
The API key and secret come from --api-key/--api-secret, else from
$`+envAPIKey+`/$`+envAPISecret+`, else, with --dev, the dev pair.

Flags:
`)
	printFlags(w, fs)
}

// sign checks the flags and issues the token.
func (f *tokenFlags) sign(getenv func(string) string, extra []string, now time.Time) (string, error) {
	if len(extra) > 0 {
		return "", fmt.Errorf("%w: unexpected argument %q", errUsage, extra[0])
	}
	grants, err := f.grants()
	if err != nil {
		return "", err
	}
	key, secret, err := f.credentials(getenv)
	if err != nil {
		return "", err
	}
	if f.ttl <= 0 || f.ttl > auth.MaxTTL {
		return "", fmt.Errorf("%w: --ttl %v must be in (0, %v]", errUsage, f.ttl, auth.MaxTTL)
	}
	tok, err := auth.Sign(key, secret, grants, f.ttl, now)
	if err != nil {
		// Every Sign failure here comes from a flag or env value.
		return "", fmt.Errorf("%w: %w", errUsage, err)
	}
	return tok, nil
}

// grants builds the grants from the flags, applying the default of an
// ordinary participant.
func (f *tokenFlags) grants() (auth.Grants, error) {
	if f.clusterAdmin {
		return f.operatorGrants()
	}
	if f.room == "" || f.identity == "" {
		return auth.Grants{}, fmt.Errorf("%w: --room and --identity are required", errUsage)
	}
	if err := auth.ValidRoomName(f.room); err != nil {
		return auth.Grants{}, fmt.Errorf("%w: --room: %w", errUsage, err)
	}
	if err := auth.ValidIdentity(f.identity); err != nil {
		return auth.Grants{}, fmt.Errorf("%w: --identity: %w", errUsage, err)
	}
	all := !f.publish && !f.subscribe && !f.data
	return auth.Grants{
		Room:           f.room,
		Identity:       f.identity,
		Name:           f.name,
		CanPublish:     all || f.publish,
		CanSubscribe:   all || f.subscribe,
		CanPublishData: all || f.data,
		RoomAdmin:      f.admin,
	}, nil
}

// credentials picks the API key and secret: each from its flag, else from
// the environment; the dev pair only when neither is given and --dev is.
func (f *tokenFlags) credentials(getenv func(string) string) (key, secret string, err error) {
	key = firstNonEmpty(f.apiKey, getenv(envAPIKey))
	secret = firstNonEmpty(f.apiSecret, getenv(envAPISecret))
	switch {
	case key != "" && secret != "":
		return key, secret, nil
	case key == "" && secret == "" && f.dev:
		return auth.DevAPIKey, auth.DevAPISecret, nil
	case key == "" && secret == "":
		return "", "", fmt.Errorf("%w: no API key and secret: set %s and %s, pass --api-key and --api-secret, or --dev for a dev server",
			errUsage, envAPIKey, envAPISecret)
	case key == "":
		return "", "", fmt.Errorf("%w: API secret given without an API key (--api-key or %s)", errUsage, envAPIKey)
	default:
		return "", "", fmt.Errorf("%w: API key given without an API secret (--api-secret or %s)", errUsage, envAPISecret)
	}
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}

// operatorGrants are the grants of --cluster-admin: the cluster admin grant alone.
func (f *tokenFlags) operatorGrants() (auth.Grants, error) {
	if f.room != "" || f.publish || f.subscribe || f.data || f.admin {
		return auth.Grants{}, fmt.Errorf("%w: --cluster-admin takes no --room, --publish, --subscribe, --data or --admin", errUsage)
	}
	id := firstNonEmpty(f.identity, "operator")
	if err := auth.ValidIdentity(id); err != nil {
		return auth.Grants{}, fmt.Errorf("%w: --identity: %w", errUsage, err)
	}
	return auth.Grants{Identity: id, Name: f.name, ClusterAdmin: true}, nil
}
