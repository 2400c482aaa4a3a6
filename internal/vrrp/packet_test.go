package vrrp

import (
	"encoding/binary"
	"encoding/hex"
	"net/netip"
	"slices"
	"testing"
	"time"

	"golvs/internal/checksum"
)

var (
	src4 = netip.MustParseAddr("198.18.0.1")
	src6 = netip.MustParseAddr("fe80::8a4:e4ff:fe2e:2ae3")
)

func mustHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestDecode(t *testing.T) {
	tests := []struct {
		name     string
		b        string // annotated per field
		fam      Family
		src, dst netip.Addr
		codec    Codec
		want     Advert
		addrs    []string
	}{{
		// keepalived 2.2.7, vrrp_instance with auth_type PASS.
		name: "v2 PASS",
		b: "21" + // version 2, type 1
			"33" + // VRID 51
			"96" + // priority 150
			"02" + // 2 addresses
			"01" + // auth type 1 (PASS)
			"01" + // advert interval 1 s
			"4bf0" + // checksum over the message only
			"c6120133" + "c6120134" + // 198.18.1.51, 198.18.1.52
			"7365637265743100", // "secret1\0"
		fam: IPv4, src: src4, dst: MulticastIPv4,
		want:  Advert{Version: 2, VRID: 51, Priority: 150, Interval: 1, AuthType: AuthPass, AuthData: [8]byte{'s', 'e', 'c', 'r', 'e', 't', '1'}, Family: IPv4},
		addrs: []string{"198.18.1.51", "198.18.1.52"},
	}, {
		name: "v3 IPv4",
		b: "31" + // version 3, type 1
			"34" + // VRID 52
			"78" + // priority 120
			"01" + // 1 address
			"0032" + // rsvd 0, max advert interval 50 cs
			"e8a6" + // checksum with the IPv4 pseudo-header
			"c612013c", // 198.18.1.60
		fam: IPv4, src: src4, dst: MulticastIPv4,
		want:  Advert{Version: 3, VRID: 52, Priority: 120, Interval: 50, Family: IPv4},
		addrs: []string{"198.18.1.60"},
	}, {
		name: "v3 IPv6",
		b: "3135" + "6e" + "02" + // v3, VRID 53, priority 110, 2 addresses
			"0064" + "1ea0" + // 100 cs, checksum with the IPv6 pseudo-header
			"fe800000000000000000000000000053" + "20010db8000000000000000000000053",
		fam: IPv6, src: src6, dst: MulticastIPv6,
		want:  Advert{Version: 3, VRID: 53, Priority: 110, Interval: 100, Family: IPv6},
		addrs: []string{"fe80::53", "2001:db8::53"},
	}, {
		name: "v3 reserved bits ignored",
		// As "v3 IPv4" with rsvd = 0xf: the checksum covers it.
		b:   "313478010032e8a6c612013c",
		fam: IPv4, src: src4, dst: MulticastIPv4,
		want:  Advert{Version: 3, VRID: 52, Priority: 120, Interval: 50, Family: IPv4},
		addrs: []string{"198.18.1.60"},
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := mustHex(t, tc.b)
			if tc.name == "v3 reserved bits ignored" {
				b[4] |= 0xf0
				b[6], b[7] = 0, 0
				sum := checksum.PseudoHeaderIPv4(tc.src.As4(), tc.dst.As4(), Protocol, uint16(len(b)))
				binary.BigEndian.PutUint16(b[6:], ^checksum.Sum(b, sum))
			}
			a, err := tc.codec.Decode(b, tc.fam, tc.src, tc.dst)
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			var got []string
			for _, x := range a.AppendAddrs(nil) {
				got = append(got, x.String())
			}
			if !slices.Equal(got, tc.addrs) {
				t.Errorf("addresses %v, want %v", got, tc.addrs)
			}
			a.addrs = nil
			if !a.Equal(&tc.want) {
				t.Errorf("Decode = %+v, want %+v", a, tc.want)
			}
		})
	}
}

