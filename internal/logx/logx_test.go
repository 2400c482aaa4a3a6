package logx

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"golvs/internal/clock"
)

// fakeTimers is Options.AfterFunc on a manual clock: Advance runs the
// timers that came due, outside its lock, as time.AfterFunc would on a
// goroutine of its own.
type fakeTimers struct {
	clk *clock.Manual
	mu  sync.Mutex
	ts  []*fakeTimer
}

type fakeTimer struct {
	ft      *fakeTimers
	at      int64
	f       func()
	stopped bool
	fired   bool
}

func (ft *fakeTimers) AfterFunc(d time.Duration, f func()) Timer {
	ft.mu.Lock()
	defer ft.mu.Unlock()
	t := &fakeTimer{ft: ft, at: ft.clk.Nanotime() + int64(d), f: f}
	ft.ts = append(ft.ts, t)
	return t
}

func (t *fakeTimer) Stop() bool {
	t.ft.mu.Lock()
	defer t.ft.mu.Unlock()
	was := !t.stopped && !t.fired
	t.stopped = true
	return was
}

// armed is the number of timers neither fired nor stopped.
func (ft *fakeTimers) armed() int {
	ft.mu.Lock()
	defer ft.mu.Unlock()
	n := 0
	for _, t := range ft.ts {
		if !t.stopped && !t.fired {
			n++
		}
	}
	return n
}

// Advance moves the clock by d and runs the timers due, in order of
// their deadlines (a timer armed by a firing one runs too if due).
func (ft *fakeTimers) Advance(d time.Duration) {
	ft.clk.Advance(d)
	for {
		ft.mu.Lock()
		var due *fakeTimer
		for _, t := range ft.ts {
			if !t.stopped && !t.fired && t.at <= ft.clk.Nanotime() && (due == nil || t.at < due.at) {
				due = t
			}
		}
		if due != nil {
			due.fired = true
		}
		ft.mu.Unlock()
		if due == nil {
			return
		}
		due.f()
	}
}

// bed is a logger whose records go, rate-limited, to a JSON handler
// writing into out.
type bed struct {
	log    *slog.Logger
	h      *Handler
	timers *fakeTimers
	mu     sync.Mutex
	out    bytes.Buffer
}

// Write implements io.Writer for the JSON handler (which writes each
// record in one call).
func (b *bed) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.out.Write(p)
}

func newBed(t *testing.T, opts Options) *bed {
	t.Helper()
	b := &bed{timers: &fakeTimers{clk: clock.NewManual(time.Hour)}}
	opts.Clock = b.timers.clk
	opts.AfterFunc = b.timers.AfterFunc
	base := slog.NewJSONHandler(b, &slog.HandlerOptions{
		Level: slog.LevelDebug,
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey && len(groups) == 0 {
				return slog.Attr{}
			}
			return a
		},
	})
	b.h = newHandler(base, opts)
	b.log = slog.New(b.h)
	return b
}

// lines returns the records written since the last call, as JSON
// objects with their numbers as float64.
func (b *bed) lines(t *testing.T) []map[string]any {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(b.out.String()), "\n") {
		if l == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("bad JSON line %q: %v", l, err)
		}
		out = append(out, m)
	}
	b.out.Reset()
	return out
}

// msgs is each line's message, with its suppressed count when it has one.
func msgs(lines []map[string]any) []string {
	var out []string
	for _, l := range lines {
		s := fmt.Sprint(l["msg"])
		if n, ok := l[SuppressedAttr]; ok {
			s += fmt.Sprintf(" [suppressed %v]", n)
		}
		out = append(out, s)
	}
	return out
}

func TestBurstThenSummaryAtWindowEnd(t *testing.T) {
	b := newBed(t, Options{})
	log := b.log.With("component", "check", "rs", "198.18.0.11:80")
	for i := range 12 {
		log.Warn("real server down", "reason", fmt.Sprintf("connection refused #%d", i))
	}
	got := b.lines(t)
	if len(got) != DefaultBurst {
		t.Fatalf("%d records passed of 12, want the burst of %d:\n%v", len(got), DefaultBurst, msgs(got))
	}
	if got[4]["reason"] != "connection refused #4" {
		t.Errorf("5th record: %v", got[4])
	}
	// Nothing more until the window ends, then the summary at once,
	// without another record of the event.
	b.timers.Advance(DefaultInterval - time.Millisecond)
	if got := b.lines(t); len(got) != 0 {
		t.Fatalf("before the window's end: %v", got)
	}
	b.timers.Advance(time.Millisecond)
	got = b.lines(t)
	want := []map[string]any{{
		"level": "WARN", "msg": "real server down", "component": "check", "rs": "198.18.0.11:80",
		"reason": "connection refused #11", SuppressedAttr: 7.0, WindowAttr: 10.0,
	}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("summary (-want +got):\n%s", diff)
	}
	if n := b.timers.armed(); n != 0 {
		t.Errorf("%d timers armed with nothing pending", n)
	}
	// A new window: the burst again.
	for range 6 {
		log.Warn("real server down", "reason", "connection refused")
	}
	if got := b.lines(t); len(got) != DefaultBurst {
		t.Fatalf("second window: %d passed, want %d", len(got), DefaultBurst)
	}
}

