package header

import (
	"bytes"
	"encoding/binary"
	"math/rand/v2"
	"reflect"
	"testing"
)

// capturedIPv4 is a captured IPv4 header with a correct checksum (0x442e).
var capturedIPv4 = []byte{
	0x45,       // version 4, IHL 5
	0x00,       // TOS
	0x00, 0x30, // total length 48
	0x44, 0x22, // ID 0x4422
	0x40, 0x00, // DF, fragment offset 0
	0x80,       // TTL 128
	0x06,       // protocol TCP
	0x44, 0x2e, // header checksum
	0x8c, 0x7c, 0x19, 0xac, // source 140.124.25.172
	0xae, 0x24, 0x1e, 0x2b, // destination 174.36.30.43
}

func TestIPv4Accessors(t *testing.T) {
	pkt := append(append([]byte(nil), capturedIPv4...), make([]byte, 28+6)...) // payload and 6 bytes of padding
	ip := IPv4(pkt)
	if !ip.IsValid(len(pkt)) {
		t.Fatal("IsValid = false")
	}
	for _, c := range []struct {
		name      string
		got, want any
	}{
		{"Version", ip.Version(), uint8(4)},
		{"HeaderLength", ip.HeaderLength(), 20},
		{"TOS", ip.TOS(), uint8(0)},
		{"TotalLength", ip.TotalLength(), uint16(48)},
		{"ID", ip.ID(), uint16(0x4422)},
		{"DF", ip.DF(), true},
		{"MF", ip.MF(), false},
		{"FragmentOffset", ip.FragmentOffset(), uint16(0)},
		{"IsFragment", ip.IsFragment(), false},
		{"TTL", ip.TTL(), uint8(128)},
		{"Protocol", ip.Protocol(), ProtoTCP},
		{"Checksum", ip.Checksum(), uint16(0x442e)},
		{"SourceAddress", ip.SourceAddress(), [4]byte{140, 124, 25, 172}},
		{"DestinationAddress", ip.DestinationAddress(), [4]byte{174, 36, 30, 43}},
		{"HasOptions", ip.HasOptions(), false},
		{"len(Options)", len(ip.Options()), 0},
		{"len(Payload)", len(ip.Payload()), 28},
		{"CalculateChecksum", ip.CalculateChecksum(), uint16(0x442e)},
		{"IsChecksumValid", ip.IsChecksumValid(), true},
	} {
		if c.got != c.want {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
	ip[ipv4Checksum+1] ^= 1
	if ip.IsChecksumValid() {
		t.Error("IsChecksumValid after corrupting = true")
	}
}

func TestIPv4IsValid(t *testing.T) {
	for _, tc := range []struct {
		name    string
		edit    func(b []byte) []byte
		pktSize int // 0: len(b)
		want    bool
	}{
		{"captured", func(b []byte) []byte { return b }, 0, true},
		{"19 bytes", func(b []byte) []byte { return b[:19] }, 0, false},
		{"version 6", func(b []byte) []byte { b[0] = 0x65; return b }, 0, false},
		{"IHL 4", func(b []byte) []byte { b[0] = 0x44; return b }, 0, false},
		{"IHL 6 past total length", func(b []byte) []byte { b[0] = 0x46; b[3] = 20; return b[:20] }, 0, false},
		{"total length below header", func(b []byte) []byte { b[3] = 19; return b }, 0, false},
		{"total length past the bytes", func(b []byte) []byte { return b }, 47, false},
		{"pktSize past the slice", func(b []byte) []byte { return b }, 49, false},
		{"padding after the packet", func(b []byte) []byte { return append(b, 0, 0) }, 0, true},
	} {
		b := append(append([]byte(nil), capturedIPv4...), make([]byte, 28)...)
		b = tc.edit(b)
		n := tc.pktSize
		if n == 0 {
			n = len(b)
		}
		if got := IPv4(b).IsValid(n); got != tc.want {
			t.Errorf("%s: IsValid(%d) = %v, want %v", tc.name, n, got, tc.want)
		}
	}
}

func TestIPv4EncodeRoundTrip(t *testing.T) {
	f := IPv4Fields{
		TOS: 0xb8, TotalLength: 44, ID: 0xbeef, MF: true, FragmentOffset: 1480,
		TTL: 64, Protocol: ProtoUDP,
		Src: [4]byte{192, 0, 2, 1}, Dst: [4]byte{198, 51, 100, 2},
		Options: []byte{0x94, 0x04, 0x00, 0x00}, // Router Alert (RFC 2113)
	}
	b := make([]byte, 44)
	ip := IPv4(b)
	ip.Encode(&f)
	got := IPv4Fields{
		TOS: ip.TOS(), TotalLength: ip.TotalLength(), ID: ip.ID(), DF: ip.DF(), MF: ip.MF(),
		FragmentOffset: ip.FragmentOffset(), TTL: ip.TTL(), Protocol: ip.Protocol(),
		Src: ip.SourceAddress(), Dst: ip.DestinationAddress(), Options: ip.Options(),
	}
	if !ip.IsValid(len(b)) || !ip.IsChecksumValid() || ip.HeaderLength() != 24 || !ip.HasOptions() || !ip.IsFragment() {
		t.Fatalf("encoded header invalid: % x", b)
	}
	if !bytes.Equal(got.Options, f.Options) {
		t.Errorf("options % x", got.Options)
	}
	got.Options, f.Options = nil, nil
	if !reflect.DeepEqual(got, f) {
		t.Errorf("read back %+v, want %+v", got, f)
	}
	// Setters then a recomputed checksum.
	ip.SetTOS(1)
	ip.SetTotalLength(40)
	ip.SetID(2)
	ip.SetFragment(true, false, 0)
	ip.SetTTL(3)
	ip.SetProtocol(ProtoTCP)
	ip.SetSourceAddress([4]byte{203, 0, 113, 1})
	ip.SetDestinationAddress([4]byte{203, 0, 113, 2})
	ip.SetChecksum(ip.CalculateChecksum())
	if ip.TOS() != 1 || ip.TotalLength() != 40 || ip.ID() != 2 || !ip.DF() || ip.MF() || ip.FragmentOffset() != 0 ||
		ip.TTL() != 3 || ip.Protocol() != ProtoTCP || ip.SourceAddress() != [4]byte{203, 0, 113, 1} ||
		ip.DestinationAddress() != [4]byte{203, 0, 113, 2} || !ip.IsChecksumValid() || ip.IsFragment() {
		t.Errorf("setters read back: % x", b)
	}
}

func TestIPv4EncodePanicsOnBadOptions(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("no panic")
		}
	}()
	IPv4(make([]byte, 60)).Encode(&IPv4Fields{Options: []byte{1, 2, 3}})
}

