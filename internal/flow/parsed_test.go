package flow

import (
	"fmt"
	"reflect"
	"strings"
	"testing"

	"golvs/internal/header"
)

// diff describes how two Parsed values differ, field by field.
func diff(want, got *Parsed) string {
	var b strings.Builder
	wv, gv := reflect.ValueOf(*want), reflect.ValueOf(*got)
	for i := range wv.NumField() {
		if w, g := wv.Field(i).Interface(), gv.Field(i).Interface(); !reflect.DeepEqual(w, g) {
			fmt.Fprintf(&b, "\n  %s: -want %+v\n  %s  +got  %+v", wv.Type().Field(i).Name, w, strings.Repeat(" ", len(wv.Type().Field(i).Name)), g)
		}
	}
	return b.String()
}

func check(t *testing.T, frame []byte, want *Parsed) {
	t.Helper()
	var p Parsed
	p.Decode(frame)
	if d := diff(want, &p); d != "" {
		t.Errorf("Decode (-want +got):%s", d)
	}
	checkInvariants(t, frame, &p)
}

// TestDecodeAnnotated decodes frames written out byte by byte.
func TestDecodeAnnotated(t *testing.T) {
	t.Run("TCP SYN over IPv4, padded to 60 bytes", func(t *testing.T) {
		frame := []byte{
			// Ethernet
			0x02, 0x00, 0x5e, 0x10, 0x00, 0x02, // destination (load balancer)
			0x02, 0x00, 0x5e, 0x10, 0x00, 0x01, // source (client)
			0x08, 0x00, // EtherType IPv4
			// IPv4, offset 14
			0x45,       // version 4, IHL 5
			0x00,       // TOS
			0x00, 0x2c, // total length 44
			0x12, 0x34, // ID
			0x40, 0x00, // DF, offset 0
			0x40,       // TTL 64
			0x06,       // protocol TCP
			0x3c, 0x59, // header checksum
			192, 0, 2, 10, // source 192.0.2.10
			198, 51, 100, 1, // destination 198.51.100.1
			// TCP, offset 34
			0x9c, 0x40, // source port 40000
			0x00, 0x50, // destination port 80
			0x00, 0x00, 0x00, 0x01, // sequence
			0x00, 0x00, 0x00, 0x00, // acknowledgment
			0x60,       // data offset 6 (24 bytes)
			0x02,       // SYN
			0xff, 0xff, // window
			0x00, 0x00, // checksum (not checked by Decode)
			0x00, 0x00, // urgent pointer
			0x02, 0x04, 0x05, 0xb4, // MSS 1460
			// Ethernet padding, offset 58
			0x00, 0x00,
		}
		check(t, frame, &Parsed{
			EtherType: header.EtherTypeIPv4, L3Off: 14,
			IPHdrLen: 20, IPLen: 44, TTL: 64, DF: true,
			Tuple: t4(header.ProtoTCP, client4, 40000, vip4, 80),
			L4Off: 34, PayloadOff: 58, HasPorts: true, TCPFlags: header.TCPFlagSYN,
		})
	})

	t.Run("UDP over IPv6 with VLAN and Hop-by-Hop", func(t *testing.T) {
		frame := []byte{
			// Ethernet with 802.1Q
			0x02, 0x00, 0x5e, 0x10, 0x00, 0x02, // destination
			0x02, 0x00, 0x5e, 0x10, 0x00, 0x01, // source
			0x81, 0x00, // TPID
			0x00, 0x2a, // PCP 0, VID 42
			0x86, 0xdd, // EtherType IPv6
			// IPv6, offset 18
			0x6b, 0x80, 0x00, 0x00, // version 6, traffic class 0xb8, flow label 0
			0x00, 0x14, // payload length 20
			0x00,                                                          // next header Hop-by-Hop
			0x3f,                                                          // hop limit 63
			0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x0a, // source 2001:db8::a
			0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, // destination 2001:db8::1
			// Hop-by-Hop, offset 58
			0x11,                   // next header UDP
			0x00,                   // length 0 (8 bytes)
			0x01, 0x04, 0, 0, 0, 0, // PadN
			// UDP, offset 66
			0x13, 0x88, // source port 5000
			0x00, 0x35, // destination port 53
			0x00, 0x0c, // length 12
			0x00, 0x00, // checksum
			'a', 'b', 'c', 'd', // payload
		}
		check(t, frame, &Parsed{
			VLAN: true, VLANID: 42, EtherType: header.EtherTypeIPv6, L3Off: 18,
			IPHdrLen: 40, IPLen: 60, TTL: 63, TOS: 0xb8,
			Tuple: t6(header.ProtoUDP, client6, 5000, vip6, 53),
			L4Off: 66, PayloadOff: 74, HasPorts: true,
		})
	})

	t.Run("ICMP fragmentation needed quoting a TCP reply", func(t *testing.T) {
		frame := []byte{
			// Ethernet
			0x02, 0x00, 0x5e, 0x10, 0x00, 0x02,
			0x02, 0x00, 0x5e, 0x10, 0x00, 0x01,
			0x08, 0x00,
			// IPv4, offset 14: from a router on the client's path
			0x45, 0xc0, 0x00, 0x38, // version, IHL, TOS 0xc0, total length 56
			0x00, 0x00, 0x00, 0x00, // ID, no flags
			0x40, 0x01, 0x8c, 0xd2, // TTL 64, ICMP, checksum
			192, 0, 2, 254, // source 192.0.2.254
			198, 51, 100, 1, // destination 198.51.100.1 (the VIP)
			// ICMP, offset 34
			0x03, 0x04, // destination unreachable, fragmentation needed
			0x00, 0x00, // checksum (not checked by Decode)
			0x00, 0x00, 0x05, 0x78, // unused, next-hop MTU 1400
			// quoted IPv4 header, offset 42: the VIP's reply to the client
			0x45, 0x00, 0x05, 0xdc, // total length 1500
			0xab, 0xcd, 0x40, 0x00, // ID, DF
			0x3f, 0x06, 0x9e, 0x0f, // TTL 63, TCP, checksum
			198, 51, 100, 1, // source: the VIP
			192, 0, 2, 10, // destination: the client
			// quoted TCP, offset 62: 8 bytes
			0x00, 0x50, 0x9c, 0x40, // ports 80 -> 40000
			0x00, 0x00, 0x10, 0x00, // sequence
		}
		check(t, frame, &Parsed{
			EtherType: header.EtherTypeIPv4, L3Off: 14,
			IPHdrLen: 20, IPLen: 56, TTL: 64, TOS: 0xc0,
			Tuple: t4(header.ProtoICMPv4, [4]byte{192, 0, 2, 254}, 0, vip4, 0),
			L4Off: 34, PayloadOff: 42,
			ICMPType: 3, ICMPCode: 4, ICMPError: true,
			Inner: Embedded{
				Tuple: t4(header.ProtoTCP, vip4, 80, client4, 40000),
				L3Off: 42, IPHdrLen: 20, L4Off: 62, HasPorts: true,
			},
		})
	})
}

