package vrrpd

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/mdlayher/packet"
	"github.com/vishvananda/netlink"
	"golang.org/x/net/bpf"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"

	"golvs/internal/header"
	"golvs/internal/vrrp"
)

// hostSys is netSys on the host's kernel, in the network namespace of the
// thread that made it: rtnetlink (vishvananda/netlink) for links and
// addresses, raw IP sockets for adverts, an AF_PACKET socket
// (mdlayher/packet) for gratuitous ARPs and a raw ICMPv6 socket for
// neighbour adverts.
type hostSys struct {
	nl  *netlink.Handle
	log *slog.Logger
}

// Advert sockets and announcements.
const (
	// tosInternetControl is the TOS of keepalived's IPv4 adverts
	// (vrrp_build_ip4: IPTOS_PREC_INTERNETCONTROL, RFC 791 precedence 6).
	tosInternetControl = 0xc0
	// maxAdvertIP is the largest IPv4 packet an advert can be: a header
	// with options (60) and a VRRPv2 advert listing 255 addresses.
	maxAdvertIP = 60 + vrrp.HeaderLen + vrrp.MaxAddrs*16 + vrrp.AuthDataLen
	// etherTypeARP is ETH_P_ARP (linux/if_ether.h).
	etherTypeARP = 0x0806
	// ethMinFrame is ETH_ZLEN, the shortest Ethernet frame without its
	// FCS: gratuitous ARPs are padded to it, as the kernel's own
	// arp_create does, for drivers that do not pad.
	ethMinFrame = 60
	// naLen is an unsolicited neighbour advert: the ICMPv6 header (4),
	// flags and reserved (4), the target (16), and the target link-layer
	// address option (8) (RFC 4861 §4.4, §4.6.1).
	naLen = 32
	// icmpv6NeighborAdvert is ND's Neighbor Advertisement type (RFC 4861).
	icmpv6NeighborAdvert = 136
	// Flags of a neighbour advert (RFC 4861 §4.4).
	naRouter   = 0x80
	naOverride = 0x20
	// ndOptTargetLLAddr is the Target Link-Layer Address option type.
	ndOptTargetLLAddr = 2
	// infinityLifeTime is INFINITY_LIFE_TIME (include/net/addrconf.h):
	// valid_lft forever.
	infinityLifeTime = 0xffffffff
	// resubscribeDelay is the pause before subscribing to link updates
	// again after the subscription failed (ENOBUFS after a burst): short,
	// since track_interface depends on it, but no busy loop.
	resubscribeDelay = 200 * time.Millisecond
)

// allNodes is ff02::1, where unsolicited neighbour adverts go (RFC 4861
// §7.2.6).
var allNodes = netip.MustParseAddr("ff02::1")

// newHostSys opens the rtnetlink handle in the calling thread's network
// namespace.
func newHostSys(log *slog.Logger) (*hostSys, error) {
	h, err := netlink.NewHandle()
	if err != nil {
		return nil, fmt.Errorf("vrrpd: rtnetlink: %w", err)
	}
	return &hostSys{nl: h, log: log}, nil
}

func (s *hostSys) Close() error {
	s.nl.Close()
	return nil
}

func linkInfoOf(l netlink.Link) linkInfo {
	a := l.Attrs()
	return linkInfo{
		Name: a.Name, Index: a.Index, MAC: a.HardwareAddr,
		Up: a.RawFlags&syscall.IFF_UP != 0 && a.RawFlags&syscall.IFF_RUNNING != 0,
	}
}

func (s *hostSys) Link(name string) (linkInfo, error) {
	l, err := s.nl.LinkByName(name)
	if err != nil {
		return linkInfo{}, fmt.Errorf("interface %s: %w", name, err)
	}
	return linkInfoOf(l), nil
}

