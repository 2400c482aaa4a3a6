package afpacket

import (
	"encoding/binary"
	"net/netip"
	"slices"

	"golang.org/x/net/bpf"

	"golvs/internal/header"
	"golvs/internal/link"
)

// Classic BPF programs built from a link.Filter: the socket filter that
// passes the data path's frames (SO_ATTACH_FILTER), and the fanout program
// that picks a queue by the flow's client (PACKET_FANOUT_DATA of a
// PACKET_FANOUT_CBPF group).
//
// Both read the frame as the kernel's packet tap sees it: the Ethernet
// header at 0, any VLAN tag already moved into the skb's metadata.
// Offsets from the start of the frame:
//
//	IPv4: 12 EtherType, 14 version/IHL, 20 flags/fragment offset,
//	      23 protocol, 26 source, 30 destination; X = IHL*4 (ldx msh)
//	      puts the transport header at X+14
//	IPv6: 20 next header, 22 source, 38 destination; X = the length of
//	      the one extension header the programs step over (0 without),
//	      whose next header is at 54, puts the transport header at X+54
//	both: ports at L4+0 (source), L4+2 (destination); an ICMP error's
//	      type at L4+0 and its quoted IP header at L4+8
//
// A prelude per family sets X and the scratch slots below and sends the
// packet on by its kind (an ICMP error, a packet with ports, one
// without); then the match tests compare addresses, with a binary search
// over the exact addresses so that a few hundred services cost a handful
// of comparisons, and a key packing protocol and port:
//
//	key = proto<<16 | port     (TCP, UDP, SCTP with ports)
//	key = 1<<24 | proto<<16    (no ports: other protocols, fragments
//	                            that are not first)
//
// so that an exact service is one comparison, a port range two, and
// "every port of a protocol" a mask and a comparison.

// acceptAll is the filter's "pass" return: the number of bytes to keep,
// larger than any frame (a GSO frame of the maximum size included), so
// that nothing is truncated.
const acceptAll = 0xffffffff

// packetHost is the skb pkt_type of a frame unicast to this host
// (PACKET_HOST).
const packetHost = 0

// Frame offsets (see the table above).
const (
	offEtherType = 12
	offL3        = 14

	offV4Frag  = offL3 + 6
	offV4Proto = offL3 + 9
	offV4Src   = offL3 + 12
	offV4Dst   = offL3 + 16
	offV4L4    = offL3 // + X

	offV6Next   = offL3 + 6
	offV6Src    = offL3 + 8
	offV6Dst    = offL3 + 24
	offV6L4     = offL3 + 40 // + X
	offV6ExtNxt = offV6L4    // the first extension header's next header
	offV6ExtLen = offV6L4 + 1
	offV6FragOf = offV6L4 + 2 // a Fragment header's offset word

	// Relative to the ICMP header.
	icmpQuoted = 8
	// Relative to a quoted IP header.
	qV4VerIHL, qV4Frag, qV4Proto, qV4Src, qV4Dst = 0, 6, 9, 12, 16
	qV6Next, qV6Src, qV6Dst, qV6L4               = 6, 8, 24, 40
)

const (
	// v4FragOffsetMask is the fragment offset of the IPv4 flags/offset
	// word; v6FragOffsetMask that of a Fragment header's offset word.
	v4FragOffsetMask = 0x1fff
	v6FragOffsetMask = 0xfff8
	// v6FragHdrLen is the length of an IPv6 Fragment header.
	v6FragHdrLen = 8
	// keyNoPorts marks the key of a packet without ports.
	keyNoPorts = 1 << 24
	// keyProtoMask keeps a key's protocol.
	keyProtoMask = 0xff0000
)

// Scratch memory slots.
const (
	memProto  = 0 // the transport protocol
	memKeyDst = 1 // proto and destination port, packed (see above)
	memKeySrc = 2 // proto and source port
	memAddr   = 3 // fanout: the client's address folded to 32 bits
	memPort   = 4 // fanout: the client's port, or 0
)

// kinds are where a family's prelude sends a packet. On arrival,
// M[memProto] holds the transport protocol and X the offset that puts
// the transport (or ICMP) header at L4 (offV4L4 or offV6L4 plus X).
type kinds struct {
	icmpErr label // an ICMP error (IPv4 3, 4, 11; ICMPv6 below 128)
	ports   label // TCP, UDP or SCTP with ports
	noPorts label // anything else that is IP
	// addrOnly: an IPv6 packet with more than one extension header,
	// whose transport header the programs do not look for.
	addrOnly label
	drop     label // an ICMP message that is not an error
}

