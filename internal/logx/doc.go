// Package logx rate-limits repeating log events: NewHandler wraps a
// slog.Handler so that one event (the same level, message and identity
// attributes) passes at most Burst times per Interval; the rest are
// counted, and when the window ends one record with the count
// ("suppressed": n) stands for them.
//
// The kernel counterpart is lib/ratelimit.c (___ratelimit, behind
// net_ratelimit and printk_ratelimit): a fixed window of interval
// jiffies, burst messages let through, the others "missed", and a
// "callbacks suppressed" line once the window is over. The differences:
// the kernel keeps one state per call site, this package one per event
// (so that a hundred real servers going down are a hundred events, not
// one), and the kernel prints its count at the next call after the
// window, while this package also arms a timer so that the count comes
// when the window ends even if the event never returns. Keepalived has
// no such limiter; style.md §7.4 asks for one (tailscale's
// logger.RateLimitedFn is the other model).
//
// # Events
//
// An event is identified by the record's level, its message, and the
// values of the key attributes (Options.KeyAttrs, DefaultKeyAttrs when
// nil): those added with Logger.With and those of the record, at the top
// level only (attributes inside a group are never keys). The defaults
// name what GoLVS's events are about (the component, the virtual
// server, the real server, the checker, ...), never their details
// ("err", "reason"), which vary from one occurrence to the next and
// would make every occurrence a new event. A caller can give an event
// an identity of its own with the attribute "ratelimit_key" (KeyAttr),
// which is a key by default and is not written to the output.
//
// # The summary
//
// When a window in which records were suppressed ends, one record goes
// to the handler the last suppressed record went to: the event's level
// and message, the last suppressed record's attributes, and
// "suppressed" (how many records were dropped) and "window_s" (the
// window in seconds). The count is exact: every record handed to Handle
// is either passed, or counted in exactly one summary (Close flushes
// what is pending; an event evicted from a full table is summarised
// first).
//
// # Cost and concurrency
//
// A Handler is safe for concurrent use; the handlers that WithAttrs and
// WithGroup return share their parent's limiter. Handle hashes the key
// (hash/maphash, no allocation for string and numeric values) and takes
// one mutex for a map lookup; a record that passes then goes to the base
// handler outside the lock. Summaries are written under the lock, so
// that a summary always precedes the first record of the event's next
// window (lock order: the limiter's mutex, then whatever the base
// handler takes; a base handler must not log through this one). The
// table of events is bounded by Options.MaxKeys: windows that ended are
// dropped as Handle and the timer pass, and when the table is full the
// oldest window is summarised and dropped.
//
// Two events whose keys hash alike (64-bit maphash with a random seed:
// with the default table of 4096 events, about one chance in 10^12)
// share a window; the effect is at worst a record suppressed that should
// have passed, counted in a summary.
//
// # Goroutines
//
// The limiter starts no goroutine of its own. The summary timer
// (Options.AfterFunc, time.AfterFunc by default) runs its function on a
// goroutine of the runtime when it fires; it is armed only while a
// summary is pending, and Close stops it and writes the pending
// summaries at once.
package logx