func (s *hostSys) LinkOfAddr(addr netip.Addr) (linkInfo, error) {
	addrs, err := s.nl.AddrList(nil, familyOf(addr))
	if err != nil {
		return linkInfo{}, fmt.Errorf("list addresses: %w", err)
	}
	for _, a := range addrs {
		if ip, ok := netip.AddrFromSlice(a.IP); ok && ip.Unmap() == addr.WithZone("") {
			l, err := s.nl.LinkByIndex(a.LinkIndex)
			if err != nil {
				return linkInfo{}, fmt.Errorf("interface of %v: %w", addr, err)
			}
			return linkInfoOf(l), nil
		}
	}
	return linkInfo{}, fmt.Errorf("no interface has address %v", addr)
}

func familyOf(a netip.Addr) int {
	if a.Is4() {
		return netlink.FAMILY_V4
	}
	return netlink.FAMILY_V6
}

func (s *hostSys) PrimaryAddr(l linkInfo, fam vrrp.Family, skip func(netip.Addr) bool) (netip.Addr, error) {
	nf := netlink.FAMILY_V4
	if fam == vrrp.IPv6 {
		nf = netlink.FAMILY_V6
	}
	link, err := s.nl.LinkByIndex(l.Index)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("interface %s: %w", l.Name, err)
	}
	addrs, err := s.nl.AddrList(link, nf)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("addresses of %s: %w", l.Name, err)
	}
	// The kernel lists an interface's addresses in the order they were
	// added, primary ones first (keepalived takes the first too).
	for _, a := range addrs {
		ip, ok := netip.AddrFromSlice(a.IP)
		if !ok {
			continue
		}
		ip = ip.Unmap()
		if skip(ip) || fam == vrrp.IPv6 && !ip.IsLinkLocalUnicast() {
			continue
		}
		if fam == vrrp.IPv6 {
			ip = ip.WithZone(l.Name)
		}
		return ip, nil
	}
	if fam == vrrp.IPv6 {
		return netip.Addr{}, fmt.Errorf("interface %s has no IPv6 link-local address", l.Name)
	}
	return netip.Addr{}, fmt.Errorf("interface %s has no IPv4 address", l.Name)
}

// nlAddr is v in the netlink library's form.
func nlAddr(v vipSpec) *netlink.Addr {
	p := v.Prefix
	a := &netlink.Addr{
		IPNet: &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())},
		Label: v.Label,
		Scope: v.Scope,
		Flags: v.Flags,
	}
	if v.Peer.IsValid() {
		a.Peer = &net.IPNet{IP: v.Peer.Addr().AsSlice(), Mask: net.CIDRMask(v.Peer.Bits(), v.Peer.Addr().BitLen())}
	}
	if v.Broadcast.IsValid() {
		a.Broadcast = v.Broadcast.AsSlice()
	}
	if p.Addr().Is6() {
		// keepalived adds IPv6 VIPs without duplicate address
		// detection (measured: "nodad"), so that they are usable (and
		// the neighbour adverts sent from them) at once: a node
		// answering DAD for a VIP is an old master about to drop it,
		// or a killed one, which would leave the address "dadfailed".
		a.Flags |= syscall.IFA_F_NODAD
	}
	if v.PreferredLft >= 0 {
		a.PreferedLft, a.ValidLft = v.PreferredLft, infinityLifeTime
	}
	return a
}

func (s *hostSys) AddAddr(v vipSpec) error {
	link, err := s.nl.LinkByName(v.Dev)
	if err != nil {
		return fmt.Errorf("add %v: interface %s: %w", v.Prefix, v.Dev, err)
	}
	if err := s.nl.AddrAdd(link, nlAddr(v)); err != nil && !errors.Is(err, syscall.EEXIST) {
		return fmt.Errorf("add %v on %s: %w", v.Prefix, v.Dev, err)
	}
	return nil
}

func (s *hostSys) DelAddr(v vipSpec) error {
	link, err := s.nl.LinkByName(v.Dev)
	if err != nil {
		return fmt.Errorf("delete %v: interface %s: %w", v.Prefix, v.Dev, err)
	}
	a := nlAddr(v)
	a.Label = "" // the kernel would also match the label; the address and prefix say enough
	err = s.nl.AddrDel(link, a)
	if err != nil && !errors.Is(err, syscall.EADDRNOTAVAIL) && !errors.Is(err, syscall.ENOENT) {
		return fmt.Errorf("delete %v from %s: %w", v.Prefix, v.Dev, err)
	}
	return nil
}

