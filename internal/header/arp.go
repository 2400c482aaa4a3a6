package header

import "encoding/binary"

// ARP is an ARP packet for IPv4 over Ethernet (RFC 826; field sizes fixed
// by hardware type 1 and protocol type 0x0800):
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|      Hardware Type = 1        |    Protocol Type = 0x0800     |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|  HLEN = 6     |   PLEN = 4    |          Operation            |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                 Sender Hardware Address (SHA)                 |
//	+                               +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                               |   Sender Protocol Addr (SPA)  |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|             SPA (cont.)       |  Target Hardware Addr (THA)   |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+                               +
//	|                        THA (cont.)                            |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|               Target Protocol Address (TPA)                   |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
type ARP []byte

const (
	arpHType = 0
	arpPType = 2
	arpHLen  = 4
	arpPLen  = 5
	arpOp    = 6
	arpSHA   = 8
	arpSPA   = 14
	arpTHA   = 18
	arpTPA   = 24

	// ARPSize is the size of an IPv4-over-Ethernet ARP packet.
	ARPSize = 28

	// ARPHardwareEthernet is the hardware type of Ethernet (RFC 826
	// ar$hrd; IANA arp-parameters "Ethernet (10Mb)").
	ARPHardwareEthernet uint16 = 1

	// ARP operations (RFC 826 ar$op).
	ARPRequest uint16 = 1
	ARPReply   uint16 = 2
)

// BroadcastMAC is the Ethernet broadcast address.
var BroadcastMAC = [6]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}

// IsValid reports whether b is a whole ARP packet for IPv4 over Ethernet
// (other hardware or protocol types are not ours).
func (b ARP) IsValid() bool {
	return len(b) >= ARPSize &&
		binary.BigEndian.Uint16(b[arpHType:]) == ARPHardwareEthernet &&
		binary.BigEndian.Uint16(b[arpPType:]) == EtherTypeIPv4 &&
		b[arpHLen] == 6 && b[arpPLen] == 4
}

// Op returns the operation (ARPRequest, ARPReply).
func (b ARP) Op() uint16 { return binary.BigEndian.Uint16(b[arpOp:]) }

// SenderHW returns the sender hardware address.
func (b ARP) SenderHW() [6]byte { return [6]byte(b[arpSHA : arpSHA+6]) }

// SenderIP returns the sender protocol address.
func (b ARP) SenderIP() [4]byte { return [4]byte(b[arpSPA : arpSPA+4]) }

// TargetHW returns the target hardware address.
func (b ARP) TargetHW() [6]byte { return [6]byte(b[arpTHA : arpTHA+6]) }

// TargetIP returns the target protocol address.
func (b ARP) TargetIP() [4]byte { return [4]byte(b[arpTPA : arpTPA+4]) }

// SetOp sets the operation.
func (b ARP) SetOp(op uint16) { binary.BigEndian.PutUint16(b[arpOp:], op) }

// SetSenderHW sets the sender hardware address.
func (b ARP) SetSenderHW(a [6]byte) { copy(b[arpSHA:arpSHA+6], a[:]) }

// SetSenderIP sets the sender protocol address.
func (b ARP) SetSenderIP(a [4]byte) { copy(b[arpSPA:arpSPA+4], a[:]) }

// SetTargetHW sets the target hardware address.
func (b ARP) SetTargetHW(a [6]byte) { copy(b[arpTHA:arpTHA+6], a[:]) }

// SetTargetIP sets the target protocol address.
func (b ARP) SetTargetIP(a [4]byte) { copy(b[arpTPA:arpTPA+4], a[:]) }

// Encode writes a whole IPv4-over-Ethernet ARP packet into b[:28].
func (b ARP) Encode(op uint16, sha [6]byte, spa [4]byte, tha [6]byte, tpa [4]byte) {
	binary.BigEndian.PutUint16(b[arpHType:], ARPHardwareEthernet)
	binary.BigEndian.PutUint16(b[arpPType:], EtherTypeIPv4)
	b[arpHLen], b[arpPLen] = 6, 4
	b.SetOp(op)
	b.SetSenderHW(sha)
	b.SetSenderIP(spa)
	b.SetTargetHW(tha)
	b.SetTargetIP(tpa)
}

// EncodeRequest writes a request asking who has tpa. The target hardware
// address is zero: RFC 826 leaves it unspecified in requests and Linux
// sends zeros.
func (b ARP) EncodeRequest(sha [6]byte, spa, tpa [4]byte) {
	b.Encode(ARPRequest, sha, spa, [6]byte{}, tpa)
}

// EncodeReply writes a reply telling tha/tpa that spa is at sha.
func (b ARP) EncodeReply(sha [6]byte, spa [4]byte, tha [6]byte, tpa [4]byte) {
	b.Encode(ARPReply, sha, spa, tha, tpa)
}

// EncodeGratuitous writes a gratuitous ARP announcing that ip is at sha,
// the way keepalived announces a VIP (vrrp_arp.c): a request with sender
// and target protocol address both ip and target hardware address
// ff:ff:ff:ff:ff:ff.
func (b ARP) EncodeGratuitous(sha [6]byte, ip [4]byte) {
	b.Encode(ARPRequest, sha, ip, BroadcastMAC, ip)
}
