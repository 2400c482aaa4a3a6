package engine

import (
	"fmt"
	"testing"

	"golvs/internal/proto"
	"golvs/internal/service"
)

// BenchmarkIn measures the engine's decision for a packet of an
// established flow, with the connection table holding n other flows.
func BenchmarkIn(b *testing.B) {
	for _, n := range []int{1000, 100000, 1000000} {
		b.Run(fmt.Sprintf("established/conns=%d", n), func(b *testing.B) {
			f := newFixture(b, "wlc", 0, 10, n+1024)
			w := f.e.NewWorker(0)
			w.Begin()
			pkts := make([]Packet, n)
			for i := range pkts {
				pkts[i] = Packet{Proto: service.ProtoTCP, Src: client(i / 60000), SrcPort: uint16(1024 + i%60000), Dst: testVIP, DstPort: 80,
					Len: 1500, TCPFlags: proto.FlagSYN}
				if d := w.In(&pkts[i]); d.Verdict != Forward {
					b.Fatalf("setup: %v", d.Verdict)
				}
				pkts[i].TCPFlags = proto.FlagACK
				w.In(&pkts[i])
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if i&63 == 0 {
					w.Begin()
				}
				w.In(&pkts[(i*7919)%n])
			}
		})
	}
}

// BenchmarkOut measures a NAT reply of an established flow among 1M.
func BenchmarkOut(b *testing.B) {
	const n = 1000000
	f := newFixture(b, "wlc", 0, 10, n+1024)
	w := f.e.NewWorker(0)
	w.Begin()
	replies := make([]Packet, n)
	for i := range replies {
		p := Packet{Proto: service.ProtoTCP, Src: client(i / 60000), SrcPort: uint16(1024 + i%60000), Dst: testVIP, DstPort: 80, Len: 60, TCPFlags: proto.FlagSYN}
		d := w.In(&p)
		replies[i] = Packet{Proto: service.ProtoTCP, Src: d.DAddr, SrcPort: d.DPort, Dst: p.Src, DstPort: p.SrcPort, Len: 1500, TCPFlags: proto.FlagACK}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if i&63 == 0 {
			w.Begin()
		}
		w.Out(&replies[(i*7919)%n])
	}
}

// BenchmarkNewConn measures a new connection in steady state: the SYN is
// scheduled (wlc over 10 real servers), the connection inserted, and an old
// one removed, so the table stays at its size.
func BenchmarkNewConn(b *testing.B) {
	for _, persist := range []bool{false, true} {
		name := "plain"
		var flags service.Flags
		if persist {
			name, flags = "persistent", service.FlagPersistent
		}
		b.Run(name, func(b *testing.B) {
			const window = 4096
			f := newFixture(b, "wlc", flags, 10, 4*window)
			w := f.e.NewWorker(0)
			w.Begin()
			refs := make([]Decision, window)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if i&63 == 0 {
					w.Begin()
				}
				slot := i % window
				if d := refs[slot]; d.Conn != 0 {
					f.e.Conns().Delete(d.Conn)
				}
				p := Packet{Proto: service.ProtoTCP, Src: client(i & 1023), SrcPort: uint16(i >> 10), Dst: testVIP, DstPort: 80,
					Len: 60, TCPFlags: proto.FlagSYN}
				refs[slot] = w.In(&p)
			}
		})
	}
}