func TestDecodeErrors(t *testing.T) {
	valid := func() []byte { return mustHex(t, "2133960201014bf0c6120133c61201347365637265743100") }
	v3 := func() []byte { return mustHex(t, "313478010032e8a6c612013c") }
	tests := []struct {
		name string
		b    []byte
		fam  Family
		src  netip.Addr
		want error
	}{
		{"empty", nil, IPv4, src4, ErrTooShort},
		{"header only", valid()[:7], IPv4, src4, ErrTooShort},
		{"short", valid()[:23], IPv4, src4, ErrLength},
		{"trailing byte", append(valid(), 0), IPv4, src4, ErrLength},
		{"count too high", func() []byte { b := valid(); b[3] = 3; return b }(), IPv4, src4, ErrLength},
		{"no auth data", valid()[:16], IPv4, src4, ErrLength},
		{"version 1", func() []byte { b := valid(); b[0] = 0x11; return b }(), IPv4, src4, ErrVersion},
		{"version 4", func() []byte { b := valid(); b[0] = 0x41; return b }(), IPv4, src4, ErrVersion},
		{"type 2", func() []byte { b := valid(); b[0] = 0x22; return b }(), IPv4, src4, ErrType},
		{"auth type 3", func() []byte { b := valid(); b[4] = 3; return b }(), IPv4, src4, ErrAuthType},
		{"checksum", func() []byte { b := valid(); b[7] ^= 1; return b }(), IPv4, src4, ErrChecksum},
		{"payload", func() []byte { b := valid(); b[20] ^= 1; return b }(), IPv4, src4, ErrChecksum},
		{"v3 checksum", func() []byte { b := v3(); b[2]--; return b }(), IPv4, src4, ErrChecksum},
		{"v3 other source", v3(), IPv4, src4.Next(), ErrChecksum},
		{"v3 IPv6 source", v3(), IPv4, src6, ErrFamily},
		{"family 0", valid(), 0, src4, ErrFamily},
		{"IPv6 length", v3(), IPv6, src6, ErrLength},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Decode(tc.b, tc.fam, tc.src, MulticastIPv4)
			if err != tc.want {
				t.Errorf("Decode: %v, want %v", err, tc.want)
			}
		})
	}
}

// TestV3ChecksumAsV2: with the option, VRRPv3 over IPv4 sums the message
// alone, on both sides; without it, such an advert does not verify.
func TestV3ChecksumAsV2(t *testing.T) {
	a := Advert{Version: 3, VRID: 9, Priority: 100, Interval: 100}
	if err := a.SetAddrs([]netip.Addr{netip.MustParseAddr("198.18.1.9")}); err != nil {
		t.Fatal(err)
	}
	asV2 := Codec{V3ChecksumAsV2: true}
	b := asV2.Append(nil, a, netip.Addr{}, netip.Addr{}) // addresses unused
	if got, err := asV2.Decode(b, IPv4, netip.Addr{}, netip.Addr{}); err != nil || !got.Equal(&a) {
		t.Fatalf("Decode: %+v, %v", got, err)
	}
	if _, err := Decode(b, IPv4, src4, MulticastIPv4); err != ErrChecksum {
		t.Errorf("RFC codec on a message-only checksum: %v, want ErrChecksum", err)
	}
	rfc := Append(nil, a, src4, MulticastIPv4)
	if _, err := asV2.Decode(rfc, IPv4, src4, MulticastIPv4); err != ErrChecksum {
		t.Errorf("as-v2 codec on a pseudo-header checksum: %v, want ErrChecksum", err)
	}
	// IPv6 always has the pseudo-header.
	a6 := Advert{Version: 3, VRID: 9, Priority: 100, Interval: 100, Family: IPv6}
	if err := a6.SetAddrs([]netip.Addr{netip.MustParseAddr("2001:db8::9")}); err != nil {
		t.Fatal(err)
	}
	b6 := asV2.Append(nil, a6, src6, MulticastIPv6)
	if _, err := Decode(b6, IPv6, src6, MulticastIPv6); err != nil {
		t.Errorf("IPv6 with V3ChecksumAsV2 is not RFC: %v", err)
	}
}

// TestV2OverIPv6: keepalived's VRRPv2 over IPv6 has no authentication data
// and a pseudo-header checksum (the kernel's IPV6_CHECKSUM).
func TestV2OverIPv6(t *testing.T) {
	a := Advert{Version: 2, VRID: 7, Priority: 100, Interval: 1, AuthData: [8]byte{1}}
	if err := a.SetAddrs([]netip.Addr{netip.MustParseAddr("2001:db8::7")}); err != nil {
		t.Fatal(err)
	}
	b := Append(nil, a, src6, MulticastIPv6)
	if len(b) != HeaderLen+16 || a.Len() != len(b) {
		t.Fatalf("length %d (Len %d), want %d", len(b), a.Len(), HeaderLen+16)
	}
	got, err := Decode(b, IPv6, src6, MulticastIPv6)
	a.AuthData = [8]byte{} // not sent over IPv6
	if err != nil || !got.Equal(&a) {
		t.Fatalf("Decode: %+v, %v", got, err)
	}
	if _, err := Decode(b, IPv6, src6, MulticastIPv6.Next()); err != ErrChecksum {
		t.Errorf("other destination: %v, want ErrChecksum", err)
	}
}

