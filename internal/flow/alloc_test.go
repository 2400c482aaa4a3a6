package flow

import (
	"testing"

	"golvs/internal/header"
)

// TestDecodeAllocs proves Decode and the per-packet Tuple methods
// allocate nothing (style.md §4.2), on every sample frame and on a bad one.
func TestDecodeAllocs(t *testing.T) {
	frames := append(sampleFrames(), []byte{1, 2, 3})
	var p Parsed
	var sink int
	n := testing.AllocsPerRun(100, func() {
		for _, f := range frames {
			p.Decode(f)
			sink += len(p.IP(f)) + len(p.L4(f)) + len(p.Payload(f))
			r := p.Tuple.Reverse()
			if r.SrcAddr().Is4() && r.DstAddrPort().IsValid() && r.IsValid() {
				sink++
			}
			if p.Inner.Tuple.Reverse() == p.Tuple {
				sink++
			}
			sink += len(p.Reason.String())
		}
	})
	if n != 0 {
		t.Errorf("allocs per run = %v, want 0", n)
	}
	_ = sink
}

var benchSink int

func benchDecode(b *testing.B, frame []byte) {
	var p Parsed
	p.Decode(frame)
	if p.Reason != ReasonNone {
		b.Fatalf("frame does not decode: %v", p.Reason)
	}
	b.SetBytes(int64(len(frame)))
	b.ReportAllocs()
	for b.Loop() {
		p.Decode(frame)
		benchSink += int(p.Tuple.DstPort)
	}
}

// BenchmarkDecodeTCPv4 decodes a full-size TCP/IPv4 frame (the header
// work does not depend on the payload, except for the IPv4 checksum).
func BenchmarkDecodeTCPv4(b *testing.B) {
	benchDecode(b, cat(eth(0, header.EtherTypeIPv4), ip4(header.ProtoTCP, client4, vip4, tcp(40000, 80, header.TCPFlagACK, string(make([]byte, 1460))))))
}

// BenchmarkDecodeUDPv6Ext decodes a UDP/IPv6 frame with one Destination
// Options header.
func BenchmarkDecodeUDPv6Ext(b *testing.B) {
	benchDecode(b, cat(eth(0, header.EtherTypeIPv6), ip6(header.ProtoDestOpts, client6, vip6, ext6(header.ProtoUDP), udp(5000, 53, string(make([]byte, 100))))))
}

// BenchmarkDecodeICMPError decodes an ICMP fragmentation-needed error
// quoting a TCP packet.
func BenchmarkDecodeICMPError(b *testing.B) {
	benchDecode(b, cat(eth(0, header.EtherTypeIPv4), ip4(header.ProtoICMPv4, rs4, vip4, icmp4(header.ICMPv4DstUnreachable, header.ICMPv4FragNeeded, 1400,
		ip4(header.ProtoTCP, vip4, client4, tcp(80, 40000, header.TCPFlagACK, ""))[:28]))))
}
