package datapath_test

import (
	"fmt"
	"golvs/internal/datapath"
	"net/netip"
	"testing"
	"time"

	"golvs/internal/checksum"
	"golvs/internal/clock"
	"golvs/internal/control"
	"golvs/internal/engine"
	"golvs/internal/forward"
	"golvs/internal/header"
	"golvs/internal/proto"
	"golvs/internal/service"
)

// A bench director: one interface on 198.19.0.0/24 holding the VIP, a
// default route through 198.19.0.254, every neighbour known.
var (
	benchDirMAC = [6]byte{0x02, 0, 0, 0, 0, 1}
	benchPeer   = [6]byte{0x02, 0, 0, 0, 0, 2}
)

type benchRig struct {
	clk  *clock.Manual
	eng  *engine.Engine
	pipe *datapath.Pipeline
	w    *datapath.Worker
}

func newBenchRig(tb testing.TB, fwd service.FwdMethod, proto uint8) *benchRig {
	tb.Helper()
	clk := clock.NewManual(time.Hour)
	ctl := control.New(control.Config{Clock: clk})
	eng, err := engine.New(engine.Config{Control: ctl, Clock: clk, MaxConns: 1 << 20, Seed: 1})
	if err != nil {
		tb.Fatal(err)
	}
	k := service.Key{Family: service.IPv4, Proto: proto, Addr: vip4, Port: 80}
	if err := ctl.AddService(k, service.Config{Sched: "wlc"}); err != nil {
		tb.Fatal(err)
	}
	neigh := datapath.NewNeighbours(nil, nil)
	for i := range 3 {
		if err := ctl.AddDest(k, rsAddr4(i), 80, service.DestConfig{Fwd: fwd, Weight: 1}); err != nil {
			tb.Fatal(err)
		}
		neigh.Set(2, rsAddr4(i), benchPeer, true)
	}
	neigh.Set(2, rtrLan4, benchPeer, true)
	view := datapath.NewView([]datapath.Interface{{Index: 2, Name: "eth0", MAC: benchDirMAC, MTU: 1500,
		Addrs: []netip.Prefix{pfx("198.19.0.1/24"), pfx("198.19.0.100/32")}}},
		[]datapath.Route{{Dst: pfx("0.0.0.0/0"), Gateway: rtrLan4, Ifindex: 2}})
	p := datapath.New(datapath.Config{Engine: eng, View: view, Neighbours: neigh})
	return &benchRig{clk: clk, eng: eng, pipe: p, w: p.NewWorker(0)}
}

// frame4 writes an Ethernet/IPv4/TCP or UDP frame with payload bytes of
// payload into buf at forward.Headroom and returns its length.
func frame4(buf []byte, l4 uint8, src, dst netip.Addr, sport, dport uint16, flags uint8, payload int) int {
	f := buf[forward.Headroom:]
	header.Ethernet(f).Encode(benchDirMAC, benchPeer, header.EtherTypeIPv4)
	ip := header.IPv4(f[14:])
	l4len := 20 + payload
	if l4 == header.ProtoUDP {
		l4len = 8 + payload
	}
	ip.Encode(&header.IPv4Fields{TotalLength: uint16(20 + l4len), TTL: 64, Protocol: l4, DF: true, Src: src.As4(), Dst: dst.As4()})
	seg := f[34 : 34+l4len]
	clear(seg)
	if l4 == header.ProtoUDP {
		u := header.UDP(seg)
		u.Encode(sport, dport, uint16(l4len), 0)
		u.SetChecksum(checksum.ForUDP(u.CalculateChecksum(ip.PseudoHeaderSum())))
	} else {
		t := header.TCP(seg)
		t.Encode(&header.TCPFields{SrcPort: sport, DstPort: dport, Seq: 1, Ack: 1, Flags: flags, Window: 65535})
		t.SetChecksum(t.CalculateChecksum(ip.PseudoHeaderSum()))
	}
	return 14 + 20 + l4len
}

// flows establishes n TCP flows (SYN, then ACK) and returns the client
// port of each; clients are 198.18.x.y.
func (r *benchRig) flows(tb testing.TB, n int) {
	buf := make([]byte, 2048)
	var res [1]datapath.Result
	for i := range n {
		for _, fl := range []uint8{proto.FlagSYN, proto.FlagACK} {
			ln := frame4(buf, header.ProtoTCP, benchClient(i), vip4, benchPort(i), 80, fl, 0)
			fr := [1]datapath.Frame{{Buf: forward.Buf{B: buf, Off: forward.Headroom, Len: ln}, Ifindex: 2}}
			r.w.Process(fr[:], res[:])
			if res[0].Action != datapath.Transmit {
				tb.Fatalf("flow %d: %v %v", i, res[0].Action, res[0].Reason)
			}
		}
	}
}

func benchClient(i int) netip.Addr { return netip.AddrFrom4([4]byte{198, 18, byte(i >> 8), byte(i)}) }
func benchPort(i int) uint16       { return uint16(10000 + i%50000) }

