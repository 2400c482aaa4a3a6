package flow

import (
	"testing"

	"golvs/internal/header"
)

// FuzzDecode: Decode never panics on any bytes, its results keep the
// invariants, and a reused Parsed gives what a fresh one does.
func FuzzDecode(f *testing.F) {
	for _, fr := range sampleFrames() {
		f.Add(fr)
	}
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, frame []byte) {
		var p, q Parsed
		p.Decode(frame)
		checkInvariants(t, frame, &p)
		q.Decode(sampleFrames()[4]) // an ICMP error: fills most fields
		q.Decode(frame)
		if p != q {
			t.Fatalf("reused Parsed differs:%s", diff(&p, &q))
		}
		if p.Reason == ReasonNone && p.HasPorts && p.Tuple.Proto == header.ProtoTCP {
			tcp := header.TCP(p.L4(frame))
			if tcp.SourcePort() != p.Tuple.SrcPort || tcp.DestinationPort() != p.Tuple.DstPort || tcp.Flags() != p.TCPFlags {
				t.Fatal("TCP fields disagree with header.TCP")
			}
		}
	})
}

// FuzzDecodeICMPEmbedded wraps arbitrary bytes as the quote of an ICMPv4
// or ICMPv6 error in a well-formed frame, so the fuzzer spends its time
// on the embedded-packet parser.
func FuzzDecodeICMPEmbedded(f *testing.F) {
	f.Add(false, ip4(header.ProtoTCP, vip4, client4, tcp(80, 40000, header.TCPFlagACK, ""))[:28])
	f.Add(false, ip4f(&header.IPv4Fields{FragmentOffset: 8, Protocol: header.ProtoUDP, Src: vip4, Dst: client4}, udp(1, 2, "")))
	f.Add(true, ip6(header.ProtoHopByHop, client6, vip6, ext6(header.ProtoSCTP), sctp(1, 2))[:56])
	f.Add(true, ip6(header.ProtoFragment, client6, vip6, frag6(header.ProtoTCP, 16, false, 1)))
	f.Fuzz(func(t *testing.T, v6 bool, quote []byte) {
		var frame []byte
		if v6 {
			frame = cat(eth(0, header.EtherTypeIPv6), ip6(header.ProtoICMPv6, vip6, client6, icmp6(header.ICMPv6DstUnreachable, 4, 0, vip6, client6, quote)))
		} else {
			if 20+8+len(quote) > 0xffff {
				return
			}
			frame = cat(eth(0, header.EtherTypeIPv4), ip4(header.ProtoICMPv4, rs4, vip4, icmp4(header.ICMPv4DstUnreachable, 3, 0, quote)))
		}
		var p Parsed
		p.Decode(frame)
		if p.Reason != ReasonNone || !p.ICMPError {
			t.Fatalf("outer frame: reason %v, error %v", p.Reason, p.ICMPError)
		}
		checkInvariants(t, frame, &p)
		in := &p.Inner
		if in.Reason == ReasonNone && in.HasPorts && in.L4Off+4 > len(frame) {
			t.Fatalf("ports read past the quote: %+v", *in)
		}
	})
}
