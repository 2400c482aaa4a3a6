package conntable

import (
	"encoding/binary"
	"net/netip"
)

// The lookups (kernel ip_vs_conn_in_get, ip_vs_conn_out_get,
// ip_vs_ct_in_get). Each hashes its key, locks one shard and walks one
// chain; none allocates. An entry whose timer has run out at now is never
// returned, even if Expire has not removed it yet; a template that still
// controls connections is the exception, as its timer would have been
// pushed back (expire_later). Chains keep the most recently hashed entry
// first, so of two entries with the same key the newer is found, as in the
// kernel.

// inOK is the kernel's NO_CPORT rule: a lookup with client port 0 finds
// only entries whose client port is not known yet, one with a port only
// the others. Templates are never found by in or out lookups.
func inOK(f Flags, cport uint16) bool {
	return f&FlagTemplate == 0 && (cport == 0) == (f&FlagNoCPort != 0)
}

// LookupIn finds the connection of a packet from client caddr:cport to the
// virtual service vaddr:vport over proto. If there is none and some entries
// do not know their client port yet (FlagNoCPort, created by the sync
// daemon), it looks again with client port 0; FillCPort then sets the port.
func (t *Table) LookupIn(proto uint8, caddr netip.Addr, cport uint16, vaddr netip.Addr, vport uint16, now int64) (Ref, bool) {
	return t.LookupInConn(proto, caddr, cport, vaddr, vport, now, nil)
}

// LookupInConn is LookupIn that also copies the entry into out (if not
// nil) under the same lock: the packet path's one call per packet, where
// LookupIn and Get would take the shard lock twice.
func (t *Table) LookupInConn(proto uint8, caddr netip.Addr, cport uint16, vaddr netip.Addr, vport uint16, now int64, out *Conn) (Ref, bool) {
	nt := floorTick(now)
	if caddr.Is4() {
		if !vaddr.Is4() {
			return 0, false
		}
		c, v := caddr.As4(), vaddr.As4()
		if r, ok := t.in4(proto, c, cport, v, vport, nt, out); ok || cport == 0 || t.noCPort.Load() == 0 {
			return r, ok
		}
		return t.in4(proto, c, 0, v, vport, nt, out)
	}
	if !caddr.IsValid() || !vaddr.IsValid() || vaddr.Is4() {
		return 0, false
	}
	c, v := caddr.As16(), vaddr.As16()
	if r, ok := t.in6(proto, &c, cport, &v, vport, nt, out); ok || cport == 0 || t.noCPort.Load() == 0 {
		return r, ok
	}
	return t.in6(proto, &c, 0, &v, vport, nt, out)
}

func (t *Table) in4(proto uint8, c [4]byte, cport uint16, v [4]byte, vport uint16, nt uint32, out *Conn) (Ref, bool) {
	hv := t.hashConn4(proto, c, cport)
	si := int(hv >> t.shardShift)
	s := &t.shards[si]
	s.mu.Lock()
	for l := s.buckets[s.bucket(hv)]; l != nilLoc; {
		var h *hdr
		match := false
		if l>>idxBits == kind4 {
			e := s.e4(l & idxMask)
			h = &e.h
			match = h.cport == cport && h.vport == vport && e.caddr == c && e.vaddr == v
		} else {
			e := s.e6(l & idxMask)
			h = &e.h
			match = h.flags&fAF4 != 0 && h.cport == cport && h.vport == vport &&
				[4]byte(e.caddr[12:]) == c && [4]byte(e.vaddr[12:]) == v
		}
		if match && h.proto() == proto && inOK(h.flags, cport) && h.alive(nt) {
			r := mkRef(h.gen, si, l)
			t.hit(s, l, h, r, out)
			return r, true
		}
		l = h.hnext.get()
	}
	s.mu.Unlock()
	return 0, false
}

func (t *Table) in6(proto uint8, c *[16]byte, cport uint16, v *[16]byte, vport uint16, nt uint32, out *Conn) (Ref, bool) {
	hv := t.hashConn6(proto, c, cport)
	si := int(hv >> t.shardShift)
	s := &t.shards[si]
	s.mu.Lock()
	for l := s.buckets[s.bucket(hv)]; l != nilLoc; {
		if l>>idxBits == kind4 {
			l = s.e4(l & idxMask).h.hnext.get()
			continue
		}
		e := s.e6(l & idxMask)
		h := &e.h
		if h.flags&fAF4 == 0 && h.cport == cport && h.vport == vport && e.caddr == *c && e.vaddr == *v &&
			h.proto() == proto && inOK(h.flags, cport) && h.alive(nt) {
			r := mkRef(h.gen, si, l)
			t.hit(s, l, h, r, out)
			return r, true
		}
		l = h.hnext.get()
	}
	s.mu.Unlock()
	return 0, false
}

