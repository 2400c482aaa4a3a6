package sched

import (
	"sync/atomic"

	"golvs/internal/service"
)

// Source hashing, the kernel's ip_vs_sh.c.

// shTabBits is CONFIG_IP_VS_SH_TAB_BITS, the kernel default of 8: a table of
// 256 buckets, each naming one destination.
const (
	shTabBits = 8
	shTabSize = 1 << shTabBits
	shTabMask = shTabSize - 1
)

// SourceHash is the "sh" scheduler: a 256-bucket table, filled in list order
// with weight consecutive buckets per destination (at least one), maps a hash
// of the client address (and, with sh-port, the client port) to a
// destination. With sh-fallback a client whose bucket names an unavailable
// destination (weight 0 or OVERLOAD) is sent around the table to the next
// available one; without it the connection fails.
//
// The table is rebuilt by the hooks and published atomically, so Schedule,
// which does not allocate, is safe for concurrent use with them. The hooks
// themselves must be serialised (the control plane does).
type SourceHash struct {
	flags atomic.Uint32                            // service.Flags; FlagSched1, FlagSched2 read
	tab   atomic.Pointer[[shTabSize]*service.Dest] // nil: no destinations
}

// NewSourceHash returns an unbound sh scheduler for a service with flags
// o.Flags.
func NewSourceHash(o Options) *SourceHash {
	s := &SourceHash{}
	s.flags.Store(uint32(o.Flags))
	return s
}

// Name returns "sh".
func (s *SourceHash) Name() string { return "sh" }

// SetFlags changes the service flags the scheduler reads (sh-fallback,
// sh-port). The kernel reads svc->flags at each schedule, so an edit of the
// service (ipvsadm -E -b) takes effect at once without a rebuild.
func (s *SourceHash) SetFlags(f service.Flags) { s.flags.Store(uint32(f)) }

// Init builds the table (ip_vs_sh_init_svc).
func (s *SourceHash) Init(dests []*service.Dest) error {
	s.reassign(dests)
	return nil
}

// AddDest rebuilds the table (add_dest = ip_vs_sh_dest_changed).
func (s *SourceHash) AddDest(dests []*service.Dest, _ *service.Dest) { s.reassign(dests) }

// DelDest rebuilds the table (del_dest = ip_vs_sh_dest_changed).
func (s *SourceHash) DelDest(dests []*service.Dest, _ *service.Dest) { s.reassign(dests) }

// UpdDest rebuilds the table (upd_dest = ip_vs_sh_dest_changed): weights
// decide how many buckets each destination gets.
func (s *SourceHash) UpdDest(dests []*service.Dest, _ *service.Dest) { s.reassign(dests) }

// reassign is ip_vs_sh_reassign: walk the buckets in order, giving the
// current destination consecutive buckets until its count reaches its
// weight, then moving to the next in list order (wrapping). A weight of 0
// or less still takes one bucket per round, where Schedule finds it
// unavailable.
func (s *SourceHash) reassign(dests []*service.Dest) {
	if len(dests) == 0 {
		s.tab.Store(nil)
		return
	}
	t := new([shTabSize]*service.Dest)
	i := 0
	var count int32
	for b := range t {
		d := dests[i]
		t[b] = d
		// "Don't move to next dest until filling weight".
		if count++; count >= d.Weight() {
			count = 0
			if i++; i == len(dests) {
				i = 0
			}
		}
	}
	s.tab.Store(t)
}

// Schedule returns the destination of the client's bucket, or with
// sh-fallback the first available one found around the table from there.
func (s *SourceHash) Schedule(_ []*service.Dest, p *service.Packet) *service.Dest {
	t := s.tab.Load()
	if t == nil {
		return nil
	}
	f := service.Flags(s.flags.Load())
	// ip_vs_sh_hashkey(offset) = (offset + h) & mask.
	h := hash32(shmhKey(p, f&service.FlagSHPort != 0), shTabBits)
	d := t[h]
	if shmhAvailable(d) {
		return d
	}
	if f&service.FlagSHFallback == 0 {
		return nil
	}
	// ip_vs_sh_get_fallback: the kernel rehashes with offset
	// roffset = (offset + ihash) % size, so the walk starts at 2h.
	for offset := uint32(0); offset < shTabSize; offset++ {
		roffset := (offset + h) % shTabSize
		if d = t[(roffset+h)&shTabMask]; shmhAvailable(d) {
			return d
		}
	}
	return nil
}

// shmhAvailable is the negation of sh's and mh's is_unavailable(): a
// destination with a positive weight and without OVERLOAD. (sh and mh do not
// test IP_VS_DEST_F_AVAILABLE: their tables are rebuilt when a destination
// is deleted.)
func shmhAvailable(d *service.Dest) bool {
	return d.Weight() > 0 && !d.Overloaded()
}

// shmhKey is what sh and mh hash of a packet, ntohs(port) + ntohl(addr_fold):
// the client address (the packet's destination for an ICMP error about a
// connection, IP_VS_HDR_INVERSE), plus, with the port flag, the client port
// for TCP, UDP and SCTP (ip_vs_sh_get_port / ip_vs_mh_get_port: ports[0],
// or ports[1] for inverse packets; 0 for other protocols).
func shmhKey(p *service.Packet, usePort bool) uint32 {
	a := p.Src
	if p.Inverse {
		a = p.Dst
	}
	var port uint16
	if usePort {
		switch p.Proto {
		case service.ProtoTCP, service.ProtoUDP, service.ProtoSCTP:
			port = p.SrcPort
			if p.Inverse {
				port = p.DstPort
			}
		}
	}
	return uint32(port) + fold(a)
}

// Interface guards.
var _ service.Scheduler = (*SourceHash)(nil)
