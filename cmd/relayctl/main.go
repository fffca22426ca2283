// Command relayctl administers Cascade SFU nodes and issues access tokens.
//
// Usage:
//
//	relayctl [--server URL] COMMAND [flags]
//
// Run "relayctl --help" for the list of commands and "relayctl COMMAND
// --help" for the flags of one command.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"text/tabwriter"
)

// Exit codes.
const (
	exitOK    = 0
	exitError = 1 // the command failed
	exitUsage = 2 // bad command line
)

const (
	defaultServer = "http://127.0.0.1:7880"
	envServer     = "CASCADE_SERVER"
)

// globals holds what the global flags and the environment give every
// command.
type globals struct {
	server string              // base URL of the SFU's HTTP API
	getenv func(string) string // environment lookup
	stdout io.Writer           // command output
	stderr io.Writer           // diagnostics
}

// command is one subcommand. run receives the arguments after the command
// name and returns an exit code.
type command struct {
	name    string
	summary string
	run     func(g globals, args []string) int
}

// commands lists the subcommands. A new subcommand is a new file with its
// run function plus one line here.
func commands() []command {
	return []command{
		{name: "token", summary: "print a signed access token", run: runToken},
		{name: "nodes", summary: "list the cluster's nodes (id, region, state, URL, load, rooms, participants, last seen, RTT estimate, measured relay link RTTs)", run: runNodes},
		{name: "rooms", summary: "list rooms with the nodes hosting them and occupant counts", run: runRooms},
		{name: "lab", summary: "the latency lab on an emulated WAN: lab up|down|status [--topology FILE] (as root)", run: runLab},
		{name: "relays", summary: "list the answering node's relay links (peer, state, RTT, bitrates, bytes, set-up time)", run: runRelays},
		{name: "load", summary: "load a node with WHIP publishers and WHEP/WebSocket viewers; report egress, loss, time to first packet, server CPU", run: runLoad},
		{name: "participants", summary: "list a room's participants on every node (identity, name, node, session, tracks)", run: runParticipants},
		{name: "evict", summary: "end a participant's session at once, on whichever node", run: runEvict},
		{name: "rename", summary: "change a participant's display name for everyone", run: runRename},
		{name: "mute", summary: "mute (or --unmute) a participant's track server-side", run: runMute},
		{name: "send", summary: "send a system message to everyone in a room", run: runSend},
		{name: "room", summary: "create or delete a room (create ROOM [--max-participants N] [--metadata JSON] | delete ROOM)", run: runRoom},
		{name: "drain", summary: "drain a node: no new sessions, exit when empty or at the drain timeout", run: runDrain},
		{name: "experiment", summary: "measure latency, jitter, loss and freezes across the emulated-WAN lab or between real nodes", run: runExperiment},
	}
}

func main() {
	os.Exit(run(os.Args[1:], os.Getenv, os.Stdout, os.Stderr))
}

// run is the whole program: it parses the global flags, dispatches to the
// subcommand and returns the exit code.
func run(args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("relayctl", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	server := fs.String("server", serverDefault(getenv), "base URL of the Cascade HTTP API (env "+envServer+")")
	if err := fs.Parse(args); err != nil {
		return parseFailure(err, "relayctl", stdout, stderr, func(w io.Writer) { usage(w, fs) })
	}
	if err := checkServer(*server); err != nil {
		fmt.Fprintf(stderr, "relayctl: --server: %v\n", err)
		return exitUsage
	}
	if fs.NArg() == 0 {
		fmt.Fprintln(stderr, "relayctl: missing command")
		usage(stderr, fs)
		return exitUsage
	}
	name := fs.Arg(0)
	for _, c := range commands() {
		if c.name == name {
			g := globals{server: *server, getenv: getenv, stdout: stdout, stderr: stderr}
			return c.run(g, fs.Args()[1:])
		}
	}
	fmt.Fprintf(stderr, "relayctl: unknown command %q (run 'relayctl --help')\n", name)
	return exitUsage
}

func serverDefault(getenv func(string) string) string {
	if s := getenv(envServer); s != "" {
		return s
	}
	return defaultServer
}

func checkServer(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return err
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%q is not an http:// or https:// URL", s)
	}
	return nil
}

// parseFailure reports a flag parsing error. --help prints the usage on
// stdout and succeeds; any other error is a usage error.
func parseFailure(err error, prog string, stdout, stderr io.Writer, usage func(io.Writer)) int {
	if errors.Is(err, flag.ErrHelp) {
		usage(stdout)
		return exitOK
	}
	fmt.Fprintf(stderr, "%s: %v (run '%s --help')\n", prog, err, prog)
	return exitUsage
}

func usage(w io.Writer, fs *flag.FlagSet) {
	fmt.Fprint(w, "Usage: relayctl [--server URL] COMMAND [flags]\n\nCommands:\n")
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	for _, c := range commands() {
		fmt.Fprintf(tw, "  %s\t%s\n", c.name, c.summary)
	}
	tw.Flush()
	fmt.Fprint(w, "\nGlobal flags:\n")
	printFlags(w, fs)
	fmt.Fprint(w, "\nRun 'relayctl COMMAND --help' for the flags of a command.\n")
}

// printFlags writes fs's flags with their defaults.
func printFlags(w io.Writer, fs *flag.FlagSet) {
	fs.SetOutput(w)
	fs.PrintDefaults()
	fs.SetOutput(io.Discard)
}
