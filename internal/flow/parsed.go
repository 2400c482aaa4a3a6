package flow

import (
	"encoding/binary"

	"golvs/internal/header"
)

// Parsed is what Decode read of one Ethernet frame. All offsets count from
// the first byte of the frame; Decode resets every field, so a Parsed is
// reused from packet to packet (one per worker) with no allocation.
// Fields past the layer where decoding stopped are zero.
//
// Parsed holds no pointers and no reference to the frame; the frame's
// bytes are the caller's (IP, L4 and Payload slice them again). The zero
// value is an empty summary. A Parsed is not safe for concurrent use.
type Parsed struct {
	// Reason is ReasonNone if the frame decoded, else why not.
	Reason Reason

	// Link layer.

	// VLAN reports an 802.1Q tag; VLANID is its VID.
	VLAN   bool
	VLANID uint16
	// EtherType is the payload's EtherType (past the tag).
	EtherType uint16
	// L3Off is where the IP (or ARP) header starts: 14, or 18 if tagged.
	L3Off int

	// Network layer (Tuple.Family is FamilyIPv4 or FamilyIPv6).

	// IPHdrLen is the IPv4 header length (IHL × 4) or, for IPv6, 40:
	// extension headers lie between L3Off+IPHdrLen and L4Off.
	IPHdrLen int
	// IPLen is the length of the IP packet (IPv4 total length, or 40 +
	// IPv6 payload length); the frame may be longer (Ethernet padding to
	// 60 bytes), and IP(frame) trims it.
	IPLen int
	// TTL is the IPv4 TTL or the IPv6 hop limit.
	TTL uint8
	// TOS is the IPv4 TOS or the IPv6 traffic class (DSCP and ECN).
	TOS uint8
	// DF is the IPv4 Don't Fragment flag. IPv6 has none: routers never
	// fragment IPv6, so every IPv6 packet is "DF" for the MTU check.
	DF bool
	// IPOptions reports IPv4 options (IHL above 5).
	IPOptions bool
	// IsFragment reports an IPv4 fragment (MF or a non-zero offset) or
	// an IPv6 packet with a Fragment header (an atomic fragment too).
	IsFragment bool
	// IsFirstFragment reports a fragment at offset 0, which carries the
	// transport header. A fragment that is not first has no ports:
	// HasPorts is false and the Tuple's ports are 0.
	IsFirstFragment bool
	// MoreFragments is the MF (IPv4) or M (IPv6) flag.
	MoreFragments bool
	// FragOffset is the fragment offset in bytes.
	FragOffset uint16
	// FragID is the IPv4 Identification (of a fragment) or the IPv6
	// Fragment header's Identification: with the addresses and protocol,
	// it names the datagram a fragment belongs to.
	FragID uint32
	// FragHdrOff is where the IPv6 Fragment header starts, or 0.
	FragHdrOff int

	// Transport layer.

	// Tuple is the packet's flow key: family, protocol (IPv4 protocol or
	// the IPv6 upper-layer protocol after the extension headers),
	// addresses and, with HasPorts, ports.
	Tuple Tuple
	// L4Off is where the transport header starts (for a non-first
	// fragment: where its data starts).
	L4Off int
	// PayloadOff is where the transport payload starts (after the TCP
	// options, the 8 UDP or ICMP bytes, the 12 SCTP bytes), or 0 when the
	// transport header was not read.
	PayloadOff int
	// HasPorts reports that the Tuple's ports were read (TCP, UDP, SCTP,
	// not a non-first fragment).
	HasPorts bool
	// TCPFlags is the TCP flags byte (header.TCPFlagFIN ...).
	TCPFlags uint8
	// SCTPChunk is the type of the first SCTP chunk, valid if
	// SCTPHasChunk; SCTPAbortBundled reports a COOKIE ECHO or COOKIE ACK
	// directly followed by an ABORT (header.SCTP.FirstChunk, the rule of
	// the kernel's set_sctp_state).
	SCTPChunk        uint8
	SCTPHasChunk     bool
	SCTPAbortBundled bool
	// ICMPType and ICMPCode are those of an ICMPv4 or ICMPv6 message
	// (Tuple.Proto says which). ICMPError reports an error type
	// (header.ICMPv4Type.IsError, header.ICMPv6Type.IsError), whose
	// quoted packet is in Inner.
	ICMPType  uint8
	ICMPCode  uint8
	ICMPError bool
	// Inner is the packet quoted by an ICMP error, valid if ICMPError
	// and Inner.Reason is ReasonNone.
	Inner Embedded

	// ARP (EtherType header.EtherTypeARP).

	// ARPOp is the ARP operation (header.ARPRequest, header.ARPReply).
	ARPOp uint16
	// ARPSenderIP and ARPTargetIP are the sender and target protocol
	// addresses.
	ARPSenderIP, ARPTargetIP [4]byte
}

