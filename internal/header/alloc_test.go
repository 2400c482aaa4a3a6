package header

import (
	"testing"

	"golvs/internal/checksum"
)

// TestAllocs proves that every accessor and setter the packet path uses
// allocates nothing (style.md §4.2).
func TestAllocs(t *testing.T) {
	frame := make([]byte, 18+40+8+40+20)
	eth := Ethernet(frame)
	eth.EncodeTagged(macA, macB, 7, EtherTypeIPv4)
	ip4 := IPv4(frame[18:])
	ip4.Encode(&IPv4Fields{TotalLength: 60, TTL: 64, Protocol: ProtoTCP, Src: ip4A, Dst: ip4B})
	tcp := TCP(frame[38:])
	tcp.Encode(&TCPFields{SrcPort: 1, DstPort: 2, Flags: TCPFlagSYN})
	ip6 := IPv6(make([]byte, 40+8+20))
	ip6.Encode(&IPv6Fields{PayloadLength: 28, NextHeader: ProtoDestOpts, HopLimit: 64, Src: addr6A, Dst: addr6B})
	ip6[40] = ProtoUDP
	udp := UDP(ip6[48:])
	udp.Encode(1, 2, 20, 0)
	sctp := SCTP(append([]byte(nil), scapySCTP...))
	icmp4 := ICMPv4(make([]byte, ICMPv4MinimumErrorSize))
	icmp6 := ICMPv6(make([]byte, ICMPv6MinimumErrorSize))
	arp := ARP(make([]byte, ARPSize))
	tun := make([]byte, 40+60)

	var sink int
	n := testing.AllocsPerRun(100, func() {
		if eth.IsValid() && eth.HasVLAN() {
			sink += int(eth.VLANID()) + int(eth.EtherType()) + eth.PayloadOffset()
		}
		d, s := eth.Destination(), eth.Source()
		eth.SetDestination(s)
		eth.SetSource(d)

		if ip4.IsValid(len(ip4)) && ip4.IsChecksumValid() {
			sink += ip4.HeaderLength() + int(ip4.TotalLength()) + int(ip4.TTL()) + int(ip4.Protocol()) + int(ip4.TOS())
			if ip4.DF() || ip4.MF() || ip4.IsFragment() || ip4.HasOptions() {
				sink++
			}
			sink += int(ip4.FragmentOffset()) + int(ip4.ID())
		}
		src, dst := ip4.SourceAddress(), ip4.DestinationAddress()
		ip4.SetTTLWithChecksumUpdate(ip4.TTL() - 1)
		ip4.SetDestinationAddressWithChecksumUpdate(src)
		ip4.SetSourceAddressWithChecksumUpdate(dst)
		ip4.SetChecksum(ip4.CalculateChecksum())
		ps := ip4.PseudoHeaderSum()

		if tcp.IsValid() {
			sink += int(tcp.SourcePort()) + int(tcp.DestinationPort()) + int(tcp.Flags()) + tcp.DataOffset()
		}
		tcp.SetDestinationPortWithChecksumUpdate(tcp.SourcePort())
		tcp.SetSourcePortWithChecksumUpdate(tcp.DestinationPort())
		tcp.SetChecksum(checksum.Update32(tcp.Checksum(), src, dst))
		tcp.SetChecksum(tcp.CalculateChecksum(ps))

		if ip6.IsValid(len(ip6)) {
			w, ok := ip6.WalkExtensions()
			if ok && w.IsFragment() {
				sink++
			}
			sink += w.Offset + int(ip6.HopLimit()) + int(ip6.TrafficClass()) + int(ip6.FlowLabel()) + int(ip6.PayloadLength())
		}
		a, b := ip6.SourceAddress(), ip6.DestinationAddress()
		ip6.SetSourceAddress(b)
		ip6.SetDestinationAddress(a)
		ip6.SetHopLimit(ip6.HopLimit() - 1)
		ps6 := ip6.PseudoHeaderSum(ProtoUDP, 20)

		if udp.IsValid() {
			sink += int(udp.SourcePort()) + int(udp.DestinationPort()) + int(udp.Length())
		}
		udp.SetDestinationPortWithChecksumUpdate(udp.SourcePort())
		udp.SetSourcePortWithChecksumUpdate(udp.DestinationPort())
		udp.SetChecksum(checksum.ForUDP(checksum.UpdateAddr(udp.Checksum(), a, b)))
		udp.SetChecksum(udp.CalculateChecksum(ps6))

		if sctp.IsValid() {
			ty, ab, ok := sctp.FirstChunk()
			if ab || ok {
				sink += int(ty)
			}
			sctp.SetDestinationPort(sctp.SourcePort())
			sctp.SetChecksum(sctp.CalculateChecksum())
			if sctp.IsChecksumValid() {
				sink++
			}
		}

		if icmp4.IsValid() && icmp4.Type().IsError() {
			sink += int(icmp4.MTU())
		}
		icmp4.SetType(ICMPv4DstUnreachable)
		icmp4.SetCode(ICMPv4FragNeeded)
		icmp4.SetMTU(1400)
		icmp4.SetChecksum(icmp4.CalculateChecksum())
		if icmp6.IsValid() && icmp6.Type().IsError() {
			sink += int(icmp6.MTU())
		}
		icmp6.SetType(ICMPv6PacketTooBig)
		icmp6.SetMTU(1280)
		icmp6.SetChecksum(icmp6.CalculateChecksum(ps6))

		arp.EncodeGratuitous(macA, ip4A)
		if arp.IsValid() {
			sink += int(arp.Op())
		}

		if o, ok := EncapIPv4(tun, 40, IPv4Tunnel{Src: ip4A, Dst: ip4B, TTL: 64, Protocol: ProtoIPIP}); ok {
			sink += len(o)
		}
		if o, ok := EncapIPv6(tun, 40, IPv6Tunnel{Src: addr6A, Dst: addr6B, HopLimit: 64, NextHeader: ProtoIPv6}); ok {
			sink += len(o)
		}
		sink += int(ECNEncapsulate(1, 3))
	})
	if n != 0 {
		t.Errorf("allocs per run = %v, want 0", n)
	}
	_ = sink
}

