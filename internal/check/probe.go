package check

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"syscall"
	"time"
)

// A Prober runs one check of one checker and reports what it saw. Probe
// bounds itself with the checker's connect_timeout (misc_timeout for
// MISC_CHECK) and returns promptly, with a failed Result, when ctx is
// cancelled. Probers made by NewProber are safe for concurrent use.
type Prober interface {
	Probe(ctx context.Context) Result
}

// ProberFunc adapts a function to Prober (tests, and checkers run
// elsewhere such as BFD_CHECK).
type ProberFunc func(ctx context.Context) Result

// Probe implements Prober.
func (f ProberFunc) Probe(ctx context.Context) Result { return f(ctx) }

// Defaults used when a Spec leaves a timer at zero. The configuration
// parser normally fills them (spec §7.3); these keep a hand-made Spec
// from spinning or never timing out.
const (
	// defaultConnectTimeout is keepalived's connect_timeout default.
	defaultConnectTimeout = 5 * time.Second
	// defaultDelayLoop is keepalived's delay_loop default.
	defaultDelayLoop = 60 * time.Second
)

// NewProber returns the prober of the checker s for the real server t.
// It checks what can be checked before the first probe (a known Kind, a
// port for the checkers that need one, the HTTP regexes, the DNS type,
// the MISC_CHECK user) so that a bad Spec fails here, once.
func NewProber(s Spec, t Target) (Prober, error) {
	switch s.Kind {
	case KindTCP:
		return newTCPProber(&s, t)
	case KindHTTP, KindSSL:
		return newHTTPProber(&s, t)
	case KindSMTP:
		return newSMTPProber(&s, t)
	case KindDNS:
		return newDNSProber(&s, t)
	case KindMisc:
		return newMiscProber(&s)
	case KindUDP:
		return newUDPProber(&s, t)
	case KindPing:
		return newPingProber(&s, t)
	case KindFile:
		return newFileProber(&s)
	}
	return nil, fmt.Errorf("check: unknown checker kind %v", s.Kind)
}

// connectTimeout is s's connect_timeout, or keepalived's default.
func connectTimeout(s *Spec) time.Duration {
	if s.ConnectTimeout > 0 {
		return s.ConnectTimeout
	}
	return defaultConnectTimeout
}

// endpoint is where a checker connects: connect_ip / connect_port, or the
// real server. An IPv6 link-local address takes bind_if as its zone
// (keepalived requires bind_if for one: check_conn_opts).
func endpoint(s *Spec, t Target, needPort bool) (netip.AddrPort, error) {
	addr := s.ConnectIP
	if !addr.IsValid() {
		addr = t.Addr
	}
	if !addr.IsValid() {
		return netip.AddrPort{}, fmt.Errorf("check: %v: no address to connect to", s.Kind)
	}
	addr = addr.Unmap()
	port := s.ConnectPort
	if port == 0 {
		port = t.Port
	}
	if needPort && port == 0 {
		return netip.AddrPort{}, fmt.Errorf("check: %v to %v: no port to connect to", s.Kind, addr)
	}
	if addr.Is6() && addr.IsLinkLocalUnicast() && addr.Zone() == "" {
		if s.BindIf == "" {
			return netip.AddrPort{}, fmt.Errorf("check: %v: link-local address %v needs bind_if", s.Kind, addr)
		}
		addr = addr.WithZone(s.BindIf)
	}
	if s.BindTo.IsValid() && s.BindTo.Unmap().Is4() != addr.Is4() {
		return netip.AddrPort{}, fmt.Errorf("check: %v: bindto %v and %v are of different families", s.Kind, s.BindTo, addr)
	}
	return netip.AddrPortFrom(addr, port), nil
}

// localIP is bindto as a net.IP with its zone (nil: any).
func localIP(s *Spec) (net.IP, string) {
	if !s.BindTo.IsValid() {
		return nil, ""
	}
	a := s.BindTo.Unmap()
	zone := a.Zone()
	if zone == "" && a.Is6() && a.IsLinkLocalUnicast() {
		zone = s.BindIf
	}
	return net.IP(a.AsSlice()), zone
}

// dialer returns a net.Dialer that binds to bindto:bind_port and sets the
// socket options of s (fwmark, bind_if) on network "tcp" or "udp".
func dialer(s *Spec, network string, recvErr bool) *net.Dialer {
	// KeepAlive -1: no TCP keep-alive probes on a connection that lives
	// for one check (Go enables them by default, at the cost of three
	// setsockopt calls per connection).
	d := &net.Dialer{Control: sockControl(s, recvErr), KeepAlive: -1}
	ip, zone := localIP(s)
	if ip != nil || s.BindPort != 0 {
		switch network {
		case "tcp":
			d.LocalAddr = &net.TCPAddr{IP: ip, Port: int(s.BindPort), Zone: zone}
		case "udp":
			d.LocalAddr = &net.UDPAddr{IP: ip, Port: int(s.BindPort), Zone: zone}
		}
	}
	return d
}

