package lvslab

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"sync/atomic"
)

// HostConfig configures a host; the zero value is an end host that does not
// forward, does not decapsulate and answers ARP only for addresses on the
// receiving interface.
type HostConfig struct {
	// Forwarding routes packets not addressed to the host, as with
	// net.ipv4.ip_forward=1 and net.ipv6.conf.all.forwarding=1.
	Forwarding bool

	// Decap accepts IP-in-IP (protocol 4) and IPv6-in-IP (41) addressed to
	// the host and processes the inner packet as if it had arrived on the
	// same interface: the ipip / ip6_tunnel fallback devices of an LVS-TUN
	// real server (tunl0, ip6tnl0 up, rp_filter off).
	Decap bool

	// ARPAnyLocal answers ARP requests for any local address, loopback
	// ones included, as Linux does with net.ipv4.conf.*.arp_ignore=0 (its
	// default). The lab's default is arp_ignore=1: answer only for
	// addresses configured on the receiving interface, which an LVS-DR
	// real server needs.
	ARPAnyLocal bool
}

// Host is a simulated machine: interfaces, routes, a neighbour cache and an
// IP stack with ICMP, UDP and TCP. See the package doc for what it imitates.
//
// A Host belongs to its Network and is driven by the same goroutine;
// Transmit and Inject may be called from any goroutine.
type Host struct {
	n    *Network
	name string
	rng  *rand.Rand
	cfg  HostConfig

	ifaces []*Interface // ifaces[i].index == i+1; ifaces[0] is lo
	routes []Route

	hook func(ifindex int, frame []byte) (consumed bool)

	neigh     map[neighKey]*neighEntry
	neighHook func(Neighbour)

	pmtu   map[netip.Addr]int // learnt path MTUs (never expire in the lab)
	frags  map[fragKey]*fragQueue
	groups map[netip.Addr]bool // joined multicast groups

	udp          map[netip.AddrPort]*UDPConn
	tcpConns     map[tcpKey]*TCPConn
	tcpListeners map[netip.AddrPort]*TCPListener
	nextPort     uint16

	ipID     uint16
	pingID   uint16
	pingSeq  uint16
	pings    map[uint32]*Ping
	icmpErrs []ICMPError

	ctr hostCounters
}

// loIndex is the loopback's interface index, as on Linux.
const loIndex = 1

func newHost(n *Network, name string, cfg HostConfig, rng *rand.Rand) *Host {
	h := &Host{
		n:            n,
		name:         name,
		rng:          rng,
		cfg:          cfg,
		neigh:        make(map[neighKey]*neighEntry),
		pmtu:         make(map[netip.Addr]int),
		frags:        make(map[fragKey]*fragQueue),
		groups:       make(map[netip.Addr]bool),
		udp:          make(map[netip.AddrPort]*UDPConn),
		tcpConns:     make(map[tcpKey]*TCPConn),
		tcpListeners: make(map[netip.AddrPort]*TCPListener),
		pings:        make(map[uint32]*Ping),
	}
	// Linux's ephemeral range is net.ipv4.ip_local_port_range
	// = 32768..60999; start at a random place in it.
	h.nextPort = ephemeralLow + uint16(rng.IntN(ephemeralHigh-ephemeralLow+1))
	h.ipID = uint16(rng.Uint32())
	h.pingID = uint16(rng.Uint32())
	lo := &Interface{host: h, index: loIndex, name: "lo"}
	// Linux's loopback MTU is 65536 (drivers/net/loopback.c).
	lo.mtu.Store(65536)
	lo.addrs = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/8"), netip.MustParsePrefix("::1/128")}
	h.ifaces = []*Interface{lo}
	return h
}

const (
	ephemeralLow  = 32768
	ephemeralHigh = 60999
)

// Name returns the host's name.
func (h *Host) Name() string { return h.name }

// Network returns the network h is on.
func (h *Host) Network() *Network { return h.n }

// Config returns the host's configuration.
func (h *Host) Config() HostConfig { return h.cfg }

// SetForwarding turns IP forwarding on or off.
func (h *Host) SetForwarding(on bool) { h.cfg.Forwarding = on }

// SetDecap turns IPIP / IPv6-in-IP decapsulation on or off.
func (h *Host) SetDecap(on bool) { h.cfg.Decap = on }

// Interface is a host's network interface. Its index, name and MAC never
// change; addresses and MTU are set up before the run.
type Interface struct {
	host  *Host
	index int
	name  string
	mac   MAC
	mtu   atomic.Int64 // read by Transmit from any goroutine
	addrs []netip.Prefix
	seg   *Segment // nil for the loopback
}

