package vrrp

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"testing"
)

// fuzzSeeds are keepalived 2.2.7's adverts (testdata/keepalived-2.2.7.capture).
var fuzzSeeds = []struct {
	hex string
	v6  bool
}{
	{"2133960201014bf0c6120133c61201347365637265743100", false},
	{"313478010032e8a6c612013c", false},
	{"31356e0200641ea0fe80000000000000000000000000005320010db8000000000000000000000053", true},
	{"213300020101e1f0c6120133c61201347365637265743100", false},
	{"2147ff010001185cc61201470000000000000000", false},
	{"31376401000afcd0c6120137", false},
}

// FuzzDecode decodes arbitrary bytes as IPv4 or IPv6, with or without
// v3_checksum_as_v2. Whatever decodes must re-encode to an advert that
// decodes equal (unmarshal→marshal→unmarshal, style.md §10.2), and to the
// same bytes but for what the RFC says to ignore: VRRPv3's reserved bits
// and the checksum's second zero (0xffff for 0x0000).
func FuzzDecode(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add(mustHex(f, s.hex), s.v6, false)
	}
	// No address, 255 addresses, v3_checksum_as_v2.
	empty := Advert{Version: 2, VRID: 1, Priority: 100, Interval: 1, Family: IPv4}
	f.Add(Append(nil, empty, src4, MulticastIPv4), false, false)
	full := Advert{Version: 3, VRID: 2, Priority: 1, Interval: 4095, Family: IPv4}
	if err := full.SetAddrs(make([]netip.Addr, MaxAddrs)); err != nil {
		full.addrs = make([]byte, 4*MaxAddrs) // zero Addrs are not IPv4: fill by hand
	}
	f.Add(Append(nil, full, src4, MulticastIPv4), false, false)
	f.Add(Codec{V3ChecksumAsV2: true}.Append(nil, full, src4, MulticastIPv4), false, true)
	f.Fuzz(func(t *testing.T, b []byte, v6, asV2 bool) {
		fam, src, dst := IPv4, src4, MulticastIPv4
		if v6 {
			fam, src, dst = IPv6, src6, MulticastIPv6
		}
		c := Codec{V3ChecksumAsV2: asV2}
		a, err := c.Decode(b, fam, src, dst)
		if err != nil {
			return
		}
		out := c.Append(nil, a, src, dst)
		a2, err := c.Decode(out, fam, src, dst)
		if err != nil {
			t.Fatalf("re-encoded advert does not decode: %v\nin  %x\nout %x", err, b, out)
		}
		if !a2.Equal(&a) {
			t.Fatalf("round trip changed the advert:\n%+v\n%+v", a, a2)
		}
		want := bytes.Clone(b)
		if a.Version == 3 && want[4]&0xf0 != 0 {
			// Clearing the reserved bits changes the checksum too: only
			// compare what they do not cover.
			want[4] &= 0x0f
			copy(want[6:8], out[6:8])
		}
		if binary.BigEndian.Uint16(want[6:8]) == 0xffff && binary.BigEndian.Uint16(out[6:8]) == 0 {
			want[6], want[7] = 0, 0 // -0 and +0 of one's complement
		}
		if !bytes.Equal(out, want) {
			t.Fatalf("re-encoding differs:\nin  %x\nout %x", b, out)
		}
	})
}

// FuzzRoundTrip builds an advert from arbitrary fields: Decode(Append(a))
// must give a back.
func FuzzRoundTrip(f *testing.F) {
	f.Add(uint8(2), uint8(51), uint8(100), uint16(1), uint8(1), []byte("secret1\x00"), false, []byte{198, 18, 1, 51}, false)
	f.Add(uint8(3), uint8(52), uint8(0), uint16(4095), uint8(0), []byte{}, true, make([]byte, 16*3), false)
	f.Add(uint8(3), uint8(255), uint8(255), uint16(100), uint8(0), []byte{}, false, make([]byte, 4*255), true)
	f.Fuzz(func(t *testing.T, version, vrid, prio uint8, interval uint16, auth uint8, authData []byte, v6 bool, addrBytes []byte, asV2 bool) {
		a := Advert{Version: 2 + version%2, VRID: vrid, Priority: prio, Family: IPv4}
		fam, src, dst, n := IPv4, src4, MulticastIPv4, 4
		if v6 {
			a.Family, fam, src, dst, n = IPv6, IPv6, src6, MulticastIPv6, 16
		}
		if a.Version == 2 {
			a.Interval = interval & maxIntervalV2
			a.AuthType = AuthType(auth % 3)
			if !v6 {
				copy(a.AuthData[:], authData)
			}
		} else {
			a.Interval = interval & maxIntervalV3
		}
		var addrs []netip.Addr
		for i := 0; i+n <= len(addrBytes) && len(addrs) < MaxAddrs; i += n {
			addr, _ := netip.AddrFromSlice(addrBytes[i : i+n])
			addrs = append(addrs, addr)
		}
		if err := a.SetAddrs(addrs); err != nil {
			t.Fatal(err)
		}
		c := Codec{V3ChecksumAsV2: asV2}
		b := c.Append(nil, a, src, dst)
		if len(b) != a.Len() {
			t.Fatalf("Append wrote %d bytes, Len says %d", len(b), a.Len())
		}
		got, err := c.Decode(b, fam, src, dst)
		if err != nil {
			t.Fatalf("Decode(Append(a)): %v\n%x", err, b)
		}
		if !got.Equal(&a) {
			t.Fatalf("Decode(Append(a)) = %+v, want %+v", got, a)
		}
	})
}
