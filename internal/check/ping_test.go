package check

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"
)

// pingGroupAllows reports whether net.ipv4.ping_group_range lets this
// process open ICMP datagram sockets.
func pingGroupAllows() bool {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ping_group_range")
	if err != nil {
		return false
	}
	var lo, hi int
	f := strings.Fields(string(b))
	if len(f) != 2 {
		return false
	}
	lo, hi = atoi(f[0]), atoi(f[1])
	gid := os.Getegid()
	return gid >= lo && gid <= hi
}

func atoi(s string) int {
	n := 0
	for _, c := range s {
		if c < '0' || c > '9' {
			return -1
		}
		n = n*10 + int(c-'0')
	}
	return n
}

func TestPingCheck(t *testing.T) {
	modes := map[string]pingMode{}
	if pingGroupAllows() {
		modes["datagram"] = pingDgram
	}
	if isRoot() {
		modes["raw"] = pingRaw
	}
	if len(modes) == 0 {
		t.Skip("neither ping_group_range nor root allows an ICMP socket")
	}
	for _, addr := range loopbacks(t) {
		for name, mode := range modes {
			t.Run(addr.String()+"/"+name, func(t *testing.T) {
				p, err := newPingProber(&Spec{Kind: KindPing, ConnectTimeout: 2 * time.Second}, Target{Addr: addr})
				if err != nil {
					t.Fatal(err)
				}
				p.mode = mode
				// Several in a row: sequence numbers move on.
				for range 3 {
					wantOK(t, p.Probe(context.Background()))
				}
				// Two probers at once (raw sockets see each other's replies).
				q, _ := newPingProber(&Spec{Kind: KindPing, ConnectTimeout: 2 * time.Second}, Target{Addr: addr})
				q.mode = mode
				res := make(chan Result, 2)
				go func() { res <- p.Probe(context.Background()) }()
				go func() { res <- q.Probe(context.Background()) }()
				wantOK(t, <-res)
				wantOK(t, <-res)
			})
		}
	}
	t.Run("auto", func(t *testing.T) {
		wantOK(t, probeOnce(t, Spec{Kind: KindPing, ConnectTimeout: 2 * time.Second}, Target{Addr: lo4}))
	})
	t.Run("bindto", func(t *testing.T) {
		wantOK(t, probeOnce(t, Spec{Kind: KindPing, BindTo: netip.MustParseAddr("127.0.0.2"), ConnectTimeout: 2 * time.Second}, Target{Addr: lo4}))
	})
	t.Run("bind_if that does not exist", func(t *testing.T) {
		r := probeOnce(t, Spec{Kind: KindPing, BindIf: "golvs-nonexistent", ConnectTimeout: time.Second}, Target{Addr: lo4})
		wantFail(t, r, ErrSockopt)
	})
	t.Run("cancelled", func(t *testing.T) {
		p, _ := NewProber(Spec{Kind: KindPing, ConnectTimeout: time.Second}, Target{Addr: lo4})
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		r := p.Probe(ctx)
		if r.OK {
			t.Fatal("a cancelled probe succeeded")
		}
		if errors.Is(r.Err, ErrTimeout) {
			t.Errorf("cancel reported as a timeout: %v", r.Err)
		}
	})
	t.Run("datagram refused falls back to raw", func(t *testing.T) {
		if !isRoot() || !pingGroupAllows() {
			t.Skip("needs root and a ping_group_range with root's group")
		}
		// One thread's group becomes 65534 (setresgid(2) acts on the
		// thread; the thread dies with the goroutine): ping_group_range
		// refuses it the datagram socket, and root's CAP_NET_RAW opens a raw one.
		type out struct {
			raw bool
			err error
		}
		res := make(chan out, 1)
		go func() {
			runtime.LockOSThread()
			const nogroup = 65534
			if _, _, e := syscall.RawSyscall(syscall.SYS_SETRESGID, nogroup, nogroup, nogroup); e != 0 {
				res <- out{err: e}
				return
			}
			p, _ := newPingProber(&Spec{Kind: KindPing}, Target{Addr: lo4})
			c, raw, err := p.listen()
			if err == nil {
				c.Close()
			}
			res <- out{raw, err}
		}()
		o := <-res
		if o.err != nil || !o.raw {
			t.Errorf("raw %v, err %v; want a raw socket", o.raw, o.err)
		}
	})
}
