package cluster

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/cascade-sfu/cascade/pkg/logx"
)

func TestRedisLoggerRateLimitsRepeats(t *testing.T) {
	var buf bytes.Buffer
	now := time.Unix(1000, 0)
	l := newRedisLogger(slog.New(slog.NewTextHandler(&buf, nil)), 10*time.Second, func() time.Time { return now })
	const dial = "redis: connection pool: failed to dial after %d attempts: %v"
	ctx := context.Background()
	// 20 a second for 25 s, as go-redis does while Redis is down, plus another pattern once.
	for i := range 500 {
		l.Printf(ctx, dial, 5, "connection refused")
		if i == 3 {
			l.Printf(ctx, "redis: connection pool: failed to get a usable connection after %d attempts", 3)
		}
		now = now.Add(50 * time.Millisecond)
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	// dial: at 0 s, 10 s (with a count), 20 s (with a count); the other pattern once.
	if len(lines) != 4 {
		t.Fatalf("%d lines, want 4:\n%s", len(lines), buf.String())
	}
	if strings.Contains(buf.String(), "msg=redis:") || strings.Contains(buf.String(), `msg="redis:`) {
		t.Errorf("the redis: prefix is kept:\n%s", buf.String())
	}
	if !strings.Contains(lines[0], "failed to dial after 5 attempts: connection refused") || strings.Contains(lines[0], "repeated") {
		t.Errorf("first line: %s", lines[0])
	}
	if !strings.Contains(lines[2], "repeated=199") || !strings.Contains(lines[3], "repeated=199") {
		t.Errorf("summary lines do not count the 199 lines each held back:\n%s", buf.String())
	}
	for _, line := range lines {
		if !strings.Contains(line, "level=WARN") {
			t.Errorf("not a warning: %s", line)
		}
	}
}

func TestRedisLoggerBoundsPatterns(t *testing.T) {
	var buf bytes.Buffer
	l := NewRedisLogger(slog.New(slog.NewTextHandler(&buf, nil)), time.Minute)
	for i := range 1000 {
		l.Printf(context.Background(), fmt.Sprintf("pattern %d %%d", i), i)
	}
	if n := l.repeats.Len(); n > logx.MaxPatterns+1 {
		t.Fatalf("%d patterns remembered, want at most %d", n, logx.MaxPatterns+1)
	}
	if n := strings.Count(buf.String(), "\n"); n != logx.MaxPatterns+1 {
		t.Fatalf("%d lines, want %d (one per remembered pattern, one for the rest)", n, logx.MaxPatterns+1)
	}
}

func TestLibLoggerLevels(t *testing.T) {
	var buf bytes.Buffer
	l := NewLibLogger(slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})))
	l.Printf("[WARN] memberlist: Was able to connect to hcm over TCP but UDP probes failed")
	l.Printf("[ERR] memberlist: Failed to send ping")
	l.Printf("[INFO] serf: EventMemberJoin: eu 127.0.0.1")
	l.Printf("[DEBUG] memberlist: Stream connection from=127.0.0.1:1")
	l.Printf("no prefix")
	want := []string{
		`level=WARN msg="memberlist: Was able to connect`,
		`level=ERROR msg="memberlist: Failed to send ping"`,
		`level=INFO msg="serf: EventMemberJoin: eu 127.0.0.1"`,
		`level=DEBUG msg="memberlist: Stream connection from=127.0.0.1:1"`,
		`level=INFO msg="no prefix"`,
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != len(want) {
		t.Fatalf("%d lines, want %d:\n%s", len(lines), len(want), buf.String())
	}
	for i, w := range want {
		if !strings.Contains(lines[i], w) {
			t.Errorf("line %d = %s, want %s", i, lines[i], w)
		}
	}
}