// jumpByProto emits: A holds the protocol; store it and go to k.icmpErr if
// it is icmp and the type at L4 (X-relative) is an error, to k.ports for
// TCP, UDP and SCTP, else to k.noPorts.
func (a *asm) jumpByProto(icmp uint8, l4 uint32, k kinds) {
	isICMP := a.newLabel()
	a.emit(bpf.StoreScratch{Src: bpf.RegA, N: memProto})
	a.jif(bpf.JumpEqual, uint32(header.ProtoTCP), k.ports, next)
	a.jif(bpf.JumpEqual, uint32(header.ProtoUDP), k.ports, next)
	a.jif(bpf.JumpEqual, uint32(header.ProtoSCTP), k.ports, next)
	a.jif(bpf.JumpEqual, uint32(icmp), isICMP, k.noPorts)
	a.place(isICMP)
	a.emit(bpf.LoadIndirect{Off: l4, Size: 1})
	if icmp == header.ProtoICMPv4 {
		a.jif(bpf.JumpEqual, 3, k.icmpErr, next)    // destination unreachable
		a.jif(bpf.JumpEqual, 4, k.icmpErr, next)    // source quench
		a.jif(bpf.JumpEqual, 11, k.icmpErr, k.drop) // time exceeded
		return
	}
	a.jif(bpf.JumpLessThan, 128, k.icmpErr, k.drop) // errors are below 128
}

// prelude4 is the IPv4 prelude.
func (a *asm) prelude4(k kinds) {
	noPortsProto := a.newLabel()
	a.emit(bpf.LoadMemShift{Off: offL3})
	a.emit(bpf.LoadAbsolute{Off: offV4Frag, Size: 2})
	a.jif(bpf.JumpBitsSet, v4FragOffsetMask, noPortsProto, next)
	a.emit(bpf.LoadAbsolute{Off: offV4Proto, Size: 1})
	a.jumpByProto(header.ProtoICMPv4, offV4L4, k)
	// A fragment that is not the first: the protocol, no ports.
	a.place(noPortsProto)
	a.emit(bpf.LoadAbsolute{Off: offV4Proto, Size: 1}, bpf.StoreScratch{Src: bpf.RegA, N: memProto})
	a.ja(k.noPorts)
}

// prelude6 is the IPv6 prelude: it steps over one extension header
// (hop-by-hop, routing or destination options, whose length is in it, or
// a Fragment header).
func (a *asm) prelude6(k kinds) {
	ext := a.newLabel()
	frag := a.newLabel()
	afterExt := a.newLabel()
	a.emit(bpf.LoadConstant{Dst: bpf.RegX, Val: 0})
	a.emit(bpf.LoadAbsolute{Off: offV6Next, Size: 1})
	a.jif(bpf.JumpEqual, uint32(header.ProtoHopByHop), ext, next)
	a.jif(bpf.JumpEqual, uint32(header.ProtoRouting), ext, next)
	a.jif(bpf.JumpEqual, uint32(header.ProtoDestOpts), ext, next)
	a.jif(bpf.JumpEqual, uint32(header.ProtoFragment), frag, next)
	a.jumpByProto(header.ProtoICMPv6, offV6L4, k)

	// Hop-by-hop, routing, destination options: (length+1) * 8 bytes.
	a.place(ext)
	a.emit(
		bpf.LoadAbsolute{Off: offV6ExtLen, Size: 1},
		bpf.ALUOpConstant{Op: bpf.ALUOpAdd, Val: 1},
		bpf.ALUOpConstant{Op: bpf.ALUOpShiftLeft, Val: 3},
		bpf.TAX{},
	)
	a.ja(afterExt)

	// Fragment: 8 bytes; a fragment that is not the first has no ports.
	a.place(frag)
	notFirst := a.newLabel()
	a.emit(bpf.LoadAbsolute{Off: offV6FragOf, Size: 2})
	a.jif(bpf.JumpBitsSet, v6FragOffsetMask, notFirst, next)
	a.emit(bpf.LoadConstant{Dst: bpf.RegX, Val: v6FragHdrLen})
	a.ja(afterExt)
	a.place(notFirst)
	a.emit(bpf.LoadAbsolute{Off: offV6ExtNxt, Size: 1}, bpf.StoreScratch{Src: bpf.RegA, N: memProto})
	a.ja(k.noPorts)

	// After one extension header: another one is too many.
	a.place(afterExt)
	a.emit(bpf.LoadAbsolute{Off: offV6ExtNxt, Size: 1})
	a.jif(bpf.JumpEqual, uint32(header.ProtoHopByHop), k.addrOnly, next)
	a.jif(bpf.JumpEqual, uint32(header.ProtoRouting), k.addrOnly, next)
	a.jif(bpf.JumpEqual, uint32(header.ProtoDestOpts), k.addrOnly, next)
	a.jif(bpf.JumpEqual, uint32(header.ProtoFragment), k.addrOnly, next)
	a.jumpByProto(header.ProtoICMPv6, offV6L4, k)
}

