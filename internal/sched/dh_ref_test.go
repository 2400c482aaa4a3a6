package sched

import (
	"encoding/binary"
	"math/bits"
	"net/netip"

	"golvs/internal/service"
)

// This file holds the slow references of the hashing schedulers' common
// pieces and of dh: direct transcriptions of the kernel C, with the kernel's
// circular destination list, its union nf_inet_addr and its byte orders
// spelled out, so that they share no code with dh.go, sh.go and mh.go.

// krefList is svc->destinations: the slice holds the entries in list order
// and position krefHead is the list head itself.
type krefList []*service.Dest

const krefHead = -1

// next is p->next.
func (l krefList) next(p int) int {
	if p+1 < len(l) {
		return p + 1
	}
	return krefHead
}

// krefInetAddr is union nf_inet_addr as memory: an IPv4 address in the
// first four bytes (network order) and zeros after it, as ip_vs_addr_copy
// leaves a kzalloc'ed struct; an IPv6 address in all sixteen.
type krefInetAddr [16]byte

func krefAddr(a netip.Addr) krefInetAddr {
	var u krefInetAddr
	if a.Is4() {
		b := a.As4()
		copy(u[:], b[:])
	} else {
		u = a.As16()
	}
	return u
}

// word returns ip6[i] as the CPU loads it (x86: little endian); word(0) is
// addr->ip.
func (u krefInetAddr) word(i int) uint32 { return binary.LittleEndian.Uint32(u[4*i:]) }

// krefNtohl is ntohl on a little-endian CPU.
func krefNtohl(x uint32) uint32 { return bits.ReverseBytes32(x) }

// krefAddrFold is the addr_fold of ip_vs_{dh,sh,mh}_hashkey, already passed
// through ntohl: addr->ip, or for AF_INET6 the XOR of the four words.
func krefAddrFold(af service.Family, a netip.Addr) uint32 {
	u := krefAddr(a)
	f := u.word(0)
	if af == service.IPv6 {
		f = u.word(0) ^ u.word(1) ^ u.word(2) ^ u.word(3)
	}
	return krefNtohl(f)
}

// krefPacketAF is svc->af for a packet: the service's family, which is the
// family of every packet that reaches the service (the harness also sends
// IPv6 clients to its IPv4 test service; they are hashed as IPv6).
func krefPacketAF(a netip.Addr) service.Family {
	if a.Is4() {
		return service.IPv4
	}
	return service.IPv6
}

// krefHash32 is hash_32(val, bits) from include/linux/hash.h (the generic
// __hash_32, x86 has no arch version).
func krefHash32(val uint32, nbits uint) uint32 {
	const goldenRatio32 = 0x61C88647
	return (val * goldenRatio32) >> (32 - nbits)
}

// dhRef transcribes ip_vs_dh.c.
type dhRef struct {
	buckets [1 << 8]*service.Dest // IP_VS_DH_TAB_SIZE with CONFIG_IP_VS_DH_TAB_BITS 8
}

func (r *dhRef) Name() string { return "dh" }

func (r *dhRef) Init(dests []*service.Dest) error { r.reassign(krefList(dests)); return nil }

func (r *dhRef) AddDest(dests []*service.Dest, _ *service.Dest) { r.reassign(krefList(dests)) }

func (r *dhRef) DelDest(dests []*service.Dest, _ *service.Dest) { r.reassign(krefList(dests)) }

// UpdDest: ip_vs_dh_scheduler has no .upd_dest.
func (r *dhRef) UpdDest([]*service.Dest, *service.Dest) {}

// reassign is ip_vs_dh_reassign.
func (r *dhRef) reassign(l krefList) {
	p := krefHead
	empty := len(l) == 0
	for i := 0; i < len(r.buckets); i++ {
		if empty {
			r.buckets[i] = nil
		} else {
			if p == krefHead {
				p = l.next(p)
			}
			r.buckets[i] = l[p]
			p = l.next(p)
		}
	}
}

// Schedule is ip_vs_dh_schedule.
func (r *dhRef) Schedule(_ []*service.Dest, p *service.Packet) *service.Dest {
	hash := krefHash32(krefAddrFold(krefPacketAF(p.Dst), p.Dst), 8)
	dest := r.buckets[hash]
	if dest == nil || !dest.Available() || dest.Weight() <= 0 || dest.Overloaded() {
		return nil
	}
	return dest
}
