package lvslab

import (
	"fmt"
	"net/netip"
	"slices"
	"time"
)

// Neighbour resolution, after net/core/neighbour.c with the default
// parameters of net.ipv4.neigh.default / net.ipv6.neigh.default.
const (
	// neighRetrans is retrans_time_ms: the wait between solicitations.
	neighRetrans = time.Second
	// neighSolicits is mcast_solicit: broadcast solicitations before the
	// entry fails.
	neighSolicits = 3
	// neighQueueBytes bounds the packets waiting for an unresolved
	// neighbour: unres_qlen_bytes, SK_WMEM_MAX (212992) since Linux 3.3.
	// Linux counts skb truesize; the lab counts packet bytes.
	neighQueueBytes = 212992
)

// NeighState is the state of a neighbour cache entry.
type NeighState uint8

// Neighbour states (a subset of NUD_*).
const (
	NeighIncomplete NeighState = iota // solicitation sent, no answer yet
	NeighReachable                    // link-layer address known
	NeighFailed                       // resolution gave up (reported, then removed)
	NeighPermanent                    // added with AddNeighbour
)

// String returns the state's name as `ip neigh` prints it.
func (s NeighState) String() string {
	switch s {
	case NeighIncomplete:
		return "INCOMPLETE"
	case NeighReachable:
		return "REACHABLE"
	case NeighFailed:
		return "FAILED"
	case NeighPermanent:
		return "PERMANENT"
	}
	return fmt.Sprintf("NeighState(%d)", uint8(s))
}

// Neighbour is a neighbour cache entry.
type Neighbour struct {
	IfIndex int
	Addr    netip.Addr
	MAC     MAC // zero unless Reachable or Permanent
	State   NeighState
}

// Valid reports whether n has a usable MAC.
func (n Neighbour) Valid() bool { return n.State == NeighReachable || n.State == NeighPermanent }

type neighKey struct {
	ifindex int
	addr    netip.Addr
}

type neighEntry struct {
	Neighbour
	probes  int
	timer   *timer
	queue   []pendingPkt
	queued  int // bytes in queue
	waiters []func(MAC, bool)
}

type pendingPkt struct {
	pkt       []byte
	forwarded bool // send ICMP host unreachable if resolution fails
}

// Neighbours returns the neighbour cache, ordered by interface then address.
func (h *Host) Neighbours() []Neighbour {
	out := make([]Neighbour, 0, len(h.neigh))
	for _, e := range h.neigh {
		out = append(out, e.Neighbour)
	}
	slices.SortFunc(out, func(a, b Neighbour) int {
		if a.IfIndex != b.IfIndex {
			return a.IfIndex - b.IfIndex
		}
		return a.Addr.Compare(b.Addr)
	})
	return out
}

// Neighbour returns the cache entry for addr on ifindex.
func (h *Host) Neighbour(ifindex int, addr netip.Addr) (Neighbour, bool) {
	e, ok := h.neigh[neighKey{ifindex, addr.Unmap()}]
	if !ok {
		return Neighbour{}, false
	}
	return e.Neighbour, true
}

// AddNeighbour adds a permanent entry (`ip neigh add ... nud permanent`).
func (h *Host) AddNeighbour(ifindex int, addr netip.Addr, mac MAC) {
	e := h.neighEntry(ifindex, addr.Unmap())
	h.n.stopTimer(e.timer)
	e.MAC, e.State = mac, NeighPermanent
	h.neighResolved(e)
}

// FlushNeighbours empties the cache (`ip neigh flush all`), failing
// pending resolutions.
func (h *Host) FlushNeighbours() {
	for _, k := range h.neighKeys() {
		if e := h.neigh[k]; e.State == NeighIncomplete {
			h.neighFail(e)
		}
		delete(h.neigh, k)
	}
}

