package lvslab

import (
	"net/netip"
	"sync"
	"testing"
)

// lvslab is test infrastructure and allocates per frame (a copy per
// receiver, a new buffer per packet built); these benchmarks say how fast
// scenarios run, not what the data path costs.

// BenchmarkPing measures one echo round trip on a LAN (two frames).
func BenchmarkPing(b *testing.B) {
	n := New(Config{Seed: 1, Fatalf: b.Fatalf})
	lan := n.NewSegment("lan")
	a, c := n.NewHost("a", HostConfig{}), n.NewHost("b", HostConfig{})
	a.AddInterface(lan, "eth0", pfx("192.0.2.1/24"))
	c.AddInterface(lan, "eth0", pfx("192.0.2.2/24"))
	a.Ping(netip.Addr{}, ip("192.0.2.2"), 56)
	n.Drain()
	b.ReportAllocs()
	for b.Loop() {
		a.Ping(netip.Addr{}, ip("192.0.2.2"), 56)
		n.Drain()
	}
}

// BenchmarkTCPTransfer measures moving 64 KiB one way on an established
// connection (45 data segments and their ACKs).
func BenchmarkTCPTransfer(b *testing.B) {
	n := New(Config{Seed: 1, Fatalf: b.Fatalf})
	lan := n.NewSegment("lan")
	a, s := n.NewHost("a", HostConfig{}), n.NewHost("b", HostConfig{})
	a.AddInterface(lan, "eth0", pfx("192.0.2.1/24"))
	s.AddInterface(lan, "eth0", pfx("192.0.2.2/24"))
	ln, _ := s.ListenTCP(anyPort(9), nil)
	c, _ := a.DialTCP(netip.AddrPort{}, ap("192.0.2.2:9"), nil)
	n.Drain()
	srv := ln.Conns()[0]
	data := make([]byte, 64<<10)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		c.Write(data)
		n.Drain()
		srv.recv = srv.recv[:0] // keep the receive buffer from growing
	}
}

// TestTransmitConcurrent: Transmit may be called from other goroutines
// (a data-path worker) while the test goroutine delivers.
func TestTransmitConcurrent(t *testing.T) {
	l, a, b := twoHosts(t, 80, false)
	p, _ := a.Ping(netip.Addr{}, ip("192.0.2.2"), 8)
	l.Drain()
	if p.Replies != 1 {
		t.Fatal("no ping")
	}
	// A valid echo request frame from a to b.
	frame := clone(l.frames("lan")[2])
	const workers, each = 4, 50
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for range each {
				if err := a.Transmit(2, frame); err != nil {
					t.Error(err)
				}
			}
		})
	}
	for i := 0; i < 1000 && (l.Pending() > 0 || i < 10); i++ {
		l.Step()
	}
	wg.Wait()
	l.Drain()
	if got := b.Counters().RxFrames; got != 1+1+workers*each {
		t.Errorf("b received %d frames", got)
	}
	if p.Replies != 1+workers*each {
		t.Errorf("%d replies", p.Replies)
	}
}
