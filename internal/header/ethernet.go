package header

import "encoding/binary"

// Ethernet is an Ethernet II frame header, optionally with one IEEE 802.1Q
// tag, and what follows it (IEEE 802.3 §3.1.1; no preamble, no FCS):
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                  Destination MAC Address                      |
//	+                               +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                               |                               |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+                               +
//	|                     Source MAC Address                        |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|           EtherType           |  payload ...
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//
// With an 802.1Q tag (IEEE 802.1Q §9.6) the EtherType slot holds the TPID
// 0x8100 and the payload's EtherType follows the tag control information:
//
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|        TPID = 0x8100          | PCP |D|          VID          |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|           EtherType           |  payload ...
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
type Ethernet []byte

const (
	ethDst  = 0
	ethSrc  = 6
	ethType = 12
	ethTCI  = 14 // tag control information, after a TPID
	// ethInnerType is where the payload's EtherType sits in a tagged frame.
	ethInnerType = 16

	// EthernetMinimumSize is the size of an untagged Ethernet II header.
	EthernetMinimumSize = 14
	// VLANTagSize is the size of an 802.1Q tag (TPID and TCI).
	VLANTagSize = 4
	// EthernetTaggedSize is the size of a header with one 802.1Q tag.
	EthernetTaggedSize = EthernetMinimumSize + VLANTagSize
	// vlanIDMask is the 12-bit VLAN identifier in the TCI.
	vlanIDMask = 0x0fff
)

// IsValid reports whether b holds a whole header: 14 bytes, or 18 if it is
// tagged.
func (b Ethernet) IsValid() bool {
	if len(b) < EthernetMinimumSize {
		return false
	}
	return !b.HasVLAN() || len(b) >= EthernetTaggedSize
}

// Destination returns the destination MAC address.
func (b Ethernet) Destination() [6]byte { return [6]byte(b[ethDst : ethDst+6]) }

// Source returns the source MAC address.
func (b Ethernet) Source() [6]byte { return [6]byte(b[ethSrc : ethSrc+6]) }

// SetDestination sets the destination MAC address (DR forwarding rewrites
// only this: ip_vs_dr_xmit sends to the real server's MAC).
func (b Ethernet) SetDestination(a [6]byte) { copy(b[ethDst:ethDst+6], a[:]) }

// SetSource sets the source MAC address.
func (b Ethernet) SetSource(a [6]byte) { copy(b[ethSrc:ethSrc+6], a[:]) }

// HasVLAN reports whether the frame carries an 802.1Q tag. It needs only
// the 14 untagged header bytes.
func (b Ethernet) HasVLAN() bool {
	return binary.BigEndian.Uint16(b[ethType:]) == EtherTypeVLAN
}

// VLANID returns the 12-bit VLAN identifier, or 0 for an untagged frame
// (VID 0 also means "priority tag only", IEEE 802.1Q Table 9-2).
func (b Ethernet) VLANID() uint16 {
	if !b.HasVLAN() {
		return 0
	}
	return binary.BigEndian.Uint16(b[ethTCI:]) & vlanIDMask
}

// EtherType returns the payload's EtherType, past the 802.1Q tag if there
// is one.
func (b Ethernet) EtherType() uint16 {
	if b.HasVLAN() {
		return binary.BigEndian.Uint16(b[ethInnerType:])
	}
	return binary.BigEndian.Uint16(b[ethType:])
}

// SetEtherType sets the payload's EtherType, past the tag if there is one.
func (b Ethernet) SetEtherType(t uint16) {
	if b.HasVLAN() {
		binary.BigEndian.PutUint16(b[ethInnerType:], t)
		return
	}
	binary.BigEndian.PutUint16(b[ethType:], t)
}

// PayloadOffset returns where the payload (the IP or ARP header) starts:
// 14, or 18 past a tag.
func (b Ethernet) PayloadOffset() int {
	if b.HasVLAN() {
		return EthernetTaggedSize
	}
	return EthernetMinimumSize
}

// Payload returns the bytes after the header (Ethernet padding included:
// the IP header's length says where the packet ends).
func (b Ethernet) Payload() []byte { return b[b.PayloadOffset():] }

// Encode writes an untagged header into b[:14].
func (b Ethernet) Encode(dst, src [6]byte, etherType uint16) {
	copy(b[ethDst:ethDst+6], dst[:])
	copy(b[ethSrc:ethSrc+6], src[:])
	binary.BigEndian.PutUint16(b[ethType:], etherType)
}

// EncodeTagged writes a header with one 802.1Q tag (PCP and DEI 0) into
// b[:18].
func (b Ethernet) EncodeTagged(dst, src [6]byte, vid, etherType uint16) {
	b.Encode(dst, src, EtherTypeVLAN)
	binary.BigEndian.PutUint16(b[ethTCI:], vid&vlanIDMask)
	binary.BigEndian.PutUint16(b[ethInnerType:], etherType)
}
