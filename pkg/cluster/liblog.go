package cluster

import (
	"bytes"
	"context"
	"fmt"
	"log"
	"log/slog"
	"strings"
	"time"

	"github.com/cascade-sfu/cascade/pkg/logx"
)

// RedisLogger routes go-redis's own log lines (pool dial failures and the like) through slog
// and rate-limits repeats: the first line of each message pattern (go-redis's format string)
// is logged at once; repeats within Every are counted, and the next occurrence after that logs
// one line with the count. While Redis is down go-redis logs a failed dial ~20 times a second;
// this turns that into one line per pattern per Every.
//
// go-redis's logger is process-global: install one with redis.SetLogger from main only.
type RedisLogger struct {
	log     *slog.Logger
	repeats *logx.Repeats
}

// NewRedisLogger returns a logger writing to log, with at most one line per pattern per every
// (10 s if every <= 0).
func NewRedisLogger(log *slog.Logger, every time.Duration) *RedisLogger {
	return newRedisLogger(log, every, time.Now)
}

func newRedisLogger(log *slog.Logger, every time.Duration, now func() time.Time) *RedisLogger {
	return &RedisLogger{log: log, repeats: logx.NewRepeats(every, now)}
}

// Printf implements go-redis's internal.Logging.
func (l *RedisLogger) Printf(ctx context.Context, format string, v ...any) {
	ok, suppressed := l.repeats.Allow(format)
	if !ok {
		return
	}
	msg := strings.TrimPrefix(fmt.Sprintf(format, v...), "redis: ")
	if suppressed > 0 {
		l.log.Log(ctx, slog.LevelWarn, msg, "repeated", suppressed, "within", l.repeats.Every().String())
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