// storeKeys stores the two keys of a packet: with ports (read at L4,
// X-relative), proto<<16 | port; without, 1<<24 | proto<<16. It clobbers
// X.
func (a *asm) storeKeys(l4 uint32, ports bool) {
	if ports {
		a.emit(
			bpf.LoadIndirect{Off: l4, Size: 2},
			bpf.StoreScratch{Src: bpf.RegA, N: memKeySrc},
			bpf.LoadIndirect{Off: l4 + 2, Size: 2},
			bpf.StoreScratch{Src: bpf.RegA, N: memKeyDst},
			bpf.LoadScratch{Dst: bpf.RegA, N: memProto},
			bpf.ALUOpConstant{Op: bpf.ALUOpShiftLeft, Val: 16},
			bpf.TAX{},
			bpf.LoadScratch{Dst: bpf.RegA, N: memKeySrc},
			bpf.ALUOpX{Op: bpf.ALUOpOr},
			bpf.StoreScratch{Src: bpf.RegA, N: memKeySrc},
			bpf.LoadScratch{Dst: bpf.RegA, N: memKeyDst},
			bpf.ALUOpX{Op: bpf.ALUOpOr},
			bpf.StoreScratch{Src: bpf.RegA, N: memKeyDst},
		)
		return
	}
	a.emit(
		bpf.LoadScratch{Dst: bpf.RegA, N: memProto},
		bpf.ALUOpConstant{Op: bpf.ALUOpShiftLeft, Val: 16},
		bpf.ALUOpConstant{Op: bpf.ALUOpOr, Val: keyNoPorts},
		bpf.StoreScratch{Src: bpf.RegA, N: memKeyDst},
		bpf.StoreScratch{Src: bpf.RegA, N: memKeySrc},
	)
}

// group is the matches of one side that share a prefix, so that the
// program compares the address once.
type group struct {
	pfx     netip.Prefix
	matches []link.Match
}

// groups returns ms of one family grouped by prefix, exact addresses
// first, each part in address order.
func groups(ms []link.Match, is4 bool) (exact, nets []group) {
	idx := map[netip.Prefix]int{}
	var all []group
	for _, m := range ms {
		if m.Addr.Addr().Is4() != is4 {
			continue
		}
		i, ok := idx[m.Addr]
		if !ok {
			i = len(all)
			idx[m.Addr] = i
			all = append(all, group{pfx: m.Addr})
		}
		all[i].matches = append(all[i].matches, m)
	}
	for _, g := range all {
		if g.pfx.IsSingleIP() {
			exact = append(exact, g)
		} else {
			nets = append(nets, g)
		}
	}
	cmp := func(x, y group) int { return x.pfx.Addr().Compare(y.pfx.Addr()) }
	slices.SortFunc(exact, cmp)
	slices.SortFunc(nets, cmp)
	return exact, nets
}

// words returns the 32-bit words of p's address and netmask.
func words(p netip.Prefix) (addr, mask []uint32) {
	b := p.Addr().AsSlice()
	for i := 0; i < len(b); i += 4 {
		addr = append(addr, binary.BigEndian.Uint32(b[i:]))
		bits := p.Bits() - i*8
		switch {
		case bits >= 32:
			mask = append(mask, 0xffffffff)
		case bits <= 0:
			mask = append(mask, 0)
		default:
			mask = append(mask, ^uint32(0)<<(32-bits))
		}
	}
	return addr, mask
}

// load emits a load of the 32-bit word at off (X-relative if indirect).
func (a *asm) load(off uint32, indirect bool) {
	if indirect {
		a.emit(bpf.LoadIndirect{Off: off, Size: 4})
	} else {
		a.emit(bpf.LoadAbsolute{Off: off, Size: 4})
	}
}

// prefixTest emits: if the address at off is in p, fall through, else
// jump to miss. It clobbers A.
func (a *asm) prefixTest(off uint32, indirect bool, p netip.Prefix, miss label) {
	addr, mask := words(p)
	for i := range addr {
		if mask[i] == 0 {
			continue
		}
		a.load(off+uint32(4*i), indirect)
		if mask[i] != 0xffffffff {
			a.emit(bpf.ALUOpConstant{Op: bpf.ALUOpAnd, Val: mask[i]})
		}
		a.jif(bpf.JumpEqual, addr[i]&mask[i], next, miss)
	}
}

// bucketSize is how many keys a leaf of a binary search compares in turn:
// at 4, a search costs about log2(n/4) + 4 comparisons and the code about
// 1.25 instructions per key.
const bucketSize = 4