// Embedded is what Decode read of the packet quoted in an ICMP error
// ("Internet Header + 64 bits of Original Data", RFC 792; "As much of
// invoking packet as possible", RFC 4443). The quote is usually
// truncated, so its own length fields are not checked against it.
type Embedded struct {
	// Reason is ReasonNone if the quoted headers were read, else why not.
	Reason Reason
	// Tuple is the quoted packet's flow as it was sent (Src is its
	// sender). The error is about a packet going the other way, so the
	// connection lookup uses Tuple.Reverse() (IP_VS_HDR_INVERSE).
	Tuple Tuple
	// L3Off is where the quoted IP header starts in the frame; IPHdrLen
	// is its IPv4 header length or 40.
	L3Off    int
	IPHdrLen int
	// L4Off is where the quoted transport header starts.
	L4Off int
	// IsFragment and IsFirstFragment are as in Parsed. IPVS ignores
	// errors about non-first fragments of TCP, UDP and SCTP.
	IsFragment      bool
	IsFirstFragment bool
	// HasPorts reports that the quoted ports were read (TCP, UDP, SCTP,
	// not a non-first fragment, 4 bytes present).
	HasPorts bool
}

// Decode reads one Ethernet frame into p, replacing everything p held.
// It never panics and allocates nothing; malformed input leaves the
// reason in p.Reason.
func (p *Parsed) Decode(frame []byte) {
	*p = Parsed{}
	eth := header.Ethernet(frame)
	if !eth.IsValid() {
		p.Reason = ReasonShortEthernet
		return
	}
	p.VLAN = eth.HasVLAN()
	p.VLANID = eth.VLANID()
	p.EtherType = eth.EtherType()
	p.L3Off = eth.PayloadOffset()
	switch p.EtherType {
	case header.EtherTypeIPv4:
		p.decodeIPv4(frame)
	case header.EtherTypeIPv6:
		p.decodeIPv6(frame)
	case header.EtherTypeARP:
		a := header.ARP(frame[p.L3Off:])
		if !a.IsValid() {
			p.Reason = ReasonBadARP
			return
		}
		p.ARPOp = a.Op()
		p.ARPSenderIP = a.SenderIP()
		p.ARPTargetIP = a.TargetIP()
	}
}

// IP returns the frame's IP packet, without link header or padding, or
// nil if Decode found none.
func (p *Parsed) IP(frame []byte) []byte {
	if p.Tuple.Family == 0 || p.L3Off+p.IPLen > len(frame) {
		return nil
	}
	return frame[p.L3Off : p.L3Off+p.IPLen]
}

// L4 returns the transport header and payload (up to the end of the IP
// packet), or nil if Decode found no IP packet.
func (p *Parsed) L4(frame []byte) []byte {
	if p.Tuple.Family == 0 || p.L4Off > p.L3Off+p.IPLen || p.L3Off+p.IPLen > len(frame) {
		return nil
	}
	return frame[p.L4Off : p.L3Off+p.IPLen]
}

// Payload returns the transport payload, or nil if the transport header
// was not read.
func (p *Parsed) Payload(frame []byte) []byte {
	if p.PayloadOff == 0 || p.PayloadOff > p.L3Off+p.IPLen || p.L3Off+p.IPLen > len(frame) {
		return nil
	}
	return frame[p.PayloadOff : p.L3Off+p.IPLen]
}

