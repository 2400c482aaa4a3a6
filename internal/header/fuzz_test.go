package header

import (
	"bytes"
	"encoding/binary"
	"testing"
)

// FuzzEthernet: IsValid never panics; a valid header's accessors stay in
// range and re-encode to the same bytes.
func FuzzEthernet(f *testing.F) {
	f.Add([]byte{0x02, 0, 0x5e, 0x10, 0, 2, 0x02, 0, 0x5e, 0x10, 0, 1, 0x08, 0x00})
	f.Add([]byte{0x02, 0, 0x5e, 0x10, 0, 2, 0x02, 0, 0x5e, 0x10, 0, 1, 0x81, 0x00, 0xa0, 0x64, 0x86, 0xdd})
	f.Add([]byte{0x02, 0, 0x5e, 0x10, 0, 2, 0x02, 0, 0x5e, 0x10, 0, 1, 0x81, 0x00, 0xa0})
	f.Fuzz(func(t *testing.T, b []byte) {
		e := Ethernet(b)
		if !e.IsValid() {
			return
		}
		c := Ethernet(make([]byte, EthernetTaggedSize))
		if e.HasVLAN() {
			c.EncodeTagged(e.Destination(), e.Source(), e.VLANID(), e.EtherType())
			// PCP and DEI are not encoded: compare the VID bits only.
			c[14] |= b[14] & 0xf0
		} else {
			c.Encode(e.Destination(), e.Source(), e.EtherType())
		}
		n := e.PayloadOffset()
		if !bytes.Equal(c[:n], b[:n]) || len(e.Payload()) != len(b)-n {
			t.Fatalf("re-encoded % x, want % x", []byte(c[:n]), b[:n])
		}
	})
}

// FuzzARP: a valid packet re-encodes from its accessors to the same bytes.
func FuzzARP(f *testing.F) {
	a := ARP(make([]byte, ARPSize))
	a.EncodeGratuitous(macA, ip4A)
	f.Add([]byte(a))
	f.Add([]byte(a[:27]))
	f.Fuzz(func(t *testing.T, b []byte) {
		a := ARP(b)
		if !a.IsValid() {
			return
		}
		c := ARP(make([]byte, ARPSize))
		c.Encode(a.Op(), a.SenderHW(), a.SenderIP(), a.TargetHW(), a.TargetIP())
		if !bytes.Equal(c, b[:ARPSize]) {
			t.Fatalf("re-encoded % x, want % x", []byte(c), b[:ARPSize])
		}
	})
}

// FuzzIPv4: IsValid never panics; a valid header re-encodes from its
// accessors to the same bytes (but for the reserved flag, which Encode
// clears, and the checksum, which Encode computes), and its checksum
// updates agree with a full recomputation.
func FuzzIPv4(f *testing.F) {
	f.Add(append(append([]byte(nil), capturedIPv4...), make([]byte, 28)...))
	f.Add(capturedIPv4[:19])
	opt := make([]byte, 24)
	IPv4(opt).Encode(&IPv4Fields{TotalLength: 24, Options: []byte{1, 1, 1, 0}})
	f.Add(opt)
	f.Fuzz(func(t *testing.T, b []byte) {
		ip := IPv4(b)
		if !ip.IsValid(len(b)) {
			return
		}
		hlen := ip.HeaderLength()
		_, _ = ip.Payload(), ip.IsChecksumValid()
		c := IPv4(make([]byte, hlen))
		c.Encode(&IPv4Fields{
			TOS: ip.TOS(), TotalLength: ip.TotalLength(), ID: ip.ID(), DF: ip.DF(), MF: ip.MF(),
			FragmentOffset: ip.FragmentOffset(), TTL: ip.TTL(), Protocol: ip.Protocol(),
			Src: ip.SourceAddress(), Dst: ip.DestinationAddress(), Options: ip.Options(),
		})
		want := append([]byte(nil), b[:hlen]...)
		want[ipv4FlagsFrag] &^= 0x80 // reserved flag
		binary.BigEndian.PutUint16(want[ipv4Checksum:], 0)
		IPv4(want).SetChecksum(IPv4(want).CalculateChecksum())
		if !bytes.Equal(c, want) {
			t.Fatalf("re-encoded % x, want % x", []byte(c), want)
		}
		// Incremental updates on the (now valid) copy.
		c.SetTTLWithChecksumUpdate(c.TTL() ^ 0x5a)
		c.SetSourceAddressWithChecksumUpdate(c.DestinationAddress())
		if c.Checksum() != c.CalculateChecksum() {
			t.Fatalf("incremental %#04x, recomputed %#04x", c.Checksum(), c.CalculateChecksum())
		}
	})
}