// search emits a binary search for A among the sorted distinct keys: A
// equal to keys[i] continues with the code leaf(i) emits (right after
// its bucket, so that the jumps stay short), none goes to miss. A is not
// changed before the leaf.
//
// With leaf nil, every key goes to hit: each bucket's comparisons jump to
// one local "ja hit".
func (a *asm) search(keys []uint32, leaf func(i int), hit, miss label) {
	var rec func(lo, hi int)
	rec = func(lo, hi int) {
		if hi-lo <= bucketSize && leaf == nil {
			found := a.newLabel()
			for i := lo; i < hi; i++ {
				a.jif(bpf.JumpEqual, keys[i], found, next)
			}
			a.ja(miss)
			a.place(found)
			a.ja(hit)
			return
		}
		if hi-lo <= bucketSize {
			ls := make([]label, hi-lo)
			for i := lo; i < hi; i++ {
				ls[i-lo] = a.newLabel()
				a.jif(bpf.JumpEqual, keys[i], ls[i-lo], next)
			}
			a.ja(miss)
			for i := lo; i < hi; i++ {
				a.place(ls[i-lo])
				leaf(i)
			}
			return
		}
		mid := (lo + hi) / 2
		right := a.newLabel()
		a.jif(bpf.JumpGreaterOrEqual, keys[mid], right, next)
		rec(lo, mid)
		a.place(right)
		rec(mid, hi)
	}
	rec(0, len(keys))
}

// lastWord is the key of an address in a search: IPv4 whole, IPv6 by its
// low 32 bits (then checked whole).
func lastWord(a netip.Addr) uint32 {
	b := a.AsSlice()
	return binary.BigEndian.Uint32(b[len(b)-4:])
}

// exactSearch emits: the address at off (X-relative if indirect) among
// the exact addresses of gs; one equal to gs[i] continues with the code
// leaf(i) emits (which must end in a jump), none goes to miss. IPv6
// addresses are searched by their last word, then compared whole.
//
// With leaf nil, every address goes to hit.
func (a *asm) exactSearch(off uint32, indirect bool, gs []group, leaf func(i int), hit, miss label) {
	if len(gs) == 0 {
		a.ja(miss)
		return
	}
	if leaf == nil && !gs[0].pfx.Addr().Is4() {
		leaf = func(int) { a.ja(hit) }
	}
	is4 := gs[0].pfx.Addr().Is4()
	byKey := map[uint32][]int{}
	var keys []uint32
	for i, g := range gs {
		k := lastWord(g.pfx.Addr())
		if _, ok := byKey[k]; !ok {
			keys = append(keys, k)
		}
		byKey[k] = append(byKey[k], i)
	}
	slices.Sort(keys)
	if is4 {
		a.load(off, indirect)
		if leaf == nil {
			a.search(keys, nil, hit, miss)
			return
		}
		a.search(keys, func(i int) { leaf(byKey[keys[i]][0]) }, 0, miss)
		return
	}
	a.load(off+12, indirect)
	a.search(keys, func(i int) {
		for _, g := range byKey[keys[i]] {
			other := a.newLabel()
			addr, _ := words(gs[g].pfx)
			for w := 0; w < 3; w++ {
				a.load(off+uint32(4*w), indirect)
				a.jif(bpf.JumpEqual, addr[w], next, other)
			}
			leaf(g)
			a.place(other)
		}
		a.ja(miss)
	}, 0, miss)
}

// member emits: if the address at off is in one of the prefixes, jump to
// hit, else fall through.
func (a *asm) member(off uint32, indirect bool, ps []netip.Prefix, hit label) {
	var exact, nets []group
	for _, p := range ps {
		if p.IsSingleIP() {
			exact = append(exact, group{pfx: p})
		} else {
			nets = append(nets, group{pfx: p})
		}
	}
	slices.SortFunc(exact, func(x, y group) int { return x.pfx.Addr().Compare(y.pfx.Addr()) })
	tryNets := a.newLabel()
	if len(exact) > 0 {
		a.exactSearch(off, indirect, exact, nil, hit, tryNets)
	}
	a.place(tryNets)
	for _, g := range nets {
		miss := a.newLabel()
		a.prefixTest(off, indirect, g.pfx, miss)
		a.ja(hit)
		a.place(miss)
	}
}

