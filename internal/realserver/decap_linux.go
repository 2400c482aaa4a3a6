package realserver

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"unsafe"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"
)

const (
	// decapBatch is how many datagrams one recvmmsg may return: enough to
	// take a burst in one system call (the feasibility measurements of
	// 2026-11 found recvmmsg about 1.8x recvfrom per packet on these
	// machines), few enough that the buffers stay at 1 MiB a socket.
	decapBatch = 16
	// maxDatagram is the largest datagram a raw socket can hand over: an
	// IPv4 total length or IPv6 payload length is 16 bits (jumbograms
	// aside). GRO on the receiving NIC does build IP-in-IP packets that
	// large, so the buffers are that large too.
	maxDatagram = 65535
	// rcvBuf is the raw sockets' receive buffer: room for a burst of
	// about 2700 full-size frames between two reads, and the largest the
	// namespaced net.core.rmem_max allows here (4 MiB, read-only inside a
	// namespace); SO_RCVBUFFORCE (CAP_NET_ADMIN) goes past the limit
	// where it is lower.
	rcvBuf = 4 << 20
)

// Decap decapsulates IP-in-IP in user space: it receives the outer
// packets on raw sockets, and writes the inner packets addressed to a VIP
// into a TUN device, from which the kernel delivers them as if they had
// been received (see the package doc). Its methods are safe for
// concurrent use. Close removes the TUN device.
type Decap struct {
	name    string
	tun     int // the TUN device's file descriptor
	vips    vipSet
	readers []*decapReader
	log     *slog.Logger

	mu      sync.Mutex // guards closed and started
	closed  bool
	started bool
	wg      sync.WaitGroup // the readers Run started
}

// decapReader is one raw socket and its batch of buffers, owned by the
// goroutine Run starts for it.
type decapReader struct {
	d     *Decap
	encap Encaps
	f     *os.File        // the socket, non-blocking, in the runtime's poller
	rc    syscall.RawConn // f's
	msgs  []unix.Mmsghdr
	iovs  []unix.Iovec
	bufs  [][]byte
	// n and err are the result of the last recvmmsg: written by recv,
	// read by run after rc.Read returns.
	n      int
	err    error
	recvFn func(fd uintptr) bool // recv, bound once so Read does not allocate
	warned bool                  // a failed TUN write was logged
	// stopped is set before f is closed on purpose, so that the error
	// that wakes run ("use of closed file", not os.ErrClosed from a
	// RawConn) is told from a real one.
	stopped atomic.Bool
	c       decapCounters
}

