package forward

import (
	"testing"

	"golvs/internal/flow"
	"golvs/internal/header"
)

// Benchmarks of the per-packet rewrites on a 1500-byte frame (a full-size
// TCP segment; 64-byte frames cost the same but for the full sums of
// ICMPError and the GUE/GRE checksums). Each iteration restores what the
// previous one changed, so the numbers include a few nanoseconds of
// bookkeeping: NAT alternates between two addresses, DR restores the
// 20-byte IP header, TUN and ICMP reset Off and Len (the inner packet is
// never written) and ICMP the 14-byte Ethernet header. Run with
// -benchtime=100ms on the shared machine.

func benchFrame(v6 bool) ([]byte, *flow.Parsed) {
	s := &pkt{v6: v6, proto: header.ProtoTCP, src: client4, dst: vip4, sport: 40000, dport: 80, ttl: 64, df: true, flags: header.TCPFlagACK}
	if v6 {
		s.src, s.dst = client6, vip6
		s.payload = make([]byte, 1500-40-20)
	} else {
		s.payload = make([]byte, 1500-20-20)
	}
	f := s.frame()
	return f, parse(f)
}

func BenchmarkNATIn(b *testing.B) {
	f, p := benchFrame(false)
	buf := load(f)
	b.ReportAllocs()
	b.SetBytes(int64(len(f)))
	for i := 0; b.Loop(); i++ {
		if i&1 == 0 {
			DNAT(&buf.Buf, p, rs4, 8080, false)
		} else {
			DNAT(&buf.Buf, p, vip4, 80, false)
		}
	}
}

func BenchmarkNATOut(b *testing.B) {
	f, p := benchFrame(false)
	buf := load(f)
	b.ReportAllocs()
	b.SetBytes(int64(len(f)))
	for i := 0; b.Loop(); i++ {
		if i&1 == 0 {
			SNAT(&buf.Buf, p, rs4, 8080, false)
		} else {
			SNAT(&buf.Buf, p, client4, 40000, false)
		}
	}
}

func BenchmarkNATInIPv6(b *testing.B) {
	f, p := benchFrame(true)
	buf := load(f)
	b.ReportAllocs()
	b.SetBytes(int64(len(f)))
	for i := 0; b.Loop(); i++ {
		if i&1 == 0 {
			DNAT(&buf.Buf, p, rs6, 8080, false)
		} else {
			DNAT(&buf.Buf, p, vip6, 80, false)
		}
	}
}

func BenchmarkDR(b *testing.B) {
	f, p := benchFrame(false)
	buf := load(f)
	ipOff := Headroom + p.L3Off
	b.ReportAllocs()
	b.SetBytes(int64(len(f)))
	for b.Loop() {
		copy(buf.B[ipOff:ipOff+20], f[p.L3Off:])
		DR(&buf.Buf, p, macRS, macLB)
	}
}

func benchEncap(b *testing.B, v6 bool, t *Tunnel) {
	f, p := benchFrame(v6)
	buf := load(f)
	b.ReportAllocs()
	b.SetBytes(int64(len(f)))
	for b.Loop() {
		buf.Off, buf.Len = Headroom, len(f)
		if r := Encap(&buf.Buf, p, t, 1, 0x12345678); r != Done {
			b.Fatal(r)
		}
	}
}

func BenchmarkTUNIPv4(b *testing.B) { benchEncap(b, false, &Tunnel{Src: lb4, Dst: rs4}) }
func BenchmarkTUNIPv6(b *testing.B) { benchEncap(b, true, &Tunnel{Src: lb6, Dst: rs6}) }
func BenchmarkTUNGUECsum(b *testing.B) {
	benchEncap(b, false, &Tunnel{Src: lb4, Dst: rs4, Type: TunnelGUE, Port: 6080, Csum: true})
}

func BenchmarkFragNeeded(b *testing.B) {
	f, p := benchFrame(false)
	buf := load(f)
	b.ReportAllocs()
	for b.Loop() {
		copy(buf.B[Headroom:Headroom+14], f)
		buf.Off, buf.Len = Headroom, len(f)
		if r := ICMPError(&buf.Buf, p, FragNeeded, 1400, vip4, 1); r != Done {
			b.Fatal(r)
		}
	}
}

func BenchmarkPacketTooBig(b *testing.B) {
	f, p := benchFrame(true)
	buf := load(f)
	b.ReportAllocs()
	for b.Loop() {
		copy(buf.B[Headroom:Headroom+14], f)
		buf.Off, buf.Len = Headroom, len(f)
		if r := ICMPError(&buf.Buf, p, FragNeeded, 1280, vip6, 1); r != Done {
			b.Fatal(r)
		}
	}
}

func BenchmarkFragmentIPv4(b *testing.B) {
	f, _ := benchFrame(false)
	buf := load(f)
	dst := make([]Buf, 3)
	for i := range dst {
		dst[i].B = make([]byte, 600)
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(f)))
	for b.Loop() {
		if n, r := FragmentIPv4(&buf.Buf, 576, dst); n != 3 || r != Done {
			b.Fatal(n, r)
		}
	}
}