// TestDecode covers each protocol and fragment case with built frames.
func TestDecode(t *testing.T) {
	ipOpt := ip4f(&header.IPv4Fields{TTL: 9, Protocol: header.ProtoUDP, Src: client4, Dst: vip4, Options: []byte{0x94, 4, 0, 0}}, udp(1, 2, "x"))
	frag1 := ip4f(&header.IPv4Fields{TTL: 64, MF: true, ID: 77, Protocol: header.ProtoUDP, Src: client4, Dst: vip4}, udp(1000, 53, strings.Repeat("x", 32))[:24])
	frag1[2+header.IPv4MinimumSize+2] = 0x05 // UDP length 0x0528: the whole datagram, longer than this fragment
	frag2 := ip4f(&header.IPv4Fields{TTL: 64, FragmentOffset: 1480, ID: 77, Protocol: header.ProtoUDP, Src: client4, Dst: vip4}, []byte("rest"))
	icmpUnreach6 := icmp6(header.ICMPv6DstUnreachable, header.ICMPv6PortUnreachable, 0, vip6, client6,
		ip6(header.ProtoDestOpts, client6, vip6, ext6(header.ProtoSCTP), sctp(3868, 3868, chunk(header.SCTPChunkInit, 20)))[:40+8+8])

	for _, tc := range []struct {
		name  string
		frame []byte
		want  Parsed
	}{
		{
			name:  "IPv4 options",
			frame: cat(eth(0, header.EtherTypeIPv4), ipOpt),
			want: Parsed{EtherType: header.EtherTypeIPv4, L3Off: 14, IPHdrLen: 24, IPLen: 24 + 9, TTL: 9, IPOptions: true,
				Tuple: t4(header.ProtoUDP, client4, 1, vip4, 2), L4Off: 38, PayloadOff: 46, HasPorts: true},
		},
		{
			name:  "IPv4 first fragment: ports, UDP length not checked",
			frame: cat(eth(0, header.EtherTypeIPv4), frag1),
			want: Parsed{EtherType: header.EtherTypeIPv4, L3Off: 14, IPHdrLen: 20, IPLen: 44, TTL: 64,
				IsFragment: true, IsFirstFragment: true, MoreFragments: true, FragID: 77,
				Tuple: t4(header.ProtoUDP, client4, 1000, vip4, 53), L4Off: 34, PayloadOff: 42, HasPorts: true},
		},
		{
			name:  "IPv4 later fragment: no ports",
			frame: cat(eth(7, header.EtherTypeIPv4), frag2),
			want: Parsed{VLAN: true, VLANID: 7, EtherType: header.EtherTypeIPv4, L3Off: 18, IPHdrLen: 20, IPLen: 24, TTL: 64,
				IsFragment: true, FragOffset: 1480, FragID: 77,
				Tuple: t4(header.ProtoUDP, client4, 0, vip4, 0), L4Off: 38},
		},
		{
			name:  "IPv6 first fragment",
			frame: cat(eth(0, header.EtherTypeIPv6), ip6(header.ProtoFragment, client6, vip6, frag6(header.ProtoTCP, 0, true, 0xabcdef), tcp(1, 443, header.TCPFlagACK, "hello"))),
			want: Parsed{EtherType: header.EtherTypeIPv6, L3Off: 14, IPHdrLen: 40, IPLen: 40 + 8 + 25, TTL: 64,
				IsFragment: true, IsFirstFragment: true, MoreFragments: true, FragID: 0xabcdef, FragHdrOff: 54,
				Tuple: t6(header.ProtoTCP, client6, 1, vip6, 443), L4Off: 62, PayloadOff: 82, HasPorts: true, TCPFlags: header.TCPFlagACK},
		},
		{
			name:  "IPv6 later fragment",
			frame: cat(eth(0, header.EtherTypeIPv6), ip6(header.ProtoFragment, client6, vip6, frag6(header.ProtoTCP, 2048, false, 5), []byte("data"))),
			want: Parsed{EtherType: header.EtherTypeIPv6, L3Off: 14, IPHdrLen: 40, IPLen: 52, TTL: 64,
				IsFragment: true, FragOffset: 2048, FragID: 5, FragHdrOff: 54,
				Tuple: t6(header.ProtoTCP, client6, 0, vip6, 0), L4Off: 62},
		},
		{
			name:  "SCTP INIT",
			frame: cat(eth(0, header.EtherTypeIPv4), ip4(header.ProtoSCTP, client4, vip4, sctp(5000, 3868, chunk(header.SCTPChunkInit, 20)))),
			want: Parsed{EtherType: header.EtherTypeIPv4, L3Off: 14, IPHdrLen: 20, IPLen: 20 + 12 + 20, TTL: 64, DF: true,
				Tuple: t4(header.ProtoSCTP, client4, 5000, vip4, 3868), L4Off: 34, PayloadOff: 46, HasPorts: true,
				SCTPChunk: header.SCTPChunkInit, SCTPHasChunk: true},
		},
		{
			name: "SCTP COOKIE ECHO with a bundled ABORT",
			frame: cat(eth(0, header.EtherTypeIPv4), ip4(header.ProtoSCTP, client4, vip4,
				sctp(5000, 3868, chunk(header.SCTPChunkCookieEcho, 13), chunk(header.SCTPChunkAbort, 4)))),
			want: Parsed{EtherType: header.EtherTypeIPv4, L3Off: 14, IPHdrLen: 20, IPLen: 20 + 12 + 16 + 4, TTL: 64, DF: true,
				Tuple: t4(header.ProtoSCTP, client4, 5000, vip4, 3868), L4Off: 34, PayloadOff: 46, HasPorts: true,
				SCTPChunk: header.SCTPChunkCookieEcho, SCTPHasChunk: true, SCTPAbortBundled: true},
		},
		{
			name:  "SCTP without a chunk",
			frame: cat(eth(0, header.EtherTypeIPv4), ip4(header.ProtoSCTP, client4, vip4, sctp(1, 2))),
			want: Parsed{EtherType: header.EtherTypeIPv4, L3Off: 14, IPHdrLen: 20, IPLen: 32, TTL: 64, DF: true,
				Tuple: t4(header.ProtoSCTP, client4, 1, vip4, 2), L4Off: 34, PayloadOff: 46, HasPorts: true},
		},
		{
			name:  "ICMP echo is not an error",
			frame: cat(eth(0, header.EtherTypeIPv4), ip4(header.ProtoICMPv4, client4, vip4, icmp4(header.ICMPv4Echo, 0, 0x00010001, []byte("ping")))),
			want: Parsed{EtherType: header.EtherTypeIPv4, L3Off: 14, IPHdrLen: 20, IPLen: 20 + 12, TTL: 64, DF: true,
				Tuple: t4(header.ProtoICMPv4, client4, 0, vip4, 0), L4Off: 34, PayloadOff: 42, ICMPType: 8},
		},
		{
			name: "ICMP error quoting a later fragment: no ports",
			frame: cat(eth(0, header.EtherTypeIPv4), ip4(header.ProtoICMPv4, rs4, vip4,
				icmp4(header.ICMPv4TimeExceeded, header.ICMPv4TTLExceeded, 0, frag2))),
			want: Parsed{EtherType: header.EtherTypeIPv4, L3Off: 14, IPHdrLen: 20, IPLen: 20 + 8 + 24, TTL: 64, DF: true,
				Tuple: t4(header.ProtoICMPv4, rs4, 0, vip4, 0), L4Off: 34, PayloadOff: 42, ICMPType: 11, ICMPError: true,
				Inner: Embedded{Tuple: t4(header.ProtoUDP, client4, 0, vip4, 0), L3Off: 42, IPHdrLen: 20, L4Off: 62, IsFragment: true}},
		},
		{
			name: "ICMP error quoting only 3 bytes of UDP",
			frame: cat(eth(0, header.EtherTypeIPv4), ip4(header.ProtoICMPv4, rs4, vip4,
				icmp4(header.ICMPv4DstUnreachable, header.ICMPv4PortUnreachable, 0, ip4(header.ProtoUDP, vip4, client4, udp(53, 1000, ""))[:23]))),
			want: Parsed{EtherType: header.EtherTypeIPv4, L3Off: 14, IPHdrLen: 20, IPLen: 20 + 8 + 23, TTL: 64, DF: true,
				Tuple: t4(header.ProtoICMPv4, rs4, 0, vip4, 0), L4Off: 34, PayloadOff: 42, ICMPType: 3, ICMPCode: 3, ICMPError: true,
				Inner: Embedded{Reason: ReasonTruncatedL4, Tuple: t4(header.ProtoUDP, vip4, 0, client4, 0), L3Off: 42, IPHdrLen: 20, L4Off: 62}},
		},
		{
			name: "ICMP error quoting IPv6",
			frame: cat(eth(0, header.EtherTypeIPv4), ip4(header.ProtoICMPv4, rs4, vip4,
				icmp4(header.ICMPv4DstUnreachable, 0, 0, ip6(header.ProtoUDP, client6, vip6, udp(1, 2, ""))))),
			want: Parsed{EtherType: header.EtherTypeIPv4, L3Off: 14, IPHdrLen: 20, IPLen: 20 + 8 + 48, TTL: 64, DF: true,
				Tuple: t4(header.ProtoICMPv4, rs4, 0, vip4, 0), L4Off: 34, PayloadOff: 42, ICMPType: 3, ICMPError: true,
				Inner: Embedded{Reason: ReasonBadIPVersion}},
		},
		{
			name:  "ICMPv6 port unreachable quoting SCTP past a Destination Options header",
			frame: cat(eth(0, header.EtherTypeIPv6), ip6(header.ProtoICMPv6, vip6, client6, icmpUnreach6)),
			want: Parsed{EtherType: header.EtherTypeIPv6, L3Off: 14, IPHdrLen: 40, IPLen: 40 + 8 + 56, TTL: 64,
				Tuple: t6(header.ProtoICMPv6, vip6, 0, client6, 0), L4Off: 54, PayloadOff: 62, ICMPType: 1, ICMPCode: 4, ICMPError: true,
				Inner: Embedded{Tuple: t6(header.ProtoSCTP, client6, 3868, vip6, 3868), L3Off: 62, IPHdrLen: 40, L4Off: 110, HasPorts: true}},
		},
		{
			name: "ICMPv6 packet too big quoting a truncated extension chain",
			frame: cat(eth(0, header.EtherTypeIPv6), ip6(header.ProtoICMPv6, vip6, client6,
				icmp6(header.ICMPv6PacketTooBig, 0, 1280, vip6, client6, ip6(header.ProtoRouting, client6, vip6, ext6(header.ProtoTCP))[:44]))),
			want: Parsed{EtherType: header.EtherTypeIPv6, L3Off: 14, IPHdrLen: 40, IPLen: 40 + 8 + 44, TTL: 64,
				Tuple: t6(header.ProtoICMPv6, vip6, 0, client6, 0), L4Off: 54, PayloadOff: 62, ICMPType: 2, ICMPError: true,
				Inner: Embedded{Reason: ReasonBadIPv6Ext}},
		},
		{
			name:  "ICMPv6 neighbour solicitation",
			frame: cat(eth(0, header.EtherTypeIPv6), ip6(header.ProtoICMPv6, client6, vip6, icmp6(header.ICMPv6NeighborSolicit, 0, 0, client6, vip6, vip6[:]))),
			want: Parsed{EtherType: header.EtherTypeIPv6, L3Off: 14, IPHdrLen: 40, IPLen: 40 + 24, TTL: 64,
				Tuple: t6(header.ProtoICMPv6, client6, 0, vip6, 0), L4Off: 54, PayloadOff: 62, ICMPType: 135},
		},
		{
			name:  "ICMPv4 inside IPv6 is left alone",
			frame: cat(eth(0, header.EtherTypeIPv6), ip6(header.ProtoICMPv4, client6, vip6, []byte{3, 3, 0, 0})),
			want: Parsed{EtherType: header.EtherTypeIPv6, L3Off: 14, IPHdrLen: 40, IPLen: 44, TTL: 64,
				Tuple: t6(header.ProtoICMPv4, client6, 0, vip6, 0), L4Off: 54},
		},
		{
			name:  "IPIP: protocol and offset, nothing more",
			frame: cat(eth(0, header.EtherTypeIPv4), ip4(header.ProtoIPIP, vip4, rs4, ip4(header.ProtoTCP, client4, vip4, tcp(1, 80, header.TCPFlagSYN, "")))),
			want: Parsed{EtherType: header.EtherTypeIPv4, L3Off: 14, IPHdrLen: 20, IPLen: 60, TTL: 64, DF: true,
				Tuple: t4(header.ProtoIPIP, vip4, 0, rs4, 0), L4Off: 34},
		},
		{
			name:  "ESP after a Destination Options header",
			frame: cat(eth(0, header.EtherTypeIPv6), ip6(header.ProtoDestOpts, client6, vip6, ext6(header.ProtoESP), []byte{0, 0, 0, 1, 0, 0, 0, 1})),
			want: Parsed{EtherType: header.EtherTypeIPv6, L3Off: 14, IPHdrLen: 40, IPLen: 56, TTL: 64,
				Tuple: t6(header.ProtoESP, client6, 0, vip6, 0), L4Off: 62},
		},
		{
			name:  "ARP request",
			frame: cat(eth(0, header.EtherTypeARP), arpRequest()),
			want:  Parsed{EtherType: header.EtherTypeARP, L3Off: 14, ARPOp: header.ARPRequest, ARPSenderIP: client4, ARPTargetIP: vip4},
		},
		{
			name:  "other EtherType",
			frame: cat(eth(0, 0x88cc), make([]byte, 46)), // LLDP
			want:  Parsed{EtherType: 0x88cc, L3Off: 14},
		},
	} {
		t.Run(tc.name, func(t *testing.T) { check(t, tc.frame, &tc.want) })
	}
}

