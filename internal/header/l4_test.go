package header

import (
	"bytes"
	"encoding/binary"
	"math/rand/v2"
	"testing"

	"golvs/internal/checksum"
)

var (
	ip4A = [4]byte{192, 0, 2, 1}
	ip4B = [4]byte{198, 51, 100, 2}
)

// tcpSYN is a TCP SYN with a 4-byte MSS option and 3 bytes of payload.
var tcpSYN = []byte{
	0x9c, 0x40, // source port 40000
	0x00, 0x50, // destination port 80
	0x01, 0x02, 0x03, 0x04, // sequence number
	0x00, 0x00, 0x00, 0x00, // acknowledgment number
	0x60,       // data offset 6 words
	0x02,       // flags SYN
	0xfa, 0xf0, // window 64240
	0x00, 0x00, // checksum (filled by the test)
	0x00, 0x00, // urgent pointer
	0x02, 0x04, 0x05, 0xb4, // option MSS 1460
	'a', 'b', 'c', // payload
}

func TestTCP(t *testing.T) {
	b := append([]byte(nil), tcpSYN...)
	tcp := TCP(b)
	if !tcp.IsValid() {
		t.Fatal("IsValid = false")
	}
	if tcp.SourcePort() != 40000 || tcp.DestinationPort() != 80 || tcp.SequenceNumber() != 0x01020304 ||
		tcp.AckNumber() != 0 || tcp.DataOffset() != 24 || tcp.Flags() != TCPFlagSYN || tcp.WindowSize() != 64240 ||
		tcp.UrgentPointer() != 0 || tcp.OptionsLength() != 4 || !bytes.Equal(tcp.Options(), []byte{2, 4, 5, 0xb4}) ||
		string(tcp.Payload()) != "abc" {
		t.Errorf("accessors on % x", b)
	}
	pseudo := checksum.PseudoHeaderIPv4(ip4A, ip4B, ProtoTCP, uint16(len(b)))
	tcp.SetChecksum(tcp.CalculateChecksum(pseudo))
	if !tcp.IsChecksumValid(pseudo) {
		t.Fatal("IsChecksumValid after SetChecksum(CalculateChecksum) = false")
	}
	// An independent layout: pseudo header bytes, then the segment.
	ph := append(append(append([]byte(nil), ip4A[:]...), ip4B[:]...), 0, ProtoTCP, 0, byte(len(b)))
	if got := checksum.Sum(append(ph, b...), 0); got != 0xffff {
		t.Errorf("sum over pseudo header and segment = %#04x, want 0xffff", got)
	}

	tcp.SetDestinationPortWithChecksumUpdate(8080)
	tcp.SetSourcePortWithChecksumUpdate(1)
	if tcp.DestinationPort() != 8080 || tcp.SourcePort() != 1 || tcp.Checksum() != tcp.CalculateChecksum(pseudo) {
		t.Errorf("port updates: checksum %#04x, recomputed %#04x", tcp.Checksum(), tcp.CalculateChecksum(pseudo))
	}

	for name, bad := range map[string][]byte{
		"19 bytes":              b[:19],
		"data offset 4":         append([]byte(nil), b[:12]...),
		"data offset past data": b[:23],
	} {
		if name == "data offset 4" {
			bad = append(bad, 0x40, 0x02, 0, 0, 0, 0, 0, 0)
		}
		if TCP(bad).IsValid() {
			t.Errorf("%s: IsValid = true", name)
		}
	}
}

func TestTCPEncodeRoundTrip(t *testing.T) {
	f := TCPFields{SrcPort: 1, DstPort: 2, Seq: 3, Ack: 4, DataOffset: 60, Flags: TCPFlagACK | TCPFlagFIN, Window: 5, Checksum: 6, UrgentPointer: 7}
	b := TCP(make([]byte, 60))
	b.Encode(&f)
	got := TCPFields{b.SourcePort(), b.DestinationPort(), b.SequenceNumber(), b.AckNumber(), b.DataOffset(), b.Flags(), b.WindowSize(), b.Checksum(), b.UrgentPointer()}
	if got != f || !b.IsValid() {
		t.Errorf("read back %+v, want %+v", got, f)
	}
	b.Encode(&TCPFields{})
	if b.DataOffset() != TCPMinimumSize {
		t.Errorf("zero DataOffset encodes %d", b.DataOffset())
	}
	b.SetSourcePort(9)
	b.SetDestinationPort(10)
	b.SetSequenceNumber(11)
	b.SetAckNumber(12)
	b.SetFlags(TCPFlagRST)
	b.SetWindowSize(13)
	if b.SourcePort() != 9 || b.DestinationPort() != 10 || b.SequenceNumber() != 11 || b.AckNumber() != 12 || b.Flags() != TCPFlagRST || b.WindowSize() != 13 {
		t.Error("setters read back")
	}
}