func (s *hostSys) HasAddr(v vipSpec) (bool, error) {
	link, err := s.nl.LinkByName(v.Dev)
	if err != nil {
		return false, fmt.Errorf("interface %s: %w", v.Dev, err)
	}
	addrs, err := s.nl.AddrList(link, familyOf(v.Prefix.Addr()))
	if err != nil {
		return false, fmt.Errorf("addresses of %s: %w", v.Dev, err)
	}
	for _, a := range addrs {
		ip, ok := netip.AddrFromSlice(a.IP)
		bits, _ := a.Mask.Size()
		if ok && ip.Unmap() == v.Prefix.Addr() && bits == v.Prefix.Bits() {
			return true, nil
		}
	}
	return false, nil
}

// bindDevice is a net.ListenConfig Control binding the socket to
// interface name (SO_BINDTODEVICE, as keepalived binds its sockets), so
// that it sees only that interface's packets.
func bindDevice(name string) func(network, address string, c syscall.RawConn) error {
	return func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			serr = syscall.SetsockoptString(int(fd), syscall.SOL_SOCKET, syscall.SO_BINDTODEVICE, name)
		})
		if err != nil {
			return err
		}
		if serr != nil {
			return os.NewSyscallError("setsockopt SO_BINDTODEVICE", serr)
		}
		return nil
	}
}

func (s *hostSys) ListenAdverts(sp sockSpec) (advertConn, error) {
	lc := net.ListenConfig{Control: bindDevice(sp.Link.Name)}
	unicast := !sp.Group.IsValid()
	if sp.Family == vrrp.IPv4 {
		return listen4(lc, sp, unicast)
	}
	return listen6(lc, sp, unicast)
}

// conn4 is an IPv4 advert socket: raw IP protocol 112 with IP_HDRINCL
// (ipv4.RawConn), so that the received header gives the TTL and the
// destination and the sent one carries keepalived's TOS and TTL 255.
type conn4 struct {
	rc    *ipv4.RawConn
	link  linkInfo
	ttl   int
	group netip.Addr
}

func listen4(lc net.ListenConfig, sp sockSpec, unicast bool) (*conn4, error) {
	laddr := "0.0.0.0"
	if unicast {
		// A raw socket bound to an address receives only packets to it
		// (keepalived binds its unicast sockets to unicast_src_ip too).
		laddr = sp.Local.String()
	}
	pc, err := lc.ListenPacket(context.Background(), "ip4:112", laddr)
	if err != nil {
		return nil, fmt.Errorf("VRRP socket on %s: %w", sp.Link.Name, err)
	}
	rc, err := ipv4.NewRawConn(pc)
	if err != nil {
		pc.Close()
		return nil, fmt.Errorf("VRRP socket on %s: %w", sp.Link.Name, err)
	}
	c := &conn4{rc: rc, link: sp.Link, ttl: sp.TTL, group: sp.Group}
	if err := c.setup(unicast); err != nil {
		rc.Close()
		return nil, fmt.Errorf("VRRP socket on %s: %w", sp.Link.Name, err)
	}
	return c, nil
}

func (c *conn4) setup(unicast bool) error {
	if err := c.rc.SetControlMessage(ipv4.FlagInterface, true); err != nil {
		return err
	}
	if unicast {
		return nil
	}
	ifi := &net.Interface{Index: c.link.Index, Name: c.link.Name}
	if err := c.rc.SetMulticastInterface(ifi); err != nil {
		return err
	}
	if err := c.rc.SetMulticastLoopback(false); err != nil {
		return err
	}
	if err := c.rc.SetMulticastTTL(vrrp.TTL); err != nil {
		return err
	}
	return c.rc.JoinGroup(ifi, &net.IPAddr{IP: c.group.AsSlice()})
}

