package lvslab

import (
	"errors"
	"net/netip"
	"slices"
	"time"
)

// maxTunnelDepth bounds nested decapsulation (IPIP in IPIP ...): Linux has
// no fixed limit but each level needs a matching tunnel device; four is
// more than any LVS setup uses and stops a crafted loop.
const maxTunnelDepth = 4

// ipInput is the IP receive path (Linux ip_rcv / ipv6_rcv → routing
// decision). l2host says the frame was addressed to the interface's own MAC
// (PACKET_HOST), the only frames a router forwards.
func (h *Host) ipInput(ifc *Interface, pkt []byte, l2host bool, depth int) {
	ip, r := parseIP(pkt, false)
	if r != 0 {
		h.dropIP(r, ifc.index, pkt)
		return
	}
	pkt = pkt[:ip.tlen] // trim Ethernet padding
	if ip.src.IsMulticast() || (!ip.v6 && ip.src == limitedBroadcast) {
		h.dropIP(DropMalformed, ifc.index, pkt) // martian source
		return
	}
	switch {
	case h.IsLocal(ip.dst):
		h.localInput(ifc, pkt, ip, depth)
	case ip.dst.IsMulticast() || ip.dst == limitedBroadcast || h.isSubnetBroadcast(ifc, ip.dst):
		if h.acceptsGroup(ifc, ip.dst) {
			h.localInput(ifc, pkt, ip, depth)
			return
		}
		h.dropIP(DropNotLocal, ifc.index, pkt)
	case h.cfg.Forwarding && l2host && !ip.dst.IsLinkLocalUnicast() && !ip.src.IsLinkLocalUnicast():
		// Link-local addresses are never forwarded (RFC 3927 §2.7,
		// RFC 4291 §2.5.6).
		h.forward(ifc, pkt, ip)
	default:
		h.dropIP(DropNotLocal, ifc.index, pkt)
	}
}

// acceptsGroup reports whether the host takes packets sent to the
// multicast or broadcast address a on ifc.
func (h *Host) acceptsGroup(ifc *Interface, a netip.Addr) bool {
	switch {
	case a == limitedBroadcast, a == allHosts4, a == allNodes, h.groups[a]:
		return true
	case a.Is4():
		return h.isSubnetBroadcast(ifc, a)
	}
	for _, p := range ifc.addrs {
		if p.Addr().Is6() && solicitedNode(p.Addr()) == a {
			return true
		}
	}
	return false
}