func arpRequest() []byte {
	b := make([]byte, header.ARPSize)
	header.ARP(b).EncodeRequest(macClient, client4, vip4)
	return b
}

// TestDecodeMalformed has one frame per Reason.
func TestDecodeMalformed(t *testing.T) {
	good4 := func() []byte {
		return cat(eth(0, header.EtherTypeIPv4), ip4(header.ProtoTCP, client4, vip4, tcp(1, 80, header.TCPFlagSYN, "")))
	}
	good6 := func() []byte {
		return cat(eth(0, header.EtherTypeIPv6), ip6(header.ProtoUDP, client6, vip6, udp(1, 53, "q")))
	}
	// fix4 recomputes the IPv4 header checksum after an edit.
	fix4 := func(f []byte) []byte {
		ip := header.IPv4(f[14:])
		ip.SetChecksum(ip.CalculateChecksum())
		return f
	}
	seen := map[Reason]bool{}
	for _, tc := range []struct {
		name  string
		frame []byte
		want  Reason
	}{
		{"13 bytes", good4()[:13], ReasonShortEthernet},
		{"tag cut", eth(5, header.EtherTypeIPv4)[:17], ReasonShortEthernet},
		{"short ARP", cat(eth(0, header.EtherTypeARP), arpRequest()[:27]), ReasonBadARP},
		{"ARP for IPv6", func() []byte {
			f := cat(eth(0, header.EtherTypeARP), arpRequest())
			f[16], f[17] = 0x86, 0xdd
			return f
		}(), ReasonBadARP},
		{"19 bytes of IPv4", good4()[:14+19], ReasonShortIP},
		{"39 bytes of IPv6", good6()[:14+39], ReasonShortIP},
		{"IPv6 in an IPv4 EtherType", func() []byte { f := good6(); f[12], f[13] = 0x08, 0x00; return f }(), ReasonBadIPVersion},
		{"IPv4 in an IPv6 EtherType", func() []byte { f := good4(); f[12], f[13] = 0x86, 0xdd; return f }(), ReasonBadIPVersion},
		{"IHL 4", fix4(func() []byte { f := good4(); f[14] = 0x44; return f }()), ReasonBadIHL},
		{"IHL 15 past the frame", func() []byte { f := good4(); f[14] = 0x4f; return f[:14+50] }(), ReasonBadIHL},
		{"total length past the frame", fix4(func() []byte { f := good4(); f[17]++; return f }()), ReasonBadTotalLength},
		{"total length below the header", fix4(func() []byte { f := good4(); f[16], f[17] = 0, 19; return f }()), ReasonBadTotalLength},
		{"IPv6 payload length past the frame", func() []byte { f := good6(); f[19]++; return f }(), ReasonBadTotalLength},
		{"IPv4 checksum", func() []byte { f := good4(); f[24] ^= 0xff; return f }(), ReasonBadIPChecksum},
		{"IPv6 extension past the packet", cat(eth(0, header.EtherTypeIPv6), ip6(header.ProtoHopByHop, client6, vip6, []byte{header.ProtoTCP, 1, 0, 0, 0, 0, 0, 0})), ReasonBadIPv6Ext},
		{"IPv6 Hop-by-Hop second", cat(eth(0, header.EtherTypeIPv6), ip6(header.ProtoRouting, client6, vip6, ext6(header.ProtoHopByHop), ext6(header.ProtoUDP), udp(1, 2, ""))), ReasonBadIPv6Ext},
		{"TCP 19 bytes", cat(eth(0, header.EtherTypeIPv4), ip4(header.ProtoTCP, client4, vip4, tcp(1, 2, 0, "")[:19])), ReasonTruncatedL4},
		{"UDP 7 bytes", cat(eth(0, header.EtherTypeIPv6), ip6(header.ProtoUDP, client6, vip6, udp(1, 2, "")[:7])), ReasonTruncatedL4},
		{"SCTP 11 bytes", cat(eth(0, header.EtherTypeIPv4), ip4(header.ProtoSCTP, client4, vip4, sctp(1, 2)[:11])), ReasonTruncatedL4},
		{"ICMP 7 bytes", cat(eth(0, header.EtherTypeIPv4), ip4(header.ProtoICMPv4, client4, vip4, icmp4(header.ICMPv4Echo, 0, 0, nil)[:7])), ReasonTruncatedL4},
		{"ICMPv6 7 bytes", cat(eth(0, header.EtherTypeIPv6), ip6(header.ProtoICMPv6, client6, vip6, make([]byte, 7))), ReasonTruncatedL4},
		{"tiny first fragment", cat(eth(0, header.EtherTypeIPv4), ip4f(&header.IPv4Fields{MF: true, Protocol: header.ProtoTCP, Src: client4, Dst: vip4}, tcp(1, 2, 0, "")[:16])), ReasonTruncatedL4},
		{"TCP data offset 4", cat(eth(0, header.EtherTypeIPv4), ip4(header.ProtoTCP, client4, vip4, func() []byte { b := tcp(1, 2, 0, ""); b[12] = 0x40; return b }())), ReasonBadTCPDataOffset},
		{"TCP data offset past the segment", cat(eth(0, header.EtherTypeIPv4), ip4(header.ProtoTCP, client4, vip4, func() []byte { b := tcp(1, 2, 0, "abc"); b[12] = 0x60; return b }())), ReasonBadTCPDataOffset},
		{"UDP length 7", cat(eth(0, header.EtherTypeIPv4), ip4(header.ProtoUDP, client4, vip4, func() []byte { b := udp(1, 2, "abc"); b[5] = 7; return b }())), ReasonBadUDPLength},
		{"UDP length past the datagram", cat(eth(0, header.EtherTypeIPv4), ip4(header.ProtoUDP, client4, vip4, func() []byte { b := udp(1, 2, "abc"); b[5]++; return b }())), ReasonBadUDPLength},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var p Parsed
			p.Decode(tc.frame)
			if p.Reason != tc.want {
				t.Errorf("Reason = %v, want %v", p.Reason, tc.want)
			}
			seen[p.Reason] = true
			checkInvariants(t, tc.frame, &p)
		})
	}
	for r := ReasonNone + 1; r < NumReasons; r++ {
		if !seen[r] {
			t.Errorf("no test case for %v", r)
		}
	}
}