// udpDNS is a UDP datagram of 12 bytes (4 of payload).
var udpDNS = []byte{
	0xc0, 0x00, // source port 49152
	0x00, 0x35, // destination port 53
	0x00, 0x0c, // length 12
	0x00, 0x00, // checksum (none)
	0xde, 0xad, 0xbe, 0xef, // payload
}

func TestUDP(t *testing.T) {
	b := append(append([]byte(nil), udpDNS...), 0, 0) // 2 bytes past Length
	u := UDP(b)
	if !u.IsValid() || u.SourcePort() != 49152 || u.DestinationPort() != 53 || u.Length() != 12 || u.Checksum() != 0 ||
		!bytes.Equal(u.Payload(), []byte{0xde, 0xad, 0xbe, 0xef}) {
		t.Fatalf("accessors on % x", b)
	}
	pseudo := checksum.PseudoHeaderIPv6(addr6A, addr6B, ProtoUDP, 12)
	if !u.IsChecksumValid(pseudo) {
		t.Error("zero checksum: IsChecksumValid = false")
	}
	// A zero checksum stays zero through port updates.
	u.SetDestinationPortWithChecksumUpdate(5353)
	u.SetSourcePortWithChecksumUpdate(1)
	if u.Checksum() != 0 || u.DestinationPort() != 5353 || u.SourcePort() != 1 {
		t.Errorf("zero-checksum port update: checksum %#04x", u.Checksum())
	}
	u.SetChecksum(u.CalculateChecksum(pseudo))
	if !u.IsChecksumValid(pseudo) || u.Checksum() == 0 {
		t.Fatalf("CalculateChecksum %#04x not valid", u.Checksum())
	}
	u.SetDestinationPortWithChecksumUpdate(53)
	if u.Checksum() != u.CalculateChecksum(pseudo) {
		t.Errorf("port update: %#04x, recomputed %#04x", u.Checksum(), u.CalculateChecksum(pseudo))
	}

	for name, bad := range map[string][]byte{
		"7 bytes":           udpDNS[:7],
		"length 7":          {0, 1, 0, 2, 0, 7, 0, 0},
		"length past bytes": udpDNS[:11],
	} {
		if UDP(bad).IsValid() {
			t.Errorf("%s: IsValid = true", name)
		}
	}
	e := UDP(make([]byte, 8))
	e.Encode(1, 2, 8, 3)
	e.SetLength(8)
	if e.SourcePort() != 1 || e.DestinationPort() != 2 || e.Length() != 8 || e.Checksum() != 3 {
		t.Errorf("Encode read back: % x", []byte(e))
	}
}

// TestUDPZeroResult finds a datagram whose checksum computes to zero and
// checks that it is sent as 0xFFFF, both computed and updated.
func TestUDPZeroResult(t *testing.T) {
	b := UDP(make([]byte, 10))
	b.Encode(1, 2, 10, 0)
	pseudo := checksum.PseudoHeaderIPv4(ip4A, ip4B, ProtoUDP, 10)
	// Choose the two payload bytes so that the whole sum is 0xffff.
	s := checksum.Sum(b[:8], pseudo)
	binary.BigEndian.PutUint16(b[8:], ^s)
	if got := b.CalculateChecksum(pseudo); got != 0xffff {
		t.Fatalf("CalculateChecksum = %#04x, want 0xffff for a computed 0", got)
	}
	b.SetChecksum(0xffff)
	if !b.IsChecksumValid(pseudo) {
		t.Error("0xffff not valid")
	}
}

