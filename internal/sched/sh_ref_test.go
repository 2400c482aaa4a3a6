package sched

import (
	"net/netip"

	"golvs/internal/service"
)

// shRef transcribes ip_vs_sh.c.
type shRef struct {
	flags   service.Flags
	buckets [1 << 8]*service.Dest // IP_VS_SH_TAB_SIZE with CONFIG_IP_VS_SH_TAB_BITS 8
}

func (r *shRef) Name() string { return "sh" }

func (r *shRef) Init(dests []*service.Dest) error { r.reassign(krefList(dests)); return nil }

func (r *shRef) AddDest(dests []*service.Dest, _ *service.Dest) { r.reassign(krefList(dests)) }

func (r *shRef) DelDest(dests []*service.Dest, _ *service.Dest) { r.reassign(krefList(dests)) }

func (r *shRef) UpdDest(dests []*service.Dest, _ *service.Dest) { r.reassign(krefList(dests)) }

// reassign is ip_vs_sh_reassign.
func (r *shRef) reassign(l krefList) {
	p := krefHead
	empty := len(l) == 0
	dCount := int32(0)
	for i := 0; i < len(r.buckets); i++ {
		if empty {
			r.buckets[i] = nil
		} else {
			if p == krefHead {
				p = l.next(p)
			}
			dest := l[p]
			r.buckets[i] = dest
			dCount++
			if dCount >= dest.Weight() {
				p = l.next(p)
				dCount = 0
			}
		}
	}
}

func shRefUnavailable(dest *service.Dest) bool {
	return dest.Weight() <= 0 || dest.Overloaded()
}

// hashkey is ip_vs_sh_hashkey.
func (r *shRef) hashkey(af service.Family, addr netip.Addr, port uint16, offset uint32) uint32 {
	return (offset + krefHash32(uint32(port)+krefAddrFold(af, addr), 8)) & (1<<8 - 1)
}

// getPort is ip_vs_sh_get_port (and ip_vs_mh_get_port): ports[0] is the
// source port, ports[1] the destination port.
func krefGetPort(p *service.Packet) uint16 {
	switch p.Proto {
	case service.ProtoTCP, service.ProtoUDP, service.ProtoSCTP:
		if !p.Inverse {
			return p.SrcPort
		}
		return p.DstPort
	}
	return 0
}

// Schedule is ip_vs_sh_schedule with ip_vs_sh_get and ip_vs_sh_get_fallback.
func (r *shRef) Schedule(_ []*service.Dest, p *service.Packet) *service.Dest {
	hashAddr := p.Src
	if p.Inverse {
		hashAddr = p.Dst
	}
	af := krefPacketAF(hashAddr)
	var port uint16
	if r.flags&service.FlagSched2 != 0 {
		port = krefGetPort(p)
	}
	if r.flags&service.FlagSched1 == 0 {
		dest := r.buckets[r.hashkey(af, hashAddr, port, 0)]
		if dest == nil || shRefUnavailable(dest) {
			return nil
		}
		return dest
	}
	ihash := r.hashkey(af, hashAddr, port, 0)
	dest := r.buckets[ihash]
	if dest == nil {
		return nil
	}
	if !shRefUnavailable(dest) {
		return dest
	}
	for offset := uint32(0); offset < 1<<8; offset++ {
		roffset := (offset + ihash) % (1 << 8)
		hash := r.hashkey(af, hashAddr, port, roffset)
		dest = r.buckets[hash]
		if dest == nil {
			break
		}
		if !shRefUnavailable(dest) {
			return dest
		}
	}
	return nil
}
