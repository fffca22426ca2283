package rtc

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
)

// A peer that makes pion complain for every packet (oversized datagrams: pion's mux logs an
// error per read) must not flood the node's log: the first complaint is logged, its repeats
// are held back, per scope and message.
func TestPionErrorsAreRateLimited(t *testing.T) {
	var buf bytes.Buffer
	f := newLoggerFactory(slog.New(slog.NewTextHandler(&buf, nil)))
	mux, ice := f.NewLogger("mux"), f.NewLogger("ice")
	for range 500 {
		mux.Errorf("mux: failed to read from packetio.Buffer %s", "short buffer")
		ice.Warnf("routine %d", 1) // debug level: not shown at info
	}
	ice.Error("another complaint")
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("%d lines, want 2 (the first complaint of each kind):\n%s", len(lines), buf.String())
	}
	if !strings.Contains(lines[0], "level=WARN") || !strings.Contains(lines[0], "short buffer") || !strings.Contains(lines[0], "pion=mux") {
		t.Errorf("first line: %s", lines[0])
	}
	if !strings.Contains(lines[1], "another complaint") {
		t.Errorf("second line: %s", lines[1])
	}
}

type countingStringer struct{ n *int }

func (c countingStringer) String() string { *c.n++; return "pair" }

// pion's trace and debug messages on its hot paths are not formatted when their level is off
// (formatting them cost a busy node ~3% of its CPU), and are when it is on.
func TestPionMessagesAreFormattedOnlyWhenShown(t *testing.T) {
	var buf bytes.Buffer
	calls := 0
	quiet := newLoggerFactory(slog.New(slog.NewTextHandler(&buf, nil))).NewLogger("ice")
	quiet.Tracef("ping %s", countingStringer{&calls})
	quiet.Debugf("ping %s", countingStringer{&calls})
	if calls != 0 || buf.Len() != 0 {
		t.Fatalf("formatted %d times at info level, logged %q", calls, buf.String())
	}
	loud := newLoggerFactory(slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: levelTrace}))).NewLogger("ice")
	loud.Tracef("ping %s", countingStringer{&calls})
	if calls != 1 || !strings.Contains(buf.String(), "ping pair") {
		t.Fatalf("formatted %d times at trace level, logged %q", calls, buf.String())
	}
}