// DefaultMTU is the MTU of a new Ethernet interface.
const DefaultMTU = 1500

// AddInterface attaches a new interface called name to seg, with a MAC from
// the network's sequence, MTU 1500, the given addresses and their connected
// routes. Interface indexes count from 2 (1 is lo).
func (h *Host) AddInterface(seg *Segment, name string, addrs ...netip.Prefix) *Interface {
	return h.AddInterfaceMAC(seg, name, h.n.allocMAC(), addrs...)
}

// AddInterfaceMAC is AddInterface with a chosen MAC.
func (h *Host) AddInterfaceMAC(seg *Segment, name string, mac MAC, addrs ...netip.Prefix) *Interface {
	if seg == nil || seg.n != h.n {
		panic("lvslab: AddInterface needs a segment of the host's network")
	}
	if h.InterfaceByName(name) != nil {
		panic(fmt.Sprintf("lvslab: host %s already has an interface %q", h.name, name))
	}
	ifc := &Interface{host: h, index: len(h.ifaces) + 1, name: name, mac: mac, seg: seg}
	ifc.mtu.Store(DefaultMTU)
	h.ifaces = append(h.ifaces, ifc)
	seg.ports = append(seg.ports, ifc)
	for _, p := range addrs {
		ifc.AddAddr(p)
	}
	return ifc
}

// Loopback returns the host's loopback interface (ifindex 1).
func (h *Host) Loopback() *Interface { return h.ifaces[0] }

// Interfaces returns the host's interfaces by index, loopback first.
func (h *Host) Interfaces() []*Interface { return h.ifaces }

// Interface returns the interface with index ifindex, or nil.
func (h *Host) Interface(ifindex int) *Interface {
	if ifindex < 1 || ifindex > len(h.ifaces) {
		return nil
	}
	return h.ifaces[ifindex-1]
}

// InterfaceByName returns the interface called name, or nil.
func (h *Host) InterfaceByName(name string) *Interface {
	for _, ifc := range h.ifaces {
		if ifc.name == name {
			return ifc
		}
	}
	return nil
}

// Index returns the interface index.
func (ifc *Interface) Index() int { return ifc.index }

// Name returns the interface name.
func (ifc *Interface) Name() string { return ifc.name }

// MAC returns the interface's Ethernet address (zero for the loopback).
func (ifc *Interface) MAC() MAC { return ifc.mac }

// MTU returns the largest IP packet the interface sends.
func (ifc *Interface) MTU() int { return int(ifc.mtu.Load()) }

// SetMTU sets the interface's MTU.
func (ifc *Interface) SetMTU(mtu int) { ifc.mtu.Store(int64(mtu)) }

// Host returns the interface's host.
func (ifc *Interface) Host() *Host { return ifc.host }

// Segment returns the segment the interface is attached to (nil for lo).
func (ifc *Interface) Segment() *Segment { return ifc.seg }

// IsLoopback reports whether ifc is the host's loopback.
func (ifc *Interface) IsLoopback() bool { return ifc.seg == nil }

// Addrs returns the interface's addresses with their prefix lengths.
func (ifc *Interface) Addrs() []netip.Prefix { return slices.Clone(ifc.addrs) }

// AddAddr adds an address. On an Ethernet interface it also adds the
// connected route (prefix masked, preferred source the address). On the
// loopback only the address itself becomes local (an LVS-DR VIP: give it a
// /32 or /128); it is never announced by ARP or neighbour discovery.
func (ifc *Interface) AddAddr(p netip.Prefix) {
	p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits())
	ifc.addrs = append(ifc.addrs, p)
	if ifc.seg != nil {
		ifc.host.routes = append(ifc.host.routes, Route{Dst: p.Masked(), IfIndex: ifc.index, Src: p.Addr()})
	}
}

func (ifc *Interface) fullName() string {
	if ifc == nil {
		return "?"
	}
	return ifc.host.name + "/" + ifc.name
}

// hasAddr reports whether a is configured on ifc.
func (ifc *Interface) hasAddr(a netip.Addr) bool {
	for _, p := range ifc.addrs {
		if p.Addr() == a {
			return true
		}
	}
	return false
}

// IsLocal reports whether a is one of the host's addresses (on any
// interface: Linux's weak host model), the loopback networks included.
func (h *Host) IsLocal(a netip.Addr) bool {
	a = a.Unmap()
	if a.IsLoopback() {
		return true
	}
	for _, ifc := range h.ifaces {
		if ifc.hasAddr(a) {
			return true
		}
	}
	return false
}

