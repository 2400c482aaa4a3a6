package realserver

import (
	"bytes"
	"log/slog"
	"net/netip"
	"os"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// fakeDecap is a Decap whose "raw socket" is one end of a datagram
// socketpair (the test writes outer packets into the other end) and whose
// "TUN device" is another socketpair (the test reads the injected packets
// back). No privilege needed: the batch loop, the counters and Close run
// as they do on real sockets.
type fakeDecap struct {
	d      *Decap
	in     int // write outer packets here
	out    int // read injected inner packets here
	runErr chan error
}

func newFakeDecap(t *testing.T, e Encaps) *fakeDecap {
	t.Helper()
	raw, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	tun, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	// Big enough for the largest datagram and a batch.
	for _, fd := range []int{raw[0], raw[1], tun[0], tun[1]} {
		unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUF, 4<<20)
		unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, 4<<20)
	}
	if err := unix.SetNonblock(raw[1], true); err != nil {
		t.Fatal(err)
	}
	d := &Decap{name: "fake0", tun: tun[0], vips: testVIPs(), log: discard()}
	r, err := d.newReader(e, raw[1])
	if err != nil {
		t.Fatal(err)
	}
	d.readers = []*decapReader{r}
	f := &fakeDecap{d: d, in: raw[0], out: tun[1], runErr: make(chan error, 1)}
	tv := unix.NsecToTimeval((2 * time.Second).Nanoseconds())
	unix.SetsockoptTimeval(f.out, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv)
	go func() { f.runErr <- d.Run() }()
	t.Cleanup(func() {
		d.Close()
		unix.Close(f.in)
		unix.Close(f.out)
	})
	return f
}

// next reads one injected packet (bounded by SO_RCVTIMEO).
func (f *fakeDecap) next(t *testing.T) []byte {
	t.Helper()
	buf := make([]byte, 70000)
	n, err := unix.Read(f.out, buf)
	if err != nil {
		t.Fatalf("no injected packet: %v (counters %+v)", err, f.d.Counters())
	}
	return buf[:n]
}

func (f *fakeDecap) send(t *testing.T, pkts ...[]byte) {
	t.Helper()
	for _, p := range pkts {
		if _, err := unix.Write(f.in, p); err != nil {
			t.Fatal(err)
		}
	}
}

func (f *fakeDecap) waitReceived(t *testing.T, n uint64) DecapCounters {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for f.d.Counters().Received < n {
		if time.Now().After(deadline) {
			t.Fatalf("received %d of %d", f.d.Counters().Received, n)
		}
		time.Sleep(5 * time.Millisecond)
	}
	return f.d.Counters()
}