// OpenDecap creates the TUN device (up, reverse-path filter loose, no
// IPv6 address of its own) and the raw sockets. Nothing is received
// before Run. It needs CAP_NET_ADMIN and CAP_NET_RAW, and works in the
// network namespace of the calling thread; the goroutines Run starts may
// run on any thread, as the device and the sockets belong to the
// namespace they were made in.
func OpenDecap(cfg DecapConfig) (_ *Decap, err error) {
	name := cfg.Name
	if name == "" {
		name = DefaultTunName
	}
	if err := CheckIfName(name); err != nil {
		return nil, err
	}
	if len(cfg.VIPs) == 0 {
		return nil, errors.New("decap: no VIP")
	}
	for _, a := range cfg.VIPs {
		if err := CheckVIP(a); err != nil {
			return nil, err
		}
	}
	encaps := cfg.Encaps & allEncaps
	if encaps == 0 {
		encaps = EncapsFor(cfg.VIPs)
	}
	if _, err := netlink.LinkByName(name); err == nil {
		return nil, fmt.Errorf("decap: interface %s exists already (another lvsd realserver --tun?)", name)
	} else if !isNotFound(err) {
		return nil, fmt.Errorf("decap: find %s: %w", name, err)
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	d := &Decap{name: name, tun: -1, vips: newVIPSet(cfg.VIPs), log: log}
	defer func() {
		if err != nil {
			d.Close()
		}
	}()
	if err := d.openTUN(cfg); err != nil {
		return nil, err
	}
	for _, n := range encapNames {
		if encaps&n.e == 0 {
			continue
		}
		r, err := d.openReader(n.e)
		if errors.Is(err, unix.EAFNOSUPPORT) && n.e.outer6() {
			log.Warn("no IPv6 on this host: not receiving "+n.name, "err", err)
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("decap: raw socket for %s: %w", n.name, err)
		}
		d.readers = append(d.readers, r)
	}
	if len(d.readers) == 0 {
		return nil, errors.New("decap: no raw socket could be opened")
	}
	return d, nil
}

// openTUN creates and configures the device.
func (d *Decap) openTUN(cfg DecapConfig) error {
	fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("decap: open /dev/net/tun: %w", err)
	}
	d.tun = fd
	ifr, err := unix.NewIfreq(d.name)
	if err != nil {
		return fmt.Errorf("decap: %w", err)
	}
	// IFF_NO_PI: a write is the bare IP packet (the version nibble tells
	// the family), no struct tun_pi in front.
	ifr.SetUint16(unix.IFF_TUN | unix.IFF_NO_PI)
	if err := unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr); err != nil {
		return fmt.Errorf("decap: create TUN device %s: %w", d.name, err)
	}
	link, err := netlink.LinkByName(d.name)
	if err != nil {
		return fmt.Errorf("decap: find %s: %w", d.name, err)
	}
	sys := sysctls{root: cfg.procSys}
	if len(d.vips.v4) > 0 {
		// The device is new and goes with Close: nothing to restore.
		if err := relax(sys, ipv4Conf(d.name, "rp_filter"), rpFilterRule); err != nil {
			return err
		}
		// Loose reverse-path filtering rejects every packet that comes
		// in on an interface without an IPv4 address, unless the route
		// back to its source leaves through that interface
		// (fib_validate_source: no_addr -> last_resort -> e_rpf for any
		// rp_filter but 0). Rather than turning the filter off for the
		// host (net.ipv4.conf.all.rp_filter=0), the device gets the
		// IPv4 VIPs as /32, as tunl0 gets them when the kernel
		// decapsulates; they go with the device. The host keeps them on
		// lo as well, so they stay local between two runs.
		for _, a := range d.vips.v4 {
			host := netip.PrefixFrom(netip.AddrFrom4(a), 32)
			if err := netlink.AddrAdd(link, &netlink.Addr{IPNet: prefixIPNet(host), Flags: unix.IFA_F_NOPREFIXROUTE}); err != nil {
				return fmt.Errorf("decap: add %v to %s: %w", host, d.name, err)
			}
		}
	}
	if len(d.vips.v6) > 0 {
		// A device inherits default's disable_ipv6, and ip6_rcv drops
		// what arrives on a device with IPv6 disabled.
		if v, err := sys.get(ipv6Conf(d.name, "disable_ipv6")); err == nil && v == "1" {
			if err := sys.set(ipv6Conf(d.name, "disable_ipv6"), "0"); err != nil {
				return fmt.Errorf("decap: enable IPv6 on %s: %w", d.name, err)
			}
		}
	}
	// No link-local address, so no router solicitations or MLD reports
	// queue up unread on the device. Fails harmlessly without IPv6.
	if err := netlink.LinkSetIP6AddrGenMode(link, nl.IN6_ADDR_GEN_MODE_NONE); err != nil {
		d.log.Debug("decap: addrgenmode none", "dev", d.name, "err", err)
	}
	if err := netlink.LinkSetUp(link); err != nil {
		return fmt.Errorf("decap: bring %s up: %w", d.name, err)
	}
	return nil
}

// relax sets a sysctl to r.want unless its value is acceptable.
func relax(sys sysctls, path string, r rule) error {
	v, err := sys.get(path)
	if err != nil {
		return fmt.Errorf("decap: read %s: %w", sysctlName(path), err)
	}
	if r.ok(v) {
		return nil
	}
	if err := sys.set(path, r.want); err != nil {
		return fmt.Errorf("decap: set %s = %s: %w", sysctlName(path), r.want, err)
	}
	return nil
}

// openReader opens the raw socket of e with its buffers.
func (d *Decap) openReader(e Encaps) (*decapReader, error) {
	family := unix.AF_INET
	if e.outer6() {
		family = unix.AF_INET6
	}
	fd, err := unix.Socket(family, unix.SOCK_RAW|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, int(e.proto()))
	if err != nil {
		return nil, err
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, rcvBuf); err != nil {
		_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, rcvBuf) // best effort
	}
	return d.newReader(e, fd)
}

// newReader wraps fd, a non-blocking datagram socket that delivers what
// a raw socket of e would, with its buffers; it owns fd from then on.
func (d *Decap) newReader(e Encaps, fd int) (*decapReader, error) {
	// A non-blocking descriptor becomes a pollable *os.File: Close then
	// wakes a reader blocked in Read.
	f := os.NewFile(uintptr(fd), "raw-"+e.String())
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, err
	}
	r := &decapReader{
		d:     d,
		encap: e,
		f:     f,
		rc:    rc,
		msgs:  make([]unix.Mmsghdr, decapBatch),
		iovs:  make([]unix.Iovec, decapBatch),
		bufs:  make([][]byte, decapBatch),
	}
	slab := make([]byte, decapBatch*maxDatagram)
	for i := range r.bufs {
		r.bufs[i] = slab[i*maxDatagram : (i+1)*maxDatagram : (i+1)*maxDatagram]
		r.iovs[i].Base = &r.bufs[i][0]
		r.iovs[i].SetLen(maxDatagram)
		r.msgs[i].Hdr.Iov = &r.iovs[i]
		r.msgs[i].Hdr.SetIovlen(1)
	}
	r.recvFn = r.recv
	return r, nil
}