func TestICMPv4(t *testing.T) {
	// Fragmentation Needed, MTU 1400, quoting an IPv4 header and 8 bytes.
	msg := []byte{
		0x03,       // type destination unreachable
		0x04,       // code fragmentation needed
		0x00, 0x00, // checksum (filled below)
		0x00, 0x00, // unused
		0x05, 0x78, // next-hop MTU 1400
	}
	msg = append(msg, capturedIPv4...)
	msg = append(msg, tcpSYN[:8]...)
	m := ICMPv4(msg)
	m.SetChecksum(m.CalculateChecksum())
	if !m.IsValid() || m.Type() != ICMPv4DstUnreachable || m.Code() != ICMPv4FragNeeded || m.MTU() != 1400 ||
		m.RestOfHeader() != 1400 || !m.IsChecksumValid() || !bytes.Equal(m.Payload()[:20], capturedIPv4) || len(msg) != ICMPv4MinimumErrorSize {
		t.Errorf("accessors on % x", msg)
	}
	m.SetMTU(576)
	m.SetType(ICMPv4TimeExceeded)
	m.SetCode(ICMPv4TTLExceeded)
	if m.MTU() != 576 || m.Type() != ICMPv4TimeExceeded || m.Code() != 0 || m.IsChecksumValid() {
		t.Error("setters")
	}
	echo := ICMPv4([]byte{8, 0, 0, 0, 0x12, 0x34, 0x00, 0x01})
	if echo.Ident() != 0x1234 || echo.Sequence() != 1 || echo.Type().IsError() {
		t.Error("echo")
	}
	if ICMPv4(msg[:7]).IsValid() {
		t.Error("7 bytes valid")
	}
	for ty := range 256 {
		want := ty == 3 || ty == 4 || ty == 5 || ty == 11 || ty == 12
		if ICMPv4Type(ty).IsError() != want {
			t.Errorf("ICMPv4Type(%d).IsError() = %v", ty, !want)
		}
	}
}

func TestICMPv6(t *testing.T) {
	inner := v6(ProtoUDP, udpDNS)
	msg := append([]byte{
		0x02,       // type packet too big
		0x00,       // code
		0x00, 0x00, // checksum (filled below)
		0x00, 0x00, 0x05, 0x00, // MTU 1280
	}, inner...)
	m := ICMPv6(msg)
	pseudo := checksum.PseudoHeaderIPv6(addr6B, addr6A, ProtoICMPv6, uint32(len(msg)))
	m.SetChecksum(m.CalculateChecksum(pseudo))
	if !m.IsValid() || m.Type() != ICMPv6PacketTooBig || m.Code() != 0 || m.MTU() != IPv6MinimumMTU ||
		!m.IsChecksumValid(pseudo) || !bytes.Equal(m.Payload(), inner) {
		t.Errorf("accessors on % x", msg)
	}
	m.SetType(ICMPv6DstUnreachable)
	m.SetCode(ICMPv6PortUnreachable)
	m.SetMTU(0)
	if m.Type() != 1 || m.Code() != 4 || m.RestOfHeader() != 0 {
		t.Error("setters")
	}
	echo := ICMPv6([]byte{128, 0, 0, 0, 0xab, 0xcd, 0x00, 0x02})
	if echo.Ident() != 0xabcd || echo.Sequence() != 2 || echo.Type().IsError() {
		t.Error("echo")
	}
	for ty := range 256 {
		if ICMPv6Type(ty).IsError() != (ty < 128) {
			t.Errorf("ICMPv6Type(%d).IsError()", ty)
		}
	}
}

// scapySCTP is the SCTP part of Scapy's SCTP regression test
// ("SCTP - Chunk Init - build": IP()/SCTP()/SCTPChunkInit(params=
// [SCTPChunkParamIPv4Addr()])), whose checksum field Scapy computes and
// dissects as 0x402c0b5f: an outside check of the CRC32c and of its byte
// order on the wire.
var scapySCTP = []byte{
	0x00, 0x00, // source port 0
	0x00, 0x00, // destination port 0
	0x00, 0x00, 0x00, 0x00, // verification tag 0
	0x40, 0x2c, 0x0b, 0x5f, // checksum (CRC32c 0x5f0b2c40, low byte first)
	0x01, 0x00, 0x00, 0x1c, // chunk INIT, flags 0, length 28
	0x00, 0x00, 0x00, 0x00, // initiate tag
	0x00, 0x00, 0x00, 0x00, // a_rwnd
	0x00, 0x00, 0x00, 0x00, // outbound streams, inbound streams
	0x00, 0x00, 0x00, 0x00, // initial TSN
	0x00, 0x05, 0x00, 0x08, // parameter IPv4 address, length 8
	0x7f, 0x00, 0x00, 0x01, // 127.0.0.1
}