// LookupOut finds the connection of a packet from saddr:sport to the client
// daddr:dport over proto, a reply: for a NAT connection (FlagMasq) the
// packet comes from the real server DAddr:DPort, for the other methods
// from the virtual address VAddr:VPort (a reply of a local real server or
// one routed through the director).
func (t *Table) LookupOut(proto uint8, saddr netip.Addr, sport uint16, daddr netip.Addr, dport uint16, now int64) (Ref, bool) {
	return t.LookupOutConn(proto, saddr, sport, daddr, dport, now, nil)
}

// LookupOutConn is LookupOut that also copies the entry into out (if not
// nil) under the same lock.
func (t *Table) LookupOutConn(proto uint8, saddr netip.Addr, sport uint16, daddr netip.Addr, dport uint16, now int64, out *Conn) (Ref, bool) {
	nt := floorTick(now)
	if daddr.Is4() {
		if !saddr.Is4() {
			return 0, false
		}
		return t.out4(proto, saddr.As4(), sport, daddr.As4(), dport, nt, out)
	}
	if !daddr.IsValid() || !saddr.IsValid() || saddr.Is4() {
		return 0, false
	}
	sa, da := saddr.As16(), daddr.As16()
	return t.out6(proto, &sa, sport, &da, dport, nt, out)
}

func (t *Table) out4(proto uint8, src [4]byte, sport uint16, dst [4]byte, dport uint16, nt uint32, out *Conn) (Ref, bool) {
	hv := t.hashConn4(proto, dst, dport)
	si := int(hv >> t.shardShift)
	s := &t.shards[si]
	s.mu.Lock()
	for l := s.buckets[s.bucket(hv)]; l != nilLoc; {
		var h *hdr
		match := false
		if l>>idxBits == kind4 {
			e := s.e4(l & idxMask)
			h = &e.h
			if h.cport == dport && e.caddr == dst {
				if h.flags&FlagFwdMask == FlagMasq {
					match = h.dport == sport && e.daddr == src
				} else {
					match = h.vport == sport && e.vaddr == src
				}
			}
		} else {
			e := s.e6(l & idxMask)
			h = &e.h
			if h.flags&fAF4 != 0 && h.cport == dport && [4]byte(e.caddr[12:]) == dst {
				if h.flags&FlagFwdMask == FlagMasq {
					match = h.flags&fDAF4 != 0 && h.dport == sport && [4]byte(e.daddr[12:]) == src
				} else {
					match = h.vport == sport && [4]byte(e.vaddr[12:]) == src
				}
			}
		}
		if match && h.proto() == proto && h.flags&FlagTemplate == 0 && h.alive(nt) {
			r := mkRef(h.gen, si, l)
			t.hit(s, l, h, r, out)
			return r, true
		}
		l = h.hnext.get()
	}
	s.mu.Unlock()
	return 0, false
}

func (t *Table) out6(proto uint8, src *[16]byte, sport uint16, dst *[16]byte, dport uint16, nt uint32, out *Conn) (Ref, bool) {
	hv := t.hashConn6(proto, dst, dport)
	si := int(hv >> t.shardShift)
	s := &t.shards[si]
	s.mu.Lock()
	for l := s.buckets[s.bucket(hv)]; l != nilLoc; {
		if l>>idxBits == kind4 {
			l = s.e4(l & idxMask).h.hnext.get()
			continue
		}
		e := s.e6(l & idxMask)
		h := &e.h
		match := false
		if h.flags&fAF4 == 0 && h.cport == dport && e.caddr == *dst {
			if h.flags&FlagFwdMask == FlagMasq {
				match = h.flags&fDAF4 == 0 && h.dport == sport && e.daddr == *src
			} else {
				match = h.vport == sport && e.vaddr == *src
			}
		}
		if match && h.proto() == proto && h.flags&FlagTemplate == 0 && h.alive(nt) {
			r := mkRef(h.gen, si, l)
			t.hit(s, l, h, r, out)
			return r, true
		}
		l = h.hnext.get()
	}
	s.mu.Unlock()
	return 0, false
}

