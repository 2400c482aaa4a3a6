package link

import (
	"fmt"
	"net/netip"

	"golvs/internal/flow"
	"golvs/internal/header"
)

// Match selects packets by one end's address, protocol and port. It has
// the shape and the meaning of the host's ingress rule's matches
// (hostnet.Match), so that the daemon builds both from the same list.
type Match struct {
	// Addr is an address (a VIP, a real server) or a network (the
	// destinations of a firewall-mark class).
	Addr netip.Prefix
	// Proto is TCP, UDP or SCTP (6, 17, 132); 0 means all three.
	Proto uint8
	// Port with PortLast 0 is one port; Port..PortLast a range; 0 and 0
	// every port (a port-0 persistent service, a mark class without
	// ports). A packet without ports (a fragment that is not the first)
	// matches only every-port matches, as nftables' `th dport` does not
	// match it.
	Port, PortLast uint16
}

// ports returns m's inclusive port range.
func (m Match) ports() (lo, hi uint16) {
	switch {
	case m.Port == 0 && m.PortLast == 0:
		return 0, 0xffff
	case m.PortLast == 0:
		return m.Port, m.Port
	}
	return m.Port, m.PortLast
}

// hasProto reports whether m covers protocol p.
func (m Match) hasProto(p uint8) bool {
	if m.Proto == 0 {
		return p == header.ProtoTCP || p == header.ProtoUDP || p == header.ProtoSCTP
	}
	return m.Proto == p
}

// covers reports whether m matches address a, protocol p and, if
// hasPort, port.
func (m Match) covers(a netip.Addr, p uint8, port uint16, hasPort bool) bool {
	if !m.hasProto(p) || !m.Addr.Contains(a) {
		return false
	}
	lo, hi := m.ports()
	if !hasPort {
		return lo == 0 && hi == 0xffff
	}
	return port >= lo && port <= hi
}

// normalize returns m with an IPv4-mapped prefix turned into the IPv4 one
// and its host bits cleared, or an error if it cannot match anything
// sensible.
func (m Match) normalize() (Match, error) {
	if !m.Addr.IsValid() {
		return m, fmt.Errorf("link: match %+v: no address", m)
	}
	switch m.Proto {
	case 0, header.ProtoTCP, header.ProtoUDP, header.ProtoSCTP:
	default:
		return m, fmt.Errorf("link: match %v: protocol %d is not TCP, UDP or SCTP", m.Addr, m.Proto)
	}
	if m.PortLast != 0 && m.PortLast < m.Port {
		return m, fmt.Errorf("link: match %v: port range %d-%d", m.Addr, m.Port, m.PortLast)
	}
	a, bits := m.Addr.Addr(), m.Addr.Bits()
	if a.Zone() != "" {
		return m, fmt.Errorf("link: match %v: zoned address", m.Addr)
	}
	if a.Is4In6() {
		if bits < 96 {
			return m, fmt.Errorf("link: match %v: spans more than the IPv4-mapped range", m.Addr)
		}
		a, bits = a.Unmap(), bits-96
	}
	m.Addr = netip.PrefixFrom(a, bits).Masked()
	return m, nil
}

// Filter says which frames a link hands the data path: the traffic of the
// virtual services, the replies of NAT real servers, and ICMP errors about
// either. Everything else stays with the host's stack alone. It is plain
// data; Compile checks it.
//
// The host's ingress rule (package hostnet) keeps from the host's stack
// exactly the frames Taken reports, and must be built from the same
// Services, Replies and Local; a frame that a link passes and the
// pipeline returns to the host is re-injected only if it was Taken (see
// the package doc).
type Filter struct {
	// Services match destinations: VIP, protocol, port, or the classes of
	// firewall-mark services.
	Services []Match
	// Replies match the sources of NAT real servers: their replies to
	// clients.
	Replies []Match
	// Local lists the director's own addresses (as the kernel's `fib
	// daddr type local` sees them). A packet from a real server to one of
	// them is not a reply to a client (a health check's answer, the
	// director's own connection) and is not matched; a service's traffic
	// is Taken only when its destination is one of them.
	Local []netip.Addr
	// ICMPErrors passes the ICMP errors (IPv4 destination unreachable,
	// source quench, time exceeded; every ICMPv6 error) whose quoted
	// packet is from a Services address (the director's packet to a
	// client) or to a Services or Replies address (a client's packet the
	// director forwarded): the errors IPVS relates to connections
	// (ip_vs_in_icmp, ip_vs_out_icmp).
	ICMPErrors bool
}

// Class is what a Filter makes of a frame.
type Class uint8

const (
	// ClassNone: the frame is not for the data path.
	ClassNone Class = iota
	// ClassService: to a service (Services).
	ClassService
	// ClassReply: from a NAT real server (Replies) to an address that is
	// not Local.
	ClassReply
	// ClassICMP: an ICMP error about a packet from a Services address or
	// to a Services or Replies address.
	ClassICMP
)

func (c Class) String() string {
	switch c {
	case ClassNone:
		return "none"
	case ClassService:
		return "service"
	case ClassReply:
		return "reply"
	case ClassICMP:
		return "icmp"
	}
	return "class?"
}

// Compiled is a Filter checked and indexed for matching frames without
// allocating. It is immutable and safe for concurrent use.
type Compiled struct {
	f Filter // normalized

	// exact[side] holds the single-address, single-protocol, single-port
	// matches, which a map finds in one lookup (a director has a few to a
	// few thousand); wild[side] the others, scanned.
	exact [2]map[matchKey]struct{}
	wild  [2][]Match
	local map[netip.Addr]struct{}
	// svcNets and allNets are the prefixes of Services and of both
	// sides, for ICMP errors.
	svcNets, allNets []netip.Prefix
}