// localInput delivers a packet addressed to the host (Linux
// ip_local_deliver: reassembly first, then the protocol handler).
func (h *Host) localInput(ifc *Interface, pkt []byte, ip ipHdr, depth int) {
	if ip.isFragment() {
		if ip.v6 {
			// The lab's hosts never fragment IPv6; nor does IPVS.
			h.dropIP(DropFragment, ifc.index, pkt)
			return
		}
		var ok bool
		if pkt, ok = h.reassemble(ifc, pkt, ip); !ok {
			return
		}
		ip, _ = parseIP(pkt, false)
	}
	h.ctr.delivered.Add(1)
	l4 := pkt[ip.hlen:ip.tlen]
	switch ip.proto {
	case protoICMP:
		if ip.v6 {
			break
		}
		if checksum(l4, 0) != 0 {
			h.dropIP(DropBadL4Checksum, ifc.index, pkt)
			return
		}
		h.icmpInput(ifc, pkt, ip, l4)
		return
	case protoICMPv6:
		if !ip.v6 {
			break
		}
		if l4Checksum(ip.src, ip.dst, protoICMPv6, l4) != 0 {
			h.dropIP(DropBadL4Checksum, ifc.index, pkt)
			return
		}
		h.icmpInput(ifc, pkt, ip, l4)
		return
	case protoUDP:
		if len(l4) < udpHdrLen || int(be16(l4[4:])) > len(l4) || int(be16(l4[4:])) < udpHdrLen {
			h.dropIP(DropMalformed, ifc.index, pkt)
			return
		}
		l4 = l4[:be16(l4[4:])]
		// RFC 768: an all-zero checksum means none was computed (IPv4
		// only); RFC 8200 §8.1: IPv6 receivers discard it.
		if be16(l4[6:]) == 0 {
			if ip.v6 {
				h.dropIP(DropUDPZeroChecksum, ifc.index, pkt)
				return
			}
		} else if l4Checksum(ip.src, ip.dst, protoUDP, l4) != 0 {
			h.dropIP(DropBadL4Checksum, ifc.index, pkt)
			return
		}
		h.udpInput(ifc, pkt, ip, l4)
		return
	case protoTCP:
		if l4Checksum(ip.src, ip.dst, protoTCP, l4) != 0 {
			h.dropIP(DropBadL4Checksum, ifc.index, pkt)
			return
		}
		if ip.dst.IsMulticast() || ip.dst == limitedBroadcast || h.isSubnetBroadcast(ifc, ip.dst) {
			h.dropIP(DropNotLocal, ifc.index, pkt)
			return
		}
		h.tcpInput(pkt, ip, l4)
		return
	case protoIPIP, protoIPv6:
		if !h.cfg.Decap {
			break
		}
		if depth >= maxTunnelDepth {
			h.dropIP(DropNoProto, ifc.index, pkt)
			return
		}
		inner := l4
		if len(inner) == 0 || (ip.proto == protoIPIP) != (inner[0]>>4 == 4) {
			h.dropIP(DropMalformed, ifc.index, pkt)
			return
		}
		h.ctr.decapped.Add(1)
		// The inner packet continues as if received on the same
		// interface, addressed to its MAC (ip_tunnel_rcv → netif_rx).
		h.ipInput(ifc, slices.Clone(inner), true, depth+1)
		return
	}
	// No handler: RFC 1122 §3.2.2.1 protocol unreachable (IPv6: parameter
	// problem, unrecognized next header, RFC 4443 §3.4).
	h.dropIP(DropNoProto, ifc.index, pkt)
	if ip.v6 {
		h.sendICMPError(pkt, ip, icmp6ParamProblem, 1, uint32(6)) // pointer to the next header field
	} else {
		h.sendUnreachable(pkt, ip, unreachProto)
	}
}

// forward is Linux ip_forward / ip6_forward.
func (h *Host) forward(in *Interface, pkt []byte, ip ipHdr) {
	if ip.ttl <= 1 {
		h.dropIP(DropTTLExceeded, in.index, pkt)
		if ip.v6 {
			h.sendICMPError(pkt, ip, icmp6TimeExceeded, 0, 0)
		} else {
			h.sendICMPError(pkt, ip, icmpTimeExceeded, 0, 0)
		}
		return
	}
	r, ok := h.lookup(ip.dst)
	if !ok {
		h.dropIP(DropNoRoute, in.index, pkt)
		h.sendUnreachable(pkt, ip, unreachNet)
		return
	}
	out := h.Interface(r.IfIndex)
	if len(pkt) > out.MTU() {
		switch {
		case ip.v6:
			h.dropIP(DropFragNeeded, in.index, pkt)
			h.sendICMPError(pkt, ip, icmp6PacketTooBig, 0, uint32(out.MTU()))
			return
		case ip.df:
			h.dropIP(DropFragNeeded, in.index, pkt)
			h.sendICMPError(pkt, ip, icmpDestUnreach, unreachFragNeeded, uint32(out.MTU()))
			return
		}
	}
	fwd := slices.Clone(pkt)
	if ip.v6 {
		fwd[7]--
	} else {
		fwd[8]--
		ipv4HeaderChecksumFix(fwd)
	}
	h.ctr.forwarded.Add(1)
	h.transmitIP(out, r.nextHop(ip.dst), fwd, true)
}