// SetIngressHook installs f, called with every frame arriving on one of the
// host's Ethernet interfaces before the host's stack sees it, as a packet
// socket would: frames for other stations that the switch floods (unknown
// unicast) arrive too, so check the destination MAC. If f returns true the
// frame is consumed (f owns it); otherwise the stack processes it. The
// director's data path attaches here. f runs synchronously during Step; it
// may Transmit, Inject and Resolve. Nil removes the hook.
func (h *Host) SetIngressHook(f func(ifindex int, frame []byte) (consumed bool)) { h.hook = f }

// Transmit puts a raw Ethernet frame on the segment of interface ifindex,
// as a driver's transmit would: the data path's output. The frame is
// copied. A frame whose IP part exceeds the interface's MTU is dropped,
// counted and reported (ErrTooBig). Safe for concurrent use.
func (h *Host) Transmit(ifindex int, frame []byte) error {
	ifc := h.Interface(ifindex)
	if ifc == nil || ifc.seg == nil {
		h.drop(DropNoInterface, ifindex, frame)
		return fmt.Errorf("lvslab: %s: transmit on ifindex %d: %w", h.name, ifindex, errNoInterface)
	}
	if len(frame) < ethHdrLen {
		h.drop(DropMalformed, ifindex, frame)
		return fmt.Errorf("lvslab: %s: transmit a %d-byte frame: %w", h.name, len(frame), errShortFrame)
	}
	return ifc.seg.send(ifc, clone(frame))
}

var (
	errNoInterface = errors.New("no such interface")
	errShortFrame  = errors.New("frame shorter than an Ethernet header")
)

// Inject queues frame for the host's own stack as if it had arrived on
// ifindex, bypassing the ingress hook: the data path's "pass to host"
// verdict for a frame the hook consumed. The frame is copied. Safe for
// concurrent use.
func (h *Host) Inject(ifindex int, frame []byte) {
	h.n.enqueue(event{host: h, ifidx: ifindex, frame: clone(frame)})
}

// receive is a frame arriving from a segment on interface ifindex.
func (h *Host) receive(ifindex int, frame []byte) {
	h.ctr.rxFrames.Add(1)
	if h.hook != nil && h.hook(ifindex, frame) {
		h.ctr.hookConsumed.Add(1)
		return
	}
	h.stackInput(ifindex, frame)
}

// stackInput is the host's own receive path (Linux netif_receive_skb →
// arp_rcv / ip_rcv / ipv6_rcv).
func (h *Host) stackInput(ifindex int, frame []byte) {
	ifc := h.Interface(ifindex)
	if ifc == nil {
		h.drop(DropNoInterface, ifindex, frame)
		return
	}
	if len(frame) < ethHdrLen {
		h.drop(DropMalformed, ifindex, frame)
		return
	}
	dst := macAt(frame)
	l2host := dst == ifc.mac || ifc.seg == nil // the loopback has no link layer
	if !l2host && dst != BroadcastMAC && !h.acceptsMulticastMAC(ifc, dst) {
		h.drop(DropOtherHost, ifindex, frame)
		return
	}
	payload := frame[ethHdrLen:]
	switch be16(frame[12:]) {
	case etherTypeARP:
		h.arpInput(ifc, payload)
	case etherTypeIPv4, etherTypeIPv6:
		h.ipInput(ifc, payload, l2host, 0)
	default:
		h.drop(DropUnknownEtherType, ifindex, frame)
	}
}

// acceptsMulticastMAC is the NIC's multicast filter: the all-hosts and
// all-nodes groups, the solicited-node groups of ifc's IPv6 addresses and
// the groups the host joined. Other group frames never reach the stack.
func (h *Host) acceptsMulticastMAC(ifc *Interface, m MAC) bool {
	if !m.IsMulticast() {
		return false
	}
	if m == multicastMAC(allHosts4) || m == multicastMAC(allNodes) {
		return true
	}
	for _, p := range ifc.addrs {
		if p.Addr().Is6() && m == multicastMAC(solicitedNode(p.Addr())) {
			return true
		}
	}
	for g := range h.groups {
		if m == multicastMAC(g) {
			return true
		}
	}
	return false
}

// JoinGroup makes the host accept the multicast group on every interface
// (for UDP sockets bound to its port).
func (h *Host) JoinGroup(group netip.Addr) { h.groups[group.Unmap()] = true }

// LeaveGroup undoes JoinGroup.
func (h *Host) LeaveGroup(group netip.Addr) { delete(h.groups, group.Unmap()) }