// The summary of a window that ended comes before the event's next
// record even when the timer has not run yet (it runs on another
// goroutine in production).
func TestSummaryBeforeNextWindowsRecord(t *testing.T) {
	b := newBed(t, Options{Burst: 1, Interval: time.Second})
	b.log.Info("tick")
	b.log.Info("tick")
	b.log.Info("tick")
	b.timers.clk.Advance(time.Second) // the clock only: no timer runs
	b.log.Info("tick")
	if diff := cmp.Diff([]string{"tick", "tick [suppressed 2]", "tick"}, msgs(b.lines(t))); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestEventIdentity(t *testing.T) {
	tests := []struct {
		name string
		log  func(l *slog.Logger, i int)
		want int // records passed of 20, burst 2
	}{
		{"same event, details vary", func(l *slog.Logger, i int) {
			l.With("component", "vsmgr").Info("IPVS operation failed", "vs", "web", "err", fmt.Sprint("errno ", i))
		}, 2},
		{"one event per real server (record attr)", func(l *slog.Logger, i int) {
			l.Info("real server down", "component", "vsmgr", "rs", fmt.Sprintf("198.18.0.%d:80", i))
		}, 20},
		{"one event per real server (With attr)", func(l *slog.Logger, i int) {
			l.With("rs", fmt.Sprintf("198.18.0.%d:80", i)).Info("checker down")
		}, 20},
		{"components differ", func(l *slog.Logger, i int) {
			l.With("component", fmt.Sprint("c", i%2)).Info("x")
		}, 4},
		{"levels differ", func(l *slog.Logger, i int) {
			l.Log(context.Background(), slog.Level(4*(i%2)), "x")
		}, 4},
		{"messages differ", func(l *slog.Logger, i int) {
			l.Info(fmt.Sprint("m", i%3))
		}, 6},
		{"ratelimit_key", func(l *slog.Logger, i int) {
			l.Info("x", KeyAttr, i%5)
		}, 10},
		{"ratelimit_key in With", func(l *slog.Logger, i int) {
			l.With(KeyAttr, fmt.Sprint(i%5)).Info("x")
		}, 10},
		{"typed values", func(l *slog.Logger, i int) {
			l.Info("x", "queue", i%2, "vs", i%2 == 0, "rs", time.Duration(i%2), "dest", float64(i%2))
		}, 4},
		{"attrs in a group are not keys", func(l *slog.Logger, i int) {
			l.WithGroup("g").With("rs", fmt.Sprint(i)).Info("x", "vs", i)
		}, 2},
		{"key attrs before the group still count", func(l *slog.Logger, i int) {
			l.With("rs", fmt.Sprint(i%3)).WithGroup("g").Info("x")
		}, 6},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := newBed(t, Options{Burst: 2})
			for i := range 20 {
				tc.log(b.log, i)
			}
			if got := b.lines(t); len(got) != tc.want {
				t.Errorf("%d of 20 passed, want %d: %v", len(got), tc.want, msgs(got))
			}
		})
	}
}

func TestCustomKeyAttrs(t *testing.T) {
	b := newBed(t, Options{Burst: 1, KeyAttrs: []string{"peer"}})
	for i := range 4 {
		b.log.Info("x", "peer", i%2, "rs", i) // rs is not a key here
	}
	if got := b.lines(t); len(got) != 2 {
		t.Errorf("%d passed, want 2 (one per peer): %v", len(got), got)
	}
	b = newBed(t, Options{Burst: 1, KeyAttrs: []string{}})
	b.log.Info("x", "component", "a")
	b.log.Info("x", "component", "b")
	if got := b.lines(t); len(got) != 1 {
		t.Errorf("empty KeyAttrs: %d passed, want 1: %v", len(got), got)
	}
}

