package lvslab

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
)

// Route is an entry of a host's routing table (Linux's main table, without
// metrics or policy).
type Route struct {
	Dst     netip.Prefix // destination network; 0.0.0.0/0 or ::/0 for a default route
	Gateway netip.Addr   // next hop; zero for an on-link (connected) route
	IfIndex int          // outgoing interface
	Src     netip.Addr   // preferred source address; zero to choose from IfIndex
}

// String formats r like `ip route`.
func (r Route) String() string {
	s := r.Dst.String()
	if r.Gateway.IsValid() {
		s += " via " + r.Gateway.String()
	}
	s += fmt.Sprintf(" dev %d", r.IfIndex)
	if r.Src.IsValid() {
		s += " src " + r.Src.String()
	}
	return s
}

// ErrNoRoute is returned when a host has no route to a destination.
var ErrNoRoute = errors.New("lvslab: no route to host")

// AddRoute adds a static route. With IfIndex 0 the interface is the one of
// the connected route that reaches Gateway, which must then be on-link.
func (h *Host) AddRoute(r Route) error {
	r.Dst = r.Dst.Masked()
	r.Gateway = r.Gateway.Unmap()
	if !r.Dst.IsValid() {
		return fmt.Errorf("lvslab: %s: add route: invalid destination", h.name)
	}
	if r.IfIndex == 0 {
		if !r.Gateway.IsValid() {
			return fmt.Errorf("lvslab: %s: add route %v: needs a gateway or an interface", h.name, r.Dst)
		}
		c, ok := h.lookup(r.Gateway)
		if !ok || c.Gateway.IsValid() {
			return fmt.Errorf("lvslab: %s: add route %v: gateway %v is not on-link: %w", h.name, r.Dst, r.Gateway, ErrNoRoute)
		}
		r.IfIndex = c.IfIndex
	}
	if ifc := h.Interface(r.IfIndex); ifc == nil || ifc.seg == nil {
		return fmt.Errorf("lvslab: %s: add route %v: ifindex %d: %w", h.name, r.Dst, r.IfIndex, errNoInterface)
	}
	h.routes = append(h.routes, r)
	return nil
}

// SetDefaultGateway adds a default route via gw (IPv4 or IPv6 by gw).
func (h *Host) SetDefaultGateway(gw netip.Addr) error {
	dst := netip.PrefixFrom(netip.IPv4Unspecified(), 0)
	if gw.Unmap().Is6() {
		dst = netip.PrefixFrom(netip.IPv6Unspecified(), 0)
	}
	return h.AddRoute(Route{Dst: dst, Gateway: gw})
}

// Routes returns the routing table, connected routes included, in the
// order added.
func (h *Host) Routes() []Route { return slices.Clone(h.routes) }

// RouteTo returns the route the host would use for dst (longest prefix;
// among equal prefixes, the first added).
func (h *Host) RouteTo(dst netip.Addr) (Route, bool) { return h.lookup(dst.Unmap()) }

func (h *Host) lookup(dst netip.Addr) (Route, bool) {
	best := -1
	for i, r := range h.routes {
		if r.Dst.Addr().Is4() != dst.Is4() || !r.Dst.Contains(dst) {
			continue
		}
		if best < 0 || r.Dst.Bits() > h.routes[best].Dst.Bits() {
			best = i
		}
	}
	if best < 0 {
		return Route{}, false
	}
	return h.routes[best], true
}

// nextHop is where a packet routed by r towards dst goes on the link.
func (r Route) nextHop(dst netip.Addr) netip.Addr {
	if r.Gateway.IsValid() {
		return r.Gateway
	}
	return dst
}

// sourceFor picks the source address for a packet to dst sent by route r
// (Linux inet_select_addr / ipv6_dev_get_saddr, simplified): the route's
// preferred source, else an address of the outgoing interface whose prefix
// holds the next hop, else its first address of the family, else the
// first such address of any Ethernet interface.
func (h *Host) sourceFor(r Route, dst netip.Addr) netip.Addr {
	if r.Src.IsValid() {
		return r.Src
	}
	nh := r.nextHop(dst)
	if ifc := h.Interface(r.IfIndex); ifc != nil {
		for _, p := range ifc.addrs {
			if p.Contains(nh) {
				return p.Addr()
			}
		}
		for _, p := range ifc.addrs {
			if p.Addr().Is4() == dst.Is4() {
				return p.Addr()
			}
		}
	}
	for _, ifc := range h.ifaces[1:] {
		for _, p := range ifc.addrs {
			if p.Addr().Is4() == dst.Is4() {
				return p.Addr()
			}
		}
	}
	return netip.Addr{}
}

// SourceAddr returns the source address the host would use towards dst,
// or false if it has no route.
func (h *Host) SourceAddr(dst netip.Addr) (netip.Addr, bool) {
	dst = dst.Unmap()
	if h.IsLocal(dst) {
		return dst, true
	}
	r, ok := h.lookup(dst)
	if !ok {
		return netip.Addr{}, false
	}
	src := h.sourceFor(r, dst)
	return src, src.IsValid()
}

// PathMTU returns the MTU the host uses for packets to dst: the outgoing
// interface's, lowered by any frag-needed / packet-too-big learnt since.
func (h *Host) PathMTU(dst netip.Addr) int {
	dst = dst.Unmap()
	if h.IsLocal(dst) {
		return h.Loopback().MTU()
	}
	r, ok := h.lookup(dst)
	if !ok {
		return 0
	}
	mtu := h.Interface(r.IfIndex).MTU()
	if p, ok := h.pmtu[dst]; ok && p < mtu {
		mtu = p
	}
	return mtu
}

// learnPMTU records a smaller path MTU towards dst (Linux
// __ip_rt_update_pmtu / rt6_update_exception_route), ignoring values under
// the protocol minimum. It reports whether the path MTU went down.
func (h *Host) learnPMTU(dst netip.Addr, mtu int) bool {
	floor := minMTUv4
	if dst.Is6() {
		floor = minMTUv6
	}
	if mtu < floor {
		mtu = floor
	}
	if mtu >= h.PathMTU(dst) {
		return false
	}
	h.pmtu[dst] = mtu
	return true
}