// slowWalk is the reference IPv6 extension walk: a direct reading of RFC
// 8200 §4 with explicit bounds checks, written apart from WalkExtensions.
func slowWalk(b []byte) (IPv6Walk, bool) {
	if len(b) < 40 {
		return IPv6Walk{}, false
	}
	var w IPv6Walk
	next, at := int(b[6]), 40
	for i := 0; ; i++ {
		if next == 0 && i > 0 {
			return IPv6Walk{}, false
		}
		if next == 0 || next == 43 || next == 60 {
			if at+2 > len(b) {
				return IPv6Walk{}, false
			}
			size := 8 + 8*int(b[at+1])
			if at+size > len(b) {
				return IPv6Walk{}, false
			}
			next, at = int(b[at]), at+size
			continue
		}
		if next == 44 {
			if at+8 > len(b) {
				return IPv6Walk{}, false
			}
			w.FragmentHeader = at
			w.FragmentOffset = uint16(b[at+2])<<8 | uint16(b[at+3]&0xf8)
			w.MoreFragments = b[at+3]&1 == 1
			w.FragmentID = uint32(b[at+4])<<24 | uint32(b[at+5])<<16 | uint32(b[at+6])<<8 | uint32(b[at+7])
			next, at = int(b[at]), at+8
			if w.FragmentOffset > 0 {
				break
			}
			continue
		}
		break
	}
	w.Protocol, w.Offset = uint8(next), at
	return w, true
}

// FuzzIPv6WalkExtensions: the walk never panics and agrees with slowWalk.
func FuzzIPv6WalkExtensions(f *testing.F) {
	f.Add(v6(ProtoTCP, tcpSYN))
	f.Add(v6(ProtoHopByHop, ext(ProtoRouting, 1), ext(ProtoFragment, 2), frag(ProtoUDP, 0, true, 1), udpDNS))
	f.Add(v6(ProtoFragment, frag(ProtoTCP, 8, false, 1)))
	f.Add(v6(ProtoDestOpts, ext(ProtoHopByHop, 1)))
	f.Add(v6(ProtoRouting, ext(ProtoTCP, 3)[:20]))
	f.Fuzz(func(t *testing.T, b []byte) {
		got, ok := IPv6(b).WalkExtensions()
		want, wok := slowWalk(b)
		if ok != wok || (ok && got != want) {
			t.Fatalf("walk = %+v %v, reference %+v %v", got, ok, want, wok)
		}
		if ok && (got.Offset < IPv6MinimumSize || got.Offset > len(b) || got.FragmentHeader >= got.Offset) {
			t.Fatalf("walk out of range: %+v of %d bytes", got, len(b))
		}
		if IPv6(b).IsValid(len(b)) {
			_, _ = IPv6(b).Payload(), IPv6(b).FlowLabel()
		}
	})
}

// FuzzL4: every transport view's IsValid never panics, and a valid view's
// accessors stay in range; TCP re-encodes, and the port updates of TCP and
// UDP agree with a full recomputation.
func FuzzL4(f *testing.F) {
	f.Add(tcpSYN, uint16(8080))
	f.Add(udpDNS, uint16(0))
	f.Add(scapySCTP, uint16(1))
	f.Add([]byte{3, 4, 0, 0, 0, 0, 5, 0x78}, uint16(2))
	f.Add([]byte{0x60}, uint16(3))
	f.Fuzz(func(t *testing.T, b []byte, port uint16) {
		const pseudo = 0x1234
		b = append([]byte(nil), b...) // the updates below write
		if tcp := TCP(b); tcp.IsValid() {
			_, _, _ = tcp.Options(), tcp.Payload(), tcp.OptionsLength()
			c := TCP(make([]byte, TCPMinimumSize))
			c.Encode(&TCPFields{tcp.SourcePort(), tcp.DestinationPort(), tcp.SequenceNumber(), tcp.AckNumber(),
				tcp.DataOffset(), tcp.Flags(), tcp.WindowSize(), tcp.Checksum(), tcp.UrgentPointer()})
			want := append([]byte(nil), b[:TCPMinimumSize]...)
			want[tcpDataOff] &= 0xf0 // reserved bits and NS are not encoded
			if !bytes.Equal(c, want) {
				t.Fatalf("TCP re-encoded % x, want % x", []byte(c), want)
			}
			tcp.SetChecksum(tcp.CalculateChecksum(pseudo))
			tcp.SetDestinationPortWithChecksumUpdate(port)
			if !tcp.IsChecksumValid(pseudo) {
				t.Fatal("TCP port update broke the checksum")
			}
		}
		if u := UDP(b); u.IsValid() {
			_ = u.Payload()
			if u.Checksum() != 0 {
				u.SetChecksum(u.CalculateChecksum(pseudo))
				u.SetSourcePortWithChecksumUpdate(port)
				if !u.IsChecksumValid(pseudo) || u.Checksum() == 0 {
					t.Fatal("UDP port update broke the checksum")
				}
			}
		}
		if s := SCTP(b); s.IsValid() {
			_, _, _ = s.FirstChunk()
			s.SetChecksum(s.CalculateChecksum())
			if !s.IsChecksumValid() {
				t.Fatal("SCTP checksum")
			}
		}
		if m := ICMPv4(b); m.IsValid() {
			_, _, _ = m.MTU(), m.Payload(), m.Type().IsError()
			m.SetChecksum(m.CalculateChecksum())
			if !m.IsChecksumValid() {
				t.Fatal("ICMPv4 checksum")
			}
		}
		if m := ICMPv6(b); m.IsValid() {
			_, _ = m.MTU(), m.Payload()
			m.SetChecksum(m.CalculateChecksum(pseudo))
			if !m.IsChecksumValid(pseudo) {
				t.Fatal("ICMPv6 checksum")
			}
		}
	})
}
