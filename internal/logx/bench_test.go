package logx

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"
)

// BenchmarkHandle measures one record through the limiter to a handler
// that discards it: the cost the limiter adds to a log call.
func BenchmarkHandle(b *testing.B) {
	bench := func(b *testing.B, opts Options, log func(l *slog.Logger, i int)) {
		l := slog.New(NewHandler(nopHandler{}, opts)).With("component", "bench")
		b.ReportAllocs()
		b.ResetTimer()
		for i := range b.N {
			log(l, i)
		}
	}
	// The base handler is enabled but does nothing (slog.DiscardHandler is
	// not enabled: Handle would never run), so that slog's own
	// record building is measured too, as in lvsd.
	b.Run("baseline-no-limiter", func(b *testing.B) {
		l := slog.New(nopHandler{}).With("component", "bench")
		b.ReportAllocs()
		for range b.N {
			l.Info("real server down", "rs", "198.18.0.11:80", "reason", "refused")
		}
	})
	b.Run("suppressed", func(b *testing.B) {
		bench(b, Options{Interval: time.Hour}, func(l *slog.Logger, _ int) {
			l.Info("real server down", "rs", "198.18.0.11:80", "reason", "refused")
		})
	})
	b.Run("passed", func(b *testing.B) {
		bench(b, Options{Burst: 1 << 30, Interval: time.Hour}, func(l *slog.Logger, _ int) {
			l.Info("real server down", "rs", "198.18.0.11:80", "reason", "refused")
		})
	})
	b.Run("new-event-each-time", func(b *testing.B) {
		// Every record a new event in a full table: eviction each time.
		bench(b, Options{Interval: time.Hour, MaxKeys: 1024}, func(l *slog.Logger, i int) {
			l.Info("real server down", "queue", i, "reason", "refused")
		})
	})
	// For scale: what a record costs lvsd without the limiter (text to a
	// writer that discards; a real write to stderr adds a syscall).
	b.Run("text-handler-no-limiter", func(b *testing.B) {
		l := slog.New(slog.NewTextHandler(io.Discard, nil)).With("component", "bench")
		b.ReportAllocs()
		for range b.N {
			l.Info("real server down", "rs", "198.18.0.11:80", "reason", "refused")
		}
	})
	b.Run("parallel-suppressed", func(b *testing.B) {
		l := slog.New(NewHandler(nopHandler{}, Options{Interval: time.Hour})).With("component", "bench")
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				l.Info("real server down", "rs", "198.18.0.11:80", "reason", "refused")
			}
		})
	})
}

// nopHandler is enabled at every level and drops everything.
type nopHandler struct{}

func (nopHandler) Enabled(context.Context, slog.Level) bool  { return true }
func (nopHandler) Handle(context.Context, slog.Record) error { return nil }
func (h nopHandler) WithAttrs([]slog.Attr) slog.Handler      { return h }
func (h nopHandler) WithGroup(string) slog.Handler           { return h }
