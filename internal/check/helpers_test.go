package check

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
	"syscall"
	"testing"
	"time"
)

// Addresses: loopback only (127.0.0.0/8, ::1).
var (
	lo4 = netip.MustParseAddr("127.0.0.1")
	lo6 = netip.MustParseAddr("::1")
)

// loopbacks are the address families the probe tests run on.
func loopbacks(t *testing.T) []netip.Addr {
	t.Helper()
	addrs := []netip.Addr{lo4}
	if l, err := net.Listen("tcp6", "[::1]:0"); err == nil {
		l.Close()
		addrs = append(addrs, lo6)
	} else {
		t.Logf("no IPv6 loopback: %v", err)
	}
	return addrs
}

func isRoot() bool { return os.Geteuid() == 0 }

// targetOf is the Target of a listener's address.
func targetOf(t *testing.T, a net.Addr) Target {
	t.Helper()
	ap, err := netip.ParseAddrPort(a.String())
	if err != nil {
		t.Fatalf("parse %v: %v", a, err)
	}
	return Target{Addr: ap.Addr().Unmap(), Port: ap.Port()}
}

// listenTCP listens on addr:0 and closes the listener at the end.
func listenTCP(t *testing.T, addr netip.Addr) net.Listener {
	t.Helper()
	l, err := net.Listen("tcp", netip.AddrPortFrom(addr, 0).String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// serve accepts connections on l and runs h on each in its own goroutine
// until the test ends; the test waits for them.
func serve(t *testing.T, l net.Listener, h func(net.Conn)) {
	t.Helper()
	done := make(chan struct{})
	conns := make(chan struct{}, 1024)
	go func() {
		defer close(done)
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			conns <- struct{}{}
			go func() {
				defer func() { <-conns }()
				defer c.Close()
				h(c)
			}()
		}
	}()
	t.Cleanup(func() {
		l.Close()
		<-done
		for len(conns) > 0 {
			time.Sleep(time.Millisecond)
		}
	})
}

// closedPort returns a loopback TCP/UDP port nothing listens on.
func closedPort(t *testing.T, addr netip.Addr) uint16 {
	t.Helper()
	l := listenTCP(t, addr)
	p := targetOf(t, l.Addr()).Port
	l.Close()
	return p
}

// hangingTarget returns a loopback TCP target whose connects hang: a
// socket listening with a backlog of 0 whose accept queue is filled and
// never drained, so that further SYNs are dropped.
func hangingTarget(t *testing.T, addr netip.Addr) Target {
	t.Helper()
	family := syscall.AF_INET6
	var sa syscall.Sockaddr = &syscall.SockaddrInet6{Addr: addr.As16()}
	if addr.Is4() {
		family, sa = syscall.AF_INET, &syscall.SockaddrInet4{Addr: addr.As4()}
	}
	fd, err := syscall.Socket(family, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Close(fd) })
	if err := syscall.Bind(fd, sa); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Listen(fd, 0); err != nil {
		t.Fatal(err)
	}
	lsa, err := syscall.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	var port int
	switch a := lsa.(type) {
	case *syscall.SockaddrInet4:
		port = a.Port
	case *syscall.SockaddrInet6:
		port = a.Port
	}
	tg := Target{Addr: addr, Port: uint16(port)}
	// Fill the accept queue: dial until a dial hangs (bounded).
	for i := 0; i < 16; i++ {
		c, err := net.DialTimeout("tcp", tg.String(), 200*time.Millisecond)
		if err != nil {
			return tg
		}
		t.Cleanup(func() { c.Close() })
	}
	t.Fatalf("accept queue of %v never filled", tg)
	return tg
}

// probeOnce runs one probe of s against tg.
func probeOnce(t *testing.T, s Spec, tg Target) Result {
	t.Helper()
	p, err := NewProber(s, tg)
	if err != nil {
		t.Fatalf("NewProber: %v", err)
	}
	return p.Probe(context.Background())
}

func wantOK(t *testing.T, r Result) {
	t.Helper()
	if !r.OK || r.Err != nil {
		t.Fatalf("probe failed: %v", r.Err)
	}
	if r.Duration <= 0 || r.Start.IsZero() {
		t.Errorf("Start %v Duration %v not set", r.Start, r.Duration)
	}
}

func wantFail(t *testing.T, r Result, target error) {
	t.Helper()
	if r.OK {
		t.Fatalf("probe succeeded, want failure %v", target)
	}
	if r.Err == nil {
		t.Fatalf("failed without a reason")
	}
	if target != nil && !errors.Is(r.Err, target) {
		t.Fatalf("error %q is not %v", r.Err, target)
	}
}