func TestReasonString(t *testing.T) {
	names := map[string]bool{}
	for r := range NumReasons {
		s := r.String()
		if s == "" || s == "unknown" || names[s] {
			t.Errorf("Reason(%d).String() = %q", r, s)
		}
		names[s] = true
	}
	if NumReasons.String() != "unknown" {
		t.Errorf("out of range: %q", NumReasons.String())
	}
}

// TestDecodeResets decodes a rich frame and then a poor one into the same
// Parsed: nothing of the first may remain.
func TestDecodeResets(t *testing.T) {
	rich := cat(eth(9, header.EtherTypeIPv6), ip6(header.ProtoICMPv6, vip6, client6, icmp6(header.ICMPv6DstUnreachable, 4, 0, vip6, client6,
		ip6(header.ProtoFragment, client6, vip6, frag6(header.ProtoTCP, 0, true, 1), tcp(1, 2, 0, "")))))
	for _, poor := range [][]byte{
		cat(eth(0, header.EtherTypeARP), arpRequest()),
		cat(eth(0, header.EtherTypeIPv4), ip4(header.ProtoUDP, client4, vip4, udp(1, 2, ""))),
		{1, 2, 3},
	} {
		var fresh, reused Parsed
		fresh.Decode(poor)
		reused.Decode(rich)
		if reused.Inner.Tuple.Proto != header.ProtoTCP {
			t.Fatalf("rich frame not decoded: %+v", reused)
		}
		reused.Decode(poor)
		if d := diff(&fresh, &reused); d != "" {
			t.Errorf("reused Parsed differs from a fresh one:%s", d)
		}
	}
}

