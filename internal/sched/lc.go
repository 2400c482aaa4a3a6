package sched

import "golvs/internal/service"

// LeastConn is the lc scheduler (net/netfilter/ipvs/ip_vs_lc.c): the dest
// with the fewest connections, counted as the kernel's overhead
// (active << 8) + inactive, among dests that are not OVERLOADED and have a
// non-zero weight; weights are otherwise ignored. Ties go to the earliest
// dest in list order, that is the most recently added.
//
// The kernel scans every dest per connection; LeastConn keeps a load index
// (loadindex.go) updated on load changes instead, with the same choices.
// It is safe for concurrent use. Use NewLeastConn.
type LeastConn struct{ loadIndex }

// NewLeastConn returns an unbound lc scheduler.
func NewLeastConn(Options) *LeastConn {
	s := &LeastConn{}
	s.kind = loadLC
	return s
}

// Name returns "lc".
func (s *LeastConn) Name() string { return "lc" }

// Schedule returns the least-connection dest, or nil when every dest is
// OVERLOADED or quiescent (ip_vs_lc_schedule). It never allocates.
func (s *LeastConn) Schedule(_ []*service.Dest, _ *service.Packet) *service.Dest {
	return s.best()
}

// Interface guards.
var (
	_ service.Scheduler    = (*LeastConn)(nil)
	_ service.LoadObserver = (*LeastConn)(nil)
	_ service.Doner        = (*LeastConn)(nil)
)