// BenchmarkPipeline measures the pipeline on established flows per
// forwarding method and batch size: ns/packet for parse, connection
// lookup, state, counters, rewrite, route and neighbour. Each iteration
// also copies a 74-byte template frame into the buffer, standing in for
// the link's write of a received frame.
func BenchmarkPipeline(b *testing.B) {
	const nflows = 1000
	for _, c := range []struct {
		name string
		fwd  service.FwdMethod
		out  bool
	}{
		{"nat-in", service.Masq, false},
		{"nat-out", service.Masq, true},
		{"dr", service.Route, false},
		{"tun", service.Tunnel, false},
	} {
		for _, batch := range []int{1, datapath.BatchSize} {
			b.Run(fmt.Sprintf("%s/batch=%d", c.name, batch), func(b *testing.B) {
				r := newBenchRig(b, c.fwd, header.ProtoTCP)
				r.flows(b, nflows)
				// Templates: one frame per flow, as it arrives.
				tmpl := make([][]byte, nflows)
				for i := range tmpl {
					t := make([]byte, 2048)
					var n int
					if c.out {
						// A NAT reply: from the flow's real server.
						rs := r.realServerOf(b, i)
						n = frame4(t, header.ProtoTCP, rs, benchClient(i), 80, benchPort(i), proto.FlagACK, 20)
					} else {
						n = frame4(t, header.ProtoTCP, benchClient(i), vip4, benchPort(i), 80, proto.FlagACK, 20)
					}
					tmpl[i] = t[:forward.Headroom+n]
				}
				frames := make([]datapath.Frame, batch)
				bufs := make([][]byte, batch)
				for i := range bufs {
					bufs[i] = make([]byte, 2048)
				}
				res := make([]datapath.Result, batch)
				b.ReportAllocs()
				b.ResetTimer()
				k := 0
				for i := 0; i < b.N; i++ {
					for j := range frames {
						t := tmpl[k%nflows]
						k += 7
						copy(bufs[j], t)
						frames[j] = datapath.Frame{Buf: forward.Buf{B: bufs[j], Off: forward.Headroom, Len: len(t) - forward.Headroom}, Ifindex: 2}
					}
					r.w.Process(frames, res)
				}
				b.StopTimer()
				if res[0].Action != datapath.Transmit {
					b.Fatalf("%v %v", res[0].Action, res[0].Reason)
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*batch), "ns/packet")
			})
		}
	}
}

// realServerOf returns the real server flow i was scheduled to.
func (r *benchRig) realServerOf(tb testing.TB, i int) netip.Addr {
	ref, ok := r.eng.Conns().LookupIn(header.ProtoTCP, benchClient(i), benchPort(i), vip4, 80, r.clk.Nanotime())
	if !ok {
		tb.Fatalf("flow %d has no connection", i)
	}
	c, _ := r.eng.Conns().Get(ref)
	return c.DAddr
}

// BenchmarkPipelineNewConn measures new connections: a TCP SYN (or a
// first UDP datagram) per packet, scheduled with wlc over 3 real servers,
// inserted, NATed and sent; the clock moves 20 ms per batch so that
// expiry (amortised in the batches) keeps the table at a steady size.
func BenchmarkPipelineNewConn(b *testing.B) {
	for _, l4 := range []uint8{header.ProtoTCP, header.ProtoUDP} {
		for _, batch := range []int{1, datapath.BatchSize} {
			b.Run(fmt.Sprintf("%s/batch=%d", map[uint8]string{6: "tcp", 17: "udp"}[l4], batch), func(b *testing.B) {
				r := newBenchRig(b, service.Masq, l4)
				if err := r.eng.SetTimeouts(0, 0, 5*time.Second); err != nil {
					b.Fatal(err)
				}
				frames := make([]datapath.Frame, batch)
				bufs := make([][]byte, batch)
				for i := range bufs {
					bufs[i] = make([]byte, 2048)
				}
				res := make([]datapath.Result, batch)
				b.ReportAllocs()
				b.ResetTimer()
				k := 0
				for i := 0; i < b.N; i++ {
					for j := range frames {
						n := frame4(bufs[j], l4, benchClient(k>>14), vip4, uint16(1024+k&0x3fff), 80, proto.FlagSYN, 0)
						k++
						frames[j] = datapath.Frame{Buf: forward.Buf{B: bufs[j], Off: forward.Headroom, Len: n}, Ifindex: 2}
					}
					r.w.Process(frames, res)
					r.clk.Advance(20 * time.Millisecond)
				}
				b.StopTimer()
				if res[0].Action != datapath.Transmit {
					b.Fatalf("%v %v", res[0].Action, res[0].Reason)
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*batch), "ns/packet")
			})
		}
	}
}

func TestPipelineZeroAllocs(t *testing.T) {
	for _, c := range []struct {
		name string
		fwd  service.FwdMethod
	}{{"nat", service.Masq}, {"dr", service.Route}, {"tun", service.Tunnel}} {
		t.Run(c.name, func(t *testing.T) {
			r := newBenchRig(t, c.fwd, header.ProtoTCP)
			r.flows(t, 10)
			tmpl := make([]byte, 2048)
			n := frame4(tmpl, header.ProtoTCP, benchClient(3), vip4, benchPort(3), 80, proto.FlagACK, 100)
			buf := make([]byte, 2048)
			frames := make([]datapath.Frame, 1)
			res := make([]datapath.Result, 1)
			run := func() {
				copy(buf, tmpl[:forward.Headroom+n])
				frames[0] = datapath.Frame{Buf: forward.Buf{B: buf, Off: forward.Headroom, Len: n}, Ifindex: 2}
				r.w.Process(frames, res)
			}
			run()
			if res[0].Action != datapath.Transmit {
				t.Fatalf("%v %v", res[0].Action, res[0].Reason)
			}
			if a := testing.AllocsPerRun(200, run); a != 0 {
				t.Fatalf("%v allocations per packet", a)
			}
			if c.fwd == service.Masq {
				rs := r.realServerOf(t, 3)
				n = frame4(tmpl, header.ProtoTCP, rs, benchClient(3), 80, benchPort(3), proto.FlagACK, 100)
				if a := testing.AllocsPerRun(200, run); a != 0 {
					t.Fatalf("reply: %v allocations per packet", a)
				}
			}
		})
	}
}