// entries emits the protocol and port tests of one group on the key in
// slot: a match jumps to hit, none to miss. The comparisons jump to a
// local "ja hit", so that they stay short however far hit is.
func (a *asm) entries(ms []link.Match, slot uint32, hit, miss label) {
	local := a.newLabel()
	a.emit(bpf.LoadScratch{Dst: bpf.RegA, N: int(slot)})
	var anyPort []uint32
	for _, m := range ms {
		protos := []uint8{m.Proto}
		if m.Proto == 0 {
			protos = []uint8{header.ProtoTCP, header.ProtoUDP, header.ProtoSCTP}
		}
		lo, hi := matchPorts(m)
		for _, p := range protos {
			base := uint32(p) << 16
			switch {
			case lo == 0 && hi == 0xffff:
				anyPort = append(anyPort, base)
			case lo == hi:
				a.jif(bpf.JumpEqual, base|uint32(lo), local, next)
			default:
				out := a.newLabel()
				a.jif(bpf.JumpGreaterOrEqual, base|uint32(lo), next, out)
				a.jif(bpf.JumpLessOrEqual, base|uint32(hi), local, next)
				a.place(out)
			}
		}
	}
	if len(anyPort) > 0 {
		a.emit(bpf.ALUOpConstant{Op: bpf.ALUOpAnd, Val: keyProtoMask})
		for _, base := range anyPort {
			a.jif(bpf.JumpEqual, base, local, next)
		}
	}
	a.ja(miss)
	a.place(local)
	a.ja(hit)
}

// matchPorts is link.Match's port range.
func matchPorts(m link.Match) (lo, hi uint16) {
	switch {
	case m.Port == 0 && m.PortLast == 0:
		return 0, 0xffff
	case m.PortLast == 0:
		return m.Port, m.Port
	}
	return m.Port, m.PortLast
}

// side emits the tests of one side's matches on the address at addrOff
// and the key in slot: a match jumps to hit, none to miss. With addrOnly,
// only the addresses are compared.
func (a *asm) side(ms []link.Match, is4 bool, addrOff uint32, slot uint32, addrOnly bool, hit, miss label) {
	exact, nets := groups(ms, is4)
	tryNets := a.newLabel()
	if len(exact) > 0 {
		a.exactSearch(addrOff, false, exact, func(i int) {
			if !addrOnly {
				a.entries(exact[i].matches, slot, hit, tryNets) // a network may still match
				return
			}
			a.ja(hit)
		}, 0, tryNets)
	}
	a.place(tryNets)
	for _, g := range nets {
		nextGroup := a.newLabel()
		a.prefixTest(addrOff, false, g.pfx, nextGroup)
		if addrOnly {
			a.ja(hit)
		} else {
			a.entries(g.matches, slot, hit, nextGroup)
		}
		a.place(nextGroup)
	}
	a.ja(miss)
}

// notLocal emits: if the destination address (at dst) is one of local
// (of the family), jump to drop, else fall through.
func (a *asm) notLocal(dst uint32, is4 bool, local []netip.Addr, drop label) {
	var ps []netip.Prefix
	for _, l := range local {
		if l.Is4() == is4 {
			ps = append(ps, netip.PrefixFrom(l, l.BitLen()))
		}
	}
	a.member(dst, false, ps, drop)
}

// prefixes returns the distinct prefixes of ms of one family.
func prefixes(is4 bool, mss ...[]link.Match) []netip.Prefix {
	var out []netip.Prefix
	for _, ms := range mss {
		for _, m := range ms {
			if m.Addr.Addr().Is4() == is4 && !slices.Contains(out, m.Addr) {
				out = append(out, m.Addr)
			}
		}
	}
	return out
}

// filterOptions tunes filterProgram.
type filterOptions struct {
	// noAncillary leaves out the checks on the skb's metadata (VLAN tag
	// present, packet type), which golang.org/x/net/bpf's VM cannot run.
	noAncillary bool
	// addrOnly compares addresses only, not protocols and ports, and
	// passes every ICMP error: the smaller program used when the exact
	// one exceeds the kernel's limit.
	addrOnly bool
}

// FilterProgram returns the socket filter of c: it passes a frame exactly
// when c.Class says it is for the data path, and the frame is unicast to
// this host (pkt_type PACKET_HOST, as the host's ingress rule requires)
// and carries no VLAN tag (VLAN traffic is the VLAN device's, see the
// package doc). One superset: an IPv6 packet with more than one extension
// header passes on its addresses alone (classic BPF has no loop to walk
// the chain); the data path decides on it with its full parse.
//
// When the program would exceed the kernel's 4096 instructions (several
// hundred matches), FilterProgram falls back to comparing addresses only
// (and passing every ICMP error), and reports it with coarse: the data path then sees more frames than it
// needs, and hands them back to the host (it is correct either way: the
// pipeline and link.Compiled.Taken decide, not the filter).
func FilterProgram(c *link.Compiled) (prog []bpf.RawInstruction, coarse bool, err error) {
	prog, err = filterProgram(c, filterOptions{})
	if err == nil {
		return prog, false, nil
	}
	prog, err2 := filterProgram(c, filterOptions{addrOnly: true})
	if err2 != nil {
		return nil, false, err
	}
	return prog, true, nil
}