// sockControl returns the Control function that sets, before bind and
// connect, what keepalived's socket_bind_connect (lib/layer4.c) sets:
// SO_MARK for fwmark (needs CAP_NET_ADMIN: without it the probe fails with
// ErrSockopt, as keepalived's does), SO_BINDTODEVICE for bind_if,
// SO_REUSEADDR and SO_LINGER 0 for a fixed bind_port (so that the
// previous probe's connection does not make bind or connect fail), and
// IP_RECVERR /
// IPV6_RECVERR for UDP_CHECK, so that ICMP host and network unreachable
// reach the connected socket and not only port unreachable.
//
// The options go through the standard syscall package: the repository
// guard keeps golang.org/x/sys/unix to the packages that own the host
// side (style.md §3.2), and syscall has every constant needed on Linux.
func sockControl(s *Spec, recvErr bool) func(network, address string, c syscall.RawConn) error {
	mark, bindIf, reuse := s.FWMark, s.BindIf, s.BindPort != 0
	if mark == 0 && bindIf == "" && !reuse && !recvErr {
		return nil
	}
	return func(network, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			serr = setSockopts(int(fd), network, mark, bindIf, reuse, recvErr)
		})
		if err != nil {
			return err
		}
		return serr
	}
}

// setSockopts sets the options of sockControl on fd; network ends in "4"
// or "6" (or is a raw "ip4:..."/"ip6:..." network) when the family is
// known, which is all Go's dialer and listener pass.
func setSockopts(fd int, network string, mark uint32, bindIf string, reuse, recvErr bool) error {
	if mark != 0 {
		if err := syscall.SetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_MARK, int(mark)); err != nil {
			return fmt.Errorf("%w: fwmark %d: %w", ErrSockopt, mark, os.NewSyscallError("setsockopt SO_MARK", err))
		}
	}
	if bindIf != "" {
		if err := syscall.SetsockoptString(fd, syscall.SOL_SOCKET, syscall.SO_BINDTODEVICE, bindIf); err != nil {
			return fmt.Errorf("%w: bind_if %s: %w", ErrSockopt, bindIf, os.NewSyscallError("setsockopt SO_BINDTODEVICE", err))
		}
	}
	if reuse {
		if err := syscall.SetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_REUSEADDR, 1); err != nil {
			return fmt.Errorf("%w: %w", ErrSockopt, os.NewSyscallError("setsockopt SO_REUSEADDR", err))
		}
		if strings.HasPrefix(network, "tcp") {
			// A TCP connection closed first by the checker would sit in
			// TIME_WAIT on bindto:bind_port, and the next probe's connect
			// from the same port to the same server would fail
			// (EADDRNOTAVAIL). Linger 0 closes with a reset and leaves
			// none, as keepalived's layer4.c did before 2.0.
			if err := syscall.SetsockoptLinger(fd, syscall.SOL_SOCKET, syscall.SO_LINGER, &syscall.Linger{Onoff: 1}); err != nil {
				return fmt.Errorf("%w: %w", ErrSockopt, os.NewSyscallError("setsockopt SO_LINGER", err))
			}
		}
	}
	if recvErr {
		v6 := len(network) > 0 && network[len(network)-1] == '6'
		level, opt, name := syscall.IPPROTO_IP, syscall.IP_RECVERR, "IP_RECVERR"
		if v6 {
			level, opt, name = syscall.IPPROTO_IPV6, syscall.IPV6_RECVERR, "IPV6_RECVERR"
		}
		if err := syscall.SetsockoptInt(fd, level, opt, 1); err != nil {
			return fmt.Errorf("%w: %w", ErrSockopt, os.NewSyscallError("setsockopt "+name, err))
		}
	}
	return nil
}

// abortOnDone makes a blocked Read or Write on c return as soon as ctx is
// done (its deadline or a Stop), and sets c's deadline to ctx's. The
// returned function releases the hook; call it before closing c.
func abortOnDone(ctx context.Context, c net.Conn) (stop func() bool) {
	if d, ok := ctx.Deadline(); ok {
		_ = c.SetDeadline(d)
	}
	return context.AfterFunc(ctx, func() {
		// A deadline in the past wakes every blocked call at once.
		_ = c.SetDeadline(time.Unix(1, 0))
	})
}
