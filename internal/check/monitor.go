package check

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"sync"
	"time"
)

// Event is a change of a real server's health as its Monitor sees it: Up
// or Weight differs from the previous Event's (for the first Event, from
// what Monitor.Up and Monitor.Weight said before Start).
type Event struct {
	Target Target
	// Up: every checker of the real server is up.
	Up bool
	// Weight is the sum of the dynamic weight adjustments of the real
	// server's checkers (misc_dynamic MISC_CHECK: exit status - 2 - the
	// configured weight; FILE_CHECK with a weight: value x weight), to add
	// to the configured weight; NoWeight when no checker adjusts it.
	Weight int
	// Checker is the kind of the checker whose result made the change,
	// and Result that result.
	Checker Kind
	Result  Result
	// At is when the change was seen (wall clock).
	At time.Time
}

// Status is a Monitor's state for the API.
type Status struct {
	Target Target
	Up     bool
	// Weight is as in Event.
	Weight   int
	Checkers []CheckerStatus
}

// CheckerStatus is one checker's state.
type CheckerStatus struct {
	Kind Kind
	Up   bool
	// Last is the last probe's result (zero before the first probe).
	Last Result
	// LastChange is when Up last changed (zero: not since the start).
	LastChange time.Time
	// NextCheck is when the next probe is due (zero: not scheduled).
	NextCheck time.Time
	// ConsecutiveFailures counts the failed probes since the last success.
	ConsecutiveFailures int
	// Checks and Failures count probes since the start.
	Checks, Failures uint64
	// Weight is this checker's weight adjustment, NoWeight when it has
	// none (as in Event).
	Weight int
}

// Config configures a Monitor.
type Config struct {
	// Target is the real server.
	Target Target
	// Weight is the real server's configured weight: a misc_dynamic
	// MISC_CHECK asks for an absolute weight, which the Monitor reports as
	// an adjustment of this one.
	Weight int
	// Checkers are the real server's checkers, complete (see Spec).
	Checkers []Spec
	// Probers, when it has an entry i that is not nil, replaces the
	// prober NewProber would make for Checkers[i] (a checker run outside
	// this package, such as BFD_CHECK, or a test's fake). Its length, if
	// not 0, is that of Checkers.
	Probers []Prober
	// OnEvent receives the real server's changes, one call at a time and
	// in order, from the Monitor's goroutines. It may call Up and Status;
	// it must not call Stop, and while it runs the checker whose result it
	// reports waits.
	OnEvent func(Event)
	// Logger receives transitions (Info) and, for a checker with
	// log_all_failures, every failed probe of an up checker. Nil: none.
	Logger *slog.Logger
	// Rand draws the warmup delays (nil: a randomly seeded source). It is
	// used only by NewMonitor.
	Rand *rand.Rand
}

// filePoll is how often a FILE_CHECK reads its file. keepalived watches
// the file with inotify and reacts at once; a read per second costs
// microseconds and keeps this package free of a watcher goroutine.
const filePoll = time.Second

// Monitor runs the checkers of one real server (keepalived's checkers of
// one real_server block) and reports its health through Config.OnEvent.
//
// The real server is up when all its checkers are up (spec §7.4). Each
// checker runs in its own goroutine on keepalived's schedule (machine):
// its first check after a random warmup within [0, warmup), then every
// delay_loop after the end of the previous check, or delay_before_retry
// after a failure that has retries left. A FILE_CHECK reads its file at
// NewMonitor, which sets its initial state, then every filePoll, and goes
// up and down with the file at once (no retry), as keepalived's.
//
// A Monitor is safe for concurrent use. Lock order: emitMu, then mu
// (apply takes mu alone; deliver holds emitMu and takes mu only to pop an
// event, never while it calls OnEvent).
type Monitor struct {
	target   Target
	weight   int
	onEvent  func(Event)
	log      *slog.Logger
	checkers []*checker
	dynamic  bool // some checker adjusts the weight; immutable

	mu      sync.Mutex
	up      bool    // guarded by mu
	wsum    int     // guarded by mu: the last reported weight sum
	pending []Event // guarded by mu: events not yet delivered

	emitMu sync.Mutex // held while delivering events, so they stay in order

	runMu   sync.Mutex // guards started, stopped, cancel
	started bool
	stopped bool
	cancel  context.CancelFunc
	wg      sync.WaitGroup
}