const (
	sideService = 0
	sideReply   = 1
)

type matchKey struct {
	addr  netip.Addr
	proto uint8
	port  uint16
}

// Compile checks f and returns it compiled. The Filter is copied.
func (f *Filter) Compile() (*Compiled, error) {
	c := &Compiled{local: map[netip.Addr]struct{}{}}
	for side, ms := range [2][]Match{f.Services, f.Replies} {
		c.exact[side] = map[matchKey]struct{}{}
		for _, m := range ms {
			n, err := m.normalize()
			if err != nil {
				return nil, err
			}
			if side == sideService {
				c.f.Services = append(c.f.Services, n)
			} else {
				c.f.Replies = append(c.f.Replies, n)
			}
			if !containsPrefix(c.allNets, n.Addr) {
				c.allNets = append(c.allNets, n.Addr)
			}
			if side == sideService && !containsPrefix(c.svcNets, n.Addr) {
				c.svcNets = append(c.svcNets, n.Addr)
			}
			lo, hi := n.ports()
			if n.Addr.IsSingleIP() && n.Proto != 0 && lo == hi {
				c.exact[side][matchKey{n.Addr.Addr(), n.Proto, lo}] = struct{}{}
			} else {
				c.wild[side] = append(c.wild[side], n)
			}
		}
	}
	for _, a := range f.Local {
		if !a.IsValid() {
			return nil, fmt.Errorf("link: invalid local address")
		}
		a = a.Unmap()
		c.f.Local = append(c.f.Local, a)
		c.local[a] = struct{}{}
	}
	c.f.ICMPErrors = f.ICMPErrors
	return c, nil
}

func containsPrefix(ps []netip.Prefix, p netip.Prefix) bool {
	for _, q := range ps {
		if q == p {
			return true
		}
	}
	return false
}

// Filter returns the normalized filter c was compiled from (the caller
// must not modify its slices).
func (c *Compiled) Filter() *Filter { return &c.f }

// matchSide reports whether one end of a packet (address a, protocol p,
// port) matches side.
func (c *Compiled) matchSide(side int, a netip.Addr, p uint8, port uint16, hasPort bool) bool {
	if hasPort {
		if _, ok := c.exact[side][matchKey{a, p, port}]; ok {
			return true
		}
	}
	for i := range c.wild[side] {
		if c.wild[side][i].covers(a, p, port, hasPort) {
			return true
		}
	}
	return false
}

// IsLocal reports whether a is one of the filter's Local addresses.
func (c *Compiled) IsLocal(a netip.Addr) bool {
	_, ok := c.local[a]
	return ok
}

// service reports whether p is to a service.
func (c *Compiled) service(p *flow.Parsed) bool {
	return c.matchSide(sideService, p.Tuple.DstAddr(), p.Tuple.Proto, p.Tuple.DstPort, p.HasPorts)
}

// reply reports whether p is from a NAT real server to a non-local
// address.
func (c *Compiled) reply(p *flow.Parsed) bool {
	return c.matchSide(sideReply, p.Tuple.SrcAddr(), p.Tuple.Proto, p.Tuple.SrcPort, p.HasPorts) &&
		!c.IsLocal(p.Tuple.DstAddr())
}

// Class returns what the filter makes of a decoded frame: this is the
// specification the links' kernel filters implement. Frames that did not
// decode as IP, and frames with a VLAN tag (which belong to the VLAN's
// own interface), are ClassNone.
func (c *Compiled) Class(p *flow.Parsed) Class {
	if p.Reason != flow.ReasonNone || !p.Tuple.IsValid() || p.VLAN {
		return ClassNone
	}
	if c.f.ICMPErrors && relevantICMPError(p) && p.Inner.Tuple.IsValid() {
		if inNets(c.svcNets, p.Inner.Tuple.SrcAddr()) || inNets(c.allNets, p.Inner.Tuple.DstAddr()) {
			return ClassICMP
		}
	}
	if c.service(p) {
		return ClassService
	}
	if c.reply(p) {
		return ClassReply
	}
	return ClassNone
}

// Taken reports whether the host's ingress rule keeps the frame from the
// host's stack: a service's packet to a local address, or a NAT real
// server's packet to a non-local one (hostnet's `fib daddr type local`
// conditions). Such a frame reaches the host only if the link re-injects
// it.
func (c *Compiled) Taken(p *flow.Parsed) bool {
	if p.Reason != flow.ReasonNone || !p.Tuple.IsValid() || p.VLAN {
		return false
	}
	if c.service(p) && c.IsLocal(p.Tuple.DstAddr()) {
		return true
	}
	return c.reply(p)
}

// inNets reports whether a is in one of nets.
func inNets(nets []netip.Prefix, a netip.Addr) bool {
	for _, n := range nets {
		if n.Contains(a) {
			return true
		}
	}
	return false
}

// relevantICMPError reports the ICMP errors IPVS relates to connections:
// IPv4 destination unreachable (3), source quench (4) and time exceeded
// (11); every ICMPv6 error (type below 128). (The data path's own
// relevantICMP.)
func relevantICMPError(p *flow.Parsed) bool {
	if !p.ICMPError {
		return false
	}
	switch p.Tuple.Proto {
	case header.ProtoICMPv4:
		return p.ICMPType == 3 || p.ICMPType == 4 || p.ICMPType == 11
	case header.ProtoICMPv6:
		return p.ICMPType < 128
	}
	return false
}