var benchSink int

func BenchmarkIPv4SetTTLWithChecksumUpdate(b *testing.B) {
	ip := IPv4(append([]byte(nil), capturedIPv4...))
	b.ReportAllocs()
	for b.Loop() {
		ip.SetTTLWithChecksumUpdate(ip.TTL() - 1)
	}
}

func BenchmarkNATRewriteIPv4TCP(b *testing.B) {
	// The per-packet work of a NAT request: destination address and port,
	// IP and TCP checksums, TTL.
	pkt := make([]byte, 20+20)
	ip := IPv4(pkt)
	ip.Encode(&IPv4Fields{TotalLength: 40, TTL: 64, Protocol: ProtoTCP, Src: ip4A, Dst: ip4B})
	tcp := TCP(pkt[20:])
	tcp.Encode(&TCPFields{SrcPort: 40000, DstPort: 80, Flags: TCPFlagACK})
	tcp.SetChecksum(tcp.CalculateChecksum(ip.PseudoHeaderSum()))
	rip := [4]byte{10, 0, 0, 2}
	b.ReportAllocs()
	for b.Loop() {
		old := ip.DestinationAddress()
		ip.SetDestinationAddressWithChecksumUpdate(rip)
		tcp.SetChecksum(checksum.Update32(tcp.Checksum(), old, rip))
		tcp.SetDestinationPortWithChecksumUpdate(8080)
		ip.SetTTLWithChecksumUpdate(ip.TTL() - 1)
		rip = old
	}
}

func BenchmarkIPv6WalkExtensions(b *testing.B) {
	pkt := IPv6(v6(ProtoHopByHop, ext(ProtoFragment, 1), frag(ProtoUDP, 0, true, 1), udpDNS))
	b.ReportAllocs()
	for b.Loop() {
		w, _ := pkt.WalkExtensions()
		benchSink += w.Offset
	}
}

func BenchmarkSCTPChecksum(b *testing.B) {
	pkt := SCTP(make([]byte, 1480))
	copy(pkt, scapySCTP)
	b.SetBytes(int64(len(pkt)))
	b.ReportAllocs()
	for b.Loop() {
		benchSink += int(pkt.CalculateChecksum())
	}
}
