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