// checker is one checker of a Monitor.
type checker struct {
	kind    Kind
	logAll  bool
	prober  Prober
	first   time.Duration // delay before the first check
	dynamic bool          // misc_dynamic, or FILE_CHECK with a weight
	misc    bool          // dynamic weight is absolute (MISC_CHECK)

	// Guarded by Monitor.mu.
	m   machine
	st  CheckerStatus
	adj int
}

// NewMonitor builds the Monitor of cfg.Target; it starts nothing. Its
// errors are those of NewProber.
func NewMonitor(cfg Config) (*Monitor, error) {
	if len(cfg.Probers) != 0 && len(cfg.Probers) != len(cfg.Checkers) {
		return nil, fmt.Errorf("check: %d probers for %d checkers", len(cfg.Probers), len(cfg.Checkers))
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	rnd := cfg.Rand
	if rnd == nil {
		rnd = rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
	}
	m := &Monitor{target: cfg.Target, weight: cfg.Weight, onEvent: cfg.OnEvent,
		log: log.With("component", "check", "rs", cfg.Target.String()), up: true}
	for i := range cfg.Checkers {
		s := cfg.Checkers[i]
		c := &checker{kind: s.Kind, logAll: s.LogAllFailures}
		if len(cfg.Probers) != 0 && cfg.Probers[i] != nil {
			c.prober = cfg.Probers[i]
		} else {
			p, err := NewProber(s, cfg.Target)
			if err != nil {
				return nil, err
			}
			c.prober = p
		}
		switch s.Kind {
		case KindMisc:
			c.dynamic, c.misc = s.MiscDynamic, true
		case KindFile:
			c.dynamic = s.FileWeight != 0
			// track_file checkers have no retry, no alpha (check_file.c
			// clears it: "we know the state of the checker immediately")
			// and no timers of their own.
			s.Retry, s.Alpha, s.DelayLoop, s.DelayBeforeRetry = 0, false, filePoll, filePoll
		}
		c.m = newMachine(&s)
		c.st = CheckerStatus{Kind: s.Kind, Up: c.m.up, Weight: NoWeight}
		if c.dynamic {
			c.st.Weight = 0
		}
		if s.Kind == KindFile {
			// Read the file now, as keepalived does at start
			// (init_track_files, set_track_file_checkers_down,
			// set_track_file_weights): it sets the initial state.
			c.initial(c.prober.Probe(context.Background()))
			c.first = filePoll
		} else {
			c.first = warmupDelay(s.Warmup, rnd.Float64())
		}
		m.dynamic = m.dynamic || c.dynamic
		m.checkers = append(m.checkers, c)
	}
	m.up, m.wsum = m.aggregate()
	return m, nil
}

// initial makes the result r of a check made before the start the
// checker's initial state.
func (c *checker) initial(r Result) {
	c.m.up = r.OK
	c.st.Up, c.st.Last, c.st.Checks = r.OK, r, 1
	if !r.OK {
		c.st.Failures, c.st.ConsecutiveFailures = 1, 1
	}
	if c.dynamic && r.OK {
		c.adj = r.DynWeight
		c.st.Weight = c.adj
	}
}

// Target returns the real server.
func (m *Monitor) Target() Target { return m.target }

// Up reports whether the real server is up now. Before the first Event it
// is the initial state: up unless a checker is alpha or a FILE_CHECK's
// file says down.
func (m *Monitor) Up() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.up
}

// Weight returns the current weight adjustment (NoWeight: none).
func (m *Monitor) Weight() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.dynamic {
		return NoWeight
	}
	return m.wsum
}

// Status returns a copy of the Monitor's state.
func (m *Monitor) Status() Status {
	m.mu.Lock()
	defer m.mu.Unlock()
	st := Status{Target: m.target, Up: m.up, Weight: NoWeight, Checkers: make([]CheckerStatus, len(m.checkers))}
	if m.dynamic {
		st.Weight = m.wsum
	}
	for i, c := range m.checkers {
		st.Checkers[i] = c.st
	}
	return st
}

