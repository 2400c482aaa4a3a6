package check

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"runtime"
	"syscall"
	"testing"
	"time"
	"unsafe"
)

func TestTCPCheck(t *testing.T) {
	for _, addr := range loopbacks(t) {
		t.Run(addr.String(), func(t *testing.T) {
			l := listenTCP(t, addr)
			serve(t, l, func(net.Conn) {})
			tg := targetOf(t, l.Addr())

			t.Run("connects", func(t *testing.T) {
				wantOK(t, probeOnce(t, Spec{Kind: KindTCP, ConnectTimeout: time.Second}, tg))
			})
			t.Run("connect_ip and connect_port override the real server", func(t *testing.T) {
				s := Spec{Kind: KindTCP, ConnectIP: tg.Addr, ConnectPort: tg.Port, ConnectTimeout: time.Second}
				wantOK(t, probeOnce(t, s, Target{Addr: tg.Addr, Port: 1}))
			})
			t.Run("refused", func(t *testing.T) {
				r := probeOnce(t, Spec{Kind: KindTCP, ConnectTimeout: time.Second}, Target{Addr: addr, Port: closedPort(t, addr)})
				wantFail(t, r, syscall.ECONNREFUSED)
			})
			t.Run("timeout", func(t *testing.T) {
				hang := hangingTarget(t, addr)
				start := time.Now()
				r := probeOnce(t, Spec{Kind: KindTCP, ConnectTimeout: 300 * time.Millisecond}, hang)
				wantFail(t, r, ErrTimeout)
				if el := time.Since(start); el < 250*time.Millisecond || el > 3*time.Second {
					t.Errorf("timed out after %v, want about 300ms", el)
				}
			})
			t.Run("cancel ends the probe at once", func(t *testing.T) {
				hang := hangingTarget(t, addr)
				p, err := NewProber(Spec{Kind: KindTCP, ConnectTimeout: time.Minute}, hang)
				if err != nil {
					t.Fatal(err)
				}
				ctx, cancel := context.WithCancel(context.Background())
				time.AfterFunc(50*time.Millisecond, cancel)
				start := time.Now()
				r := p.Probe(ctx)
				if r.OK || time.Since(start) > 5*time.Second {
					t.Fatalf("probe %+v after %v", r, time.Since(start))
				}
				if errors.Is(r.Err, ErrTimeout) {
					t.Errorf("a cancelled probe reported a timeout: %v", r.Err)
				}
			})
		})
	}
}

func TestTCPCheckBind(t *testing.T) {
	l := listenTCP(t, netip.IPv4Unspecified())
	from := make(chan string, 4)
	serve(t, l, func(c net.Conn) { from <- c.RemoteAddr().String() })
	tg := Target{Addr: lo4, Port: targetOf(t, l.Addr()).Port}
	port := closedPort(t, lo4)
	// 127.0.0.2 is on lo like all of 127.0.0.0/8.
	s := Spec{Kind: KindTCP, BindTo: netip.MustParseAddr("127.0.0.2"), BindPort: port, ConnectTimeout: time.Second}
	want := netip.AddrPortFrom(s.BindTo, port).String()
	// Twice: the second probe reuses bindto:bind_port right away.
	for i := range 2 {
		wantOK(t, probeOnce(t, s, tg))
		if got := <-from; got != want {
			t.Errorf("probe %d came from %s, want %s", i, got, want)
		}
	}
	t.Run("bindto of the other family", func(t *testing.T) {
		if _, err := NewProber(Spec{Kind: KindTCP, BindTo: lo6}, tg); err == nil {
			t.Error("NewProber accepted an IPv6 bindto for an IPv4 target")
		}
	})
	t.Run("bind_if that does not exist", func(t *testing.T) {
		r := probeOnce(t, Spec{Kind: KindTCP, BindIf: "golvs-nonexistent", ConnectTimeout: time.Second}, tg)
		wantFail(t, r, ErrSockopt)
	})
	t.Run("bind_if lo", func(t *testing.T) {
		if !isRoot() {
			t.Skip("SO_BINDTODEVICE needs CAP_NET_RAW")
		}
		wantOK(t, probeOnce(t, Spec{Kind: KindTCP, BindIf: "lo", ConnectTimeout: time.Second}, tg))
	})
}

