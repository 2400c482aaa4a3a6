package lvslab

import (
	"errors"
	"fmt"
	"net/netip"
)

// UDP (RFC 768):
//
//	 0      7 8     15 16    23 24    31
//	+--------+--------+--------+--------+
//	|   Source Port   |   Dest. Port    |
//	+--------+--------+--------+--------+
//	|     Length      |    Checksum     |
//	+--------+--------+--------+--------+

// Datagram is a UDP datagram a socket received.
type Datagram struct {
	Src, Dst netip.AddrPort // Dst is the address it was sent to (e.g. a VIP)
	IfIndex  int            // interface it arrived on (1 for loopback)
	Data     []byte
}

// UDPHandler is called for each datagram a socket receives; a socket
// without one queues them for Recv.
type UDPHandler func(c *UDPConn, d Datagram)

// EchoUDP is a UDPHandler that sends every datagram back to its sender
// from the address it was sent to.
func EchoUDP(c *UDPConn, d Datagram) { _ = c.Reply(d, d.Data) }

// UDPConn is a UDP socket.
type UDPConn struct {
	h       *Host
	laddr   netip.AddrPort
	handler UDPHandler
	rx      []Datagram
	errs    []ICMPError
	closed  bool
}

// ErrAddrInUse is returned when binding a port already bound.
var ErrAddrInUse = errors.New("lvslab: address already in use")

// ErrClosed is returned by operations on a closed socket.
var ErrClosed = errors.New("lvslab: use of closed socket")

// ListenUDP binds a UDP socket to laddr. An unspecified address (0.0.0.0,
// ::) receives that family on every local address; the zero Addr receives
// both. Port 0 picks an ephemeral port.
func (h *Host) ListenUDP(laddr netip.AddrPort, handler UDPHandler) (*UDPConn, error) {
	laddr = netip.AddrPortFrom(laddr.Addr().Unmap(), laddr.Port())
	if laddr.Port() == 0 {
		laddr = netip.AddrPortFrom(laddr.Addr(), h.ephemeralPort())
	}
	if _, dup := h.udp[laddr]; dup {
		return nil, fmt.Errorf("lvslab: %s: udp bind %v: %w", h.name, laddr, ErrAddrInUse)
	}
	c := &UDPConn{h: h, laddr: laddr, handler: handler}
	h.udp[laddr] = c
	return c, nil
}

// udpLookup finds the socket for a datagram to a:port: exact address
// first, then the family's wildcard, then the all-families wildcard.
func (h *Host) udpLookup(a netip.Addr, port uint16) *UDPConn {
	if c := h.udp[netip.AddrPortFrom(a, port)]; c != nil {
		return c
	}
	wild := netip.IPv4Unspecified()
	if a.Is6() {
		wild = netip.IPv6Unspecified()
	}
	if c := h.udp[netip.AddrPortFrom(wild, port)]; c != nil {
		return c
	}
	return h.udp[netip.AddrPortFrom(netip.Addr{}, port)]
}

// LocalAddr returns the address the socket is bound to.
func (c *UDPConn) LocalAddr() netip.AddrPort { return c.laddr }

// Close unbinds the socket.
func (c *UDPConn) Close() {
	if !c.closed {
		c.closed = true
		delete(c.h.udp, c.laddr)
	}
}

// Recv pops the oldest queued datagram.
func (c *UDPConn) Recv() (Datagram, bool) {
	if len(c.rx) == 0 {
		return Datagram{}, false
	}
	d := c.rx[0]
	c.rx = c.rx[1:]
	return d, true
}

// Queued returns how many datagrams wait for Recv.
func (c *UDPConn) Queued() int { return len(c.rx) }

// Errors returns the ICMP errors received about the socket's datagrams
// (port unreachable, frag-needed, ...), as IP_RECVERR would.
func (c *UDPConn) Errors() []ICMPError { return append([]ICMPError(nil), c.errs...) }

// WriteTo sends b to dst from the socket's address, or, if it is
// unspecified, from the address the route to dst selects.
func (c *UDPConn) WriteTo(b []byte, dst netip.AddrPort) error {
	return c.WriteFromTo(b, c.laddr.Addr(), dst)
}

