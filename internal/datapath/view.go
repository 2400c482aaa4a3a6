package datapath

import (
	"net/netip"
	"sort"
	"sync"
	"sync/atomic"
)

// Interface is one of the director's network interfaces as the data path
// needs it.
type Interface struct {
	Index int
	Name  string
	MAC   [6]byte
	MTU   int
	Addrs []netip.Prefix // the interface's addresses, with their prefix
}

// Route is one entry of the routing view: packets to Dst leave on Ifindex,
// through Gateway if it is valid, else directly (on-link); Src is the
// source address the director uses towards Dst (the tunnel source, the
// source of ICMP errors). MTU 0 means the interface's.
type Route struct {
	Dst     netip.Prefix
	Gateway netip.Addr
	Ifindex int
	Src     netip.Addr
	MTU     int
}

// View is an immutable picture of the director's interfaces, addresses and
// routes (the kernel's FIB as IPVS consults it in __ip_vs_get_out_rt). The
// host layer builds a new View when the host's configuration changes and
// publishes it with Pipeline.SetView; the data path reads it lock-free.
type View struct {
	ifaces map[int]*Interface
	routes []Route // longest prefix first
	local  map[netip.Addr]bool
}

// NewView builds a view. Local addresses are those of the interfaces plus
// extra (for example VIPs the host holds on its loopback).
func NewView(ifaces []Interface, routes []Route, extra ...netip.Addr) *View {
	v := &View{ifaces: make(map[int]*Interface), local: make(map[netip.Addr]bool)}
	for i := range ifaces {
		ifc := ifaces[i]
		v.ifaces[ifc.Index] = &ifc
		for _, p := range ifc.Addrs {
			v.local[p.Addr()] = true
		}
	}
	for _, a := range extra {
		v.local[a] = true
	}
	v.routes = append([]Route(nil), routes...)
	// Connected routes for every interface address, unless given.
	for _, ifc := range ifaces {
		for _, p := range ifc.Addrs {
			v.routes = append(v.routes, Route{Dst: p.Masked(), Ifindex: ifc.Index, Src: p.Addr()})
		}
	}
	sort.SliceStable(v.routes, func(i, j int) bool { return v.routes[i].Dst.Bits() > v.routes[j].Dst.Bits() })
	return v
}

// IsLocal reports whether a is an address of the director.
func (v *View) IsLocal(a netip.Addr) bool { return v.local[a] }

// Interface returns the interface with index i, or nil.
func (v *View) Interface(i int) *Interface { return v.ifaces[i] }

// Lookup returns the route to dst, and the next hop (the gateway, or dst
// itself on-link).
func (v *View) Lookup(dst netip.Addr) (r *Route, nexthop netip.Addr, ok bool) {
	for i := range v.routes {
		rt := &v.routes[i]
		if rt.Dst.Addr().Is4() != dst.Is4() || !rt.Dst.Contains(dst) {
			continue
		}
		nh := dst
		if rt.Gateway.IsValid() {
			nh = rt.Gateway
		}
		return rt, nh, true
	}
	return nil, netip.Addr{}, false
}

// SourceFor returns the director's address to use as the source of
// packets it originates towards dst (ICMP errors, tunnel headers).
func (v *View) SourceFor(dst netip.Addr) netip.Addr {
	r, _, ok := v.Lookup(dst)
	if !ok {
		return netip.Addr{}
	}
	if r.Src.IsValid() {
		return r.Src
	}
	if ifc := v.ifaces[r.Ifindex]; ifc != nil {
		for _, p := range ifc.Addrs {
			if p.Addr().Is4() == dst.Is4() {
				return p.Addr()
			}
		}
	}
	return netip.Addr{}
}

// mtu returns the MTU of route r.
func (v *View) mtu(r *Route) int {
	if r.MTU != 0 {
		return r.MTU
	}
	if ifc := v.ifaces[r.Ifindex]; ifc != nil && ifc.MTU != 0 {
		return ifc.MTU
	}
	return 1500
}

// neighKey identifies a neighbour: an address on an interface.
type neighKey struct {
	ifindex int
	addr    netip.Addr
}

// Neighbours is the neighbour (ARP / NDP) view of the data path. The host
// layer fills it (Set) from the kernel's neighbour table or its own
// resolution; a miss on the packet path asks the host layer to resolve
// through the Resolver and the packet is dropped and counted (the sender
// retransmits), as the kernel does once its small unresolved queue is
// full. Safe for concurrent use: reads are lock-free.
type Neighbours struct {
	m        atomic.Pointer[map[neighKey][6]byte]
	mu       sync.Mutex // serialises writers (copy on write)
	resolver func(ifindex int, addr netip.Addr)
	pending  sync.Map // neighKey -> struct{}: resolutions asked for
}

// NewNeighbours returns an empty neighbour view; resolve, if not nil, is
// called (at most once until the answer arrives) for an unknown neighbour.
func NewNeighbours(resolve func(ifindex int, addr netip.Addr)) *Neighbours {
	n := &Neighbours{resolver: resolve}
	m := map[neighKey][6]byte{}
	n.m.Store(&m)
	return n
}

// Set records (or, with ok false, forgets) the MAC of addr on ifindex.
func (n *Neighbours) Set(ifindex int, addr netip.Addr, mac [6]byte, ok bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	old := *n.m.Load()
	m := make(map[neighKey][6]byte, len(old)+1)
	for k, v := range old {
		m[k] = v
	}
	k := neighKey{ifindex, addr}
	if ok {
		m[k] = mac
	} else {
		delete(m, k)
	}
	n.m.Store(&m)
	n.pending.Delete(k)
}

// Lookup returns the MAC of addr on ifindex, asking for a resolution on a
// miss.
func (n *Neighbours) Lookup(ifindex int, addr netip.Addr) ([6]byte, bool) {
	k := neighKey{ifindex, addr}
	if mac, ok := (*n.m.Load())[k]; ok {
		return mac, true
	}
	if n.resolver != nil {
		if _, asked := n.pending.LoadOrStore(k, struct{}{}); !asked {
			n.resolver(ifindex, addr)
		}
	}
	return [6]byte{}, false
}