func TestSCTP(t *testing.T) {
	b := append([]byte(nil), scapySCTP...)
	s := SCTP(b)
	if !s.IsValid() || s.SourcePort() != 0 || s.DestinationPort() != 0 || s.VerificationTag() != 0 || len(s.Chunks()) != 28 {
		t.Fatal("accessors")
	}
	if got := s.CalculateChecksum(); got != 0x5f0b2c40 {
		t.Errorf("CalculateChecksum = %#08x, want 0x5f0b2c40", got)
	}
	if !s.IsChecksumValid() {
		t.Error("IsChecksumValid = false on Scapy's packet")
	}
	if typ, abort, ok := s.FirstChunk(); typ != SCTPChunkInit || abort || !ok {
		t.Errorf("FirstChunk = %d %v %v", typ, abort, ok)
	}
	s.SetSourcePort(5000)
	s.SetDestinationPort(38412)
	s.SetVerificationTag(0xcafe)
	if s.IsChecksumValid() {
		t.Error("checksum still valid after rewriting the ports")
	}
	s.SetChecksum(s.CalculateChecksum())
	if !s.IsChecksumValid() || s.SourcePort() != 5000 || s.DestinationPort() != 38412 || s.VerificationTag() != 0xcafe {
		t.Error("after SetChecksum")
	}
	if SCTP(b[:11]).IsValid() {
		t.Error("11 bytes valid")
	}
	if _, _, ok := SCTP(b[:15]).FirstChunk(); ok {
		t.Error("FirstChunk on a 3-byte chunk header: ok")
	}
}

func TestTunnel(t *testing.T) {
	inner4 := append(append([]byte(nil), capturedIPv4...), make([]byte, 28)...)
	inner6 := v6(ProtoUDP, udpDNS)
	if TunnelProtocol(inner4) != ProtoIPIP || TunnelProtocol(inner6) != ProtoIPv6 || TunnelProtocol(nil) != 0 || TunnelProtocol([]byte{0x50}) != 0 {
		t.Error("TunnelProtocol")
	}

	for _, inner := range [][]byte{inner4, inner6} {
		buf := make([]byte, 64+len(inner))
		off := 64
		copy(buf[off:], inner)
		o4, ok := EncapIPv4(buf, off, IPv4Tunnel{Src: ip4A, Dst: ip4B, TOS: 0x02, TTL: 63, ID: 9, DF: true, Protocol: TunnelProtocol(inner)})
		if !ok || &o4[0] != &buf[off-20] || !o4.IsValid(len(o4)) || !o4.IsChecksumValid() ||
			int(o4.TotalLength()) != 20+len(inner) || o4.Protocol() != TunnelProtocol(inner) || o4.TTL() != 63 ||
			o4.ID() != 9 || !o4.DF() || o4.TOS() != 0x02 || o4.SourceAddress() != ip4A || o4.DestinationAddress() != ip4B ||
			!bytes.Equal(o4.Payload(), inner) {
			t.Errorf("EncapIPv4: ok %v, % x", ok, []byte(o4))
		}

		copy(buf[off:], inner)
		o6, ok := EncapIPv6(buf, off, IPv6Tunnel{Src: addr6A, Dst: addr6B, TrafficClass: 0x01, HopLimit: 5, NextHeader: TunnelProtocol(inner)})
		if !ok || &o6[0] != &buf[off-40] || !o6.IsValid(len(o6)) || int(o6.PayloadLength()) != len(inner) ||
			o6.NextHeader() != TunnelProtocol(inner) || o6.HopLimit() != 5 || o6.TrafficClass() != 0x01 ||
			o6.FlowLabel() != 0 || !bytes.Equal(o6.Payload(), inner) {
			t.Errorf("EncapIPv6: ok %v, % x", ok, []byte(o6))
		}
	}

	// No headroom, or too big: refused, nothing written.
	buf := make([]byte, 30)
	if _, ok := EncapIPv4(buf, 19, IPv4Tunnel{}); ok {
		t.Error("EncapIPv4 with 19 bytes of headroom")
	}
	if _, ok := EncapIPv6(buf, 20, IPv6Tunnel{}); ok {
		t.Error("EncapIPv6 with 20 bytes of headroom")
	}
	if _, ok := EncapIPv4(buf, 31, IPv4Tunnel{}); ok {
		t.Error("EncapIPv4 with off past the buffer")
	}
	big := make([]byte, 40+0x10000)
	if _, ok := EncapIPv6(big, 40, IPv6Tunnel{}); ok {
		t.Error("EncapIPv6 of a 65536-byte inner packet")
	}
	if _, ok := EncapIPv4(big[:20+0xffff-19], 20, IPv4Tunnel{}); ok {
		t.Error("EncapIPv4 past 65535 bytes")
	}
	for _, z := range big {
		if z != 0 {
			t.Fatal("a refused encapsulation wrote")
		}
	}
	if _, ok := EncapIPv4(big[:20+0xffff-20], 20, IPv4Tunnel{}); !ok {
		t.Error("EncapIPv4 of exactly 65535 bytes refused")
	}
}

