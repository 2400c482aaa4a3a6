package sched

import "golvs/internal/service"

// WeightedLeastConn is the wlc scheduler, ipvsadm's default
// (net/netfilter/ipvs/ip_vs_wlc.c): the dest with the least
// overhead / weight, overhead being (active << 8) + inactive, among dests
// that are not OVERLOADED and have a weight > 0. The comparison is the
// kernel's cross-multiplication in 64 bits, so ties go to the earliest dest
// in list order (the most recently added).
//
// The kernel scans every dest per connection; WeightedLeastConn keeps a load
// index (loadindex.go) updated on load changes instead, with the same
// choices. It is safe for concurrent use. Use NewWeightedLeastConn.
type WeightedLeastConn struct{ loadIndex }

// NewWeightedLeastConn returns an unbound wlc scheduler.
func NewWeightedLeastConn(Options) *WeightedLeastConn {
	s := &WeightedLeastConn{}
	s.kind = loadWLC
	return s
}

// Name returns "wlc".
func (s *WeightedLeastConn) Name() string { return "wlc" }

// Schedule returns the weighted least-connection dest, or nil when no dest
// is eligible (ip_vs_wlc_schedule). It never allocates.
func (s *WeightedLeastConn) Schedule(_ []*service.Dest, _ *service.Packet) *service.Dest {
	return s.best()
}

// Interface guards.
var (
	_ service.Scheduler    = (*WeightedLeastConn)(nil)
	_ service.LoadObserver = (*WeightedLeastConn)(nil)
	_ service.Doner        = (*WeightedLeastConn)(nil)
)