func filterProgram(c *link.Compiled, o filterOptions) ([]bpf.RawInstruction, error) {
	f := c.Filter()
	a := &asm{}
	drop := a.newLabel()
	accept := a.newLabel()
	v6 := a.newLabel()
	if !o.noAncillary {
		a.emit(bpf.LoadExtension{Num: bpf.ExtVLANTagPresent})
		a.jif(bpf.JumpEqual, 0, next, drop)
		a.emit(bpf.LoadExtension{Num: bpf.ExtType})
		a.jif(bpf.JumpEqual, packetHost, next, drop)
	}
	a.emit(bpf.LoadAbsolute{Off: offEtherType, Size: 2})
	a.jif(bpf.JumpEqual, uint32(header.EtherTypeIPv6), v6, next)
	a.jif(bpf.JumpEqual, uint32(header.EtherTypeIPv4), next, drop)

	for _, is4 := range []bool{true, false} {
		if !is4 {
			a.place(v6)
		}
		k := kinds{icmpErr: a.newLabel(), ports: a.newLabel(), noPorts: a.newLabel(), addrOnly: a.newLabel(), drop: drop}
		src, dst, l4 := uint32(offV4Src), uint32(offV4Dst), uint32(offV4L4)
		if is4 {
			a.prelude4(k)
		} else {
			src, dst, l4 = offV6Src, offV6Dst, offV6L4
			a.prelude6(k)
		}
		// ICMP errors: on the quoted addresses.
		a.place(k.icmpErr)
		if f.ICMPErrors && o.addrOnly {
			a.ja(accept) // the coarse program passes every ICMP error
		} else if f.ICMPErrors {
			// Quoted source a service address: an error about the
			// director's packet to a client. Quoted destination a
			// service or real-server address: about a client's packet
			// the director forwarded (to the VIP for DR and TUN, to a
			// real server for NAT).
			q := l4 + icmpQuoted
			qs, qd := uint32(qV4Src), uint32(qV4Dst)
			if !is4 {
				qs, qd = qV6Src, qV6Dst
			}
			a.member(q+qs, true, prefixes(is4, f.Services), accept)
			a.member(q+qd, true, prefixes(is4, f.Services, f.Replies), accept)
		}
		a.ja(drop)

		sides := a.newLabel()
		replyHit := a.newLabel()
		a.place(k.ports)
		a.storeKeys(l4, true)
		a.ja(sides)
		a.place(k.noPorts)
		a.storeKeys(l4, false)
		a.place(sides)
		svcMiss := a.newLabel()
		a.side(f.Services, is4, dst, memKeyDst, o.addrOnly, accept, svcMiss)
		a.place(svcMiss)
		a.side(f.Replies, is4, src, memKeySrc, o.addrOnly, replyHit, drop)

		a.place(k.addrOnly)
		if !is4 {
			svcMiss := a.newLabel()
			a.side(f.Services, is4, dst, 0, true, accept, svcMiss)
			a.place(svcMiss)
			a.side(f.Replies, is4, src, 0, true, replyHit, drop)
		} else {
			a.ja(drop)
		}
		a.place(replyHit)
		a.notLocal(dst, is4, f.Local, drop)
		a.ja(accept)
	}

	a.place(accept)
	a.emit(bpf.RetConstant{Val: acceptAll})
	a.place(drop)
	a.emit(bpf.RetConstant{Val: 0})
	return a.assemble()
}

// hashMul is the multiplier of the fanout hash: 2^32 divided by the
// golden ratio (Knuth's multiplicative hashing), whose product spreads
// the input's bits into the high half, which the shift keeps.
const hashMul = 0x9e3779b1

// FanoutProgram returns the PACKET_FANOUT_CBPF program of c: it returns a
// hash of the flow's client (its address and, where the packet has them,
// its port), and the kernel sends the frame to the queue numbered hash
// modulo the number of queues. The client is the source of a packet to a
// Services address, the destination of a packet from a Replies address,
// and for an ICMP error the end of the quoted packet that is not a
// Services address: so both directions of a NAT connection, and the
// errors about it, reach the same queue, although the request and the
// reply have different address pairs (the kernel's own PACKET_FANOUT_HASH
// is symmetric for one address pair only, see the package doc). Frames
// that are none of these go to queue 0, whose socket filter decides on
// them.
//
// The port is left out, and the address alone hashed, for a fragment that
// is not the first and for an IPv6 packet with more than one extension
// header; such a packet may reach another queue than the rest of its
// flow.
func FanoutProgram(c *link.Compiled) ([]bpf.RawInstruction, error) {
	return fanoutProgram(c, true)
}