func (c *conn4) Read(b []byte) (int, pktInfo, error) {
	h, p, cm, err := c.rc.ReadFrom(b)
	if err != nil {
		return 0, pktInfo{}, err
	}
	info := pktInfo{TTL: h.TTL}
	info.Src, _ = netip.AddrFromSlice(h.Src.To4())
	info.Dst, _ = netip.AddrFromSlice(h.Dst.To4())
	if cm != nil {
		info.IfIndex = cm.IfIndex
	}
	// The payload follows the header in b: move it to the front.
	return copy(b, p), info, nil
}

func (c *conn4) Write(b []byte, src, dst netip.Addr) error {
	ttl := vrrp.TTL
	if !dst.IsMulticast() && c.ttl > 0 {
		ttl = c.ttl
	}
	h := &ipv4.Header{
		Version:  ipv4.Version,
		Len:      ipv4.HeaderLen,
		TOS:      tosInternetControl,
		TotalLen: ipv4.HeaderLen + len(b),
		TTL:      ttl,
		Protocol: vrrp.Protocol,
		Src:      src.AsSlice(),
		Dst:      dst.AsSlice(),
	}
	return c.rc.WriteTo(h, b, &ipv4.ControlMessage{IfIndex: c.link.Index})
}

func (c *conn4) Close() error { return c.rc.Close() }

// conn6 is an IPv6 advert socket: raw IPv6 protocol 112 with ancillary
// data giving the hop limit and destination of what it receives, and
// setting the source and hop limit of what it sends.
type conn6 struct {
	pc   *ipv6.PacketConn
	link linkInfo
	ttl  int
}

func listen6(lc net.ListenConfig, sp sockSpec, unicast bool) (*conn6, error) {
	laddr := "::"
	if unicast {
		laddr = withZoneIndex(sp.Local, sp.Link).String()
	}
	pc, err := lc.ListenPacket(context.Background(), "ip6:112", laddr)
	if err != nil {
		return nil, fmt.Errorf("VRRP socket on %s: %w", sp.Link.Name, err)
	}
	c := &conn6{pc: ipv6.NewPacketConn(pc), link: sp.Link, ttl: sp.TTL}
	if err := c.setup(sp.Group); err != nil {
		pc.Close()
		return nil, fmt.Errorf("VRRP socket on %s: %w", sp.Link.Name, err)
	}
	return c, nil
}

func (c *conn6) setup(group netip.Addr) error {
	if err := c.pc.SetControlMessage(ipv6.FlagHopLimit|ipv6.FlagDst|ipv6.FlagInterface, true); err != nil {
		return err
	}
	ttl := vrrp.TTL
	if c.ttl > 0 {
		ttl = c.ttl
	}
	if err := c.pc.SetHopLimit(ttl); err != nil {
		return err
	}
	if !group.IsValid() {
		return nil
	}
	ifi := &net.Interface{Index: c.link.Index, Name: c.link.Name}
	if err := c.pc.SetMulticastInterface(ifi); err != nil {
		return err
	}
	if err := c.pc.SetMulticastLoopback(false); err != nil {
		return err
	}
	if err := c.pc.SetMulticastHopLimit(vrrp.TTL); err != nil {
		return err
	}
	return c.pc.JoinGroup(ifi, &net.IPAddr{IP: group.AsSlice()})
}

func (c *conn6) Read(b []byte) (int, pktInfo, error) {
	n, cm, src, err := c.pc.ReadFrom(b)
	if err != nil {
		return 0, pktInfo{}, err
	}
	var info pktInfo
	if a, ok := src.(*net.IPAddr); ok {
		info.Src, _ = netip.AddrFromSlice(a.IP)
	}
	if cm != nil {
		info.TTL, info.IfIndex = cm.HopLimit, cm.IfIndex
		info.Dst, _ = netip.AddrFromSlice(cm.Dst)
	}
	return n, info, nil
}

func (c *conn6) Write(b []byte, src, dst netip.Addr) error {
	ttl := vrrp.TTL
	if !dst.IsMulticast() && c.ttl > 0 {
		ttl = c.ttl
	}
	cm := &ipv6.ControlMessage{HopLimit: ttl, Src: src.WithZone("").AsSlice(), IfIndex: c.link.Index}
	_, err := c.pc.WriteTo(b, cm, &net.IPAddr{IP: dst.AsSlice(), Zone: zoneIndex(c.link)})
	return err
}