// neighKeys returns the cache keys in a deterministic order.
func (h *Host) neighKeys() []neighKey {
	keys := make([]neighKey, 0, len(h.neigh))
	for k := range h.neigh {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b neighKey) int {
		if a.ifindex != b.ifindex {
			return a.ifindex - b.ifindex
		}
		return a.addr.Compare(b.addr)
	})
	return keys
}

// SetNeighbourHook installs f, called whenever an entry becomes Reachable
// (or changes MAC), Permanent, or Failed: an adapter mirrors the cache into
// the data path's neighbour view with it. Nil removes the hook.
func (h *Host) SetNeighbourHook(f func(Neighbour)) { h.neighHook = f }

// Resolve asks the host for addr's MAC on ifindex. If the entry is known,
// done runs at once; otherwise the host solicits it (ARP request or
// neighbour solicitation) and done runs when it is resolved or fails
// (after 3 solicitations, 1 s apart, so within an Advance of 3 s).
func (h *Host) Resolve(ifindex int, addr netip.Addr, done func(mac MAC, ok bool)) {
	ifc := h.Interface(ifindex)
	addr = addr.Unmap()
	if ifc == nil || ifc.seg == nil {
		if done != nil {
			done(MAC{}, false)
		}
		return
	}
	e := h.neighEntry(ifindex, addr)
	if e.Valid() {
		if done != nil {
			done(e.MAC, true)
		}
		return
	}
	if done != nil {
		e.waiters = append(e.waiters, done)
	}
	if e.probes == 0 {
		h.solicit(ifc, e)
	}
}

// neighEntry returns the entry for (ifindex, addr), creating an incomplete
// one.
func (h *Host) neighEntry(ifindex int, addr netip.Addr) *neighEntry {
	k := neighKey{ifindex, addr}
	e := h.neigh[k]
	if e == nil {
		e = &neighEntry{Neighbour: Neighbour{IfIndex: ifindex, Addr: addr, State: NeighIncomplete}}
		h.neigh[k] = e
	}
	return e
}

// neighOutput sends an IP packet to nexthop on ifc, resolving its MAC
// first if needed (Linux neigh_resolve_output).
func (h *Host) neighOutput(ifc *Interface, nexthop netip.Addr, pkt []byte, forwarded bool) {
	et := uint16(etherTypeIPv4)
	if nexthop.Is6() {
		et = etherTypeIPv6
	}
	switch {
	case nexthop.IsMulticast():
		h.sendFrame(ifc, multicastMAC(nexthop), et, pkt)
		return
	case nexthop == limitedBroadcast || h.isSubnetBroadcast(ifc, nexthop):
		h.sendFrame(ifc, BroadcastMAC, et, pkt)
		return
	}
	e := h.neighEntry(ifc.index, nexthop)
	if e.Valid() {
		h.sendFrame(ifc, e.MAC, et, pkt)
		return
	}
	e.queue = append(e.queue, pendingPkt{pkt: pkt, forwarded: forwarded})
	e.queued += len(pkt)
	for e.queued > neighQueueBytes {
		old := e.queue[0]
		e.queue = e.queue[1:]
		e.queued -= len(old.pkt)
		h.dropIP(DropNoNeighbour, ifc.index, old.pkt)
	}
	if e.probes == 0 {
		h.solicit(ifc, e)
	}
}

// isSubnetBroadcast reports whether a is the broadcast address of one of
// ifc's IPv4 prefixes shorter than /31.
func (h *Host) isSubnetBroadcast(ifc *Interface, a netip.Addr) bool {
	if !a.Is4() {
		return false
	}
	for _, p := range ifc.addrs {
		if p.Addr().Is4() && p.Bits() < 31 && p.Contains(a) {
			b := p.Masked().Addr().As4()
			host := uint32(1)<<(32-p.Bits()) - 1
			v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3]) | host
			if a == netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}) {
				return true
			}
		}
	}
	return false
}

