package flow

// Reason says why Decode could not read a frame (or an ICMP error's
// embedded packet) as far as the data path needs. Each value names one
// cause so that each can have its own drop counter (style.md §4.9).
type Reason uint8

const (
	// ReasonNone: the frame decoded (which includes frames that are
	// neither IP nor ARP: Family 0, EtherType says what they are).
	ReasonNone Reason = iota
	// ReasonShortEthernet: fewer than 14 bytes, or fewer than 18 with
	// an 802.1Q tag.
	ReasonShortEthernet
	// ReasonBadARP: an ARP frame that is not a whole ARP packet for IPv4
	// over Ethernet.
	ReasonBadARP
	// ReasonShortIP: fewer bytes than the fixed IP header (20 or 40).
	ReasonShortIP
	// ReasonBadIPVersion: the version nibble is not the one the
	// EtherType (or, embedded, the ICMP version) announces.
	ReasonBadIPVersion
	// ReasonBadIHL: IPv4 IHL below 5, or a header longer than the bytes
	// present.
	ReasonBadIHL
	// ReasonBadTotalLength: the IPv4 total length is shorter than the
	// header or longer than the frame, or the IPv6 payload length runs
	// past the frame.
	ReasonBadTotalLength
	// ReasonBadIPChecksum: the IPv4 header checksum is wrong (ip_rcv_core
	// drops these before IPVS sees them).
	ReasonBadIPChecksum
	// ReasonBadIPv6Ext: an IPv6 extension header runs past the packet,
	// or Hop-by-Hop Options is not first.
	ReasonBadIPv6Ext
	// ReasonTruncatedL4: the transport header is not all there (TCP 20,
	// UDP 8, SCTP 12, ICMP 8 bytes; the 4 port bytes of an embedded
	// packet).
	ReasonTruncatedL4
	// ReasonBadTCPDataOffset: the TCP data offset is below 5 words or
	// past the end of the segment.
	ReasonBadTCPDataOffset
	// ReasonBadUDPLength: the UDP length is below 8 or past the end of
	// the datagram (of an unfragmented packet).
	ReasonBadUDPLength

	// NumReasons is the number of reasons, for arrays of counters.
	NumReasons
)

var reasonNames = [NumReasons]string{
	ReasonNone:             "ok",
	ReasonShortEthernet:    "short_ethernet",
	ReasonBadARP:           "bad_arp",
	ReasonShortIP:          "short_ip",
	ReasonBadIPVersion:     "bad_ip_version",
	ReasonBadIHL:           "bad_ihl",
	ReasonBadTotalLength:   "bad_total_length",
	ReasonBadIPChecksum:    "bad_ip_checksum",
	ReasonBadIPv6Ext:       "bad_ipv6_ext",
	ReasonTruncatedL4:      "truncated_l4",
	ReasonBadTCPDataOffset: "bad_tcp_data_offset",
	ReasonBadUDPLength:     "bad_udp_length",
}

// String returns the reason's metric-label name ("ok", "short_ip", ...).
func (r Reason) String() string {
	if r < NumReasons {
		return reasonNames[r]
	}
	return "unknown"
}