// zoneIndex is l's index as an IPv6 zone: unlike its name, it does not
// depend on the network namespace of the thread that resolves it.
func zoneIndex(l linkInfo) string { return strconv.Itoa(l.Index) }

// withZoneIndex gives a link-local address l's index as its zone.
func withZoneIndex(a netip.Addr, l linkInfo) netip.Addr {
	if a.Is6() && (a.IsLinkLocalUnicast() || a.IsLinkLocalMulticast()) {
		return a.WithZone(zoneIndex(l))
	}
	return a
}

func (c *conn6) Close() error { return c.pc.Close() }

// hostAnnouncer sends gratuitous ARPs through an AF_PACKET socket and
// unsolicited neighbour adverts through a raw ICMPv6 socket, each opened
// on first use.
type hostAnnouncer struct {
	link linkInfo
	arp  *packet.Conn
	nd   *ipv6.PacketConn
	buf  [naLen]byte
	fbuf [ethMinFrame]byte
}

func (s *hostSys) OpenAnnouncer(l linkInfo) (announcer, error) {
	return &hostAnnouncer{link: l}, nil
}

// dropAll is a classic BPF program accepting no packet: the ARP socket
// only sends.
var dropAll = []bpf.RawInstruction{{Op: 0x06, K: 0}} // BPF_RET|BPF_K 0

func (a *hostAnnouncer) Announce(addr netip.Addr) error {
	if addr.Is4() {
		return a.garp(addr)
	}
	return a.na(addr)
}

// garp sends keepalived's gratuitous ARP (vrrp_arp.c, ipvs-features.md
// §7.8): an ARP request from the interface's MAC, to the broadcast
// address, with sender and target protocol address the VIP and target
// hardware address ff:ff:ff:ff:ff:ff.
func (a *hostAnnouncer) garp(addr netip.Addr) error {
	if len(a.link.MAC) != 6 {
		return fmt.Errorf("gratuitous ARP on %s: not an Ethernet interface", a.link.Name)
	}
	if a.arp == nil {
		c, err := packet.Listen(&net.Interface{Index: a.link.Index, Name: a.link.Name}, packet.Raw, etherTypeARP, &packet.Config{Filter: dropAll})
		if err != nil {
			return fmt.Errorf("gratuitous ARP on %s: %w", a.link.Name, err)
		}
		a.arp = c
	}
	f := garpFrame(a.fbuf[:], [6]byte(a.link.MAC), addr)
	_, err := a.arp.WriteTo(f, &packet.Addr{HardwareAddr: net.HardwareAddr(header.BroadcastMAC[:])})
	return err
}

// garpFrame writes the gratuitous ARP frame for addr from mac into b
// (ethMinFrame bytes) and returns it.
func garpFrame(b []byte, mac [6]byte, addr netip.Addr) []byte {
	clear(b)
	eth := header.Ethernet(b)
	eth.Encode(header.BroadcastMAC, mac, etherTypeARP)
	header.ARP(b[header.EthernetMinimumSize:]).EncodeGratuitous(mac, addr.As4())
	return b[:ethMinFrame]
}