// LookupTemplate finds the persistence template <proto, snet, vaddr, vport>
// (client port 0), snet being the client address masked with the
// service's netmask. proto 0 (IPPROTO_IP) selects a fwmark template, whose
// key has the mark in place of the virtual address: vaddr is then ignored
// and fwmark used (the kernel's <IPPROTO_IP, snet, 0, fwmark, 0>, vport
// passed as 0); otherwise fwmark is ignored. A neutralised template
// (Neutralise) has ports 0xffff and is found only with vport 0xffff.
func (t *Table) LookupTemplate(proto uint8, snet netip.Addr, vaddr netip.Addr, vport uint16, fwmark uint32, now int64) (Ref, bool) {
	nt := floorTick(now)
	if snet.Is4() {
		var vk [4]byte
		if proto == 0 {
			binary.BigEndian.PutUint32(vk[:], fwmark)
		} else if vaddr.Is4() {
			vk = vaddr.As4()
		} else {
			return 0, false
		}
		return t.tpl4(proto, snet.As4(), vk, vport, nt)
	}
	if !snet.IsValid() {
		return 0, false
	}
	var vk [16]byte
	if proto == 0 {
		binary.BigEndian.PutUint32(vk[:4], fwmark)
	} else if vaddr.IsValid() && !vaddr.Is4() {
		vk = vaddr.As16()
	} else {
		return 0, false
	}
	sn := snet.As16()
	return t.tpl6(proto, &sn, &vk, vport, nt)
}

func (t *Table) tpl4(proto uint8, snet, vk [4]byte, vport uint16, nt uint32) (Ref, bool) {
	hv := t.hashTpl4(proto, snet, vk)
	si := int(hv >> t.shardShift)
	s := &t.shards[si]
	s.mu.Lock()
	for l := s.buckets[s.bucket(hv)]; l != nilLoc; {
		var h *hdr
		match := false
		if l>>idxBits == kind4 {
			e := s.e4(l & idxMask)
			h = &e.h
			match = e.caddr == snet && e.vaddr == vk
		} else {
			e := s.e6(l & idxMask)
			h = &e.h
			match = h.flags&fAF4 != 0 && [4]byte(e.caddr[12:]) == snet && [4]byte(e.vaddr[12:]) == vk
		}
		if match && h.template() && h.vport == vport && h.cport == 0 && h.proto() == proto && h.visible(nt) {
			r := mkRef(h.gen, si, l)
			s.mu.Unlock()
			return r, true
		}
		l = h.hnext.get()
	}
	s.mu.Unlock()
	return 0, false
}

func (t *Table) tpl6(proto uint8, snet, vk *[16]byte, vport uint16, nt uint32) (Ref, bool) {
	hv := t.hashTpl6(proto, snet, vk)
	si := int(hv >> t.shardShift)
	s := &t.shards[si]
	s.mu.Lock()
	for l := s.buckets[s.bucket(hv)]; l != nilLoc; {
		if l>>idxBits == kind4 {
			l = s.e4(l & idxMask).h.hnext.get()
			continue
		}
		e := s.e6(l & idxMask)
		h := &e.h
		if h.flags&fAF4 == 0 && e.caddr == *snet && e.vaddr == *vk && h.template() &&
			h.vport == vport && h.cport == 0 && h.proto() == proto && h.visible(nt) {
			r := mkRef(h.gen, si, l)
			s.mu.Unlock()
			return r, true
		}
		l = h.hnext.get()
	}
	s.mu.Unlock()
	return 0, false
}

// hit finishes a successful lookup in shard s at l (locked): it copies the
// entry into out if asked, then unlocks.
func (t *Table) hit(s *shard, l uint32, h *hdr, r Ref, out *Conn) {
	if out == nil {
		s.mu.Unlock()
		return
	}
	s.load(l, out, r, t.lastNow.Load())
	var ctl uint32
	if !h.template() {
		ctl = h.ctl
	}
	s.mu.Unlock()
	if ctl != 0 {
		out.Control = t.controlRef(ctl)
	}
}

// Get returns a copy of the entry ref names, if it is still in the table
// (Get does not look at its timer: an entry whose time has run out is
// returned until Expire removes it; the lookups are what hide such
// entries). Expires is computed against the latest time the table has
// seen.
func (t *Table) Get(ref Ref) (Conn, bool) {
	var c Conn
	s, _, l, h := t.lockRef(ref)
	if h == nil {
		return c, false
	}
	s.load(l, &c, ref, t.lastNow.Load())
	var ctl uint32
	if !h.template() {
		ctl = h.ctl
	}
	s.mu.Unlock()
	if ctl != 0 {
		c.Control = t.controlRef(ctl)
	}
	return c, true
}
