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
	ifaces []*Interface // by index; nil where there is none
	routes []Route      // longest prefix first
	// local holds the director's addresses. A director has a handful, so
	// a slice scan beats hashing a netip.Addr; big sets go to localMap.
	local    []netip.Addr
	localMap map[netip.Addr]bool
}

// localScanMax is the number of local addresses up to which IsLocal scans
// a slice: comparing 24-byte values is cheaper than one map hash up to
// about this many.
const localScanMax = 16

// NewView builds a view. Local addresses are those of the interfaces plus
// extra (for example VIPs the host holds on its loopback).
func NewView(ifaces []Interface, routes []Route, extra ...netip.Addr) *View {
	v := &View{}
	seen := map[netip.Addr]bool{}
	addLocal := func(a netip.Addr) {
		if !seen[a] {
			seen[a] = true
			v.local = append(v.local, a)
		}
	}
	for i := range ifaces {
		ifc := ifaces[i]
		if ifc.Index < 0 || ifc.Index > 1<<16 {
			continue // not an interface index any kernel hands out
		}
		for len(v.ifaces) <= ifc.Index {
			v.ifaces = append(v.ifaces, nil)
		}
		v.ifaces[ifc.Index] = &ifc
		for _, p := range ifc.Addrs {
			addLocal(p.Addr())
		}
	}
	for _, a := range extra {
		addLocal(a)
	}
	if len(v.local) > localScanMax {
		v.localMap = seen
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
func (v *View) IsLocal(a netip.Addr) bool {
	if v.localMap != nil {
		return v.localMap[a]
	}
	for _, l := range v.local {
		if l == a {
			return true
		}
	}
	return false
}

// Interface returns the interface with index i, or nil.
func (v *View) Interface(i int) *Interface {
	if i < 0 || i >= len(v.ifaces) {
		return nil
	}
	return v.ifaces[i]
}

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
	if ifc := v.Interface(r.Ifindex); ifc != nil {
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
	if ifc := v.Interface(r.Ifindex); ifc != nil && ifc.MTU != 0 {
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
// resolution. A miss on the packet path asks the host layer to resolve
// through the resolver and parks a copy of the frame, up to
// unresolvedQueueLen per neighbour (the kernel's unres_qlen does the
// same); when the answer comes, Set hands the parked frames, addressed, to
// the send function. Safe for concurrent use: lookups are lock-free.
type Neighbours struct {
	m        atomic.Pointer[map[neighKey][6]byte]
	resolver func(ifindex int, addr netip.Addr)
	send     func(ifindex int, frame []byte)

	mu      sync.Mutex            // serialises writers (copy on write) and guards pending
	pending map[neighKey][][]byte // guarded by mu: frames waiting for a resolution
	parked  int                   // guarded by mu: frames in pending
}

// unresolvedQueueLen is how many frames wait for one neighbour, and
// unresolvedTotal for all of them: enough for the first packets of a few
// new flows (a SYN and its retransmission, a DNS query), small enough that
// a flood towards unresolvable addresses costs little memory.
const (
	unresolvedQueueLen = 3
	unresolvedTotal    = 256
)

// NewNeighbours returns an empty neighbour view. resolve, if not nil, is
// called (once until the answer arrives) for an unknown neighbour; send, if
// not nil, transmits the frames parked while it was unknown.
func NewNeighbours(resolve func(ifindex int, addr netip.Addr), send func(ifindex int, frame []byte)) *Neighbours {
	n := &Neighbours{resolver: resolve, send: send, pending: map[neighKey][][]byte{}}
	m := map[neighKey][6]byte{}
	n.m.Store(&m)
	return n
}

// Set records (or, with ok false, forgets) the MAC of addr on ifindex,
// and sends or discards the frames parked for it.
func (n *Neighbours) Set(ifindex int, addr netip.Addr, mac [6]byte, ok bool) {
	k := neighKey{ifindex, addr}
	n.mu.Lock()
	old := *n.m.Load()
	m := make(map[neighKey][6]byte, len(old)+1)
	for k, v := range old {
		m[k] = v
	}
	if ok {
		m[k] = mac
	} else {
		delete(m, k)
	}
	n.m.Store(&m)
	parked := n.pending[k]
	delete(n.pending, k)
	n.parked -= len(parked)
	n.mu.Unlock()
	if ok && n.send != nil {
		for _, f := range parked {
			copy(f[0:6], mac[:])
			n.send(ifindex, f)
		}
	}
}

// Lookup returns the MAC of addr on ifindex.
func (n *Neighbours) Lookup(ifindex int, addr netip.Addr) ([6]byte, bool) {
	mac, ok := (*n.m.Load())[neighKey{ifindex, addr}]
	return mac, ok
}

// Park keeps a copy of frame (whose source MAC is already set) until addr
// on ifindex is resolved, and asks for the resolution the first time. It
// reports false when the queue is full and the frame is lost. The miss
// path may allocate; the hit path never does.
func (n *Neighbours) Park(ifindex int, addr netip.Addr, frame []byte) bool {
	k := neighKey{ifindex, addr}
	n.mu.Lock()
	q, asked := n.pending[k]
	ok := len(q) < unresolvedQueueLen && n.parked < unresolvedTotal
	if ok {
		n.pending[k] = append(q, append([]byte(nil), frame...))
		n.parked++
	} else if !asked {
		n.pending[k] = nil
	}
	n.mu.Unlock()
	if !asked && n.resolver != nil {
		n.resolver(ifindex, addr)
	}
	return ok
}