// transmitIP sends an IP packet out of ifc towards nexthop, fragmenting an
// IPv4 packet without DF that exceeds the MTU (Linux ip_finish_output).
func (h *Host) transmitIP(ifc *Interface, nexthop netip.Addr, pkt []byte, forwarded bool) {
	if len(pkt) <= ifc.MTU() {
		h.neighOutput(ifc, nexthop, pkt, forwarded)
		return
	}
	ip, _ := parseIP(pkt, false)
	if ip.v6 || ip.df {
		h.dropIP(DropTooBig, ifc.index, pkt)
		return
	}
	for _, f := range fragment(pkt, ip, ifc.MTU()) {
		h.neighOutput(ifc, nexthop, f, forwarded)
	}
}

// sendIP builds an IP packet around payload and sends it: to the host
// itself through lo if dst is local, else by the routing table. src must
// be valid (the caller chose it, usually with SourceAddr, because the L4
// checksum depends on it).
func (h *Host) sendIP(src, dst netip.Addr, proto uint8, payload []byte, df bool) error {
	ttl := uint8(defaultTTL)
	if dst.IsMulticast() {
		ttl = 1 // IP_MULTICAST_TTL default (RFC 1112 §6.1)
	}
	var pkt []byte
	if dst.Is4() {
		pkt = make([]byte, ipv4HdrLen+len(payload))
		h.ipID++
		putIPv4Header(pkt, len(pkt), h.ipID, df, ttl, proto, src, dst)
		copy(pkt[ipv4HdrLen:], payload)
	} else {
		pkt = make([]byte, ipv6HdrLen+len(payload))
		putIPv6Header(pkt, len(payload), proto, ttl, src, dst)
		copy(pkt[ipv6HdrLen:], payload)
	}
	if h.IsLocal(dst) {
		h.loopback(pkt)
		return nil
	}
	r, ok := h.lookup(dst)
	if !ok {
		if !dst.IsMulticast() || len(h.ifaces) < 2 {
			h.dropIP(DropNoRoute, 0, pkt)
			return ErrNoRoute
		}
		r = Route{IfIndex: h.ifaces[1].index} // IP_MULTICAST_IF unset: the first interface
	}
	h.transmitIP(h.Interface(r.IfIndex), r.nextHop(dst), pkt, false)
	return nil
}

// fragment splits an IPv4 packet for an MTU (Linux ip_do_fragment): every
// fragment but the last carries a multiple of 8 payload bytes and MF; the
// header, options included, is copied to each.
func fragment(pkt []byte, ip ipHdr, mtu int) [][]byte {
	hdr := pkt[:ip.hlen]
	payload := pkt[ip.hlen:ip.tlen]
	chunk := (mtu - ip.hlen) &^ 7
	if chunk <= 0 {
		return nil
	}
	var out [][]byte
	for off := 0; off < len(payload); off += chunk {
		end := min(off+chunk, len(payload))
		f := make([]byte, ip.hlen+end-off)
		copy(f, hdr)
		copy(f[ip.hlen:], payload[off:end])
		put16(f[2:], uint16(len(f)))
		flags := uint16((ip.fragOff + off) / 8)
		if end < len(payload) || ip.mf {
			flags |= 0x2000
		}
		put16(f[6:], flags)
		ipv4HeaderChecksumFix(f)
		out = append(out, f)
	}
	return out
}

// IPv4 reassembly (Linux ip_fragment.c / inet_fragment.c).
const (
	// fragTimeout is net.ipv4.ipfrag_time.
	fragTimeout = 30 * time.Second
	// maxFragQueues bounds the packets under reassembly per host; Linux
	// bounds memory (ipfrag_high_thresh, 4 MB) instead.
	maxFragQueues = 64
)

type fragKey struct {
	src, dst netip.Addr
	id       uint32
	proto    uint8
}

type fragQueue struct {
	first []byte   // the offset-0 fragment's header, once seen
	parts [][]byte // payloads, indexed by offset/8 through offs
	offs  []int
	total int // payload length, once the last fragment is seen; -1 before
	timer *timer
	ifidx int
}