// na sends an unsolicited neighbour advert for addr (RFC 4861 §7.2.6,
// keepalived vrrp_ndisc.c): from the VIP to all nodes, hop limit 255,
// Override set, Router set when the interface forwards IPv6, with the
// interface's MAC as target link-layer address. The kernel computes the
// ICMPv6 checksum.
func (a *hostAnnouncer) na(addr netip.Addr) error {
	if a.nd == nil {
		lc := net.ListenConfig{Control: bindDevice(a.link.Name)}
		pc, err := lc.ListenPacket(context.Background(), "ip6:ipv6-icmp", "::")
		if err != nil {
			return fmt.Errorf("neighbour advert on %s: %w", a.link.Name, err)
		}
		c := ipv6.NewPacketConn(pc)
		var f ipv6.ICMPFilter
		f.SetAll(true) // send only
		if err := c.SetICMPFilter(&f); err != nil {
			pc.Close()
			return fmt.Errorf("neighbour advert on %s: %w", a.link.Name, err)
		}
		a.nd = c
	}
	b := naPacket(a.buf[:], addr, a.link.MAC, forwarding6(a.link.Name))
	cm := &ipv6.ControlMessage{HopLimit: vrrp.TTL, Src: addr.WithZone("").AsSlice(), IfIndex: a.link.Index}
	_, err := a.nd.WriteTo(b, cm, &net.IPAddr{IP: allNodes.AsSlice(), Zone: zoneIndex(a.link)})
	return err
}

// naPacket writes the neighbour advert for target into b (naLen bytes,
// checksum left zero) and returns it:
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|     Type      |     Code      |          Checksum             |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|R|S|O|                     Reserved                            |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                       Target Address (16)                     |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|  Type = 2     |  Length = 1   |   Link-Layer Address (6) ...  |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
func naPacket(b []byte, target netip.Addr, mac net.HardwareAddr, router bool) []byte {
	clear(b)
	b[0] = icmpv6NeighborAdvert
	b[4] = naOverride
	if router {
		b[4] |= naRouter
	}
	t := target.As16()
	copy(b[8:24], t[:])
	b[24], b[25] = ndOptTargetLLAddr, 1 // length in units of 8 bytes
	copy(b[26:32], mac)
	return b[:naLen]
}

// forwarding6 reports whether interface name forwards IPv6 (keepalived
// sets the Router flag then).
func forwarding6(name string) bool {
	v, err := os.ReadFile("/proc/sys/net/ipv6/conf/" + name + "/forwarding")
	return err == nil && strings.TrimSpace(string(v)) == "1"
}

func (a *hostAnnouncer) Close() error {
	var errs []error
	if a.arp != nil {
		errs = append(errs, a.arp.Close())
	}
	if a.nd != nil {
		errs = append(errs, a.nd.Close())
	}
	return errors.Join(errs...)
}

// WatchLinks follows rtnetlink's link updates, subscribing again (and
// listing every link again) after a failed subscription.
func (s *hostSys) WatchLinks(ctx context.Context, fn func(name string, up bool), started func()) error {
	for first := true; ; first = false {
		err := s.watchOnce(ctx, fn, func() {
			if first {
				started()
			}
		})
		if ctx.Err() != nil {
			return nil
		}
		if first && err != nil {
			return err
		}
		s.log.Warn("link updates: subscription failed; subscribing again", "err", err)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(resubscribeDelay):
		}
	}
}

// watchOnce runs one subscription until it fails or ctx ends: it
// subscribes, then lists the links (a change in between comes as an
// update too, rather than being lost), then follows the updates.
func (s *hostSys) watchOnce(ctx context.Context, fn func(name string, up bool), listed func()) error {
	ch := make(chan netlink.LinkUpdate, 64)
	done := make(chan struct{})
	errc := make(chan error, 1)
	err := netlink.LinkSubscribeWithOptions(ch, done, netlink.LinkSubscribeOptions{
		ErrorCallback: func(err error) {
			select {
			case errc <- err:
			default:
			}
		},
	})
	if err != nil {
		return fmt.Errorf("subscribe to link updates: %w", err)
	}
	defer func() {
		close(done)
		for range ch { // until the library's reader has closed it
		}
	}()
	links, err := s.nl.LinkList()
	if err != nil {
		return fmt.Errorf("list links: %w", err)
	}
	for _, l := range links {
		li := linkInfoOf(l)
		fn(li.Name, li.Up)
	}
	listed()
	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-errc:
			return err
		case u, ok := <-ch:
			if !ok {
				return errors.New("link update subscription closed")
			}
			if u.Header.Type == syscall.RTM_DELLINK {
				fn(u.Attrs().Name, false)
				continue
			}
			li := linkInfoOf(u.Link)
			fn(li.Name, li.Up)
		}
	}
}