// ratelimit_key is the limiter's and is not written.
func TestKeyAttrNotWritten(t *testing.T) {
	b := newBed(t, Options{Burst: 1})
	b.log.Info("x", "a", 1, KeyAttr, "k1", "b", 2)
	b.log.With(KeyAttr, "k2", "c", 3).Info("y")
	b.log.With(KeyAttr, "k2", "c", 3).Info("y", KeyAttr, "k3")
	b.log.With(KeyAttr, "k2").Info("y", KeyAttr, "k3") // suppressed
	b.timers.Advance(DefaultInterval)
	want := []map[string]any{
		{"level": "INFO", "msg": "x", "a": 1.0, "b": 2.0},
		{"level": "INFO", "msg": "y", "c": 3.0},
		{"level": "INFO", "msg": "y", "c": 3.0},
		{"level": "INFO", "msg": "y", SuppressedAttr: 1.0, WindowAttr: 10.0},
	}
	if diff := cmp.Diff(want, b.lines(t)); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

// The summary goes through the handler of the last suppressed record,
// with its With attributes and groups.
func TestSummaryKeepsHandlerAttrs(t *testing.T) {
	b := newBed(t, Options{Burst: 1})
	b.log.With("component", "api").WithGroup("req").Info("slow", "path", "/v1/services")
	b.log.With("component", "api").WithGroup("req").Info("slow", "path", "/v1/info")
	b.timers.Advance(DefaultInterval)
	want := []map[string]any{
		{"level": "INFO", "msg": "slow", "component": "api", "req": map[string]any{"path": "/v1/services"}},
		{"level": "INFO", "msg": "slow", "component": "api", "req": map[string]any{"path": "/v1/info", SuppressedAttr: 1.0, WindowAttr: 10.0}},
	}
	if diff := cmp.Diff(want, b.lines(t)); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

// One timer serves every pending summary, each at its own window's end.
func TestTimerRearms(t *testing.T) {
	b := newBed(t, Options{Burst: 1, Interval: 10 * time.Second})
	b.log.Info("a")
	b.log.Info("a")
	b.timers.Advance(3 * time.Second)
	b.log.Info("b")
	b.log.Info("b")
	b.log.Info("c") // passes; its window has no summary
	if diff := cmp.Diff([]string{"a", "b", "c"}, msgs(b.lines(t))); diff != "" {
		t.Fatalf("(-want +got):\n%s", diff)
	}
	if n := b.timers.armed(); n != 1 {
		t.Fatalf("%d timers armed, want 1", n)
	}
	b.timers.Advance(7 * time.Second)
	if diff := cmp.Diff([]string{"a [suppressed 1]"}, msgs(b.lines(t))); diff != "" {
		t.Fatalf("at 10 s (-want +got):\n%s", diff)
	}
	b.timers.Advance(3 * time.Second)
	if diff := cmp.Diff([]string{"b [suppressed 1]"}, msgs(b.lines(t))); diff != "" {
		t.Fatalf("at 13 s (-want +got):\n%s", diff)
	}
	if n := b.timers.armed(); n != 0 {
		t.Errorf("%d timers armed with nothing pending", n)
	}
	if n := len(b.h.l.events); n != 0 {
		t.Errorf("%d events tracked after every window ended", n)
	}
}

func TestBoundedTable(t *testing.T) {
	b := newBed(t, Options{Burst: 1, MaxKeys: 3})
	for i := range 3 {
		b.log.Info("x", KeyAttr, i)
		b.log.Info("x", KeyAttr, i)
	}
	b.timers.Advance(2 * time.Second)
	b.log.Info("x", KeyAttr, 3) // evicts event 0, summarised over 2 s
	got := b.lines(t)
	want := []string{"x", "x", "x", "x [suppressed 1]", "x"}
	if diff := cmp.Diff(want, msgs(got)); diff != "" {
		t.Fatalf("(-want +got):\n%s", diff)
	}
	if got[3][WindowAttr] != 2.0 {
		t.Errorf("evicted event's window_s = %v, want 2", got[3][WindowAttr])
	}
	b.h.l.mu.Lock()
	n := len(b.h.l.events)
	b.h.l.mu.Unlock()
	if n != 3 {
		t.Errorf("%d events tracked, want 3 (MaxKeys)", n)
	}
	// Many distinct events never grow the table past MaxKeys.
	for i := range 1000 {
		b.log.Info("flood", KeyAttr, i)
	}
	if n := len(b.h.l.events); n > 3 {
		t.Errorf("%d events tracked after a flood, want at most 3", n)
	}
}

func TestClose(t *testing.T) {
	b := newBed(t, Options{Burst: 1})
	l := b.log.With("component", "x")
	for range 4 {
		l.Error("boom")
	}
	b.timers.Advance(4 * time.Second)
	if err := l.Handler().(*Handler).Close(); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"boom", "boom [suppressed 3]"}, msgs(b.lines(t))); diff != "" {
		t.Fatalf("(-want +got):\n%s", diff)
	}
	if n := b.timers.armed(); n != 0 {
		t.Errorf("Close left %d timers armed", n)
	}
	for range 3 {
		l.Error("boom")
	}
	if got := b.lines(t); len(got) != 3 {
		t.Errorf("after Close: %d of 3 passed, want all", len(got))
	}
	_ = b.h.Close() // twice is fine
}