// Reply answers d from the address d was sent to, as a server bound to a
// wildcard address must (IP_PKTINFO): for a VIP on a DR or TUN real
// server the reply leaves from the VIP.
func (c *UDPConn) Reply(d Datagram, b []byte) error {
	return c.WriteFromTo(b, d.Dst.Addr(), d.Src)
}

// WriteFromTo sends b to dst from src (zero or unspecified: chosen by the
// route). The checksum is always computed (0 is sent as 0xffff).
func (c *UDPConn) WriteFromTo(b []byte, src netip.Addr, dst netip.AddrPort) error {
	h := c.h
	if c.closed {
		return ErrClosed
	}
	daddr := dst.Addr().Unmap()
	src = src.Unmap()
	if !src.IsValid() || src.IsUnspecified() {
		var ok bool
		if src, ok = h.SourceAddr(daddr); !ok {
			if !daddr.IsMulticast() || len(h.ifaces) < 2 {
				return fmt.Errorf("lvslab: %s: udp to %v: %w", h.name, dst, ErrNoRoute)
			}
			src = h.sourceFor(Route{IfIndex: h.ifaces[1].index}, daddr)
		}
	}
	if src.Is4() != daddr.Is4() {
		return fmt.Errorf("lvslab: %s: udp from %v to %v: address families differ", h.name, src, dst)
	}
	msg := make([]byte, udpHdrLen+len(b))
	put16(msg[0:], c.laddr.Port())
	put16(msg[2:], dst.Port())
	put16(msg[4:], uint16(len(msg)))
	copy(msg[udpHdrLen:], b)
	sum := l4Checksum(src, daddr, protoUDP, msg)
	if sum == 0 {
		sum = 0xffff // RFC 768: a computed zero is sent as all ones
	}
	put16(msg[6:], sum)
	size := ipv4HdrLen + len(msg)
	if daddr.Is6() {
		size = ipv6HdrLen + len(msg)
		if size > h.PathMTU(daddr) && !h.IsLocal(daddr) {
			return fmt.Errorf("lvslab: %s: udp %d bytes to %v: %w", h.name, len(b), dst, errMessageTooBig)
		}
	}
	if err := h.sendIP(src, daddr, protoUDP, msg, h.wantDF(daddr, size)); err != nil {
		return fmt.Errorf("lvslab: %s: udp to %v: %w", h.name, dst, err)
	}
	return nil
}

// udpInput delivers a datagram (checksum already verified) or answers
// port unreachable.
func (h *Host) udpInput(ifc *Interface, pkt []byte, ip ipHdr, l4 []byte) {
	sport, dport := be16(l4[0:]), be16(l4[2:])
	c := h.udpLookup(ip.dst, dport)
	if c == nil {
		h.dropIP(DropNoSocket, ifc.index, pkt)
		if h.IsLocal(ip.dst) {
			h.sendUnreachable(pkt, ip, unreachPort)
		}
		return
	}
	d := Datagram{
		Src:     netip.AddrPortFrom(ip.src, sport),
		Dst:     netip.AddrPortFrom(ip.dst, dport),
		IfIndex: ifc.index,
		Data:    append([]byte(nil), l4[udpHdrLen:]...),
	}
	if c.handler != nil {
		c.handler(c, d)
		return
	}
	c.rx = append(c.rx, d)
}

// ephemeralPort returns an unused local port from Linux's default
// ip_local_port_range, counting up from a random start.
func (h *Host) ephemeralPort() uint16 {
	for range ephemeralHigh - ephemeralLow + 1 {
		p := h.nextPort
		h.nextPort++
		if h.nextPort > ephemeralHigh {
			h.nextPort = ephemeralLow
		}
		if !h.portInUse(p) {
			return p
		}
	}
	panic(fmt.Sprintf("lvslab: %s: out of ephemeral ports", h.name))
}

func (h *Host) portInUse(p uint16) bool {
	for a := range h.udp {
		if a.Port() == p {
			return true
		}
	}
	for a := range h.tcpListeners {
		if a.Port() == p {
			return true
		}
	}
	for k := range h.tcpConns {
		if k.local.Port() == p {
			return true
		}
	}
	return false
}
