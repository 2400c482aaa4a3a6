package logx

import (
	"context"
	"hash/maphash"
	"log/slog"
	"math"
	"math/bits"
	"slices"
	"sync"
	"time"

	"golvs/internal/clock"
)

// Defaults of Options.
const (
	// DefaultBurst is how many records of one event pass per window:
	// enough for a real server that flaps twice (down, up, down, up) and
	// changes once more to be seen record by record; a sixth occurrence
	// within 10 s is a loop, not news.
	DefaultBurst = 5

	// DefaultInterval is the window. It cuts a loop that repeats every
	// second (VRRP's default advert_int, a checker with delay_loop 1, a
	// script that fails at once) to 5 records and a summary, so one
	// runaway event writes at most 6 lines per 10 s: far below journald's
	// default limit per service (RateLimitBurst=10000 per
	// RateLimitIntervalSec=30s), past which journald drops every message
	// of the service, the meaningful ones too. And it is short enough for
	// the count to follow the flood while someone watches the log.
	DefaultInterval = 10 * time.Second

	// DefaultMaxKeys bounds the events tracked at once. GoLVS's event
	// identities come from its configuration (services, real servers,
	// checkers, VRRP instances), so 4096 covers a large director while
	// bounding the table to about 1.5 MB (an event holds one slog.Record,
	// some 300 bytes with its links).
	DefaultMaxKeys = 4096
)

// KeyAttr is the attribute a caller sets to give an event an identity of
// its own (logger.Warn("msg", "ratelimit_key", id)). It is a key
// attribute by default and is never written to the output.
const KeyAttr = "ratelimit_key"

// Attributes of the summary record.
const (
	SuppressedAttr = "suppressed" // records dropped in the window
	WindowAttr     = "window_s"   // the window, in seconds
)

// DefaultKeyAttrs returns the key attributes used when Options.KeyAttrs
// is nil: what GoLVS's events are about (as of 2026-11-22, the
// attributes lvsd's components name things with), never their details.
func DefaultKeyAttrs() []string { return slices.Clone(defaultKeyAttrs) }

var defaultKeyAttrs = []string{
	"component",   // lvsd, keepalived, vsmgr, check, dataplane, http, api, vrrp...
	KeyAttr,       // the caller's own identity
	"vs",          // vsmgr: the virtual server's name
	"rs",          // check, vsmgr: the real server
	"real_server", // lvsd's keepalived runtime
	"service",     // vsmgr: the IPVS service
	"dest",        // vsmgr: the real server of an IPVS operation
	"checker",     // check: the checker's kind
	"unit",        // vrrpd: the VRRP instance or sync group
	"script",      // vrrpd, vsmgr: the script
	"queue",       // the data-path worker
	"file",        // the configuration file
}

// Timer is what Options.AfterFunc returns (*time.Timer is one).
type Timer interface {
	Stop() bool
}

// Options configure NewHandler. The zero value gives the defaults.
type Options struct {
	// Burst is how many records of one event pass per window.
	// 0: DefaultBurst; negative: none (every record is counted and only
	// summaries are written).
	Burst int

	// Interval is the window: it starts with an event's first record
	// and lasts Interval; the event's next record after it starts a new
	// one. 0: DefaultInterval.
	Interval time.Duration

	// KeyAttrs name the attributes that identify an event, with the
	// level and the message. nil: DefaultKeyAttrs; empty (non-nil): the
	// level and message alone.
	KeyAttrs []string

	// MaxKeys bounds the events tracked at once. 0: DefaultMaxKeys.
	MaxKeys int

	// Clock measures the windows. nil: clock.Real.
	Clock clock.Clock

	// AfterFunc arms the summary timer: f must run once after d (from
	// any goroutine) unless stopped. nil: time.AfterFunc. Tests pass a
	// fake that runs f when they advance their clock.
	AfterFunc func(d time.Duration, f func()) Timer
}