func TestOptionsDefaults(t *testing.T) {
	h := NewHandler(slog.DiscardHandler, Options{}).(*Handler)
	l := h.l
	if l.burst != 5 || l.interval != int64(10*time.Second) || l.maxKeys != 4096 || !slices.Equal(l.keyAttrs, DefaultKeyAttrs()) {
		t.Errorf("defaults: burst %d interval %v maxKeys %d keys %v", l.burst, time.Duration(l.interval), l.maxKeys, l.keyAttrs)
	}
	if !slices.Contains(DefaultKeyAttrs(), "component") || !slices.Contains(DefaultKeyAttrs(), KeyAttr) {
		t.Errorf("DefaultKeyAttrs() = %v", DefaultKeyAttrs())
	}
	// Negative burst: only summaries.
	b := newBed(t, Options{Burst: -1})
	b.log.Info("x")
	b.log.Info("x")
	b.timers.Advance(DefaultInterval)
	if diff := cmp.Diff([]string{"x [suppressed 2]"}, msgs(b.lines(t))); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

// Enabled is the base handler's: a record below its level is never
// counted.
func TestEnabled(t *testing.T) {
	var buf bytes.Buffer
	h := NewHandler(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelWarn}), Options{Burst: 1})
	log := slog.New(h)
	log.Info("x")
	log.Warn("x")
	if n := strings.Count(buf.String(), "\n"); n != 1 {
		t.Errorf("%d lines, want 1:\n%s", n, &buf)
	}
	if h.Enabled(context.Background(), slog.LevelInfo) {
		t.Error("Enabled(Info) with a Warn base")
	}
}

// Every record is either written or counted in exactly one summary, for
// random sequences of events and time steps (the model: a per-event
// count of records handed in).
func TestAccountingProperty(t *testing.T) {
	for seed := range uint64(20) {
		rng := rand.New(rand.NewPCG(seed, 1))
		b := newBed(t, Options{Burst: 1 + rng.IntN(4), Interval: time.Duration(1+rng.IntN(5)) * time.Second, MaxKeys: 1 + rng.IntN(6)})
		sent := map[string]int{}
		for range 500 {
			switch rng.IntN(10) {
			case 0:
				b.timers.Advance(time.Duration(rng.IntN(3000)) * time.Millisecond)
			default:
				k := fmt.Sprint("e", rng.IntN(8))
				sent[k]++
				b.log.Info("x", "vs", k)
			}
		}
		_ = b.h.Close()
		got := map[string]int{}
		for _, l := range b.lines(t) {
			n := 1
			if s, ok := l[SuppressedAttr].(float64); ok {
				n = int(s)
			}
			got[l["vs"].(string)] += n
		}
		if diff := cmp.Diff(sent, got); diff != "" {
			t.Fatalf("seed %d: records handed in vs written+suppressed (-want +got):\n%s", seed, diff)
		}
	}
}

// Concurrent loggers of shared and distinct events, with the real clock
// and timer: every record is accounted for, and the race detector sees
// no race.
func TestConcurrent(t *testing.T) {
	var (
		mu    sync.Mutex
		total = map[string]int{}
	)
	base := slog.NewJSONHandler(writerFunc(func(p []byte) (int, error) {
		var m map[string]any
		if err := json.Unmarshal(p, &m); err != nil {
			t.Errorf("bad line %q", p)
		}
		n := 1
		if s, ok := m[SuppressedAttr].(float64); ok {
			n = int(s)
		}
		mu.Lock()
		total[fmt.Sprint(m["rs"])] += n
		mu.Unlock()
		return len(p), nil
	}), nil)
	h := NewHandler(base, Options{Interval: 5 * time.Millisecond, MaxKeys: 8})
	const goroutines, each = 8, 2000
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			l := slog.New(h).With("component", "t")
			for i := range each {
				l.Info("event", "rs", (g+i)%16, "i", i)
				if i%500 == 0 {
					runtime.Gosched()
				}
			}
		})
	}
	wg.Wait()
	_ = h.(*Handler).Close()
	sum := 0
	mu.Lock()
	for _, n := range total {
		sum += n
	}
	mu.Unlock()
	if sum != goroutines*each {
		t.Errorf("written+suppressed = %d, want %d", sum, goroutines*each)
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// The real timer: a summary comes on its own after the window.
func TestRealTimer(t *testing.T) {
	var (
		mu  sync.Mutex
		buf bytes.Buffer
	)
	h := NewHandler(slog.NewTextHandler(writerFunc(func(p []byte) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		return buf.Write(p)
	}), nil), Options{Burst: 1, Interval: 20 * time.Millisecond})
	defer h.(*Handler).Close()
	log := slog.New(h)
	log.Info("x")
	log.Info("x")
	deadline := time.Now().Add(5 * time.Second)
	for {
		mu.Lock()
		s := buf.String()
		mu.Unlock()
		if strings.Contains(s, "suppressed=1") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no summary after 5 s:\n%s", s)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
