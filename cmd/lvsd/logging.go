package main

import (
	"io"
	"log/slog"

	"golvs/internal/logx"
)

// newLogger returns lvsd's logger: one record per line on w, as text
// (logfmt, slog's TextHandler) or JSON (format "json"; any other value
// is text: parseDirector has checked it), with repeating events
// rate-limited by logx (an event is its level, message and identity
// attributes such as component, vs, rs; at most logx.DefaultBurst of
// each per logx.DefaultInterval, then one record with "suppressed": n
// when the window ends).
func newLogger(w io.Writer, format string) *slog.Logger {
	var h slog.Handler
	if format == "json" {
		h = slog.NewJSONHandler(w, nil)
	} else {
		h = slog.NewTextHandler(w, nil)
	}
	return slog.New(logx.NewHandler(h, logx.Options{}))
}

// closeLogger writes the summaries still pending in the rate limiter of
// a logger from newLogger (or one derived from it with With) and stops
// its timer: the last thing lvsd does before it exits. Other loggers are
// left alone.
func closeLogger(l *slog.Logger) {
	if c, ok := l.Handler().(interface{ Close() error }); ok {
		_ = c.Close()
	}
}