// checkInvariants holds for every Decode result, good or bad.
func checkInvariants(t *testing.T, frame []byte, p *Parsed) {
	t.Helper()
	end := p.L3Off + p.IPLen
	if p.Tuple.Family != 0 && p.Reason == ReasonNone {
		if end > len(frame) || p.L4Off < p.L3Off+p.IPHdrLen || p.L4Off > end {
			t.Fatalf("offsets out of range: L3 %d len %d L4 %d frame %d", p.L3Off, p.IPLen, p.L4Off, len(frame))
		}
		if p.IP(frame) == nil || p.L4(frame) == nil {
			t.Fatal("IP or L4 nil for a decoded packet")
		}
		if p.PayloadOff != 0 && (p.PayloadOff < p.L4Off || p.PayloadOff > end || p.Payload(frame) == nil) {
			t.Fatalf("payload offset %d outside [%d, %d]", p.PayloadOff, p.L4Off, end)
		}
	}
	if p.HasPorts && p.Tuple.Proto != header.ProtoTCP && p.Tuple.Proto != header.ProtoUDP && p.Tuple.Proto != header.ProtoSCTP {
		t.Fatalf("ports for protocol %d", p.Tuple.Proto)
	}
	if !p.HasPorts && (p.Tuple.SrcPort != 0 || p.Tuple.DstPort != 0) {
		t.Fatal("ports without HasPorts")
	}
	if p.IsFragment && !p.IsFirstFragment && (p.HasPorts || p.PayloadOff != 0) {
		t.Fatal("a later fragment has a transport header")
	}
	if p.Tuple.Family == FamilyIPv4 && ([12]byte(p.Tuple.Src[4:]) != [12]byte{} || [12]byte(p.Tuple.Dst[4:]) != [12]byte{}) {
		t.Fatal("IPv4 tuple with bytes past the address")
	}
	if in := &p.Inner; in.Reason == ReasonNone && in.Tuple.Family != 0 {
		if !p.ICMPError || in.L3Off < p.PayloadOff || in.L4Off > len(frame) || in.L4Off < in.L3Off+in.IPHdrLen {
			t.Fatalf("embedded offsets: %+v (payload %d, frame %d)", *in, p.PayloadOff, len(frame))
		}
	}
	if p.Reason != ReasonNone && p.Reason >= NumReasons {
		t.Fatalf("reason %d", p.Reason)
	}
}