// TestIPv4ChecksumUpdates checks every ...WithChecksumUpdate setter
// against a full recomputation, over random headers.
func TestIPv4ChecksumUpdates(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	b := make([]byte, 60)
	for range 5000 {
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		b[0] = 0x40 | byte(5+r.IntN(11))
		ip := IPv4(b)
		ip.SetChecksum(ip.CalculateChecksum())
		var a [4]byte
		binary.BigEndian.PutUint32(a[:], r.Uint32())
		switch r.IntN(3) {
		case 0:
			ip.SetTTLWithChecksumUpdate(uint8(r.Uint32()))
		case 1:
			ip.SetSourceAddressWithChecksumUpdate(a)
		case 2:
			ip.SetDestinationAddressWithChecksumUpdate(a)
		}
		if !ip.IsChecksumValid() || ip.Checksum() != ip.CalculateChecksum() {
			t.Fatalf("after update: checksum %#04x, recomputed %#04x", ip.Checksum(), ip.CalculateChecksum())
		}
	}
}

// ipv6TCP is an IPv6 header (payload length 20, TCP, hop limit 64,
// traffic class 0x2e, flow label 0xbeef5) followed by 20 payload bytes.
var ipv6TCP = append([]byte{
	0x62, 0xeb, 0xee, 0xf5, // version 6, traffic class 0x2e, flow label 0xbeef5
	0x00, 0x14, // payload length 20
	0x06,                                                          // next header TCP
	0x40,                                                          // hop limit 64
	0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, // source 2001:db8::1
	0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x02, // destination 2001:db8::2
}, make([]byte, 20)...)

