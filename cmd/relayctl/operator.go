package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/cascade-sfu/cascade/pkg/api"
	"github.com/cascade-sfu/cascade/pkg/auth"
)

// operatorFlags are the flags of the commands that read the operator API.
type operatorFlags struct {
	json              bool
	token             string // a cluster admin token to send as is; else one is minted
	apiKey, apiSecret string
	dev               bool
	timeout           time.Duration
}

func newOperatorFlagSet(name string, f *operatorFlags) *flag.FlagSet {
	fs := flag.NewFlagSet("relayctl "+name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.BoolVar(&f.json, "json", false, "print the server's JSON instead of a table")
	fs.StringVar(&f.apiKey, "api-key", "", "API key (default $"+envAPIKey+")")
	fs.StringVar(&f.apiSecret, "api-secret", "", "API secret (default $"+envAPISecret+")")
	fs.StringVar(&f.token, "token", "", "a cluster admin token (relayctl token --cluster-admin); default: mint one from the API key and secret")
	fs.BoolVar(&f.dev, "dev", false, "with no key or secret given, use the public dev pair")
	fs.DurationVar(&f.timeout, "timeout", 10*time.Second, "request timeout")
	return fs
}

// adminToken signs a short-lived cluster admin token with the operator's credentials.
func (f *operatorFlags) adminToken(getenv func(string) string) (string, error) {
	if f.token != "" {
		return f.token, nil
	}
	tf := tokenFlags{apiKey: f.apiKey, apiSecret: f.apiSecret, dev: f.dev}
	key, secret, err := tf.credentials(getenv)
	if err != nil {
		return "", err
	}
	return auth.Sign(key, secret, auth.Grants{Identity: "relayctl", ClusterAdmin: true}, 5*time.Minute, time.Now())
}

// getJSON fetches path from the server with an admin token and decodes into v; raw is the body.
func (f *operatorFlags) getJSON(g globals, path string, v any) ([]byte, error) {
	tok, err := f.adminToken(g.getenv)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), f.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(g.server, "/")+path, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, httpFailure(resp.Status, body)
	}
	return body, json.Unmarshal(body, v)
}

// runOperator parses the flags of an operator command, fetches path and prints it.
func runOperator(g globals, args []string, name, path string, v any, table func(io.Writer)) int {
	var f operatorFlags
	fs := newOperatorFlagSet(name, &f)
	if err := fs.Parse(args); err != nil {
		return parseFailure(err, "relayctl "+name, g.stdout, g.stderr, func(w io.Writer) {
			fmt.Fprintf(w, "usage: relayctl [--server URL] %s [--json]\n\nflags:\n", name)
			printFlags(w, fs)
		})
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(g.stderr, "relayctl %s: unexpected arguments %q\n", name, fs.Args())
		return exitUsage
	}
	raw, err := f.getJSON(g, path, v)
	if err != nil {
		fmt.Fprintf(g.stderr, "relayctl %s: %v\n", name, err)
		if errors.Is(err, errUsage) {
			return exitUsage
		}
		return 1
	}
	if f.json {
		_, _ = g.stdout.Write(raw)
		return 0
	}
	tw := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
	table(tw)
	_ = tw.Flush()
	return 0
}

// runNodes implements "relayctl nodes".
func runNodes(g globals, args []string) int {
	var out api.Nodes
	return runOperator(g, args, "nodes", "/v1/nodes", &out, func(w io.Writer) {
		fmt.Fprintf(w, "ID\tREGION\tSTATE\tURL\tLOAD\tROOMS\tPARTICIPANTS\tLAST SEEN\tRTT FROM %s\tLINK RTT\n", out.From)
		for _, n := range out.Nodes {
			rtt := "-"
			if n.RTTMs != nil {
				rtt = fmt.Sprintf("%.1f ms", *n.RTTMs)
			}
			seen := "-"
			if !n.LastSeen.IsZero() {
				seen = time.Since(n.LastSeen).Round(time.Second).String() + " ago"
			}
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%.2f\t%d\t%d\t%s\t%s\t%s\n", n.ID, n.Region, n.State, n.URL, n.Load, n.Rooms, n.Participants, seen, rtt, linkRTTs(n.LinkRTTMs))
		}
	})
}

// linkRTTs formats a node's measured link RTTs compactly, "peer=12.3ms" by peer; "-" for none.
func linkRTTs(ms map[string]float64) string {
	if len(ms) == 0 {
		return "-"
	}
	cells := make([]string, 0, len(ms))
	for peer, rtt := range ms {
		cells = append(cells, fmt.Sprintf("%s=%.1fms", peer, rtt))
	}
	sort.Strings(cells)
	return strings.Join(cells, " ")
}

// runRooms implements "relayctl rooms".
func runRooms(g globals, args []string) int {
	var out api.Rooms
	return runOperator(g, args, "rooms", "/v1/rooms", &out, func(w io.Writer) {
		fmt.Fprintln(w, "ROOM\tOCCUPANTS\tNODES")
		for _, r := range out.Rooms {
			var nodes []string
			for id, n := range r.Nodes {
				nodes = append(nodes, fmt.Sprintf("%s=%d", id, n))
			}
			sort.Strings(nodes)
			fmt.Fprintf(w, "%s\t%d\t%s\n", r.Name, r.Occupants, strings.Join(nodes, " "))
		}
	})
}