func (p *Parsed) decodeIPv4(frame []byte) {
	b := frame[p.L3Off:]
	if len(b) < header.IPv4MinimumSize {
		p.Reason = ReasonShortIP
		return
	}
	ip := header.IPv4(b)
	if ip.Version() != 4 {
		p.Reason = ReasonBadIPVersion
		return
	}
	hlen := ip.HeaderLength()
	if hlen < header.IPv4MinimumSize || hlen > len(b) {
		p.Reason = ReasonBadIHL
		return
	}
	tlen := int(ip.TotalLength())
	if tlen < hlen || tlen > len(b) {
		p.Reason = ReasonBadTotalLength
		return
	}
	if !ip.IsChecksumValid() {
		p.Reason = ReasonBadIPChecksum
		return
	}
	p.IPHdrLen, p.IPLen = hlen, tlen
	p.TTL, p.TOS = ip.TTL(), ip.TOS()
	p.DF, p.IPOptions = ip.DF(), ip.HasOptions()
	p.Tuple.Family, p.Tuple.Proto = FamilyIPv4, ip.Protocol()
	copy(p.Tuple.Src[:4], b[12:16]) // source address (RFC 791 §3.1)
	copy(p.Tuple.Dst[:4], b[16:20]) // destination address
	p.L4Off = p.L3Off + hlen
	if ip.IsFragment() {
		p.IsFragment = true
		p.MoreFragments = ip.MF()
		p.FragOffset = ip.FragmentOffset()
		p.FragID = uint32(ip.ID())
		p.IsFirstFragment = p.FragOffset == 0
		if !p.IsFirstFragment {
			return
		}
	}
	p.decodeL4(frame[p.L4Off : p.L3Off+tlen])
}

func (p *Parsed) decodeIPv6(frame []byte) {
	b := frame[p.L3Off:]
	if len(b) < header.IPv6MinimumSize {
		p.Reason = ReasonShortIP
		return
	}
	ip := header.IPv6(b)
	if ip.Version() != 6 {
		p.Reason = ReasonBadIPVersion
		return
	}
	tlen := header.IPv6MinimumSize + int(ip.PayloadLength())
	if tlen > len(b) {
		p.Reason = ReasonBadTotalLength
		return
	}
	ip = ip[:tlen]
	w, ok := ip.WalkExtensions()
	if !ok {
		p.Reason = ReasonBadIPv6Ext
		return
	}
	p.IPHdrLen, p.IPLen = header.IPv6MinimumSize, tlen
	p.TTL, p.TOS = ip.HopLimit(), ip.TrafficClass()
	p.Tuple.Family, p.Tuple.Proto = FamilyIPv6, w.Protocol
	p.Tuple.Src, p.Tuple.Dst = ip.SourceAddress(), ip.DestinationAddress()
	p.L4Off = p.L3Off + w.Offset
	if w.IsFragment() {
		p.IsFragment = true
		p.IsFirstFragment = w.IsFirstFragment()
		p.MoreFragments = w.MoreFragments
		p.FragOffset = w.FragmentOffset
		p.FragID = w.FragmentID
		p.FragHdrOff = p.L3Off + w.FragmentHeader
		if !p.IsFirstFragment {
			return
		}
	}
	p.decodeL4(frame[p.L4Off : p.L3Off+tlen])
}

// decodeL4 reads the transport header l4, which runs to the end of the IP
// packet (of the first fragment, if fragmented).
func (p *Parsed) decodeL4(l4 []byte) {
	switch p.Tuple.Proto {
	case header.ProtoTCP:
		if len(l4) < header.TCPMinimumSize {
			p.Reason = ReasonTruncatedL4
			return
		}
		t := header.TCP(l4)
		if !t.IsValid() {
			p.Reason = ReasonBadTCPDataOffset
			return
		}
		p.setPorts(t.SourcePort(), t.DestinationPort())
		p.TCPFlags = t.Flags()
		p.PayloadOff = p.L4Off + t.DataOffset()
	case header.ProtoUDP:
		if len(l4) < header.UDPSize {
			p.Reason = ReasonTruncatedL4
			return
		}
		u := header.UDP(l4)
		// A first fragment holds only part of the datagram that Length
		// describes.
		if l := int(u.Length()); l < header.UDPSize || (!p.IsFragment && l > len(l4)) {
			p.Reason = ReasonBadUDPLength
			return
		}
		p.setPorts(u.SourcePort(), u.DestinationPort())
		p.PayloadOff = p.L4Off + header.UDPSize
	case header.ProtoSCTP:
		if len(l4) < header.SCTPCommonHeaderSize {
			p.Reason = ReasonTruncatedL4
			return
		}
		s := header.SCTP(l4)
		p.setPorts(s.SourcePort(), s.DestinationPort())
		p.SCTPChunk, p.SCTPAbortBundled, p.SCTPHasChunk = s.FirstChunk()
		p.PayloadOff = p.L4Off + header.SCTPCommonHeaderSize
	case header.ProtoICMPv4:
		if p.Tuple.Family != FamilyIPv4 {
			return // ICMPv4 over IPv6 is nothing we handle
		}
		if len(l4) < header.ICMPv4MinimumSize {
			p.Reason = ReasonTruncatedL4
			return
		}
		m := header.ICMPv4(l4)
		p.ICMPType, p.ICMPCode = uint8(m.Type()), uint8(m.Code())
		p.PayloadOff = p.L4Off + header.ICMPv4MinimumSize
		if m.Type().IsError() {
			p.ICMPError = true
			p.Inner.decodeIPv4(m.Payload(), p.PayloadOff)
		}
	case header.ProtoICMPv6:
		if p.Tuple.Family != FamilyIPv6 {
			return
		}
		if len(l4) < header.ICMPv6MinimumSize {
			p.Reason = ReasonTruncatedL4
			return
		}
		m := header.ICMPv6(l4)
		p.ICMPType, p.ICMPCode = uint8(m.Type()), uint8(m.Code())
		p.PayloadOff = p.L4Off + header.ICMPv6MinimumSize
		if m.Type().IsError() {
			p.ICMPError = true
			p.Inner.decodeIPv6(m.Payload(), p.PayloadOff)
		}
	}
}