func TestAdvertAddrs(t *testing.T) {
	var a Advert
	v4 := []netip.Addr{netip.MustParseAddr("198.18.1.1"), netip.MustParseAddr("198.18.1.2")}
	if err := a.SetAddrs(v4); err != nil || a.Family != IPv4 || a.NumAddrs() != 2 {
		t.Fatalf("SetAddrs: %v, family %v, %d addresses", err, a.Family, a.NumAddrs())
	}
	if !a.HasAddr(v4[1]) || a.HasAddr(netip.MustParseAddr("198.18.1.3")) || a.HasAddr(netip.MustParseAddr("2001:db8::1")) {
		t.Error("HasAddr")
	}
	if got := a.AppendAddrs(nil); !slices.Equal(got, v4) {
		t.Errorf("AppendAddrs = %v", got)
	}
	if err := a.SetAddrs([]netip.Addr{netip.MustParseAddr("2001:db8::1")}); err != ErrFamily {
		t.Errorf("SetAddrs of another family: %v, want ErrFamily", err)
	}
	var b Advert
	if err := b.SetAddrs(make([]netip.Addr, MaxAddrs+1)); err != ErrLength {
		t.Errorf("SetAddrs of 256: %v, want ErrLength", err)
	}
	var c Advert
	if err := c.SetAddrs(nil); err != nil || c.Family != IPv4 || c.NumAddrs() != 0 {
		t.Errorf("SetAddrs(nil): %v %v", err, c.Family)
	}
	if d := (&Advert{Version: 3, Interval: 25}).Duration(); d != 250*time.Millisecond {
		t.Errorf("v3 Duration = %v", d)
	}
	if d := (&Advert{Version: 2, Interval: 3}).Duration(); d != 3*time.Second {
		t.Errorf("v2 Duration = %v", d)
	}
}

func TestCheckIPHeader(t *testing.T) {
	uni := netip.MustParseAddr("198.18.0.2")
	tests := []struct {
		ttl     uint8
		dst     netip.Addr
		unicast bool
		want    error
	}{
		{255, MulticastIPv4, false, nil},
		{255, MulticastIPv6, false, nil},
		{254, MulticastIPv4, false, ErrTTL},
		{255, uni, false, ErrCastMismatch},
		{64, uni, true, nil},
		{255, MulticastIPv4, true, ErrCastMismatch},
	}
	for _, tc := range tests {
		if err := CheckIPHeader(tc.ttl, tc.dst, tc.unicast); err != tc.want {
			t.Errorf("CheckIPHeader(%d, %v, %v) = %v, want %v", tc.ttl, tc.dst, tc.unicast, err, tc.want)
		}
	}
}

// TestDecodeAllocs: Decode, the Advert accessors, Build and Append into a
// buffer with room allocate nothing (style.md §4.4).
func TestDecodeAllocs(t *testing.T) {
	b4 := mustHex(t, "2133960201014bf0c6120133c61201347365637265743100")
	b6 := mustHex(t, "31356e0200641ea0fe80000000000000000000000000005320010db8000000000000000000000053")
	vip := netip.MustParseAddr("2001:db8::53")
	in, err := NewInstance(Config{Name: "x", VRID: 1, LocalAddr: src4, VIPs: []netip.Addr{netip.MustParseAddr("198.18.1.1")}})
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 0, 64)
	n := testing.AllocsPerRun(100, func() {
		a, err := Decode(b4, IPv4, src4, MulticastIPv4)
		if err != nil || a.NumAddrs() != 2 {
			t.Fatal(err)
		}
		a6, err := Decode(b6, IPv6, src6, MulticastIPv6)
		if err != nil || !a6.HasAddr(vip) || a6.Addr(1) != vip {
			t.Fatal(err)
		}
		buf = Append(buf[:0], in.Build(100), src4, MulticastIPv4)
	})
	if n != 0 {
		t.Errorf("%v allocations per run, want 0", n)
	}
}

func BenchmarkDecode(b *testing.B) {
	for _, bc := range []struct {
		name string
		hex  string
		fam  Family
		src  netip.Addr
		dst  netip.Addr
	}{
		{"v2", "2133960201014bf0c6120133c61201347365637265743100", IPv4, src4, MulticastIPv4},
		{"v3-ipv4", "313478010032e8a6c612013c", IPv4, src4, MulticastIPv4},
		{"v3-ipv6", "31356e0200641ea0fe80000000000000000000000000005320010db8000000000000000000000053", IPv6, src6, MulticastIPv6},
	} {
		pkt := mustHex(b, bc.hex)
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(pkt)))
			for b.Loop() {
				if _, err := Decode(pkt, bc.fam, bc.src, bc.dst); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkAppend(b *testing.B) {
	in, err := NewInstance(Config{Name: "x", VRID: 1, Version: 3, LocalAddr: src4, VIPs: []netip.Addr{netip.MustParseAddr("198.18.1.1")}})
	if err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, 0, 64)
	b.ReportAllocs()
	for b.Loop() {
		buf = Append(buf[:0], in.Build(100), src4, MulticastIPv4)
	}
}