// sendFrame wraps an IP packet or ARP message in Ethernet and sends it.
func (h *Host) sendFrame(ifc *Interface, dst MAC, etherType uint16, payload []byte) {
	frame := make([]byte, ethHdrLen+len(payload))
	copy(frame[0:], dst[:])
	copy(frame[6:], ifc.mac[:])
	put16(frame[12:], etherType)
	copy(frame[ethHdrLen:], payload)
	_ = ifc.seg.send(ifc, frame) // a too-big frame is counted and reported by send
}

// loopback queues an IP packet for the host's own stack via lo.
func (h *Host) loopback(pkt []byte) {
	frame := make([]byte, ethHdrLen+len(pkt))
	et := uint16(etherTypeIPv4)
	if pkt[0]>>4 == 6 {
		et = etherTypeIPv6
	}
	put16(frame[12:], et)
	copy(frame[ethHdrLen:], pkt)
	h.n.enqueue(event{host: h, ifidx: loIndex, frame: frame})
}

// Counters are a host's packet counts.
type Counters struct {
	RxFrames     uint64 // frames that arrived on its Ethernet interfaces
	HookConsumed uint64 // of which the ingress hook consumed
	TxFrames     uint64 // frames it put on segments (stack and Transmit)
	Delivered    uint64 // IP packets delivered to the local stack
	Forwarded    uint64 // IP packets forwarded
	Decapsulated uint64 // tunnel packets decapsulated
	Reassembled  uint64 // IPv4 packets reassembled from fragments
	ICMPErrors   uint64 // ICMP errors received
	drops        [numDropReasons]uint64
}

// Dropped returns the count of drops for reason r.
func (c Counters) Dropped(r DropReason) uint64 {
	if r >= numDropReasons {
		return 0
	}
	return c.drops[r]
}

// Corrupt returns the count of drops for reasons that mean a bad packet.
func (c Counters) Corrupt() uint64 {
	var n uint64
	for r := DropReason(1); r < numDropReasons; r++ {
		if r.Corrupt() {
			n += c.drops[r]
		}
	}
	return n
}

// String lists the non-zero counters.
func (c Counters) String() string {
	s := fmt.Sprintf("rx=%d hook=%d tx=%d delivered=%d forwarded=%d decap=%d reasm=%d icmperr=%d",
		c.RxFrames, c.HookConsumed, c.TxFrames, c.Delivered, c.Forwarded, c.Decapsulated, c.Reassembled, c.ICMPErrors)
	for r := DropReason(1); r < numDropReasons; r++ {
		if c.drops[r] != 0 {
			s += fmt.Sprintf(" drop[%v]=%d", r, c.drops[r])
		}
	}
	return s
}

type hostCounters struct {
	rxFrames, hookConsumed, txFrames      atomic.Uint64
	delivered, forwarded, decapped, reasm atomic.Uint64
	icmpErrs                              atomic.Uint64
	drops                                 [numDropReasons]atomic.Uint64
}

// Counters returns a snapshot of the host's counters.
func (h *Host) Counters() Counters {
	c := Counters{
		RxFrames:     h.ctr.rxFrames.Load(),
		HookConsumed: h.ctr.hookConsumed.Load(),
		TxFrames:     h.ctr.txFrames.Load(),
		Delivered:    h.ctr.delivered.Load(),
		Forwarded:    h.ctr.forwarded.Load(),
		Decapsulated: h.ctr.decapped.Load(),
		Reassembled:  h.ctr.reasm.Load(),
		ICMPErrors:   h.ctr.icmpErrs.Load(),
	}
	for i := range c.drops {
		c.drops[i] = h.ctr.drops[i].Load()
	}
	return c
}

// drop counts and reports a dropped frame or packet.
func (h *Host) drop(r DropReason, ifindex int, pkt []byte) {
	h.ctr.drops[r].Add(1)
	d := Drop{Host: h.name, IfIndex: ifindex, Reason: r, Packet: pkt}
	if ifc := h.Interface(ifindex); ifc != nil && ifc.seg != nil {
		d.Segment = ifc.seg.name
	}
	h.n.report(d)
}

// dropIP is drop for an IP packet without its Ethernet header.
func (h *Host) dropIP(r DropReason, ifindex int, pkt []byte) {
	h.ctr.drops[r].Add(1)
	d := Drop{Host: h.name, IfIndex: ifindex, Reason: r, Packet: pkt, IP: true}
	if ifc := h.Interface(ifindex); ifc != nil && ifc.seg != nil {
		d.Segment = ifc.seg.name
	}
	h.n.report(d)
}