func (p *Parsed) setPorts(src, dst uint16) {
	p.Tuple.SrcPort, p.Tuple.DstPort = src, dst
	p.HasPorts = true
}

// hasPorts reports whether proto's header starts with 16-bit source and
// destination ports (what IPVS reads of an embedded packet).
func hasPorts(proto uint8) bool {
	return proto == header.ProtoTCP || proto == header.ProtoUDP || proto == header.ProtoSCTP
}

// portsSize is what an embedded packet's ports take: source and
// destination, 2 bytes each.
const portsSize = 4

// decodeIPv4 reads the IPv4 packet b quoted by an ICMPv4 error, found at
// offset off of the frame.
func (e *Embedded) decodeIPv4(b []byte, off int) {
	if len(b) < header.IPv4MinimumSize {
		e.Reason = ReasonShortIP
		return
	}
	ip := header.IPv4(b)
	if ip.Version() != 4 {
		e.Reason = ReasonBadIPVersion
		return
	}
	hlen := ip.HeaderLength()
	if hlen < header.IPv4MinimumSize || hlen > len(b) {
		e.Reason = ReasonBadIHL
		return
	}
	e.L3Off, e.IPHdrLen, e.L4Off = off, hlen, off+hlen
	e.Tuple.Family, e.Tuple.Proto = FamilyIPv4, ip.Protocol()
	copy(e.Tuple.Src[:4], b[12:16]) // source address (RFC 791 §3.1)
	copy(e.Tuple.Dst[:4], b[16:20]) // destination address
	if ip.IsFragment() {
		e.IsFragment = true
		e.IsFirstFragment = ip.FragmentOffset() == 0
		if !e.IsFirstFragment {
			return
		}
	}
	e.readPorts(b[hlen:])
}

// decodeIPv6 reads the IPv6 packet b quoted by an ICMPv6 error, found at
// offset off of the frame.
func (e *Embedded) decodeIPv6(b []byte, off int) {
	if len(b) < header.IPv6MinimumSize {
		e.Reason = ReasonShortIP
		return
	}
	ip := header.IPv6(b)
	if ip.Version() != 6 {
		e.Reason = ReasonBadIPVersion
		return
	}
	w, ok := ip.WalkExtensions() // bounded by the quote, not the payload length
	if !ok {
		e.Reason = ReasonBadIPv6Ext
		return
	}
	e.L3Off, e.IPHdrLen, e.L4Off = off, header.IPv6MinimumSize, off+w.Offset
	e.Tuple.Family, e.Tuple.Proto = FamilyIPv6, w.Protocol
	e.Tuple.Src, e.Tuple.Dst = ip.SourceAddress(), ip.DestinationAddress()
	if w.IsFragment() {
		e.IsFragment = true
		e.IsFirstFragment = w.IsFirstFragment()
		if !e.IsFirstFragment {
			return
		}
	}
	e.readPorts(b[w.Offset:])
}

func (e *Embedded) readPorts(l4 []byte) {
	if !hasPorts(e.Tuple.Proto) {
		return
	}
	if len(l4) < portsSize {
		e.Reason = ReasonTruncatedL4
		return
	}
	e.Tuple.SrcPort = binary.BigEndian.Uint16(l4[0:])
	e.Tuple.DstPort = binary.BigEndian.Uint16(l4[2:])
	e.HasPorts = true
}
