package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/cascade-sfu/cascade/pkg/api"
)

// httpFailure turns an error answer into an error: the server's JSON message when it sent one.
func httpFailure(status string, body []byte) error {
	var e api.ErrorBody
	if json.Unmarshal(body, &e) == nil && e.Error != "" {
		return fmt.Errorf("%s: %s", status, e.Error)
	}
	return fmt.Errorf("%s: %s", status, strings.TrimSpace(string(body)))
}

// send makes an admin API call with a cluster admin token: method on path with reqBody as
// JSON (nil: no body); a 2xx answer is decoded into v (nil: ignored) and returned raw.
func (f *operatorFlags) send(g globals, method, path string, reqBody, v any) ([]byte, error) {
	tok, err := f.adminToken(g.getenv)
	if err != nil {
		return nil, err
	}
	var rd io.Reader
	if reqBody != nil {
		b, err := json.Marshal(reqBody)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(b)
	}
	ctx, cancel := context.WithTimeout(context.Background(), f.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimRight(g.server, "/")+path, rd)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	if reqBody != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode/100 != 2 {
		return nil, httpFailure(resp.Status, body)
	}
	if v != nil {
		return body, json.Unmarshal(body, v)
	}
	return body, nil
}

// parseInterspersed parses flags that may come before, between or after positional
// arguments, and returns the positional ones.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			return pos, nil
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

// adminCommand is the frame of an admin action command: it parses the flags (and
// positional arguments, exactly nargs), lets check validate them, runs act and reports.
func adminCommand(g globals, args []string, name, synopsis string, nargs int, setup func(*flag.FlagSet), act func(f *operatorFlags, pos []string) error) int {
	var f operatorFlags
	fs := newOperatorFlagSet(name, &f)
	if setup != nil {
		setup(fs)
	}
	usage := func(w io.Writer) {
		fmt.Fprintf(w, "usage: relayctl [--server URL] %s\n\nflags:\n", synopsis)
		printFlags(w, fs)
	}
	pos, err := parseInterspersed(fs, args)
	if err != nil {
		return parseFailure(err, "relayctl "+name, g.stdout, g.stderr, usage)
	}
	if len(pos) != nargs {
		fmt.Fprintf(g.stderr, "relayctl %s: want %d argument(s), got %q (run 'relayctl %s --help')\n", name, nargs, pos, name)
		return exitUsage
	}
	if err := act(&f, pos); err != nil {
		fmt.Fprintf(g.stderr, "relayctl %s: %v\n", name, err)
		if errors.Is(err, errUsage) {
			return exitUsage
		}
		return exitError
	}
	return exitOK
}

// roomPath is /v1/rooms/{room} with elements escaped.
func roomPath(room string, rest ...string) string {
	p := "/v1/rooms/" + url.PathEscape(room)
	for _, r := range rest {
		p += "/" + url.PathEscape(r)
	}
	return p
}

// need fails with a usage error when a required flag is empty; flags are name, value pairs.
func need(pairs ...string) error {
	for i := 0; i+1 < len(pairs); i += 2 {
		if pairs[i+1] == "" {
			return fmt.Errorf("%w: --%s is required", errUsage, pairs[i])
		}
	}
	return nil
}
