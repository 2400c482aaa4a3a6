package header

import (
	"bytes"
	"testing"
)

var (
	macA = [6]byte{0x02, 0x00, 0x5e, 0x10, 0x00, 0x01} // locally administered
	macB = [6]byte{0x02, 0x00, 0x5e, 0x10, 0x00, 0x02}
)

func TestEthernet(t *testing.T) {
	for _, tc := range []struct {
		name      string
		b         []byte
		valid     bool
		vlan      bool
		vid       uint16
		etherType uint16
		off       int
	}{
		{
			name: "untagged IPv4",
			b: []byte{
				0x02, 0x00, 0x5e, 0x10, 0x00, 0x02, // destination
				0x02, 0x00, 0x5e, 0x10, 0x00, 0x01, // source
				0x08, 0x00, // EtherType IPv4
				0x45, // payload
			},
			valid: true, etherType: EtherTypeIPv4, off: 14,
		},
		{
			name: "tagged IPv6, VID 100, PCP 5",
			b: []byte{
				0x02, 0x00, 0x5e, 0x10, 0x00, 0x02, // destination
				0x02, 0x00, 0x5e, 0x10, 0x00, 0x01, // source
				0x81, 0x00, // TPID 802.1Q
				0xa0, 0x64, // PCP 5, DEI 0, VID 100
				0x86, 0xdd, // EtherType IPv6
			},
			valid: true, vlan: true, vid: 100, etherType: EtherTypeIPv6, off: 18,
		},
		{
			name: "QinQ is not unwrapped",
			b: []byte{
				0x02, 0x00, 0x5e, 0x10, 0x00, 0x02,
				0x02, 0x00, 0x5e, 0x10, 0x00, 0x01,
				0x88, 0xa8, // TPID 802.1ad
				0x00, 0x0a, 0x81, 0x00,
			},
			valid: true, etherType: EtherTypeQinQ, off: 14,
		},
		{name: "13 bytes", b: make([]byte, 13)},
		{
			name: "tag without its EtherType",
			b: []byte{
				0x02, 0x00, 0x5e, 0x10, 0x00, 0x02,
				0x02, 0x00, 0x5e, 0x10, 0x00, 0x01,
				0x81, 0x00, 0x00, 0x01, 0x08, // 17 bytes
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := Ethernet(tc.b)
			if e.IsValid() != tc.valid {
				t.Fatalf("IsValid = %v, want %v", e.IsValid(), tc.valid)
			}
			if !tc.valid {
				return
			}
			if e.Destination() != macB || e.Source() != macA {
				t.Errorf("addresses %x %x", e.Destination(), e.Source())
			}
			if e.HasVLAN() != tc.vlan || e.VLANID() != tc.vid || e.EtherType() != tc.etherType || e.PayloadOffset() != tc.off {
				t.Errorf("HasVLAN %v VLANID %d EtherType %#04x PayloadOffset %d; want %v %d %#04x %d",
					e.HasVLAN(), e.VLANID(), e.EtherType(), e.PayloadOffset(), tc.vlan, tc.vid, tc.etherType, tc.off)
			}
			if len(e.Payload()) != len(tc.b)-tc.off {
				t.Errorf("payload length %d", len(e.Payload()))
			}
		})
	}
}

func TestEthernetEncode(t *testing.T) {
	b := make([]byte, 18)
	e := Ethernet(b)
	e.Encode(macB, macA, EtherTypeARP)
	want := []byte{0x02, 0x00, 0x5e, 0x10, 0x00, 0x02, 0x02, 0x00, 0x5e, 0x10, 0x00, 0x01, 0x08, 0x06}
	if !bytes.Equal(b[:14], want) {
		t.Errorf("Encode = % x, want % x", b[:14], want)
	}
	e.EncodeTagged(macA, macB, 4095|0xf000, EtherTypeIPv4) // VID masked to 12 bits
	if !e.IsValid() || !e.HasVLAN() || e.VLANID() != 4095 || e.EtherType() != EtherTypeIPv4 || e.Destination() != macA || e.Source() != macB {
		t.Errorf("EncodeTagged read back: % x", b)
	}
	e.SetEtherType(EtherTypeIPv6)
	e.SetDestination(macB)
	e.SetSource(macA)
	if e.EtherType() != EtherTypeIPv6 || e.Destination() != macB || e.Source() != macA || !e.HasVLAN() {
		t.Errorf("setters read back: % x", b)
	}
	u := Ethernet(make([]byte, 14))
	u.SetEtherType(EtherTypeIPv4)
	if u.EtherType() != EtherTypeIPv4 || u.HasVLAN() {
		t.Errorf("untagged SetEtherType: % x", u)
	}
}

func TestARP(t *testing.T) {
	req := []byte{
		0x00, 0x01, // hardware type Ethernet
		0x08, 0x00, // protocol type IPv4
		0x06, 0x04, // hlen 6, plen 4
		0x00, 0x01, // op request
		0x02, 0x00, 0x5e, 0x10, 0x00, 0x01, // sender MAC
		192, 0, 2, 1, // sender IP 192.0.2.1
		0x00, 0x00, 0x00, 0x00, 0x00, 0x00, // target MAC (unknown)
		192, 0, 2, 10, // target IP 192.0.2.10
	}
	a := ARP(req)
	if !a.IsValid() || a.Op() != ARPRequest || a.SenderHW() != macA || a.SenderIP() != [4]byte{192, 0, 2, 1} ||
		a.TargetHW() != [6]byte{} || a.TargetIP() != [4]byte{192, 0, 2, 10} {
		t.Fatalf("accessors on % x", req)
	}
	b := ARP(make([]byte, ARPSize))
	b.EncodeRequest(macA, [4]byte{192, 0, 2, 1}, [4]byte{192, 0, 2, 10})
	if !bytes.Equal(b, req) {
		t.Errorf("EncodeRequest = % x, want % x", []byte(b), req)
	}
	b.EncodeReply(macB, [4]byte{192, 0, 2, 10}, macA, [4]byte{192, 0, 2, 1})
	if !b.IsValid() || b.Op() != ARPReply || b.SenderHW() != macB || b.TargetHW() != macA ||
		b.SenderIP() != [4]byte{192, 0, 2, 10} || b.TargetIP() != [4]byte{192, 0, 2, 1} {
		t.Errorf("EncodeReply read back: % x", []byte(b))
	}
	vip := [4]byte{198, 51, 100, 1}
	b.EncodeGratuitous(macA, vip)
	if b.Op() != ARPRequest || b.SenderIP() != vip || b.TargetIP() != vip || b.TargetHW() != BroadcastMAC || b.SenderHW() != macA {
		t.Errorf("EncodeGratuitous read back: % x", []byte(b))
	}

	for _, tc := range []struct {
		name string
		edit func(b []byte) []byte
	}{
		{"short", func(b []byte) []byte { return b[:27] }},
		{"hardware type 6", func(b []byte) []byte { b[1] = 6; return b }},
		{"protocol IPv6", func(b []byte) []byte { b[2], b[3] = 0x86, 0xdd; return b }},
		{"hlen 8", func(b []byte) []byte { b[4] = 8; return b }},
		{"plen 16", func(b []byte) []byte { b[5] = 16; return b }},
	} {
		c := tc.edit(append([]byte(nil), req...))
		if ARP(c).IsValid() {
			t.Errorf("%s: IsValid = true", tc.name)
		}
	}
}