// Offsets from the kernel's headers (linux/filter.h): a classic program
// reads the link-layer header at SKF_LL_OFF+n and the network header at
// SKF_NET_OFF+n wherever skb->data points.
const (
	skfNetOff = 0xfff00000 // SKF_NET_OFF, -0x100000
	skfLLOff  = 0xffe00000 // SKF_LL_OFF, -0x200000
)

// fanoutProgram builds the fanout program, with the loads relocated for
// the kernel if kernel: a fanout program runs on the skb as the receive
// path has it, with skb->data at the network header (packet_rcv_fanout
// runs before packet_rcv pushes the MAC header back, unlike the socket
// filter), so its offsets are taken from SKF_LL_OFF and SKF_NET_OFF. Not
// relocated, it reads a frame from its Ethernet header, as x/net/bpf's VM
// (which knows no negative offsets) runs it in the tests.
func fanoutProgram(c *link.Compiled, kernel bool) ([]bpf.RawInstruction, error) {
	f := c.Filter()
	a := &asm{}
	if kernel {
		a.reloc = func(off uint32) uint32 {
			if off < offL3 {
				return skfLLOff + off
			}
			return skfNetOff + off - offL3
		}
	}
	zero := a.newLabel()
	hash := a.newLabel()
	v6 := a.newLabel()
	a.emit(bpf.LoadAbsolute{Off: offEtherType, Size: 2})
	a.jif(bpf.JumpEqual, uint32(header.EtherTypeIPv6), v6, next)
	a.jif(bpf.JumpEqual, uint32(header.EtherTypeIPv4), next, zero)

	for _, is4 := range []bool{true, false} {
		if !is4 {
			a.place(v6)
		}
		svc := prefixes(is4, f.Services)
		rep := prefixes(is4, f.Replies)
		k := kinds{icmpErr: a.newLabel(), ports: a.newLabel(), noPorts: a.newLabel(), addrOnly: a.newLabel(), drop: zero}
		src, dst, l4 := uint32(offV4Src), uint32(offV4Dst), uint32(offV4L4)
		if is4 {
			a.prelude4(k)
		} else {
			src, dst, l4 = offV6Src, offV6Dst, offV6L4
			a.prelude6(k)
		}

		// ICMP error: the quoted packet's client. Its source is a
		// service address: the client is its destination (an error
		// about the director's packet to the client); else its source
		// (about the director's packet to a real server, sent as the
		// client).
		a.place(k.icmpErr)
		q := l4 + icmpQuoted
		qDst := a.newLabel()
		if is4 {
			a.member(q+qV4Src, true, svc, qDst)
			a.quotedClient4(q, false, hash)
			a.place(qDst)
			a.quotedClient4(q, true, hash)
		} else {
			a.member(q+qV6Src, true, svc, qDst)
			a.client(false, q+qV6Src, true, portQuoted, q+qV6L4, q+qV6Next, hash)
			a.place(qDst)
			a.client(false, q+qV6Dst, true, portQuoted, q+qV6L4+2, q+qV6Next, hash)
		}

		// Others: the client is the source of a packet to a service,
		// the destination of one from a real server.
		for _, ports := range []bool{true, false} {
			if ports {
				a.place(k.ports)
			} else {
				a.place(k.noPorts)
				a.place(k.addrOnly)
				a.emit(bpf.LoadConstant{Dst: bpf.RegA, Val: 0}, bpf.StoreScratch{Src: bpf.RegA, N: memPort})
			}
			toSvc := a.newLabel()
			fromRS := a.newLabel()
			a.member(dst, false, svc, toSvc)
			a.member(src, false, rep, fromRS)
			a.ja(zero)
			pm := portNone
			if ports {
				pm = portAt
			}
			a.place(toSvc)
			a.client(is4, src, false, pm, l4, 0, hash)
			a.place(fromRS)
			a.client(is4, dst, false, pm, l4+2, 0, hash)
		}
	}

	// hash = ((addr ^ port) * hashMul) >> 16
	a.place(hash)
	a.emit(
		bpf.LoadScratch{Dst: bpf.RegA, N: memPort},
		bpf.TAX{},
		bpf.LoadScratch{Dst: bpf.RegA, N: memAddr},
		bpf.ALUOpX{Op: bpf.ALUOpXor},
		bpf.ALUOpConstant{Op: bpf.ALUOpMul, Val: hashMul},
		bpf.ALUOpConstant{Op: bpf.ALUOpShiftRight, Val: 16},
		bpf.RetA{},
	)
	a.place(zero)
	a.emit(bpf.RetConstant{Val: 0})
	return a.assemble()
}

// portMode says where client takes the client's port from.
type portMode uint8

