package hostnet

import (
	"cmp"
	"fmt"
	"net"
	"net/netip"
	"slices"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"golvs/internal/datapath"
)

// Snapshot is the host configuration a datapath.View is built from: the
// data path's interfaces with their addresses, the main routing table,
// and the addresses of the host that sit on other interfaces (VIPs on lo).
// A Snapshot is immutable once built.
type Snapshot struct {
	Interfaces []datapath.Interface // by index
	Routes     []datapath.Route     // main table, IPv4 then IPv6, lowest metric first
	Local      []netip.Addr         // addresses on interfaces not in Interfaces
}

// View builds the data path's view of s.
func (s *Snapshot) View() *datapath.View {
	return datapath.NewView(s.Interfaces, s.Routes, s.Local...)
}

// Equal reports whether s and o describe the same configuration.
func (s *Snapshot) Equal(o *Snapshot) bool {
	if s == nil || o == nil {
		return s == o
	}
	return slices.EqualFunc(s.Interfaces, o.Interfaces, func(a, b datapath.Interface) bool {
		return a.Index == b.Index && a.Name == b.Name && a.MAC == b.MAC && a.MTU == b.MTU && slices.Equal(a.Addrs, b.Addrs)
	}) && slices.Equal(s.Routes, o.Routes) && slices.Equal(s.Local, o.Local)
}

// Interface returns the interface named name, or nil.
func (s *Snapshot) Interface(name string) *datapath.Interface {
	for i := range s.Interfaces {
		if s.Interfaces[i].Name == name {
			return &s.Interfaces[i]
		}
	}
	return nil
}

// Snapshot reads the host's links, addresses and main routing table. The
// data path's interfaces are those named in ifaces that exist, or, with
// ifaces empty, every interface that is up, Ethernet, not loopback and
// not enslaved to a bridge or bond (whose frames the master sees).
func (h *Host) Snapshot(ifaces []string) (*Snapshot, error) {
	links, err := h.nl.LinkList()
	if err != nil {
		return nil, fmt.Errorf("hostnet: list links: %w", err)
	}
	addrs, err := h.nl.AddrList(nil, netlink.FAMILY_ALL)
	if err != nil {
		return nil, fmt.Errorf("hostnet: list addresses: %w", err)
	}
	var routes []netlink.Route
	for _, fam := range []int{netlink.FAMILY_V4, netlink.FAMILY_V6} {
		rs, err := h.nl.RouteListFiltered(fam, &netlink.Route{Table: unix.RT_TABLE_MAIN}, netlink.RT_FILTER_TABLE)
		if err != nil {
			return nil, fmt.Errorf("hostnet: list routes: %w", err)
		}
		routes = append(routes, rs...)
	}
	return buildSnapshot(links, addrs, routes, ifaces), nil
}

// buildSnapshot turns rtnetlink dumps into a Snapshot.
func buildSnapshot(links []netlink.Link, addrs []netlink.Addr, routes []netlink.Route, want []string) *Snapshot {
	s := &Snapshot{}
	byIndex := map[int]int{} // ifindex -> position in s.Interfaces
	for _, l := range links {
		a := l.Attrs()
		if !wanted(a, want) {
			continue
		}
		ifc := datapath.Interface{Index: a.Index, Name: a.Name, MTU: a.MTU}
		copy(ifc.MAC[:], a.HardwareAddr)
		s.Interfaces = append(s.Interfaces, ifc)
	}
	slices.SortFunc(s.Interfaces, func(a, b datapath.Interface) int { return cmp.Compare(a.Index, b.Index) })
	for i := range s.Interfaces {
		byIndex[s.Interfaces[i].Index] = i
	}
	for _, a := range addrs {
		p, ok := prefixOf(a.IPNet)
		// A tentative or failed IPv6 address is not the host's yet:
		// the kernel does not deliver to it.
		if !ok || a.Flags&(unix.IFA_F_TENTATIVE|unix.IFA_F_DADFAILED) != 0 {
			continue
		}
		if i, ok := byIndex[a.LinkIndex]; ok {
			s.Interfaces[i].Addrs = append(s.Interfaces[i].Addrs, p)
		} else if !slices.Contains(s.Local, p.Addr()) {
			s.Local = append(s.Local, p.Addr())
		}
	}
	// IPv4 first, then the lowest metric first among routes to one
	// prefix (the kernel's preference); NewView's sort by prefix length
	// is stable and keeps this order within a length.
	type ranked struct {
		rt     datapath.Route
		metric int
	}
	var rs []ranked
	for _, r := range routes {
		if rt, ok := routeOf(r); ok {
			rs = append(rs, ranked{rt, r.Priority})
		}
	}
	slices.SortStableFunc(rs, func(a, b ranked) int {
		if a4, b4 := a.rt.Dst.Addr().Is4(), b.rt.Dst.Addr().Is4(); a4 != b4 {
			if a4 {
				return -1
			}
			return 1
		}
		return cmp.Compare(a.metric, b.metric)
	})
	for _, r := range rs {
		s.Routes = append(s.Routes, r.rt)
	}
	return s
}

