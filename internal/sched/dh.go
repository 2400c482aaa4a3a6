package sched

import (
	"sync/atomic"

	"golvs/internal/service"
)

// Destination hashing, the kernel's ip_vs_dh.c.

// dhTabBits is CONFIG_IP_VS_DH_TAB_BITS, the kernel default of 8: a table of
// 256 buckets, each naming one destination.
const (
	dhTabBits = 8
	dhTabSize = 1 << dhTabBits
)

// DestHash is the "dh" scheduler: a 256-bucket table, filled with the
// destinations one bucket each in list order, round after round (weights
// play no part), maps a hash of the packet's destination address to a real
// server. It is meant for cache clusters behind a fwmark service, where the
// destination address varies. An unavailable destination (deleted, weight 0,
// OVERLOAD) fails the connection; there is no fallback.
//
// The table is rebuilt by AddDest and DelDest and published atomically, so
// Schedule, which does not allocate, is safe for concurrent use with the
// hooks. The hooks themselves must be serialised (the control plane does).
type DestHash struct {
	tab atomic.Pointer[[dhTabSize]*service.Dest] // nil: no destinations
}

// NewDestHash returns an unbound dh scheduler. dh reads no options.
func NewDestHash(Options) *DestHash { return &DestHash{} }

// Name returns "dh".
func (s *DestHash) Name() string { return "dh" }

// Init builds the table (ip_vs_dh_init_svc).
func (s *DestHash) Init(dests []*service.Dest) error {
	s.reassign(dests)
	return nil
}

// AddDest rebuilds the table (add_dest = ip_vs_dh_dest_changed).
func (s *DestHash) AddDest(dests []*service.Dest, _ *service.Dest) { s.reassign(dests) }

// DelDest rebuilds the table (del_dest = ip_vs_dh_dest_changed).
func (s *DestHash) DelDest(dests []*service.Dest, _ *service.Dest) { s.reassign(dests) }

// UpdDest does nothing: ip_vs_dh.c has no upd_dest hook, and the layout does
// not depend on weights; Schedule reads the current weight.
func (s *DestHash) UpdDest([]*service.Dest, *service.Dest) {}

// reassign is ip_vs_dh_reassign: bucket i gets the destination at list
// position i modulo the number of destinations.
func (s *DestHash) reassign(dests []*service.Dest) {
	if len(dests) == 0 {
		s.tab.Store(nil)
		return
	}
	t := new([dhTabSize]*service.Dest)
	for b := range t {
		t[b] = dests[b%len(dests)]
	}
	s.tab.Store(t)
}

// Schedule returns the destination of the bucket of the packet's
// destination address, or nil if that one is unavailable.
func (s *DestHash) Schedule(_ []*service.Dest, p *service.Packet) *service.Dest {
	t := s.tab.Load()
	if t == nil {
		return nil
	}
	d := t[hash32(fold(p.Dst), dhTabBits)]
	if !d.Available() || d.Weight() <= 0 || d.Overloaded() {
		return nil
	}
	return d
}

// Interface guards.
var _ service.Scheduler = (*DestHash)(nil)