var (
	addr6A = [16]byte{0x20, 0x01, 0x0d, 0xb8, 15: 0x01}
	addr6B = [16]byte{0x20, 0x01, 0x0d, 0xb8, 15: 0x02}
)

func TestIPv6Accessors(t *testing.T) {
	ip := IPv6(ipv6TCP)
	if !ip.IsValid(len(ipv6TCP)) {
		t.Fatal("IsValid = false")
	}
	if ip.Version() != 6 || ip.TrafficClass() != 0x2e || ip.FlowLabel() != 0xbeef5 || ip.PayloadLength() != 20 ||
		ip.NextHeader() != ProtoTCP || ip.HopLimit() != 64 || ip.SourceAddress() != addr6A ||
		ip.DestinationAddress() != addr6B || len(ip.Payload()) != 20 {
		t.Errorf("accessors: tc %#x flow %#x plen %d nh %d hl %d", ip.TrafficClass(), ip.FlowLabel(), ip.PayloadLength(), ip.NextHeader(), ip.HopLimit())
	}
	if IPv6(ipv6TCP[:59]).IsValid(59) || IPv6(ipv6TCP[:39]).IsValid(39) || ip.IsValid(len(ipv6TCP)+1) {
		t.Error("IsValid on a short packet = true")
	}
	v4 := append([]byte(nil), ipv6TCP...)
	v4[0] = 0x42
	if IPv6(v4).IsValid(len(v4)) {
		t.Error("IsValid with version 4 = true")
	}
}

func TestIPv6EncodeRoundTrip(t *testing.T) {
	f := IPv6Fields{TrafficClass: 0xff, FlowLabel: 0xfffff, PayloadLength: 8, NextHeader: ProtoUDP, HopLimit: 1, Src: addr6B, Dst: addr6A}
	b := make([]byte, 48)
	ip := IPv6(b)
	ip.Encode(&f)
	got := IPv6Fields{ip.TrafficClass(), ip.FlowLabel(), ip.PayloadLength(), ip.NextHeader(), ip.HopLimit(), ip.SourceAddress(), ip.DestinationAddress()}
	if got != f || ip.Version() != 6 || !ip.IsValid(len(b)) {
		t.Errorf("read back %+v, want %+v", got, f)
	}
	ip.SetTrafficClass(0x12)
	ip.SetFlowLabel(0xabcde | 0xfff00000) // high bits ignored
	ip.SetPayloadLength(4)
	ip.SetNextHeader(ProtoTCP)
	ip.SetHopLimit(9)
	ip.SetSourceAddress(addr6A)
	ip.SetDestinationAddress(addr6B)
	if ip.Version() != 6 || ip.TrafficClass() != 0x12 || ip.FlowLabel() != 0xabcde || ip.PayloadLength() != 4 ||
		ip.NextHeader() != ProtoTCP || ip.HopLimit() != 9 || ip.SourceAddress() != addr6A || ip.DestinationAddress() != addr6B {
		t.Errorf("setters read back: % x", b[:40])
	}
}

// ext builds one Hop-by-Hop / Routing / Destination Options header of
// n×8 bytes naming next.
func ext(next uint8, n int) []byte {
	b := make([]byte, n*8)
	b[0], b[1] = next, uint8(n-1)
	return b
}

