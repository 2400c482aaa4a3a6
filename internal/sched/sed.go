package sched

import "golvs/internal/service"

// ShortestExpectedDelay is the sed scheduler (net/netfilter/ipvs/ip_vs_sed.c):
// the dest with the least (active + 1) / weight among dests that are not
// OVERLOADED and have a weight > 0; inactive connections are ignored. Ties
// go to the earliest dest in list order. UDP connections are never active,
// so for UDP services sed always picks the highest weight (the most recently
// added of equals).
//
// The kernel scans every dest per connection; ShortestExpectedDelay keeps a
// load index (loadindex.go) updated on load changes instead, with the same
// choices. It is safe for concurrent use. Use NewShortestExpectedDelay.
type ShortestExpectedDelay struct{ loadIndex }

// NewShortestExpectedDelay returns an unbound sed scheduler.
func NewShortestExpectedDelay(Options) *ShortestExpectedDelay {
	s := &ShortestExpectedDelay{}
	s.kind = loadSED
	return s
}

// Name returns "sed".
func (s *ShortestExpectedDelay) Name() string { return "sed" }

// Schedule returns the dest with the shortest expected delay, or nil when no
// dest is eligible (ip_vs_sed_schedule). It never allocates.
func (s *ShortestExpectedDelay) Schedule(_ []*service.Dest, _ *service.Packet) *service.Dest {
	return s.best()
}

// Interface guards.
var (
	_ service.Scheduler    = (*ShortestExpectedDelay)(nil)
	_ service.LoadObserver = (*ShortestExpectedDelay)(nil)
	_ service.Doner        = (*ShortestExpectedDelay)(nil)
)