func TestDecapLoop(t *testing.T) {
	f := newFakeDecap(t, IPIP)
	c4 := netip.AddrPortFrom(client4, 40000)
	good := tcpPacket(c4, netip.AddrPortFrom(vip4, 80), []byte("in a batch"))
	partial := udpPacket(c4, netip.AddrPortFrom(vip4, 53), []byte("partial"))
	full := append([]byte(nil), partial...)
	makePartial(partial)

	// More than one batch, in order.
	var want [][]byte
	for i := range 2*decapBatch + 3 {
		p := tcpPacket(c4, netip.AddrPortFrom(vip4, 80), []byte{byte(i)})
		want = append(want, p)
		f.send(t, outer4(dir4, rs4, 4, p))
	}
	for i, w := range want {
		if got := f.next(t); !bytes.Equal(got, w) {
			t.Fatalf("packet %d:\n got %x\nwant %x", i, got, w)
		}
	}
	f.send(t,
		outer4(dir4, rs4, 4, good),
		outer4(dir4, rs4, 4, udpPacket(c4, netip.AddrPortFrom(other4, 53), []byte("x"))), // not a VIP
		outer4(dir4, rs4, 4, partial),
		[]byte{0x45, 0},             // malformed
		make([]byte, maxDatagram+1), // truncated: MSG_TRUNC
	)
	if got := f.next(t); !bytes.Equal(got, good) {
		t.Errorf("good packet:\n got %x\nwant %x", got, good)
	}
	if got := f.next(t); !bytes.Equal(got, full) {
		t.Errorf("partial packet not completed:\n got %x\nwant %x", got, full)
	}
	c := f.waitReceived(t, uint64(len(want)+5))
	want2 := DecapCounters{Received: uint64(len(want) + 5), Injected: uint64(len(want) + 2), NotVIP: 1, Malformed: 2, ChecksumCompleted: 1}
	if c != want2 {
		t.Errorf("counters %+v, want %+v", c, want2)
	}

	if err := f.d.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	select {
	case err := <-f.runErr:
		if err != nil {
			t.Errorf("Run after Close: %v", err)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("Run did not return after Close")
	}
	if err := f.d.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if err := f.d.Run(); err != nil {
		t.Errorf("Run after Close: %v, want nil", err)
	}
}

// A failing TUN write is counted, not fatal.
func TestDecapWriteErrors(t *testing.T) {
	f := newFakeDecap(t, IP6IP6)
	unix.Shutdown(f.d.tun, unix.SHUT_WR)
	p := udpPacket(netip.AddrPortFrom(client6, 1), netip.AddrPortFrom(vip6, 2), []byte("x"))
	f.send(t, p, p)
	c := f.waitReceived(t, 2)
	if c.WriteErrors != 2 || c.Injected != 0 {
		t.Errorf("counters %+v, want 2 write errors", c)
	}
}

// The per-packet path of the loop, TUN write included, allocates
// nothing.
func TestDecapHandleAllocs(t *testing.T) {
	null, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer null.Close()
	d := &Decap{tun: int(null.Fd()), vips: testVIPs(), log: discard()}
	r := &decapReader{d: d, encap: IPIP}
	in := tcpPacket(netip.AddrPortFrom(client4, 40000), netip.AddrPortFrom(vip4, 80), make([]byte, 1400))
	makePartial(in)
	pkt := outer4(dir4, rs4, 4, in)
	orig := append([]byte(nil), pkt...)
	allocs := testing.AllocsPerRun(1000, func() {
		copy(pkt, orig)
		r.handle(pkt)
	})
	if allocs != 0 {
		t.Errorf("handle: %v allocations per packet, want 0", allocs)
	}
	if c := d.Counters(); c.WriteErrors != 0 {
		t.Errorf("writes to /dev/null failed: %+v", c)
	}
	if r.c.injected.Load() == 0 || r.c.csum.Load() == 0 {
		t.Errorf("not injected and completed: injected %d completed %d", r.c.injected.Load(), r.c.csum.Load())
	}
}

// BenchmarkDecapLoop measures the whole loop (recvmmsg batches, checks,
// one write per packet) over socketpairs: the user-space cost a real
// server pays per tunnelled packet, less the kernel's raw and TUN paths.
func BenchmarkDecapLoop(b *testing.B) {
	raw, _ := unix.Socketpair(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	unix.SetNonblock(raw[1], true)
	null, _ := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	defer null.Close()
	d := &Decap{tun: int(null.Fd()), vips: testVIPs(), log: discard()}
	r, err := d.newReader(IPIP, raw[1])
	if err != nil {
		b.Fatal(err)
	}
	d.readers = []*decapReader{r}
	done := make(chan error, 1)
	go func() { done <- d.Run() }()
	pkt := outer4(dir4, rs4, 4, tcpPacket(netip.AddrPortFrom(client4, 40000), netip.AddrPortFrom(vip4, 80), make([]byte, 1400)))
	b.ReportAllocs()
	b.SetBytes(int64(len(pkt)))
	sent := uint64(0)
	for b.Loop() {
		// Blocks while the pair's buffer is full, until the reader
		// drains it.
		if _, err := unix.Write(raw[0], pkt); err != nil {
			b.Fatal(err)
		}
		sent++
	}
	for d.Counters().Received < sent {
		time.Sleep(time.Microsecond)
	}
	b.StopTimer()
	d.Close()
	unix.Close(raw[0])
	<-done
}

func discard() *slog.Logger { return slog.New(slog.DiscardHandler) }
