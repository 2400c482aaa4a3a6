package sched

import "golvs/internal/service"

// NeverQueue is the nq scheduler (net/netfilter/ipvs/ip_vs_nq.c): among dests
// that are not OVERLOADED and have a non-zero weight, the first one in list
// order with no active connection; when every one is busy, the sed choice
// (least (active + 1) / weight, earliest on ties). UDP connections are never
// active, so for UDP services nq always picks the first eligible dest.
//
// The kernel scans every dest per connection; NeverQueue keeps a load index
// (loadindex.go) updated on load changes instead, with the same choices. It
// is safe for concurrent use. Use NewNeverQueue.
type NeverQueue struct{ loadIndex }

// NewNeverQueue returns an unbound nq scheduler.
func NewNeverQueue(Options) *NeverQueue {
	s := &NeverQueue{}
	s.kind = loadNQ
	return s
}

// Name returns "nq".
func (s *NeverQueue) Name() string { return "nq" }

// Schedule returns an idle dest if there is one, else the dest with the
// shortest expected delay, or nil when no dest is eligible
// (ip_vs_nq_schedule). It never allocates.
func (s *NeverQueue) Schedule(_ []*service.Dest, _ *service.Packet) *service.Dest {
	return s.bestNQ()
}

// Interface guards.
var (
	_ service.Scheduler    = (*NeverQueue)(nil)
	_ service.LoadObserver = (*NeverQueue)(nil)
	_ service.Doner        = (*NeverQueue)(nil)
)