// TestDecodeEveryPrefixAndBitFlip decodes every prefix of sample frames,
// and the frames with each single bit flipped: no panic, invariants hold.
func TestDecodeEveryPrefixAndBitFlip(t *testing.T) {
	var p Parsed
	for _, f := range sampleFrames() {
		for n := range len(f) + 1 {
			p.Decode(f[:n])
			checkInvariants(t, f[:n], &p)
		}
		g := append([]byte(nil), f...)
		for i := range len(g) * 8 {
			g[i/8] ^= 1 << (i % 8)
			p.Decode(g)
			checkInvariants(t, g, &p)
			g[i/8] ^= 1 << (i % 8)
		}
	}
}

func sampleFrames() [][]byte {
	return [][]byte{
		cat(eth(0, header.EtherTypeIPv4), ip4(header.ProtoTCP, client4, vip4, tcp(40000, 80, header.TCPFlagSYN, ""))),
		cat(eth(3, header.EtherTypeIPv4), ip4f(&header.IPv4Fields{TTL: 1, Protocol: header.ProtoUDP, Src: client4, Dst: vip4, Options: []byte{1, 1, 1, 0}}, udp(1, 2, "abc"))),
		cat(eth(0, header.EtherTypeIPv6), ip6(header.ProtoHopByHop, client6, vip6, ext6(header.ProtoFragment), frag6(header.ProtoUDP, 0, true, 1), udp(1, 53, "q"))),
		cat(eth(0, header.EtherTypeIPv4), ip4(header.ProtoSCTP, client4, vip4, sctp(1, 2, chunk(header.SCTPChunkCookieAck, 4), chunk(header.SCTPChunkAbort, 4)))),
		cat(eth(0, header.EtherTypeIPv4), ip4(header.ProtoICMPv4, rs4, vip4, icmp4(header.ICMPv4DstUnreachable, header.ICMPv4FragNeeded, 1400,
			ip4(header.ProtoTCP, vip4, client4, tcp(80, 40000, header.TCPFlagACK, ""))[:28]))),
		cat(eth(0, header.EtherTypeIPv6), ip6(header.ProtoICMPv6, vip6, client6, icmp6(header.ICMPv6PacketTooBig, 0, 1280, vip6, client6,
			ip6(header.ProtoDestOpts, client6, vip6, ext6(header.ProtoTCP), tcp(1, 2, 0, ""))))),
		cat(eth(0, header.EtherTypeARP), arpRequest()),
	}
}