// solicit sends one ARP request or neighbour solicitation for e and arms
// the retry timer.
func (h *Host) solicit(ifc *Interface, e *neighEntry) {
	e.probes++
	if e.Addr.Is4() {
		h.sendARP(ifc, arpRequest, BroadcastMAC, h.arpSource(ifc, e.Addr), MAC{}, e.Addr)
	} else {
		h.sendNS(ifc, e.Addr)
	}
	if e.timer == nil {
		e.timer = h.n.afterFunc(neighRetrans, func() { h.neighTimeout(ifc, e) })
	} else {
		h.n.resetTimer(e.timer, neighRetrans)
	}
}

func (h *Host) neighTimeout(ifc *Interface, e *neighEntry) {
	if e.State != NeighIncomplete || h.neigh[neighKey{e.IfIndex, e.Addr}] != e {
		return
	}
	if e.probes < neighSolicits {
		h.solicit(ifc, e)
		return
	}
	h.neighFail(e)
}

// neighFail gives up on e: queued packets are dropped (forwarded ones get
// an ICMP host unreachable, as ip_forward's neighbour failure does through
// ipv4_link_failure), waiters learn, the entry goes.
func (h *Host) neighFail(e *neighEntry) {
	h.n.stopTimer(e.timer)
	e.State = NeighFailed
	delete(h.neigh, neighKey{e.IfIndex, e.Addr})
	q, w := e.queue, e.waiters
	e.queue, e.waiters, e.queued = nil, nil, 0
	for _, p := range q {
		h.dropIP(DropNoNeighbour, e.IfIndex, p.pkt)
		if p.forwarded {
			if ip, r := parseIP(p.pkt, true); r == 0 {
				h.sendUnreachable(p.pkt, ip, unreachHost)
			}
		}
	}
	for _, f := range w {
		f(MAC{}, false)
	}
	if h.neighHook != nil {
		h.neighHook(e.Neighbour)
	}
}

// neighUpdate records a link-layer address learnt from the wire. create
// says whether a missing entry may be created (a request for us, or a
// solicited answer); otherwise only known entries change (arp_accept=0).
func (h *Host) neighUpdate(ifc *Interface, addr netip.Addr, mac MAC, create bool) {
	k := neighKey{ifc.index, addr}
	e := h.neigh[k]
	if e == nil {
		if !create {
			return
		}
		e = h.neighEntry(ifc.index, addr)
	}
	if e.State == NeighPermanent || (e.State == NeighReachable && e.MAC == mac) {
		return
	}
	h.n.stopTimer(e.timer)
	e.MAC, e.State = mac, NeighReachable
	h.neighResolved(e)
}

// neighResolved flushes e's queue and waiters.
func (h *Host) neighResolved(e *neighEntry) {
	e.probes = 0
	ifc := h.Interface(e.IfIndex)
	q, w := e.queue, e.waiters
	e.queue, e.waiters, e.queued = nil, nil, 0
	et := uint16(etherTypeIPv4)
	if e.Addr.Is6() {
		et = etherTypeIPv6
	}
	for _, p := range q {
		h.sendFrame(ifc, e.MAC, et, p.pkt)
	}
	for _, f := range w {
		f(e.MAC, true)
	}
	if h.neighHook != nil {
		h.neighHook(e.Neighbour)
	}
}

// ARP (RFC 826) for Ethernet and IPv4:
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|      Hardware type = 1        |     Protocol type = 0x0800    |
//	|  HW len = 6   | Proto len = 4 |           Operation           |
//	|                 Sender hardware address (6)                   |
//	|                               |  Sender protocol address (4)  |
//	|                               |  Target hardware address (6)  |
//	|                                                               |
//	|                  Target protocol address (4)                  |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
const (
	arpLen     = 28
	arpRequest = 1
	arpReply   = 2
)