func TestECNEncapsulate(t *testing.T) {
	const dscp = 0xb8 // EF
	for _, tc := range []struct{ inner, want uint8 }{
		{dscp, dscp},         // Not-ECT (ECN bits 00)
		{dscp | 1, dscp | 1}, // ECT(1)
		{dscp | 2, dscp | 2}, // ECT(0)
		{dscp | 3, dscp | 2}, // CE -> ECT(0) outside
	} {
		if got := ECNEncapsulate(tc.inner, tc.inner); got != tc.want {
			t.Errorf("ECNEncapsulate(%#x) = %#x, want %#x", tc.inner, got, tc.want)
		}
	}
	if got := ECNEncapsulate(0xff, 0x00); got != 0xfc {
		t.Errorf("outer ECN bits kept: %#x", got)
	}
}

// TestL4ChecksumUpdatesProperty rewrites addresses and ports of random
// TCP and UDP segments, the way NAT does (IP header by its setters,
// pseudo-header by checksum.Update32/UpdateAddr, ports by the setters), and
// compares with a full recomputation.
func TestL4ChecksumUpdatesProperty(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 9))
	for range 3000 {
		n := 20 + r.IntN(60)
		seg := make([]byte, n)
		for i := range seg {
			seg[i] = byte(r.Uint32())
		}
		seg[12] = 5 << 4
		binary.BigEndian.PutUint16(seg[4:], uint16(n)) // UDP length, harmless for TCP
		var src, dst, nsrc [4]byte
		binary.BigEndian.PutUint32(src[:], r.Uint32())
		binary.BigEndian.PutUint32(dst[:], r.Uint32())
		binary.BigEndian.PutUint32(nsrc[:], r.Uint32())
		var s6, ns6 [16]byte
		binary.BigEndian.PutUint64(s6[:], r.Uint64())
		binary.BigEndian.PutUint64(ns6[8:], r.Uint64())
		nport := uint16(r.Uint32())
		if r.IntN(2) == 0 {
			tcp := TCP(seg)
			ps := checksum.PseudoHeaderIPv4(src, dst, ProtoTCP, uint16(n))
			tcp.SetChecksum(tcp.CalculateChecksum(ps))
			tcp.SetChecksum(checksum.Update32(tcp.Checksum(), src, nsrc))
			tcp.SetSourcePortWithChecksumUpdate(nport)
			if want := tcp.CalculateChecksum(checksum.PseudoHeaderIPv4(nsrc, dst, ProtoTCP, uint16(n))); tcp.Checksum() != want {
				t.Fatalf("TCP/IPv4: %#04x, recomputed %#04x", tcp.Checksum(), want)
			}
		} else {
			u := UDP(seg)
			ps := checksum.PseudoHeaderIPv6(s6, addr6B, ProtoUDP, uint32(n))
			u.SetChecksum(u.CalculateChecksum(ps))
			u.SetChecksum(checksum.ForUDP(checksum.UpdateAddr(u.Checksum(), s6, ns6)))
			u.SetDestinationPortWithChecksumUpdate(nport)
			if want := u.CalculateChecksum(checksum.PseudoHeaderIPv6(ns6, addr6B, ProtoUDP, uint32(n))); u.Checksum() != want {
				t.Fatalf("UDP/IPv6: %#04x, recomputed %#04x", u.Checksum(), want)
			}
		}
	}
}