// Handler is the rate-limiting slog.Handler (see the package doc). Its
// methods are safe for concurrent use.
type Handler struct {
	l    *limiter     // shared by every handler derived from one NewHandler
	base slog.Handler // the wrapped handler, with this handler's attrs and groups
	// keys are the key attributes of WithAttrs (before any WithGroup),
	// in order. Immutable.
	keys []slog.Attr
	// grouped is set once WithGroup opened a group: later attributes are
	// qualified by it and are not keys.
	grouped bool
}

var _ slog.Handler = (*Handler)(nil)

// NewHandler returns base wrapped by a rate limiter configured by opts.
// Its concrete type is *Handler (Close writes the pending summaries).
func NewHandler(base slog.Handler, opts Options) slog.Handler {
	return newHandler(base, opts)
}

func newHandler(base slog.Handler, opts Options) *Handler {
	l := &limiter{
		burst:     opts.Burst,
		interval:  int64(opts.Interval),
		keyAttrs:  opts.KeyAttrs,
		maxKeys:   opts.MaxKeys,
		clock:     opts.Clock,
		afterFunc: opts.AfterFunc,
		seed:      maphash.MakeSeed(),
		events:    map[uint64]*event{},
	}
	switch {
	case l.burst == 0:
		l.burst = DefaultBurst
	case l.burst < 0:
		l.burst = 0
	}
	if l.interval <= 0 {
		l.interval = int64(DefaultInterval)
	}
	if l.keyAttrs == nil {
		l.keyAttrs = defaultKeyAttrs
	}
	l.keyAttrs = slices.Clone(l.keyAttrs)
	for _, a := range l.keyAttrs {
		if len(a) < 64 {
			l.keyLens |= 1 << len(a)
		}
	}
	if l.maxKeys <= 0 {
		l.maxKeys = DefaultMaxKeys
	}
	if l.clock == nil {
		l.clock = clock.Real{}
	}
	if l.afterFunc == nil {
		l.afterFunc = func(d time.Duration, f func()) Timer { return time.AfterFunc(d, f) }
	}
	return &Handler{l: l, base: base}
}

// Enabled implements slog.Handler: the base handler decides.
func (h *Handler) Enabled(ctx context.Context, level slog.Level) bool {
	return h.base.Enabled(ctx, level)
}

// WithAttrs implements slog.Handler. The new handler shares h's limiter;
// KeyAttr is dropped from attrs.
func (h *Handler) WithAttrs(attrs []slog.Attr) slog.Handler {
	if len(attrs) == 0 {
		return h
	}
	n := &Handler{l: h.l, base: h.base, keys: h.keys, grouped: h.grouped}
	out := attrs
	if i := slices.IndexFunc(attrs, func(a slog.Attr) bool { return a.Key == KeyAttr }); i >= 0 {
		out = slices.DeleteFunc(slices.Clone(attrs), func(a slog.Attr) bool { return a.Key == KeyAttr })
	}
	if !h.grouped {
		for _, a := range attrs {
			if h.l.isKey(a.Key) {
				n.keys = append(slices.Clip(n.keys), a)
			}
		}
	}
	if len(out) > 0 {
		n.base = h.base.WithAttrs(out)
	}
	return n
}

// WithGroup implements slog.Handler. The new handler shares h's limiter.
func (h *Handler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	return &Handler{l: h.l, base: h.base.WithGroup(name), keys: h.keys, grouped: true}
}

// Handle implements slog.Handler: it passes r to the base handler unless
// r's event has used its burst in the current window.
func (h *Handler) Handle(ctx context.Context, r slog.Record) error {
	k := h.hash(&r)
	if !h.l.admit(k, h.base, r) {
		return nil
	}
	if !h.grouped {
		r = stripKeyAttr(r)
	}
	return h.base.Handle(ctx, r)
}

// Close stops the summary timer and writes the pending summaries now
// (with the counts so far). Records handled after Close pass unlimited.
// It is the same for every handler derived from one NewHandler.
func (h *Handler) Close() error {
	h.l.close()
	return nil
}