// Name returns the TUN device's name.
func (d *Decap) Name() string { return d.name }

// Encaps returns the encapsulations Decap receives.
func (d *Decap) Encaps() Encaps {
	var e Encaps
	for _, r := range d.readers {
		e |= r.encap
	}
	return e
}

// Counters returns the totals so far.
func (d *Decap) Counters() DecapCounters {
	var t DecapCounters
	for _, r := range d.readers {
		r.c.addTo(&t)
	}
	return t
}

// Run decapsulates until Close, then returns nil; if a socket fails, it
// stops the others and returns the error. It may be called once.
func (d *Decap) Run() error {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return nil
	}
	if d.started {
		d.mu.Unlock()
		return errors.New("decap: Run called twice")
	}
	d.started = true
	d.wg.Add(len(d.readers))
	d.mu.Unlock()

	errc := make(chan error, len(d.readers))
	for _, r := range d.readers {
		go func() {
			defer d.wg.Done()
			if err := r.run(); err != nil {
				errc <- fmt.Errorf("decap %v: %w", r.encap, err)
				return
			}
			errc <- nil
		}()
	}
	var first error
	for range d.readers {
		if err := <-errc; err != nil && first == nil {
			first = err
			for _, r := range d.readers {
				r.stop() // wakes the others; Close's second stop is harmless
			}
		}
	}
	return first
}

// Close stops Run, closes the sockets and the TUN device (which the
// kernel then removes). It waits for the readers, so no write races the
// device's close.
func (d *Decap) Close() error {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return nil
	}
	d.closed = true
	d.mu.Unlock()
	for _, r := range d.readers {
		r.stop()
	}
	d.wg.Wait()
	if d.tun < 0 {
		return nil
	}
	err := unix.Close(d.tun)
	d.tun = -1
	return err
}

// stop closes the socket, which wakes run.
func (r *decapReader) stop() {
	r.stopped.Store(true)
	r.f.Close()
}

// run reads batches until the socket is closed.
func (r *decapReader) run() error {
	for {
		if err := r.rc.Read(r.recvFn); err != nil {
			if r.stopped.Load() {
				return nil
			}
			return err
		}
		if r.err != nil {
			return os.NewSyscallError("recvmmsg", r.err)
		}
		for i := range r.msgs[:r.n] {
			m := &r.msgs[i]
			r.c.received.Add(1)
			if m.Hdr.Flags&unix.MSG_TRUNC != 0 {
				r.c.malformed.Add(1)
				continue
			}
			r.handle(r.bufs[i][:m.Len])
		}
	}
}

// recv is rc.Read's callback: one non-blocking recvmmsg (the x/sys/unix
// package has no wrapper for it). It returns false to wait for the socket
// to become readable.
func (r *decapReader) recv(fd uintptr) bool {
	for {
		n, _, errno := unix.Syscall6(unix.SYS_RECVMMSG, fd,
			uintptr(unsafe.Pointer(&r.msgs[0])), uintptr(len(r.msgs)),
			unix.MSG_DONTWAIT, 0, 0)
		switch errno {
		case 0:
			r.n, r.err = int(n), nil
			return true
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			return false
		default:
			r.n, r.err = 0, errno
			return true
		}
	}
}

// handle injects one outer packet's inner packet, or counts why not. It
// allocates nothing.
func (r *decapReader) handle(b []byte) {
	inner, v := r.d.vips.decapsulate(b, r.encap)
	switch v {
	case dropNotVIP:
		r.c.notVIP.Add(1)
		return
	case dropMalformed:
		r.c.malformed.Add(1)
		return
	}
	if completePartial(inner) {
		r.c.csum.Add(1)
	}
	if _, err := unix.Write(r.d.tun, inner); err != nil {
		r.c.writeErrs.Add(1)
		if !r.warned { // once per socket: no log line per packet
			r.warned = true
			r.d.log.Warn("decap: TUN write failed (counted from now on)", "dev", r.d.name, "err", err)
		}
		return
	}
	r.c.injected.Add(1)
}