const (
	portNone   portMode = iota // none: M[memPort] already holds 0
	portAt                     // at portOff, X-relative
	portQuoted                 // at portOff if the quoted protocol at nextOff is TCP, UDP or SCTP
)

// client stores the address at addrOff (X-relative if indirect) folded
// to 32 bits and the port as pm says, then jumps to hash.
func (a *asm) client(is4 bool, addrOff uint32, indirect bool, pm portMode, portOff, nextOff uint32, hash label) {
	a.load(addrOff, indirect)
	a.emit(bpf.StoreScratch{Src: bpf.RegA, N: memAddr})
	if !is4 {
		// The four words XORed. X may hold the offset of the loads
		// and of the port: keep it in a scratch slot meanwhile.
		for w := uint32(1); w < 4; w++ {
			a.load(addrOff+4*w, indirect)
			a.emit(
				bpf.StoreScratch{Src: bpf.RegA, N: memPort}, // the word
				bpf.TXA{},
				bpf.StoreScratch{Src: bpf.RegA, N: memKeySrc}, // X
				bpf.LoadScratch{Dst: bpf.RegX, N: memPort},
				bpf.LoadScratch{Dst: bpf.RegA, N: memAddr},
				bpf.ALUOpX{Op: bpf.ALUOpXor},
				bpf.StoreScratch{Src: bpf.RegA, N: memAddr},
				bpf.LoadScratch{Dst: bpf.RegX, N: memKeySrc},
			)
		}
	}
	switch pm {
	case portQuoted:
		none := a.newLabel()
		port := a.newLabel()
		a.emit(bpf.LoadIndirect{Off: nextOff, Size: 1})
		a.jif(bpf.JumpEqual, uint32(header.ProtoTCP), port, next)
		a.jif(bpf.JumpEqual, uint32(header.ProtoUDP), port, next)
		a.jif(bpf.JumpEqual, uint32(header.ProtoSCTP), port, none)
		a.place(port)
		a.emit(bpf.LoadIndirect{Off: portOff, Size: 2}, bpf.StoreScratch{Src: bpf.RegA, N: memPort})
		a.ja(hash)
		a.place(none)
		a.emit(bpf.LoadConstant{Dst: bpf.RegA, Val: 0}, bpf.StoreScratch{Src: bpf.RegA, N: memPort})
	case portAt:
		a.emit(bpf.LoadIndirect{Off: portOff, Size: 2}, bpf.StoreScratch{Src: bpf.RegA, N: memPort})
	case portNone:
		// The word scratch above used memPort.
		if !is4 {
			a.emit(bpf.LoadConstant{Dst: bpf.RegA, Val: 0}, bpf.StoreScratch{Src: bpf.RegA, N: memPort})
		}
	}
	a.ja(hash)
}

// quotedClient4 stores the client of the IPv4 packet quoted at q
// (X-relative): its destination if dst, else its source, with the port
// if it is TCP, UDP or SCTP and not a later fragment, then jumps to hash.
func (a *asm) quotedClient4(q uint32, dst bool, hash label) {
	addr := q + qV4Src
	if dst {
		addr = q + qV4Dst
	}
	a.emit(bpf.LoadIndirect{Off: addr, Size: 4}, bpf.StoreScratch{Src: bpf.RegA, N: memAddr})
	none := a.newLabel()
	port := a.newLabel()
	a.emit(bpf.LoadIndirect{Off: q + qV4Proto, Size: 1})
	a.jif(bpf.JumpEqual, uint32(header.ProtoTCP), port, next)
	a.jif(bpf.JumpEqual, uint32(header.ProtoUDP), port, next)
	a.jif(bpf.JumpEqual, uint32(header.ProtoSCTP), port, none)
	a.place(port)
	a.emit(bpf.LoadIndirect{Off: q + qV4Frag, Size: 2})
	a.jif(bpf.JumpBitsSet, v4FragOffsetMask, none, next)
	// X += the quoted IHL*4: the quoted ports are at q then.
	a.emit(
		bpf.LoadIndirect{Off: q + qV4VerIHL, Size: 1},
		bpf.ALUOpConstant{Op: bpf.ALUOpAnd, Val: 0x0f},
		bpf.ALUOpConstant{Op: bpf.ALUOpShiftLeft, Val: 2},
		bpf.ALUOpX{Op: bpf.ALUOpAdd},
		bpf.TAX{},
	)
	off := q
	if dst {
		off += 2
	}
	a.emit(bpf.LoadIndirect{Off: off, Size: 2}, bpf.StoreScratch{Src: bpf.RegA, N: memPort})
	a.ja(hash)
	a.place(none)
	a.emit(bpf.LoadConstant{Dst: bpf.RegA, Val: 0}, bpf.StoreScratch{Src: bpf.RegA, N: memPort})
	a.ja(hash)
}
