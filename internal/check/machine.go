package check

import "time"

// machine is one checker's state in keepalived's check loop, a pure
// function of the probe results fed to step (no clock, no I/O): the
// epilogs of keepalived/check/check_tcp.c (tcp_epilog), check_udp.c
// (udp_epilog) and check_misc.c (misc_check_child_thread), which all
// checkers share in substance.
//
//	          success                 failure, retryIt < retry
//	        ┌─────────┐           ┌──────────────────────────────┐
//	        │         ▼           │  retryIt++, next in          │
//	      ┌─┴───────────┐ ◄───────┘  delay_before_retry          │
//	start─►     UP      ├────────────────────────────────────────┘
//	(not  └─────────────┘ ─┐
//	alpha)      ▲          │ failure, retryIt == retry:
//	            │ success  │ DOWN, retryIt = 0
//	      ┌─────┴───────┐ ◄┘
//	start─►    DOWN     ├──┐ failure: stays DOWN,
//	(alpha)└────────────┘ ◄┘ next in delay_loop
//
// Every step that does not retry schedules the next check delay_loop
// later; a success resets retryIt to 0.
//
// At start retryIt is retry: keepalived's check_data.c sets retry_it =
// retry for every checker before the first run ("For non alpha mode, one
// failure is enough initially"), so a server that fails its very first
// check goes down at once; after that, a failure of an up checker is
// followed by retry further checks delay_before_retry apart, and the
// server goes down when the last of them fails too (retry 1: at the
// second consecutive failure).
//
// A down checker's failures are not counted and it is checked every
// delay_loop (udp_epilog, misc_check_child_thread; tcp_epilog alone keeps
// counting retries of a down checker, which changes only when the next
// failed check of a dead server runs).
type machine struct {
	up      bool
	retryIt int

	retry            int
	delayLoop        time.Duration
	delayBeforeRetry time.Duration
}

// newMachine returns the starting state of a checker: up unless alpha.
func newMachine(s *Spec) machine {
	m := machine{
		up:               !s.Alpha,
		retry:            max(s.Retry, 0),
		delayLoop:        s.DelayLoop,
		delayBeforeRetry: max(s.DelayBeforeRetry, 0),
	}
	if m.delayLoop <= 0 {
		m.delayLoop = defaultDelayLoop
	}
	m.retryIt = m.retry
	return m
}

// step feeds the result of one check to the machine. It returns whether
// the checker's state (up or down) changed and the delay until the next
// check.
func (m *machine) step(ok bool) (changed bool, next time.Duration) {
	if ok {
		changed = !m.up
		m.up, m.retryIt = true, 0
		return changed, m.delayLoop
	}
	if !m.up {
		return false, m.delayLoop
	}
	if m.retryIt < m.retry {
		m.retryIt++
		return false, m.delayBeforeRetry
	}
	m.up, m.retryIt = false, 0
	return true, m.delayLoop
}

// warmupDelay is the delay before a checker's first check: u (uniform in
// [0, 1)) of warmup, so within [0, warmup); 0 without warmup.
func warmupDelay(warmup time.Duration, u float64) time.Duration {
	if warmup <= 0 || u <= 0 {
		return 0
	}
	d := time.Duration(u * float64(warmup))
	if d >= warmup { // float rounding when u is just below 1
		d = warmup - 1
	}
	return d
}
