package forward

import (
	"bytes"
	"encoding/hex"
	"strings"
	"testing"

	"golvs/internal/flow"
)

// Golden frames, one per function. The expected outputs were built from
// scratch, checksums included, by Scapy 2.5.0 (testdata/golden_scapy.py),
// not by this package or its test builders: an independent implementation
// of the same wire formats.

// hx decodes hex strings, ignoring spaces.
func hx(parts ...string) []byte {
	b, err := hex.DecodeString(strings.ReplaceAll(strings.Join(parts, ""), " ", ""))
	if err != nil {
		panic(err)
	}
	return b
}

// pattern is the payload pattern of the long frames (byte i is i % 256).
func pattern(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i)
	}
	return b
}

func TestGolden(t *testing.T) {
	tcpSYNQuoteIn := hx(
		"45 10 0258 5555 4000 3f 06 f7fb c000020a c6336401", // IPv4: TOS 0x10, len 600, DF, TTL 63, TCP
		"9c40 0050 00000001 00000001 5010 01f6 781b 0000",   // TCP 40000 > 80, ACK
	)
	tests := []struct {
		name string
		in   []byte
		do   func(b *Buf, p *flow.Parsed) Result
		want []byte
	}{{
		name: "DNAT IPv4 TCP SYN to RS:8080",
		in: hx(
			"02005e100002 02005e100001 0800",                    // Ethernet: LB < client, IPv4
			"45 00 002c 1234 4000 40 06 3c59 c000020a c6336401", // IPv4: len 44, ID 0x1234, DF, TTL 64, TCP, 192.0.2.10 > 198.51.100.1
			"9c40 0050 000003e8 00000000 60 02 faf0 107e 0000",  // TCP 40000 > 80, seq 1000, doff 6, SYN, win 64240, csum
			"020405b4", // MSS 1460
		),
		do: func(b *Buf, p *flow.Parsed) Result { return DNAT(b, p, rs4, 8080, false) },
		want: hx(
			"02005e100002 02005e100001 0800",
			"45 00 002c 1234 4000 40 06 2a79 c000020a cb007114", // dst 203.0.113.20, checksum 0x3c59 -> 0x2a79
			"9c40 1f90 000003e8 00000000 60 02 faf0 df5d 0000",  // dport 8080, checksum 0x107e -> 0xdf5d
			"020405b4",
		),
	}, {
		name: "DNAT IPv4 UDP without checksum leaves with one",
		in: hx(
			"02005e100002 02005e100001 0800",
			"45 00 0021 0007 0000 40 11 8e86 c000020a c6336401", // IPv4: len 33, UDP
			"9c42 0035 000d 0000",                               // UDP 40002 > 53, len 13, no checksum
			"7175657279",                                        // "query"
		),
		do: func(b *Buf, p *flow.Parsed) Result { return DNAT(b, p, rs4, 5353, false) },
		want: hx(
			"02005e100002 02005e100001 0800",
			"45 00 0021 0007 0000 40 11 7ca6 c000020a cb007114",
			"9c42 14e9 000d 00a1", // dport 5353, full checksum 0x00a1
			"7175657279",
		),
	}, {
		name: "SNAT IPv6 UDP reply from VIP:53",
		in: hx(
			"02005e100002 02005e100003 86dd", // Ethernet: LB < RS, IPv6
			"6 00 00000 000d 11 40 20010db8000100000000000000000014 20010db800000000000000000000000a", // IPv6: len 13, UDP, hop 64, 2001:db8:1::14 > 2001:db8::a
			"14e9 9c41 000d 9746", // UDP 5353 > 40001
			"7265706c79",          // "reply"
		),
		do: func(b *Buf, p *flow.Parsed) Result { return SNAT(b, p, vip6, 53, false) },
		want: hx(
			"02005e100002 02005e100003 86dd",
			"6 00 00000 000d 11 40 20010db8000000000000000000000001 20010db800000000000000000000000a", // src 2001:db8::1
			"0035 9c41 000d ac0e", // sport 53, checksum 0x9746 -> 0xac0e
			"7265706c79",
		),
	}, {
		name: "DR strips the tag, RS MAC, TTL 64 -> 63",
		in: hx(
			"02005e100002 02005e100001 8100 a064 0800",          // Ethernet: 802.1Q PCP 5 VID 100, IPv4
			"45 00 0028 2222 4000 40 06 2c6f c000020a c6336401", // IPv4: TTL 64
			"9c40 0050 000003e9 00001389 50 10 01f6 0d9d 0000",  // TCP ACK
		),
		do: func(b *Buf, p *flow.Parsed) Result { return DR(b, p, macRS, macLB) },
		want: hx(
			"02005e100003 02005e100002 0800",                    // RS < LB, untagged
			"45 00 0028 2222 4000 3f 06 2d6f c000020a c6336401", // TTL 63, checksum 0x2c6f -> 0x2d6f
			"9c40 0050 000003e9 00001389 50 10 01f6 0d9d 0000",
		),
	}, {
		name: "DecTTL IPv6 hop limit 64 -> 63",
		in: hx(
			"02005e100002 02005e100001 86dd",
			"6 00 00000 0008 3a 40 20010db800000000000000000000000a 20010db8000000000000000000000001",
			"80 00 243e 0001 0001", // ICMPv6 echo request (its checksum does not cover the hop limit)
		),
		do: DecTTL,
		want: hx(
			"02005e100002 02005e100001 86dd",
			"6 00 00000 0008 3a 3f 20010db800000000000000000000000a 20010db8000000000000000000000001",
			"80 00 243e 0001 0001",
		),
	}, {
		name: "SetMACsVLAN pushes a tag",
		in: hx(
			"02005e100002 02005e100001 86dd",
			"6 00 00000 0008 3a 3f 20010db800000000000000000000000a 20010db8000000000000000000000001",
			"80 00 243e 0001 0001",
		),
		do: func(b *Buf, _ *flow.Parsed) Result { return SetMACsVLAN(b, macRS, macLB, 42) },
		want: hx(
			"02005e100003 02005e100002 8100 002a 86dd", // RS < LB, 802.1Q VID 42, IPv6
			"6 00 00000 0008 3a 3f 20010db800000000000000000000000a 20010db8000000000000000000000001",
			"80 00 243e 0001 0001",
		),
	}, {
		name: "Encap IPIP: ECN CE inner, ECT(0) outer, DF copied",
		in: hx(
			"02005e100002 02005e100001 0800",
			"45 bb 003a 3333 4000 3f 06 1b91 c000020a c6336401", // inner: TOS 0xbb (EF, CE), DF, TTL 63
			"9c40 0050 00000001 00000001 50 18 01f6 4653 0000",
			"474554202f20485454502f312e300d0a0d0a", // "GET / HTTP/1.0\r\n\r\n"
		),
		do: func(b *Buf, p *flow.Parsed) Result {
			return Encap(b, p, &Tunnel{Src: lb4, Dst: rs4}, 0x0101, 0)
		},
		want: hx(
			"000000000000 000000000000 0800",                    // for SetMACs
			"45 ba 004e 0101 4000 3f 04 c1da cb007101 cb007114", // outer: TOS 0xba (EF, ECT(0)), len 78, ID 0x0101, DF, TTL 63, IPIP, 203.0.113.1 > .20
			"45 bb 003a 3333 4000 3f 06 1b91 c000020a c6336401",
			"9c40 0050 00000001 00000001 50 18 01f6 4653 0000",
			"474554202f20485454502f312e300d0a0d0a",
		),
	}, {
		name: "Encap GUE with checksum over IPv6, IPv6 inner",
		in: hx(
			"02005e100002 02005e100001 86dd",
			"6 28 00000 000d 11 3f 20010db800000000000000000000000a 20010db8000000000000000000000001", // inner: TC 0x28, UDP
			"9c41 0035 000d b7f8",
			"7175657279",
		),
		do: func(b *Buf, p *flow.Parsed) Result {
			return Encap(b, p, &Tunnel{Src: lb6, Dst: rs6, Type: TunnelGUE, Port: 6080, Csum: true}, 0, 0x12345678)
		},
		want: hx(
			"000000000000 000000000000 86dd",
			"6 28 00000 0041 11 3f 20010db8000100000000000000000001 20010db8000100000000000000000014", // outer: TC 0x28, len 65, UDP, hop 63
			"9d6b 17c0 0041 7ae0", // UDP 40299 (flow hash 0x12345678) > 6080, len 65, checksum
			"00 29 0000",          // GUE v0, hlen 0, proto_ctype 41, flags 0
			"6 28 00000 000d 11 3f 20010db800000000000000000000000a 20010db8000000000000000000000001",
			"9c41 0035 000d b7f8",
			"7175657279",
		),
	}, {
		name: "Encap GRE with checksum, IPv4 inner without DF",
		in: hx(
			"02005e100002 02005e100001 0800",
			"45 00 0021 4444 0000 3f 11 4b49 c000020a c6336401",
			"9c42 0035 000d 2735",
			"7175657279",
		),
		do: func(b *Buf, p *flow.Parsed) Result {
			return Encap(b, p, &Tunnel{Src: lb4, Dst: rs4, Type: TunnelGRE, Csum: true}, 0x0202, 0)
		},
		want: hx(
			"000000000000 000000000000 0800",
			"45 00 003d 0202 0000 3f 2f 017a cb007101 cb007114", // outer: no DF, GRE
			"8000 0800 645d 0000",                               // GRE: C, version 0, IPv4; checksum, reserved1
			"45 00 0021 4444 0000 3f 11 4b49 c000020a c6336401",
			"9c42 0035 000d 2735",
			"7175657279",
		),
	}, {
		name: "ICMPError FragNeeded IPv4, quote cut at 576 bytes",
		in:   hx("02005e100002 02005e100001 0800", hex.EncodeToString(tcpSYNQuoteIn), hex.EncodeToString(pattern(560))),
		do: func(b *Buf, p *flow.Parsed) Result {
			return ICMPError(b, p, FragNeeded, 1400, vip4, 0x4242)
		},
		want: hx(
			"000000000000 000000000000 0800",
			"45 d0 0240 4242 0000 40 01 496c c6336401 c000020a", // TOS 0xc0|0x10, len 576, ID 0x4242, no DF, TTL 64, ICMP, VIP > client
			"03 04 0c4e 0000 0578",                              // dest unreachable, frag needed, checksum, unused, MTU 1400
			hex.EncodeToString(tcpSYNQuoteIn), hex.EncodeToString(pattern(548-40)),
		),
	}, {
		name: "ICMPError PortUnreachable IPv6",
		in: hx(
			"02005e100002 02005e100001 86dd",
			"6 00 00000 000d 11 40 20010db800000000000000000000000a 20010db8000000000000000000000001",
			"9c41 0035 000d b7f8",
			"7175657279",
		),
		do: func(b *Buf, p *flow.Parsed) Result {
			return ICMPError(b, p, PortUnreachable, 0, vip6, 0)
		},
		want: hx(
			"000000000000 000000000000 86dd",
			"6 00 00000 003d 3a 40 20010db8000000000000000000000001 20010db800000000000000000000000a", // len 61, ICMPv6, hop 64, VIP > client
			"01 04 31d8 00000000", // destination unreachable, port unreachable
			"6 00 00000 000d 11 40 20010db800000000000000000000000a 20010db8000000000000000000000001",
			"9c41 0035 000d b7f8",
			"7175657279",
		),
	}, {
		name: "NATICMPIn IPv4 port unreachable about a reply",
		in: hx(
			"02005e100002 02005e100001 0800",
			"45 00 003c 7777 0000 3f 01 1717 c00002fe c6336401", // router 192.0.2.254 > VIP
			"03 03 4ece 00000000",                               // port unreachable
			"45 00 0022 6666 0000 3e 11 2a26 c6336401 c000020a", // quoted: VIP > client
			"0035 9c42 000e 3cc3",                               // quoted UDP 53 > 40002, checksum
			"616e7377",                                          // 4 bytes of "answer"
		),
		do: func(b *Buf, p *flow.Parsed) Result { return NATICMPIn(b, p, rs4, 5353) },
		want: hx(
			"02005e100002 02005e100001 0800",
			"45 00 003c 7777 0000 3f 01 0537 c00002fe cb007114", // dst RS
			"03 03 3a1a 00000000",                               // ICMP checksum recomputed
			"45 00 0022 6666 0000 3e 11 1846 cb007114 c000020a", // quoted src RS, header checksum recomputed
			"14e9 9c42 000e 3cc3",                               // quoted sport 5353; its checksum untouched
			"616e7377",
		),
	}, {
		name: "NATICMPOut IPv6 time exceeded about a request",
		in: hx(
			"02005e100002 02005e100003 86dd",
			"6 00 00000 0044 3a 40 20010db8000100000000000000000014 20010db800000000000000000000000a", // RS > client
			"03 00 3af5 00000000", // time exceeded
			"6 00 00000 0014 06 01 20010db800000000000000000000000a 20010db8000100000000000000000014", // quoted: client > RS
			"9c40 1f90 00000007 00000000 50 02 2000 787a 0000",                                        // quoted TCP 40000 > 8080
		),
		do: func(b *Buf, p *flow.Parsed) Result { return NATICMPOut(b, p, vip6, 80) },
		want: hx(
			"02005e100002 02005e100003 86dd",
			"6 00 00000 0044 3a 40 20010db8000000000000000000000001 20010db800000000000000000000000a", // src VIP
			"03 00 5a5d 00000000",
			"6 00 00000 0014 06 01 20010db800000000000000000000000a 20010db8000000000000000000000001", // quoted dst VIP
			"9c40 0050 00000007 00000000 50 02 2000 787a 0000",                                        // quoted dport 80
		),
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := parse(tc.in)
			if p.Reason != flow.ReasonNone {
				t.Fatalf("input does not decode: %v", p.Reason)
			}
			b := load(tc.in)
			if r := tc.do(&b.Buf, p); r != Done {
				t.Fatalf("result %v", r)
			}
			b.untouched(t)
			if got := b.Frame(); !bytes.Equal(got, tc.want) {
				t.Errorf("got\n%s\nwant\n%s", hex.Dump(got), hex.Dump(tc.want))
			}
		})
	}
}
