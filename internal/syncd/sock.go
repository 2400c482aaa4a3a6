package syncd

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"syscall"

	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

// The sockets of the daemons, as the kernel's make_send_sock and
// make_receive_sock make them, with golang.org/x/net for the multicast
// options.

// primaryAddr4 returns the first IPv4 address of ifi (the kernel's
// inet_select_addr for bind_mcastif_addr).
func primaryAddr4(ifi *net.Interface) (netip.Addr, error) {
	addrs, err := ifi.Addrs()
	if err != nil {
		return netip.Addr{}, err
	}
	for _, a := range addrs {
		if p, ok := a.(*net.IPNet); ok {
			if ip, ok := netip.AddrFromSlice(p.IP); ok && ip.Unmap().Is4() {
				return ip.Unmap(), nil
			}
		}
	}
	// The kernel: "You probably need to specify IP address on
	// multicast interface." (EADDRNOTAVAIL).
	return netip.Addr{}, fmt.Errorf("interface %s has no IPv4 address: %w", ifi.Name, syscall.EADDRNOTAVAIL)
}

// pmtudiscDont sets IP_PMTUDISC_DONT (or its IPv6 twin): the master's
// messages may be fragmented (set_sock_pmtudisc in make_send_sock), so a
// sync_maxlen above the path MTU still gets through.
func pmtudiscDont(v6 bool) func(network, address string, c syscall.RawConn) error {
	return func(network, address string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			if v6 {
				serr = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_IPV6, syscall.IPV6_MTU_DISCOVER, 0) // IPV6_PMTUDISC_DONT
			} else {
				serr = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_IP, syscall.IP_MTU_DISCOVER, syscall.IP_PMTUDISC_DONT)
			}
		})
		if err != nil {
			return err
		}
		return serr
	}
}

// reuseAddr sets SO_REUSEADDR, as make_receive_sock does, so that a
// backup may share the group's port (with another backup of the same
// group on another interface, for one).
func reuseAddr(network, address string, c syscall.RawConn) error {
	var serr error
	err := c.Control(func(fd uintptr) {
		serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_REUSEADDR, 1)
	})
	if err != nil {
		return err
	}
	return serr
}

// openSender opens the master's socket: for a multicast group, bound to
// the interface's primary IPv4 address (IPv4) with IP_MULTICAST_IF set to
// the interface, multicast loop off and the TTL; for unicast peers (GoLVS),
// an unbound dual-stack socket, routed as usual.
func openSender(ifi *net.Interface, group netip.Addr, ttl int, unicast bool) (*net.UDPConn, error) {
	ctx := context.Background()
	if unicast {
		both := func(network, address string, c syscall.RawConn) error {
			// Best effort for the IPv4 peers of a dual-stack socket.
			_ = pmtudiscDont(false)(network, address, c)
			return pmtudiscDont(true)(network, address, c)
		}
		pc, err := (&net.ListenConfig{Control: both}).ListenPacket(ctx, "udp", ":0")
		if err != nil {
			return nil, err
		}
		return pc.(*net.UDPConn), nil
	}
	if group.Is4() {
		src, err := primaryAddr4(ifi)
		if err != nil {
			return nil, err
		}
		pc, err := (&net.ListenConfig{Control: pmtudiscDont(false)}).ListenPacket(ctx, "udp4", netip.AddrPortFrom(src, 0).String())
		if err != nil {
			return nil, err
		}
		c := pc.(*net.UDPConn)
		p := ipv4.NewPacketConn(c)
		if err := errors.Join(p.SetMulticastInterface(ifi), p.SetMulticastTTL(ttl), p.SetMulticastLoopback(false)); err != nil {
			c.Close()
			return nil, err
		}
		return c, nil
	}
	pc, err := (&net.ListenConfig{Control: pmtudiscDont(true)}).ListenPacket(ctx, "udp6", "[::]:0")
	if err != nil {
		return nil, err
	}
	c := pc.(*net.UDPConn)
	p := ipv6.NewPacketConn(c)
	if err := errors.Join(p.SetMulticastInterface(ifi), p.SetMulticastHopLimit(ttl), p.SetMulticastLoopback(false)); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// receiver is the backup's socket.
type receiver interface {
	// read reads one datagram into b: its length, source and the
	// interface it came in on (0 if not known).
	read(b []byte) (n int, src netip.Addr, ifindex int, err error)
	Close() error
}

// openReceiver opens the backup's socket: for a multicast group, bound to
// group:port with SO_REUSEADDR and joined on the interface (the kernel also
// binds it to the device; here the interface of each datagram is checked
// instead); for unicast peers (GoLVS), bound to listen:port.
func openReceiver(ifi *net.Interface, group netip.Addr, port uint16, unicast bool, listen netip.Addr) (receiver, error) {
	ctx := context.Background()
	lc := &net.ListenConfig{Control: reuseAddr}
	if unicast {
		addr := fmt.Sprintf(":%d", port)
		if listen.IsValid() {
			addr = netip.AddrPortFrom(listen, port).String()
		}
		pc, err := lc.ListenPacket(ctx, "udp", addr)
		if err != nil {
			return nil, err
		}
		return unicastReceiver{pc.(*net.UDPConn)}, nil
	}
	ga := netip.AddrPortFrom(group, port)
	if group.Is4() {
		pc, err := lc.ListenPacket(ctx, "udp4", ga.String())
		if err != nil {
			return nil, err
		}
		p := ipv4.NewPacketConn(pc)
		if err := errors.Join(p.JoinGroup(ifi, &net.UDPAddr{IP: group.AsSlice()}), p.SetControlMessage(ipv4.FlagInterface, true)); err != nil {
			pc.Close()
			return nil, err
		}
		return mcast4Receiver{p}, nil
	}
	pc, err := lc.ListenPacket(ctx, "udp6", ga.String())
	if err != nil {
		return nil, err
	}
	p := ipv6.NewPacketConn(pc)
	if err := errors.Join(p.JoinGroup(ifi, &net.UDPAddr{IP: group.AsSlice()}), p.SetControlMessage(ipv6.FlagInterface, true)); err != nil {
		pc.Close()
		return nil, err
	}
	return mcast6Receiver{p}, nil
}

type unicastReceiver struct{ c *net.UDPConn }

func (r unicastReceiver) read(b []byte) (int, netip.Addr, int, error) {
	n, src, err := r.c.ReadFromUDPAddrPort(b)
	return n, src.Addr().Unmap(), 0, err
}

func (r unicastReceiver) Close() error { return r.c.Close() }

type mcast4Receiver struct{ p *ipv4.PacketConn }

func (r mcast4Receiver) read(b []byte) (int, netip.Addr, int, error) {
	n, cm, src, err := r.p.ReadFrom(b)
	return n, addrOf(src), ifIndex4(cm), err
}

func (r mcast4Receiver) Close() error { return r.p.Close() }

type mcast6Receiver struct{ p *ipv6.PacketConn }

func (r mcast6Receiver) read(b []byte) (int, netip.Addr, int, error) {
	n, cm, src, err := r.p.ReadFrom(b)
	idx := 0
	if cm != nil {
		idx = cm.IfIndex
	}
	return n, addrOf(src), idx, err
}

func (r mcast6Receiver) Close() error { return r.p.Close() }

func ifIndex4(cm *ipv4.ControlMessage) int {
	if cm == nil {
		return 0
	}
	return cm.IfIndex
}

func addrOf(a net.Addr) netip.Addr {
	if u, ok := a.(*net.UDPAddr); ok {
		ip, _ := netip.AddrFromSlice(u.IP)
		return ip.Unmap()
	}
	return netip.Addr{}
}