// hash is the event key of r: the level, the message and the key
// attributes' names and values, each hashed with the seed and mixed in
// order (per-field maphash.String is faster than a streaming
// maphash.Hash for a handful of short strings, and keeps "ab"+"c" apart
// from "a"+"bc").
func (h *Handler) hash(r *slog.Record) uint64 {
	l := h.l
	k := mix(maphash.String(l.seed, r.Message), uint64(int64(r.Level)))
	for _, a := range h.keys {
		k = l.mixAttr(k, l.keyIndex(a.Key), a.Value)
	}
	if !h.grouped && r.NumAttrs() > 0 {
		r.Attrs(func(a slog.Attr) bool {
			if i := l.keyIndex(a.Key); i >= 0 {
				k = l.mixAttr(k, i, a.Value)
			}
			return true
		})
	}
	return k
}

// mix folds x into the hash k (a multiply-rotate step; the constant is
// 2^64 divided by the golden ratio, odd, as in Fibonacci hashing).
func mix(k, x uint64) uint64 {
	return bits.RotateLeft64((k^x)*0x9e3779b97f4a7c15, 29)
}

// mixAttr folds a key attribute into k: its name (by its index in
// keyAttrs), its kind and its value.
func (l *limiter) mixAttr(k uint64, i int, v slog.Value) uint64 {
	if v.Kind() == slog.KindLogValuer {
		v = v.Resolve()
	}
	k = mix(k, uint64(i)<<8|uint64(v.Kind()))
	var x uint64
	switch v.Kind() {
	case slog.KindString:
		x = maphash.String(l.seed, v.String())
	case slog.KindInt64:
		x = uint64(v.Int64())
	case slog.KindUint64:
		x = v.Uint64()
	case slog.KindFloat64:
		x = math.Float64bits(v.Float64())
	case slog.KindBool:
		if v.Bool() {
			x = 1
		}
	case slog.KindDuration:
		x = uint64(v.Duration())
	case slog.KindTime:
		x = uint64(v.Time().UnixNano())
	default: // KindAny (a Stringer such as netip.Addr), KindGroup
		x = maphash.String(l.seed, v.String())
	}
	return mix(k, x)
}

// stripKeyAttr returns r without its KeyAttr attributes (r itself when
// it has none: the common case costs one scan).
func stripKeyAttr(r slog.Record) slog.Record {
	has := false
	r.Attrs(func(a slog.Attr) bool {
		has = a.Key == KeyAttr
		return !has
	})
	if !has {
		return r
	}
	n := slog.NewRecord(r.Time, r.Level, r.Message, r.PC)
	r.Attrs(func(a slog.Attr) bool {
		if a.Key != KeyAttr {
			n.AddAttrs(a)
		}
		return true
	})
	return n
}

// limiter is the state shared by the handlers of one NewHandler.
type limiter struct {
	// Immutable after newHandler.
	burst     int
	interval  int64 // ns
	keyAttrs  []string
	keyLens   uint64 // bit n set: a key name has n bytes (n < 64; longer names are always scanned)
	maxKeys   int
	clock     clock.Clock
	afterFunc func(time.Duration, func()) Timer
	seed      maphash.Seed

	mu sync.Mutex
	// Guarded by mu.
	events     map[uint64]*event
	head, tail *event // every event, by window start: head is the oldest
	pending    int    // events with suppressed > 0
	timer      Timer  // armed while pending > 0 (nil otherwise)
	closed     bool
}

// event is one event's current window.
type event struct {
	key        uint64
	start      int64 // window start (limiter.clock)
	n          int   // records in the window
	suppressed int   // records dropped in the window
	// last is the last suppressed record and base the handler it would
	// have gone to: the summary's attributes and destination.
	last       slog.Record
	base       slog.Handler
	prev, next *event
}

