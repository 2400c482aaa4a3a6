package check

import (
	"bytes"
	"context"
	crand "crypto/rand"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

// pingProber is PING_CHECK (keepalived/check/check_ping.c): one ICMP (or
// ICMPv6) echo request; the check succeeds on the matching echo reply
// from the target within connect_timeout.
//
// It uses an unprivileged ICMP datagram socket (socket(AF_INET,
// SOCK_DGRAM, IPPROTO_ICMP)), which the kernel allows to the groups in
// net.ipv4.ping_group_range (for IPv6 too) and which receives only the
// replies to its own echo identifier. keepalived widens ping_group_range
// to do the same; GoLVS does not touch the sysctl: when the datagram socket
// is refused it falls back to a raw socket (CAP_NET_RAW, that is root),
// which sees every ICMP message of the host and filters them by
// identifier, sequence number, payload and source.
type pingProber struct {
	dst     netip.Addr
	timeout time.Duration
	spec    sockSpec
	id      uint16
	seq     atomic.Uint32
	cookie  [8]byte
	// mode forces a socket kind (tests); pingAuto tries datagram first.
	mode pingMode
}

type pingMode uint8

const (
	pingAuto pingMode = iota
	pingDgram
	pingRaw
)

// sockSpec is what the ICMP socket needs of the Spec.
type sockSpec struct {
	bindTo netip.Addr
	bindIf string
	mark   uint32
}

// pingPayloadLen is the echo data: an 8-byte per-prober cookie and an
// 8-byte send time, 16 bytes, the size of keepalived's ping data.
const pingPayloadLen = 16

func newPingProber(s *Spec, t Target) (*pingProber, error) {
	ep, err := endpoint(s, t, false)
	if err != nil {
		return nil, err
	}
	p := &pingProber{dst: ep.Addr(), timeout: connectTimeout(s),
		spec: sockSpec{bindTo: s.BindTo.Unmap(), bindIf: s.BindIf, mark: s.FWMark}}
	var b [2]byte
	crand.Read(b[:])
	p.id = uint16(b[0])<<8 | uint16(b[1])
	crand.Read(p.cookie[:])
	return p, nil
}

// Probe implements Prober.
func (p *pingProber) Probe(ctx context.Context) Result {
	start := time.Now()
	r := p.echo(ctx)
	r.Start, r.Duration = start, time.Since(start)
	return r
}

func (p *pingProber) echo(ctx context.Context) Result {
	pctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	fail := func(err error) Result { return failure(pctx, p.timeout, err) }
	if err := ctx.Err(); err != nil {
		return fail(err)
	}

	c, raw, err := p.listen()
	if err != nil {
		return fail(fmt.Errorf("ICMP socket for %v: %w", p.dst, err))
	}
	defer c.Close()
	if d, ok := pctx.Deadline(); ok {
		_ = c.SetDeadline(d)
	}
	stopAbort := context.AfterFunc(pctx, func() { _ = c.SetDeadline(time.Unix(1, 0)) })
	defer stopAbort()

	v6 := p.dst.Is6()
	id := p.id
	if !raw {
		// The kernel replaces the identifier of a datagram socket's echo
		// with the socket's own (its "port") and delivers it only the
		// replies that carry it.
		if la, ok := c.LocalAddr().(*net.UDPAddr); ok {
			id = uint16(la.Port)
		}
	}
	seq := uint16(p.seq.Add(1))
	data := make([]byte, pingPayloadLen)
	copy(data, p.cookie[:])
	ns := time.Now().UnixNano()
	for i := range 8 {
		data[8+i] = byte(ns >> (8 * i))
	}
	var typ, replyType icmp.Type = ipv4.ICMPTypeEcho, ipv4.ICMPTypeEchoReply
	proto := 1 // IANA protocol number of ICMP
	if v6 {
		typ, replyType, proto = ipv6.ICMPTypeEchoRequest, ipv6.ICMPTypeEchoReply, 58 // ICMPv6
	}
	msg := icmp.Message{Type: typ, Body: &icmp.Echo{ID: int(id), Seq: int(seq), Data: data}}
	// For ICMPv6 the checksum is left to the kernel (RFC 3542 §3.1: it
	// computes it on ICMPv6 raw and datagram sockets).
	wb, err := msg.Marshal(nil)
	if err != nil {
		return fail(fmt.Errorf("ICMP echo to %v: %w", p.dst, err))
	}
	var to net.Addr = &net.IPAddr{IP: p.dst.AsSlice(), Zone: p.dst.Zone()}
	if !raw {
		to = &net.UDPAddr{IP: p.dst.AsSlice(), Zone: p.dst.Zone()}
	}
	if _, err := c.WriteTo(wb, to); err != nil {
		return fail(fmt.Errorf("ICMP echo to %v: %w", p.dst, err))
	}

	// 1500: an Ethernet MTU; an echo reply to 16 bytes of data is 24 bytes
	// (plus the IPv4 header, which Go strips from raw reads).
	rb := make([]byte, 1500)
	for {
		n, from, err := c.ReadFrom(rb)
		if err != nil {
			return fail(fmt.Errorf("ICMP echo reply from %v: %w", p.dst, err))
		}
		if !sameAddr(from, p.dst) {
			continue
		}
		m, err := icmp.ParseMessage(proto, rb[:n])
		if err != nil || m.Type != replyType {
			continue
		}
		e, ok := m.Body.(*icmp.Echo)
		if !ok || e.Seq != int(seq) || (raw && e.ID != int(id)) || !bytes.Equal(e.Data, data) {
			continue
		}
		return Result{OK: true}
	}
}

// sameAddr reports whether a packet's source is the target.
func sameAddr(from net.Addr, dst netip.Addr) bool {
	var ip net.IP
	switch a := from.(type) {
	case *net.IPAddr:
		ip = a.IP
	case *net.UDPAddr:
		ip = a.IP
	default:
		return false
	}
	a, ok := netip.AddrFromSlice(ip)
	return ok && a.Unmap() == dst.WithZone("")
}

// listen opens the ICMP socket: a datagram one unless refused (or a raw
// one is asked for), bound to bindto, with fwmark and bind_if set.
func (p *pingProber) listen() (net.PacketConn, bool, error) {
	if p.mode != pingRaw {
		c, err := p.socket(syscall.SOCK_DGRAM)
		if err == nil || p.mode == pingDgram || !(errors.Is(err, syscall.EACCES) || errors.Is(err, syscall.EPERM)) {
			return c, false, err
		}
	}
	c, err := p.socket(syscall.SOCK_RAW)
	return c, true, err
}

// socket creates, configures and binds one ICMP socket of type typ, as
// golang.org/x/net/icmp.ListenPacket does (which sets no options).
func (p *pingProber) socket(typ int) (net.PacketConn, error) {
	family, proto, network := syscall.AF_INET, syscall.IPPROTO_ICMP, "ip4:icmp"
	if p.dst.Is6() {
		family, proto, network = syscall.AF_INET6, syscall.IPPROTO_ICMPV6, "ip6:ipv6-icmp"
	}
	fd, err := syscall.Socket(family, typ|syscall.SOCK_CLOEXEC, proto)
	if err != nil {
		return nil, os.NewSyscallError("socket", err)
	}
	if err := setSockopts(fd, network, p.spec.mark, p.spec.bindIf, false, false); err != nil {
		syscall.Close(fd)
		return nil, err
	}
	var sa syscall.Sockaddr
	if family == syscall.AF_INET {
		s4 := &syscall.SockaddrInet4{}
		if p.spec.bindTo.Is4() {
			s4.Addr = p.spec.bindTo.As4()
		}
		sa = s4
	} else {
		s6 := &syscall.SockaddrInet6{}
		if p.spec.bindTo.Is6() {
			s6.Addr = p.spec.bindTo.As16()
			if p.spec.bindTo.IsLinkLocalUnicast() && p.spec.bindIf != "" {
				if ifi, err := net.InterfaceByName(p.spec.bindIf); err == nil {
					s6.ZoneId = uint32(ifi.Index)
				}
			}
		}
		sa = s6
	}
	if err := syscall.Bind(fd, sa); err != nil {
		syscall.Close(fd)
		return nil, os.NewSyscallError("bind", err)
	}
	f := os.NewFile(uintptr(fd), "icmp")
	c, err := net.FilePacketConn(f)
	f.Close()
	return c, err
}
