package cluster

import (
	"bytes"
	"context"
	"fmt"
	"log"
	"log/slog"
	"strings"
	"sync"
	"time"
)

// RedisLogger routes go-redis's own log lines (pool dial failures and the like) through slog
// and rate-limits repeats: the first line of each message pattern (go-redis's format string)
// is logged at once; repeats within Every are counted, and the next occurrence after that logs
// one line with the count. While Redis is down go-redis logs a failed dial ~20 times a second;
// this turns that into one line per pattern per Every.
//
// go-redis's logger is process-global: install one with redis.SetLogger from main only.
type RedisLogger struct {
	log   *slog.Logger
	every time.Duration
	now   func() time.Time

	mu       sync.Mutex // guards patterns
	patterns map[string]*repeat
}

// repeat is one message pattern's state.
type repeat struct {
	logged     time.Time // when a line was last written
	suppressed int       // occurrences since then not logged
}

// maxLogPatterns bounds the patterns remembered; others share one entry.
const maxLogPatterns = 64

// NewRedisLogger returns a logger writing to log, with at most one line per pattern per every
// (10 s if every <= 0).
func NewRedisLogger(log *slog.Logger, every time.Duration) *RedisLogger {
	if every <= 0 {
		every = 10 * time.Second
	}
	return &RedisLogger{log: log, every: every, now: time.Now, patterns: map[string]*repeat{}}
}

// Printf implements go-redis's internal.Logging.
func (l *RedisLogger) Printf(ctx context.Context, format string, v ...any) {
	now := l.now()
	l.mu.Lock()
	key := format
	r := l.patterns[key]
	if r == nil && len(l.patterns) >= maxLogPatterns {
		key = ""
		r = l.patterns[key]
	}
	if r == nil {
		r = &repeat{}
		l.patterns[key] = r
	}
	if !r.logged.IsZero() && now.Sub(r.logged) < l.every {
		r.suppressed++
		l.mu.Unlock()
		return
	}
	suppressed := r.suppressed
	r.logged, r.suppressed = now, 0
	l.mu.Unlock()

	msg := strings.TrimPrefix(fmt.Sprintf(format, v...), "redis: ")
	if suppressed > 0 {
		l.log.Log(ctx, slog.LevelWarn, msg, "repeated", suppressed, "within", l.every.String())
		return
	}
	l.log.Log(ctx, slog.LevelWarn, msg)
}

// NewLibLogger returns a *log.Logger for libraries that log through the standard logger with a
// level prefix, such as Serf and memberlist ("[WARN] memberlist: ..."): each line becomes an
// slog record at the level the prefix names ([ERR] error, [WARN] warning, [INFO] info,
// [DEBUG]/[TRACE] debug; no prefix: info), with the prefix removed.
func NewLibLogger(l *slog.Logger) *log.Logger {
	return log.New(libWriter{l}, "", 0)
}

type libWriter struct{ log *slog.Logger }

var libLevels = []struct {
	prefix string
	level  slog.Level
}{
	{"[ERR]", slog.LevelError}, {"[ERROR]", slog.LevelError}, {"[WARN]", slog.LevelWarn},
	{"[INFO]", slog.LevelInfo}, {"[DEBUG]", slog.LevelDebug}, {"[TRACE]", slog.LevelDebug},
}

func (w libWriter) Write(p []byte) (int, error) {
	line := bytes.TrimSpace(p)
	level := slog.LevelInfo
	for _, l := range libLevels {
		if bytes.HasPrefix(line, []byte(l.prefix)) {
			level = l.level
			line = bytes.TrimSpace(line[len(l.prefix):])
			break
		}
	}
	w.log.Log(context.Background(), level, string(line))
	return len(p), nil
}