// frag builds a Fragment header.
func frag(next uint8, offset uint16, more bool, id uint32) []byte {
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

// v6 builds an IPv6 packet whose first next header is nh, with the given
// extension headers and payload.
func v6(nh uint8, parts ...[]byte) []byte {
	var rest []byte
	for _, p := range parts {
		rest = append(rest, p...)
	}
	b := make([]byte, 40, 40+len(rest))
	IPv6(b).Encode(&IPv6Fields{PayloadLength: uint16(len(rest)), NextHeader: nh, HopLimit: 64, Src: addr6A, Dst: addr6B})
	return append(b, rest...)
}

func TestIPv6WalkExtensions(t *testing.T) {
	tcp := make([]byte, 20)
	for _, tc := range []struct {
		name string
		pkt  []byte
		ok   bool
		want IPv6Walk
	}{
		{"no extension", v6(ProtoTCP, tcp), true, IPv6Walk{Protocol: ProtoTCP, Offset: 40}},
		{"hop-by-hop", v6(ProtoHopByHop, ext(ProtoUDP, 1), tcp), true, IPv6Walk{Protocol: ProtoUDP, Offset: 48}},
		{"hop-by-hop, routing, dest opts", v6(ProtoHopByHop, ext(ProtoRouting, 1), ext(ProtoDestOpts, 3), ext(ProtoSCTP, 2), tcp), true,
			IPv6Walk{Protocol: ProtoSCTP, Offset: 40 + 8 + 24 + 16}},
		{"hop-by-hop not first", v6(ProtoDestOpts, ext(ProtoHopByHop, 1), ext(ProtoTCP, 1), tcp), false, IPv6Walk{}},
		{"first fragment", v6(ProtoFragment, frag(ProtoTCP, 0, true, 0xdeadbeef), tcp), true,
			IPv6Walk{Protocol: ProtoTCP, Offset: 48, FragmentHeader: 40, MoreFragments: true, FragmentID: 0xdeadbeef}},
		{"later fragment stops at the data", v6(ProtoFragment, frag(ProtoTCP, 1448, false, 7), ext(ProtoTCP, 1)), true,
			IPv6Walk{Protocol: ProtoTCP, Offset: 48, FragmentHeader: 40, FragmentOffset: 1448, FragmentID: 7}},
		{"atomic fragment", v6(ProtoDestOpts, ext(ProtoFragment, 1), frag(ProtoUDP, 0, false, 1), tcp), true,
			IPv6Walk{Protocol: ProtoUDP, Offset: 56, FragmentHeader: 48, FragmentID: 1}},
		{"ESP stops", v6(ProtoDestOpts, ext(ProtoESP, 1), tcp), true, IPv6Walk{Protocol: ProtoESP, Offset: 48}},
		{"AH stops", v6(ProtoAH, tcp), true, IPv6Walk{Protocol: ProtoAH, Offset: 40}},
		{"no next header", v6(ProtoNoNext), true, IPv6Walk{Protocol: ProtoNoNext, Offset: 40}},
		{"transport absent is not the walk's concern", v6(ProtoTCP), true, IPv6Walk{Protocol: ProtoTCP, Offset: 40}},
		{"truncated extension header", v6(ProtoRouting, ext(ProtoTCP, 2)[:12]), false, IPv6Walk{}},
		{"extension header shorter than 8", v6(ProtoRouting, []byte{ProtoTCP, 0, 0, 0}), false, IPv6Walk{}},
		{"truncated fragment header", v6(ProtoFragment, frag(ProtoTCP, 0, false, 1)[:7]), false, IPv6Walk{}},
		{"short fixed header", v6(ProtoTCP)[:39], false, IPv6Walk{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w, ok := IPv6(tc.pkt).WalkExtensions()
			if ok != tc.ok {
				t.Fatalf("ok = %v, want %v", ok, tc.ok)
			}
			if ok && w != tc.want {
				t.Errorf("walk = %+v, want %+v", w, tc.want)
			}
		})
	}
	w := IPv6Walk{FragmentHeader: 40}
	if !w.IsFragment() || !w.IsFirstFragment() {
		t.Error("fragment at offset 0: not a first fragment")
	}
	w.FragmentOffset = 8
	if !w.IsFragment() || w.IsFirstFragment() {
		t.Error("fragment at offset 8: first fragment")
	}
	if (&IPv6Walk{}).IsFragment() {
		t.Error("no fragment header: IsFragment")
	}
}
