package rtc

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/pion/logging"

	"github.com/cascade-sfu/cascade/pkg/logx"
)

// loggerFactory adapts slog to pion's logging.LoggerFactory. pion logs routine conditions
// (unknown SSRCs during renegotiation, ICE pings before pairs exist) as warnings, so its Info
// and Warn go to slog's debug level and its Error to warn. What reaches warn is rate-limited
// per scope and message: a peer can make pion complain for every packet it sends (oversized
// datagrams: "mux: failed to read from packetio.Buffer short buffer", 50 a second), and that
// must not flood the node's log.
type loggerFactory struct {
	log     *slog.Logger
	repeats *logx.Repeats
}

func newLoggerFactory(log *slog.Logger) loggerFactory {
	return loggerFactory{log: log, repeats: logx.NewRepeats(10*time.Second, nil)}
}

func (f loggerFactory) NewLogger(scope string) logging.LeveledLogger {
	return leveled{log: f.log.With("pion", scope), scope: scope, repeats: f.repeats}
}

type leveled struct {
	log     *slog.Logger
	scope   string
	repeats *logx.Repeats
}

func (l leveled) emit(level slog.Level, msg string) {
	ctx := context.Background()
	if !l.log.Enabled(ctx, level) {
		return
	}
	if level >= slog.LevelWarn && l.repeats != nil {
		ok, suppressed := l.repeats.Allow(l.scope + "\x00" + msg)
		if !ok {
			return
		}
		if suppressed > 0 {
			l.log.Log(ctx, level, msg, "repeated", suppressed, "within", l.repeats.Every().String())
			return
		}
	}
	l.log.Log(ctx, level, msg)
}

// emitf formats only when the level is enabled: pion formats trace messages on its hot paths
// (every STUN check and response names its candidate pair), which cost ~3% of a busy node's
// CPU when formatted and thrown away.
func (l leveled) emitf(level slog.Level, format string, args []any) {
	if l.log.Enabled(context.Background(), level) {
		l.emit(level, fmt.Sprintf(format, args...))
	}
}

const levelTrace = slog.LevelDebug - 4

func (l leveled) Trace(msg string)                  { l.emit(levelTrace, msg) }
func (l leveled) Tracef(format string, args ...any) { l.emitf(levelTrace, format, args) }
func (l leveled) Debug(msg string)                  { l.emit(slog.LevelDebug, msg) }
func (l leveled) Debugf(format string, args ...any) { l.emitf(slog.LevelDebug, format, args) }
func (l leveled) Info(msg string)                   { l.emit(slog.LevelDebug, msg) }
func (l leveled) Infof(format string, args ...any)  { l.emitf(slog.LevelDebug, format, args) }
func (l leveled) Warn(msg string)                   { l.emit(slog.LevelDebug, msg) }
func (l leveled) Warnf(format string, args ...any)  { l.emitf(slog.LevelDebug, format, args) }
func (l leveled) Error(msg string)                  { l.emit(slog.LevelWarn, msg) }
func (l leveled) Errorf(format string, args ...any) { l.emitf(slog.LevelWarn, format, args) }
