package rtc

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/pion/logging"
)

// loggerFactory adapts slog to pion's logging.LoggerFactory. pion logs routine conditions
// (unknown SSRCs during renegotiation, ICE pings before pairs exist) as warnings, so its Info
// and Warn go to slog's debug level and its Error to warn.
type loggerFactory struct{ log *slog.Logger }

func (f loggerFactory) NewLogger(scope string) logging.LeveledLogger {
	return leveled{log: f.log.With("pion", scope)}
}

type leveled struct{ log *slog.Logger }

func (l leveled) emit(level slog.Level, msg string) {
	if l.log.Enabled(context.Background(), level) {
		l.log.Log(context.Background(), level, msg)
	}
}

func (l leveled) Trace(msg string)                  { l.emit(slog.LevelDebug-4, msg) }
func (l leveled) Tracef(format string, args ...any) { l.Trace(fmt.Sprintf(format, args...)) }
func (l leveled) Debug(msg string)                  { l.emit(slog.LevelDebug, msg) }
func (l leveled) Debugf(format string, args ...any) { l.Debug(fmt.Sprintf(format, args...)) }
func (l leveled) Info(msg string)                   { l.emit(slog.LevelDebug, msg) }
func (l leveled) Infof(format string, args ...any)  { l.Info(fmt.Sprintf(format, args...)) }
func (l leveled) Warn(msg string)                   { l.emit(slog.LevelDebug, msg) }
func (l leveled) Warnf(format string, args ...any)  { l.Warn(fmt.Sprintf(format, args...)) }
func (l leveled) Error(msg string)                  { l.emit(slog.LevelWarn, msg) }
func (l leveled) Errorf(format string, args ...any) { l.Error(fmt.Sprintf(format, args...)) }