// isKey reports whether an attribute name is a key attribute.
func (l *limiter) isKey(name string) bool { return l.keyIndex(name) >= 0 }

// keyIndex returns the index of an attribute name in keyAttrs, -1 if it
// is not a key attribute.
func (l *limiter) keyIndex(name string) int {
	// Most attributes are not keys: the lengths of the key names reject
	// most of them at once; the rest is a scan of a short list (12
	// names by default).
	if n := len(name); n < 64 && l.keyLens&(1<<n) == 0 {
		return -1
	}
	return slices.Index(l.keyAttrs, name)
}

// admit counts a record of the event with key k and reports whether it
// passes. base and r are kept for the summary when it does not.
func (l *limiter) admit(k uint64, base slog.Handler, r slog.Record) bool {
	now := l.clock.Nanotime()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return true
	}
	l.expire(now)
	e := l.events[k]
	if e == nil {
		if len(l.events) >= l.maxKeys {
			l.drop(l.head, now)
		}
		e = &event{key: k, start: now}
		l.events[k] = e
		l.pushBack(e)
	}
	e.n++
	if e.n <= l.burst {
		return true
	}
	if e.suppressed == 0 {
		l.pending++
	}
	e.suppressed++
	e.last, e.base = r, base
	if l.timer == nil {
		l.arm(now)
	}
	return false
}

// expire drops the events whose window ended by now, writing their
// summaries. Windows end in list order.
func (l *limiter) expire(now int64) {
	for l.head != nil && now-l.head.start >= l.interval {
		l.drop(l.head, now)
	}
}

// drop removes e from the table, writing its summary if it has one.
func (l *limiter) drop(e *event, now int64) {
	if e.suppressed > 0 {
		l.summarise(e, now)
		l.pending--
	}
	delete(l.events, e.key)
	if e.prev != nil {
		e.prev.next = e.next
	} else {
		l.head = e.next
	}
	if e.next != nil {
		e.next.prev = e.prev
	} else {
		l.tail = e.prev
	}
	*e = event{}
}

func (l *limiter) pushBack(e *event) {
	e.prev = l.tail
	if l.tail != nil {
		l.tail.next = e
	} else {
		l.head = e
	}
	l.tail = e
}

// summarise writes e's summary record. Called with mu held.
func (l *limiter) summarise(e *event, now int64) {
	// The window is over at start+interval; an event evicted or closed
	// early is summarised over the time it ran.
	win := min(now-e.start, l.interval)
	s := slog.NewRecord(time.Now(), e.last.Level, e.last.Message, e.last.PC)
	e.last.Attrs(func(a slog.Attr) bool {
		if a.Key != KeyAttr {
			s.AddAttrs(a)
		}
		return true
	})
	s.AddAttrs(slog.Int(SuppressedAttr, e.suppressed), slog.Float64(WindowAttr, time.Duration(win).Seconds()))
	// The base handler's error has nowhere to go: the record that
	// caused the summary is not this one (slog's own Logger drops
	// handler errors too).
	_ = e.base.Handle(context.Background(), s)
}

// arm starts the timer for the end of the oldest window. Called with mu
// held, pending > 0 and no timer armed.
func (l *limiter) arm(now int64) {
	d := time.Duration(l.head.start + l.interval - now)
	l.timer = l.afterFunc(max(d, 0), l.fire)
}

// fire is the timer's function: it writes the summaries of the windows
// that ended and re-arms while summaries are pending.
func (l *limiter) fire() {
	now := l.clock.Nanotime()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return
	}
	l.timer = nil
	l.expire(now)
	if l.pending > 0 {
		l.arm(now)
	}
}

// close stops the timer and writes every pending summary.
func (l *limiter) close() {
	now := l.clock.Nanotime()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return
	}
	l.closed = true
	if l.timer != nil {
		l.timer.Stop()
		l.timer = nil
	}
	for l.head != nil {
		l.drop(l.head, now)
	}
}