func TestNewProberErrors(t *testing.T) {
	tg := Target{Addr: lo4, Port: 80}
	for _, tt := range []struct {
		name string
		s    Spec
		tg   Target
	}{
		{"unknown kind", Spec{Kind: 99}, tg},
		{"no port", Spec{Kind: KindTCP}, Target{Addr: lo4}},
		{"no address", Spec{Kind: KindTCP}, Target{Port: 80}},
		{"link-local without bind_if", Spec{Kind: KindTCP}, Target{Addr: netip.MustParseAddr("fe80::1"), Port: 80}},
		{"HTTP without url", Spec{Kind: KindHTTP}, tg},
		{"bad http_protocol", Spec{Kind: KindHTTP, HTTPProtocol: "2", URLs: []URL{{Path: "/"}}}, tg},
		{"bad digest", Spec{Kind: KindHTTP, URLs: []URL{{Path: "/", Digest: "xyz"}}}, tg},
		{"bad regex", Spec{Kind: KindHTTP, URLs: []URL{{Path: "/", Regex: "(?<=a)b"}}}, tg},
		{"bad DNS type", Spec{Kind: KindDNS, DNSType: "PTRX"}, tg},
		{"bad DNS name", Spec{Kind: KindDNS, DNSName: "a..b"}, tg},
		{"MISC without path", Spec{Kind: KindMisc}, tg},
		{"MISC unknown user", Spec{Kind: KindMisc, MiscPath: "true", User: "golvs-no-such-user"}, tg},
		{"FILE without path", Spec{Kind: KindFile}, tg},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if p, err := NewProber(tt.s, tt.tg); err == nil {
				t.Errorf("NewProber = %T, want an error", p)
			}
		})
	}
}

// TestFWMark: fwmark sets SO_MARK; without the capability the probe
// fails with ErrSockopt instead of probing unmarked. (SO_MARK needs
// CAP_NET_ADMIN, or since Linux 5.17 CAP_NET_RAW: both are dropped.)
func TestFWMark(t *testing.T) {
	l := listenTCP(t, lo4)
	serve(t, l, func(net.Conn) {})
	tg := targetOf(t, l.Addr())
	s := Spec{Kind: KindTCP, FWMark: 0x42, ConnectTimeout: time.Second}
	p, err := NewProber(s, tg)
	if err != nil {
		t.Fatal(err)
	}
	if !isRoot() {
		wantFail(t, p.Probe(context.Background()), ErrSockopt)
		return
	}
	wantOK(t, p.Probe(context.Background()))

	// Drop CAP_NET_ADMIN and CAP_NET_RAW from one OS thread only and
	// probe from it.
	res := make(chan Result, 1)
	go func() {
		runtime.LockOSThread()
		// The thread is not unlocked: it exits with this goroutine, and its
		// reduced capabilities with it.
		if err := dropThreadCaps(12, 13); err != nil { // CAP_NET_ADMIN, CAP_NET_RAW
			res <- Result{Err: err, OK: true}
			return
		}
		res <- p.Probe(context.Background())
	}()
	r := <-res
	if r.OK && r.Err != nil {
		t.Skipf("cannot drop capabilities: %v", r.Err)
	}
	wantFail(t, r, ErrSockopt)
	if !errors.Is(r.Err, syscall.EPERM) {
		t.Errorf("error %v is not EPERM", r.Err)
	}
}

// dropThreadCaps removes capabilities from the calling thread's
// effective set (capset(2) acts on the thread).
func dropThreadCaps(caps ...uint) error {
	hdr := struct {
		version uint32
		pid     int32
	}{version: 0x20080522} // _LINUX_CAPABILITY_VERSION_3
	var data [2]struct{ effective, permitted, inheritable uint32 }
	if _, _, e := syscall.RawSyscall(syscall.SYS_CAPGET, uintptr(unsafe.Pointer(&hdr)), uintptr(unsafe.Pointer(&data[0])), 0); e != 0 {
		return e
	}
	for _, c := range caps {
		data[c/32].effective &^= 1 << (c % 32)
	}
	if _, _, e := syscall.RawSyscall(syscall.SYS_CAPSET, uintptr(unsafe.Pointer(&hdr)), uintptr(unsafe.Pointer(&data[0])), 0); e != 0 {
		return e
	}
	return nil
}