// arpSource picks the sender address of a request for target on ifc, as
// arp_announce=2 does: an address of ifc in target's subnet, else ifc's
// first IPv4 address. Never a loopback address such as a DR VIP.
func (h *Host) arpSource(ifc *Interface, target netip.Addr) netip.Addr {
	first := netip.Addr{}
	for _, p := range ifc.addrs {
		if !p.Addr().Is4() {
			continue
		}
		if p.Contains(target) {
			return p.Addr()
		}
		if !first.IsValid() {
			first = p.Addr()
		}
	}
	if !first.IsValid() {
		first = netip.IPv4Unspecified()
	}
	return first
}

func (h *Host) sendARP(ifc *Interface, op uint16, dst MAC, spa netip.Addr, tha MAC, tpa netip.Addr) {
	b := make([]byte, arpLen)
	put16(b[0:], 1) // Ethernet
	put16(b[2:], etherTypeIPv4)
	b[4], b[5] = 6, 4
	put16(b[6:], op)
	copy(b[8:], ifc.mac[:])
	putAddr(b[14:], spa)
	copy(b[18:], tha[:])
	putAddr(b[24:], tpa)
	h.sendFrame(ifc, dst, etherTypeARP, b)
}

// arpInput is Linux arp_process, reduced to what the lab needs.
func (h *Host) arpInput(ifc *Interface, b []byte) {
	if ifc.seg == nil {
		return
	}
	if len(b) < arpLen || be16(b[0:]) != 1 || be16(b[2:]) != etherTypeIPv4 || b[4] != 6 || b[5] != 4 {
		h.drop(DropMalformed, ifc.index, b)
		return
	}
	op := be16(b[6:])
	sha, spa := macAt(b[8:]), addr4At(b[14:])
	tpa := addr4At(b[24:])
	if sha.IsMulticast() || spa.IsMulticast() {
		return
	}
	forUs := h.arpAnswers(ifc, tpa)
	switch op {
	case arpRequest:
		if spa.IsUnspecified() {
			// An address probe (RFC 5227): answer, learn nothing.
			if forUs {
				h.sendARP(ifc, arpReply, sha, tpa, sha, spa)
			}
			return
		}
		// A request for us creates the sender's entry; any other
		// (gratuitous ARP included) only refreshes a known one.
		h.neighUpdate(ifc, spa, sha, forUs)
		if forUs {
			h.sendARP(ifc, arpReply, sha, tpa, sha, spa)
		}
	case arpReply:
		h.neighUpdate(ifc, spa, sha, false)
	}
}

// arpAnswers reports whether the host answers ARP for a on ifc:
// arp_ignore=1 (address on ifc) unless ARPAnyLocal (arp_ignore=0).
func (h *Host) arpAnswers(ifc *Interface, a netip.Addr) bool {
	if h.cfg.ARPAnyLocal {
		return h.IsLocal(a) && !a.IsLoopback()
	}
	return ifc.hasAddr(a)
}

// Neighbour discovery (RFC 4861), solicitation and advertisement only.
const (
	icmp6NS = 135
	icmp6NA = 136
	// ndHopLimit: "The IP Hop Limit field has a value of 255" — ND
	// messages with any other value are discarded (RFC 4861 §7.1.1).
	ndHopLimit = 255
	ndOptSLLA  = 1 // source link-layer address option
	ndOptTLLA  = 2 // target link-layer address option
	naRouter   = 0x80
	naSolicit  = 0x40
	naOverride = 0x20
)

// ndSource picks the source of a solicitation for target on ifc: an IPv6
// address of ifc in target's prefix, else its first IPv6 address. (Linux
// uses the link-local address; the lab has none unless configured.)
func (h *Host) ndSource(ifc *Interface, target netip.Addr) netip.Addr {
	first := netip.Addr{}
	for _, p := range ifc.addrs {
		if !p.Addr().Is6() {
			continue
		}
		if p.Contains(target) {
			return p.Addr()
		}
		if !first.IsValid() {
			first = p.Addr()
		}
	}
	if !first.IsValid() {
		first = netip.IPv6Unspecified()
	}
	return first
}