// reassemble adds a fragment and returns the whole packet when complete.
func (h *Host) reassemble(ifc *Interface, pkt []byte, ip ipHdr) ([]byte, bool) {
	k := fragKey{ip.src, ip.dst, ip.id, ip.proto}
	q := h.frags[k]
	if q == nil {
		if len(h.frags) >= maxFragQueues {
			h.dropIP(DropFragment, ifc.index, pkt)
			return nil, false
		}
		q = &fragQueue{total: -1, ifidx: ifc.index}
		h.frags[k] = q
		q.timer = h.n.afterFunc(fragTimeout, func() { h.fragExpire(k, q) })
	}
	payload := pkt[ip.hlen:ip.tlen]
	end := ip.fragOff + len(payload)
	if ip.mf && len(payload)%8 != 0 || end > 65535-ip.hlen {
		h.dropIP(DropFragment, ifc.index, pkt)
		return nil, false
	}
	if !ip.mf {
		if q.total >= 0 && q.total != end {
			h.dropIP(DropFragment, ifc.index, pkt)
			return nil, false
		}
		q.total = end
	}
	if slices.Contains(q.offs, ip.fragOff) {
		// A duplicate: keep the first copy, as RFC 5722 asks for IPv6.
		return nil, false
	}
	if ip.fragOff == 0 {
		q.first = slices.Clone(pkt[:ip.hlen])
	}
	q.offs = append(q.offs, ip.fragOff)
	q.parts = append(q.parts, slices.Clone(payload))
	if q.total < 0 || q.first == nil {
		return nil, false
	}
	// Complete when the parts, sorted, tile [0, total) without gaps.
	idx := make([]int, len(q.offs))
	for i := range idx {
		idx[i] = i
	}
	slices.SortFunc(idx, func(a, b int) int { return q.offs[a] - q.offs[b] })
	next := 0
	for _, i := range idx {
		if q.offs[i] > next {
			return nil, false // a hole
		}
		if q.offs[i] < next {
			// Overlap: Linux drops the whole datagram (RFC 5722 spirit).
			h.n.stopTimer(q.timer)
			delete(h.frags, k)
			h.dropIP(DropFragment, ifc.index, pkt)
			return nil, false
		}
		next += len(q.parts[i])
	}
	if next != q.total {
		return nil, false
	}
	h.n.stopTimer(q.timer)
	delete(h.frags, k)
	whole := make([]byte, len(q.first)+q.total)
	copy(whole, q.first)
	for _, i := range idx {
		copy(whole[len(q.first)+q.offs[i]:], q.parts[i])
	}
	put16(whole[2:], uint16(len(whole)))
	put16(whole[6:], be16(whole[6:])&0x4000) // keep DF, clear MF and offset
	ipv4HeaderChecksumFix(whole)
	h.ctr.reasm.Add(1)
	return whole, true
}

// fragExpire drops an incomplete datagram and, if its first fragment
// arrived, sends ICMP time exceeded / fragment reassembly time exceeded
// (RFC 792; Linux ip_expire).
func (h *Host) fragExpire(k fragKey, q *fragQueue) {
	if h.frags[k] != q {
		return
	}
	delete(h.frags, k)
	h.ctr.drops[DropFragment].Add(uint64(len(q.parts)))
	if q.first != nil {
		pkt := append(slices.Clone(q.first), q.parts[slices.Index(q.offs, 0)]...)
		put16(pkt[2:], uint16(len(pkt)))
		ipv4HeaderChecksumFix(pkt)
		if ip, r := parseIP(pkt, false); r == 0 {
			h.sendICMPError(pkt, ip, icmpTimeExceeded, 1, 0)
		}
	}
}

// errMessageTooBig is returned for a datagram larger than the path allows
// and that the host may not fragment (IPv6).
var errMessageTooBig = errors.New("lvslab: message too long")
