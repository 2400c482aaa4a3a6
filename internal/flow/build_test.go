package flow

import (
	"encoding/binary"

	"golvs/internal/checksum"
	"golvs/internal/header"
)

// Frame builders for the tests: each returns fresh bytes with correct
// lengths and checksums, so that a test can then break one field.

var (
	macClient = [6]byte{0x02, 0x00, 0x5e, 0x10, 0x00, 0x01}
	macLB     = [6]byte{0x02, 0x00, 0x5e, 0x10, 0x00, 0x02}

	client4 = [4]byte{192, 0, 2, 10}                     // RFC 5737 TEST-NET-1
	vip4    = [4]byte{198, 51, 100, 1}                   // RFC 5737 TEST-NET-2
	rs4     = [4]byte{203, 0, 113, 20}                   // RFC 5737 TEST-NET-3
	client6 = [16]byte{0x20, 0x01, 0x0d, 0xb8, 15: 0x0a} // RFC 3849 2001:db8::a
	vip6    = [16]byte{0x20, 0x01, 0x0d, 0xb8, 15: 0x01} // 2001:db8::1
)

// eth returns an Ethernet header, tagged with vid if vid > 0.
func eth(vid uint16, etherType uint16) []byte {
	if vid > 0 {
		b := make([]byte, header.EthernetTaggedSize)
		header.Ethernet(b).EncodeTagged(macLB, macClient, vid, etherType)
		return b
	}
	b := make([]byte, header.EthernetMinimumSize)
	header.Ethernet(b).Encode(macLB, macClient, etherType)
	return b
}

func cat(bs ...[]byte) []byte {
	var out []byte
	for _, b := range bs {
		out = append(out, b...)
	}
	return out
}

// ip4 returns an IPv4 packet (checksummed header, DF) around payload.
func ip4(proto uint8, src, dst [4]byte, payload []byte) []byte {
	return ip4f(&header.IPv4Fields{TTL: 64, DF: true, Protocol: proto, Src: src, Dst: dst}, payload)
}

func ip4f(f *header.IPv4Fields, payload []byte) []byte {
	hlen := header.IPv4MinimumSize + len(f.Options)
	b := make([]byte, hlen, hlen+len(payload))
	f.TotalLength = uint16(hlen + len(payload))
	header.IPv4(b).Encode(f)
	return append(b, payload...)
}

// ip6 returns an IPv6 packet whose first next header is nh.
func ip6(nh uint8, src, dst [16]byte, parts ...[]byte) []byte {
	rest := cat(parts...)
	b := make([]byte, 40, 40+len(rest))
	header.IPv6(b).Encode(&header.IPv6Fields{PayloadLength: uint16(len(rest)), NextHeader: nh, HopLimit: 64, Src: src, Dst: dst})
	return append(b, rest...)
}

// ext6 returns an 8-byte Hop-by-Hop / Routing / Destination Options header.
func ext6(next uint8) []byte { return []byte{next, 0, 1, 4, 0, 0, 0, 0} } // PadN option fills it

// frag6 returns an IPv6 Fragment header.
func frag6(next uint8, offset uint16, more bool, id uint32) []byte {
	b := make([]byte, 8)
	b[0] = next
	w := offset &^ 7
	if more {
		w |= 1
	}
	binary.BigEndian.PutUint16(b[2:], w)
	binary.BigEndian.PutUint32(b[4:], id)
	return b
}

func tcp(sport, dport uint16, flags uint8, payload string) []byte {
	b := make([]byte, header.TCPMinimumSize, header.TCPMinimumSize+len(payload))
	header.TCP(b).Encode(&header.TCPFields{SrcPort: sport, DstPort: dport, Seq: 1, Flags: flags, Window: 65535})
	return append(b, payload...)
}

func udp(sport, dport uint16, payload string) []byte {
	b := make([]byte, header.UDPSize, header.UDPSize+len(payload))
	header.UDP(b).Encode(sport, dport, uint16(header.UDPSize+len(payload)), 0)
	return append(b, payload...)
}

func sctp(sport, dport uint16, chunks ...[]byte) []byte {
	b := make([]byte, header.SCTPCommonHeaderSize)
	s := header.SCTP(b)
	s.SetSourcePort(sport)
	s.SetDestinationPort(dport)
	s.SetVerificationTag(0x01020304)
	b = append(b, cat(chunks...)...)
	header.SCTP(b).SetChecksum(header.SCTP(b).CalculateChecksum())
	return b
}

// chunk returns an SCTP chunk of the given declared length, padded.
func chunk(typ uint8, length int) []byte {
	b := make([]byte, (length+3)&^3)
	b[0] = typ
	binary.BigEndian.PutUint16(b[2:], uint16(length))
	return b
}

// icmp4 returns an ICMPv4 message with a correct checksum.
func icmp4(typ header.ICMPv4Type, code header.ICMPv4Code, rest uint32, payload []byte) []byte {
	b := make([]byte, header.ICMPv4MinimumSize, header.ICMPv4MinimumSize+len(payload))
	m := header.ICMPv4(b)
	m.SetType(typ)
	m.SetCode(code)
	m.SetRestOfHeader(rest)
	b = append(b, payload...)
	header.ICMPv4(b).SetChecksum(header.ICMPv4(b).CalculateChecksum())
	return b
}

// icmp6 returns an ICMPv6 message (checksum over a pseudo header from
// src to dst).
func icmp6(typ header.ICMPv6Type, code header.ICMPv6Code, rest uint32, src, dst [16]byte, payload []byte) []byte {
	b := make([]byte, header.ICMPv6MinimumSize, header.ICMPv6MinimumSize+len(payload))
	m := header.ICMPv6(b)
	m.SetType(typ)
	m.SetCode(code)
	m.SetRestOfHeader(rest)
	b = append(b, payload...)
	ps := checksum.PseudoHeaderIPv6(src, dst, header.ProtoICMPv6, uint32(len(b)))
	header.ICMPv6(b).SetChecksum(header.ICMPv6(b).CalculateChecksum(ps))
	return b
}

// t4 and t6 build expected tuples.
func t4(proto uint8, src [4]byte, sport uint16, dst [4]byte, dport uint16) Tuple {
	t := Tuple{Family: FamilyIPv4, Proto: proto, SrcPort: sport, DstPort: dport}
	copy(t.Src[:], src[:])
	copy(t.Dst[:], dst[:])
	return t
}

func t6(proto uint8, src [16]byte, sport uint16, dst [16]byte, dport uint16) Tuple {
	return Tuple{Family: FamilyIPv6, Proto: proto, Src: src, Dst: dst, SrcPort: sport, DstPort: dport}
}