// sendNS multicasts a neighbour solicitation for target (RFC 4861 §4.3):
//
//	| Type=135 | Code=0 | Checksum | Reserved(4) | Target Address(16) | Options...
func (h *Host) sendNS(ifc *Interface, target netip.Addr) {
	src := h.ndSource(ifc, target)
	msg := make([]byte, 24, 32)
	msg[0] = icmp6NS
	putAddr(msg[8:], target)
	if !src.IsUnspecified() {
		msg = append(msg, ndOptSLLA, 1) // length in units of 8 octets
		msg = append(msg, ifc.mac[:]...)
	}
	dst := solicitedNode(target)
	h.sendND(ifc, src, dst, multicastMAC(dst), msg)
}

// sendNA answers a solicitation (RFC 4861 §4.4, §7.2.4).
func (h *Host) sendNA(ifc *Interface, src, dst netip.Addr, dstMAC MAC, target netip.Addr, solicited bool) {
	msg := make([]byte, 24, 32)
	msg[0] = icmp6NA
	flags := byte(naOverride)
	if solicited {
		flags |= naSolicit
	}
	if h.cfg.Forwarding {
		flags |= naRouter
	}
	msg[4] = flags
	putAddr(msg[8:], target)
	msg = append(msg, ndOptTLLA, 1)
	msg = append(msg, ifc.mac[:]...)
	h.sendND(ifc, src, dst, dstMAC, msg)
}

func (h *Host) sendND(ifc *Interface, src, dst netip.Addr, dstMAC MAC, msg []byte) {
	pkt := make([]byte, ipv6HdrLen+len(msg))
	putIPv6Header(pkt, len(msg), protoICMPv6, ndHopLimit, src, dst)
	copy(pkt[ipv6HdrLen:], msg)
	put16(pkt[ipv6HdrLen+2:], l4Checksum(src, dst, protoICMPv6, pkt[ipv6HdrLen:]))
	h.sendFrame(ifc, dstMAC, etherTypeIPv6, pkt)
}

// ndInput handles a neighbour solicitation or advertisement (checksum
// already verified).
func (h *Host) ndInput(ifc *Interface, ip ipHdr, msg []byte) {
	if ifc.seg == nil || ip.ttl != ndHopLimit || len(msg) < 24 {
		return
	}
	target := addr16At(msg[8:])
	var lla MAC
	hasLLA := false
	for opts := msg[24:]; len(opts) >= 8; {
		l := int(opts[1]) * 8
		if l == 0 || l > len(opts) {
			return
		}
		if (msg[0] == icmp6NS && opts[0] == ndOptSLLA) || (msg[0] == icmp6NA && opts[0] == ndOptTLLA) {
			lla, hasLLA = macAt(opts[2:]), true
		}
		opts = opts[l:]
	}
	switch msg[0] {
	case icmp6NS:
		if target.IsMulticast() {
			return
		}
		// Linux ndisc_recv_ns answers for addresses of the receiving
		// device only (ipv6_chk_addr with dev), never for lo's.
		forUs := ifc.hasAddr(target)
		if ip.src.IsUnspecified() {
			// Duplicate address detection: answer to all-nodes.
			if forUs {
				h.sendNA(ifc, target, allNodes, multicastMAC(allNodes), target, false)
			}
			return
		}
		if hasLLA {
			h.neighUpdate(ifc, ip.src, lla, forUs)
		}
		if forUs {
			mac, ok := lla, hasLLA
			if !ok {
				if n, found := h.Neighbour(ifc.index, ip.src); found && n.Valid() {
					mac, ok = n.MAC, true
				}
			}
			if ok {
				h.sendNA(ifc, target, ip.src, mac, target, true)
			}
		}
	case icmp6NA:
		if hasLLA {
			solicited := msg[4]&naSolicit != 0
			override := msg[4]&naOverride != 0
			if e, ok := h.neigh[neighKey{ifc.index, target}]; ok && (e.State == NeighIncomplete || override || solicited) {
				h.neighUpdate(ifc, target, lla, false)
			}
		}
	}
}
