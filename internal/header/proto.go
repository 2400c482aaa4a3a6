package header

// EtherTypes (IEEE 802.3 Length/Type field; IANA ieee-802-numbers).
const (
	EtherTypeIPv4 uint16 = 0x0800
	EtherTypeARP  uint16 = 0x0806
	// EtherTypeVLAN is the Tag Protocol Identifier of an IEEE 802.1Q
	// customer VLAN tag.
	EtherTypeVLAN uint16 = 0x8100
	EtherTypeIPv6 uint16 = 0x86dd
	// EtherTypeQinQ is the TPID of an IEEE 802.1ad service tag. Stacked
	// tags are not parsed: a frame starting with one is not IP to us.
	EtherTypeQinQ uint16 = 0x88a8
)

// IP protocol numbers (IANA "Assigned Internet Protocol Numbers"): the
// IPv4 Protocol field and the IPv6 Next Header field share them.
const (
	ProtoHopByHop uint8 = 0   // IPv6 Hop-by-Hop Options (RFC 8200 §4.3)
	ProtoICMPv4   uint8 = 1   // RFC 792
	ProtoIPIP     uint8 = 4   // IPv4 in IP (RFC 2003): IPVS's TUN forwarding
	ProtoTCP      uint8 = 6   // RFC 9293
	ProtoUDP      uint8 = 17  // RFC 768
	ProtoIPv6     uint8 = 41  // IPv6 in IP (RFC 2473): TUN with an IPv6 inner packet
	ProtoRouting  uint8 = 43  // IPv6 Routing header (RFC 8200 §4.4)
	ProtoFragment uint8 = 44  // IPv6 Fragment header (RFC 8200 §4.5)
	ProtoGRE      uint8 = 47  // RFC 2784
	ProtoESP      uint8 = 50  // RFC 4303
	ProtoAH       uint8 = 51  // RFC 4302
	ProtoICMPv6   uint8 = 58  // RFC 4443
	ProtoNoNext   uint8 = 59  // IPv6 No Next Header (RFC 8200 §4.7)
	ProtoDestOpts uint8 = 60  // IPv6 Destination Options (RFC 8200 §4.6)
	ProtoSCTP     uint8 = 132 // RFC 9260
)