// Start starts the checkers. Starting a started or stopped Monitor does
// nothing.
func (m *Monitor) Start() {
	m.runMu.Lock()
	defer m.runMu.Unlock()
	if m.started || m.stopped {
		return
	}
	m.started = true
	ctx, cancel := context.WithCancel(context.Background())
	m.cancel = cancel
	now := time.Now()
	m.mu.Lock()
	for _, c := range m.checkers {
		c.st.NextCheck = now.Add(c.first)
	}
	m.mu.Unlock()
	for _, c := range m.checkers {
		m.wg.Add(1)
		go m.run(ctx, c)
	}
}

// Stop stops the checkers, cancelling the probes under way (a MISC_CHECK
// script is killed), and returns when every goroutine of the Monitor has
// ended. No Event is delivered after Stop returns. Stop is idempotent.
func (m *Monitor) Stop() {
	m.runMu.Lock()
	m.stopped = true
	cancel := m.cancel
	m.runMu.Unlock()
	if cancel != nil {
		cancel()
	}
	m.wg.Wait()
}

// run is the goroutine of one checker.
func (m *Monitor) run(ctx context.Context, c *checker) {
	defer m.wg.Done()
	t := time.NewTimer(c.first)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		r := c.prober.Probe(ctx)
		if ctx.Err() != nil {
			// Stopped during the probe: its result means nothing.
			return
		}
		next := m.apply(c, r)
		m.deliver(ctx)
		t.Reset(next)
	}
}

// apply records the result r of checker c, queues an Event if the real
// server changed, and returns the delay to c's next check.
func (m *Monitor) apply(c *checker, r Result) time.Duration {
	now := time.Now()
	m.mu.Lock()
	defer m.mu.Unlock()

	wasUp := c.m.up
	changed, next := c.m.step(r.OK)
	c.st.Checks++
	if r.OK {
		c.st.ConsecutiveFailures = 0
	} else {
		c.st.Failures++
		c.st.ConsecutiveFailures++
	}
	if c.dynamic {
		switch {
		case c.misc && r.DynWeightSet:
			c.adj = clampInt32(int64(r.DynWeight) - int64(m.weight))
		case !c.misc && r.OK:
			c.adj = r.DynWeight
		case !c.misc:
			// A fault takes the file's weight away (cur_weight = 0).
			c.adj = 0
		}
		c.st.Weight = c.adj
	}
	c.st.Last = r
	c.st.Up = c.m.up
	c.st.NextCheck = now.Add(next)
	if changed {
		c.st.LastChange = now
		m.log.Info("checker "+stateWord(c.m.up), "checker", c.kind.String(), "reason", r.Message())
	} else if !r.OK && wasUp && c.logAll {
		m.log.Info("checker probe failed", "checker", c.kind.String(), "reason", r.Message(),
			"retry", c.m.retryIt, "of", c.m.retry)
	}

	up, wsum := m.aggregate()
	if up != m.up || (m.dynamic && wsum != m.wsum) {
		if up != m.up {
			m.log.Info("real server "+stateWord(up), "checker", c.kind.String(), "reason", r.Message())
		}
		m.up, m.wsum = up, wsum
		ev := Event{Target: m.target, Up: up, Weight: NoWeight, Checker: c.kind, Result: r, At: now}
		if m.dynamic {
			ev.Weight = wsum
		}
		m.pending = append(m.pending, ev)
	}
	return next
}

// aggregate is the real server's state from its checkers': up when all
// are, and the sum of their weight adjustments. Call with mu held.
func (m *Monitor) aggregate() (bool, int) {
	up, sum := true, int64(0)
	for _, c := range m.checkers {
		up = up && c.m.up
		if c.dynamic {
			sum += int64(c.adj)
		}
	}
	return up, clampInt32(sum)
}

// deliver hands the queued events to OnEvent in order. Whoever queues an
// event delivers afterwards, so none waits for another check; emitMu
// keeps two deliverers from interleaving.
func (m *Monitor) deliver(ctx context.Context) {
	m.emitMu.Lock()
	defer m.emitMu.Unlock()
	for {
		m.mu.Lock()
		if len(m.pending) == 0 || ctx.Err() != nil {
			m.pending = nil
			m.mu.Unlock()
			return
		}
		ev := m.pending[0]
		m.pending = m.pending[1:]
		m.mu.Unlock()
		if m.onEvent != nil {
			m.onEvent(ev)
		}
	}
}

func stateWord(up bool) string {
	if up {
		return "up"
	}
	return "down"
}

func clampInt32(v int64) int {
	return int(max(min(v, math.MaxInt32), math.MinInt32))
}