// wanted reports whether link a is one of the data path's interfaces.
func wanted(a *netlink.LinkAttrs, want []string) bool {
	if len(want) > 0 {
		return slices.Contains(want, a.Name)
	}
	return a.Flags&net.FlagUp != 0 && a.Flags&net.FlagLoopback == 0 &&
		len(a.HardwareAddr) == 6 && a.EncapType == "ether" && a.MasterIndex == 0
}

// prefixOf converts an address with its mask.
func prefixOf(n *net.IPNet) (netip.Prefix, bool) {
	if n == nil {
		return netip.Prefix{}, false
	}
	ip, ok := netip.AddrFromSlice(n.IP)
	if !ok {
		return netip.Prefix{}, false
	}
	ip = ip.Unmap()
	ones, bits := n.Mask.Size()
	if bits != ip.BitLen() {
		return netip.Prefix{}, false
	}
	return netip.PrefixFrom(ip, ones), true
}

// ipOf converts a netlink IP; an empty one is the zero Addr.
func ipOf(ip net.IP) netip.Addr {
	a, ok := netip.AddrFromSlice(ip)
	if !ok {
		return netip.Addr{}
	}
	return a.Unmap()
}

// routeOf converts a main-table route. Unreachable, blackhole, prohibit
// and throw routes become routes with no interface (index 0), which the
// data path treats as "no route", as the kernel would refuse the packet.
// Of a multipath route only the first hop is kept (the kernel hashes
// flows over all of them; the data path has one next hop per route).
func routeOf(r netlink.Route) (datapath.Route, bool) {
	if r.Flags&unix.RTNH_F_DEAD != 0 {
		return datapath.Route{}, false
	}
	var rt datapath.Route
	if r.Dst != nil {
		p, ok := prefixOf(r.Dst)
		if !ok {
			return rt, false
		}
		rt.Dst = p
	} else {
		switch r.Family {
		case netlink.FAMILY_V4:
			rt.Dst = netip.PrefixFrom(netip.IPv4Unspecified(), 0)
		case netlink.FAMILY_V6:
			rt.Dst = netip.PrefixFrom(netip.IPv6Unspecified(), 0)
		default:
			return rt, false
		}
	}
	rt.Dst = rt.Dst.Masked()
	switch r.Type {
	case unix.RTN_UNICAST:
	case unix.RTN_UNREACHABLE, unix.RTN_BLACKHOLE, unix.RTN_PROHIBIT, unix.RTN_THROW:
		return rt, true
	default:
		return rt, false // local, broadcast, multicast, anycast...
	}
	rt.Ifindex = r.LinkIndex
	rt.Gateway = ipOf(r.Gw)
	if !rt.Gateway.IsValid() {
		if v, ok := r.Via.(*netlink.Via); ok {
			rt.Gateway = ipOf(v.Addr)
		}
	}
	if len(r.MultiPath) > 0 && r.MultiPath[0] != nil {
		nh := r.MultiPath[0]
		rt.Ifindex = nh.LinkIndex
		rt.Gateway = ipOf(nh.Gw)
		if !rt.Gateway.IsValid() {
			if v, ok := nh.Via.(*netlink.Via); ok {
				rt.Gateway = ipOf(v.Addr)
			}
		}
	}
	rt.Src = ipOf(r.Src)
	rt.MTU = r.MTU
	return rt, true
}
