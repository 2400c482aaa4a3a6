package lvslab

import (
	"encoding/binary"
	"fmt"
	"net/netip"
)

// Wire formats, kept self-contained so the lab does not depend on the
// packages it helps to test (internal/header, internal/checksum).

// MAC is an Ethernet address.
type MAC [6]byte

// BroadcastMAC is the Ethernet broadcast address.
var BroadcastMAC = MAC{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}

// String formats m as six colon-separated hex bytes.
func (m MAC) String() string {
	return fmt.Sprintf("%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3], m[4], m[5])
}

// IsMulticast reports whether m is a group address (broadcast included):
// the I/G bit, the least significant bit of the first octet (IEEE 802 §8.2).
func (m MAC) IsMulticast() bool { return m[0]&1 != 0 }

const (
	// Ethernet II: dst(6) src(6) type(2).
	ethHdrLen = 14
	// ethMinFrame is the 64-byte minimum Ethernet frame less its 4-byte
	// FCS, which the lab does not carry (IEEE 802.3 §3.2.8): shorter
	// frames are padded, so a receiver must trust the IP length, not the
	// frame length.
	ethMinFrame = 60

	etherTypeIPv4 = 0x0800
	etherTypeARP  = 0x0806
	etherTypeIPv6 = 0x86dd

	ipv4HdrLen = 20 // without options
	ipv6HdrLen = 40
	udpHdrLen  = 8
	tcpHdrLen  = 20 // without options
	icmpHdrLen = 8  // type, code, checksum and the 4-byte rest of header
	fragHdrLen = 8  // IPv6 fragment extension header (RFC 8200 §4.5)

	// IANA protocol numbers.
	protoICMP     = 1
	protoIPIP     = 4
	protoTCP      = 6
	protoUDP      = 17
	protoIPv6     = 41
	protoIPv6Frag = 44
	protoICMPv6   = 58

	// defaultTTL is Linux's net.ipv4.ip_default_ttl and the IPv6 default
	// hop limit.
	defaultTTL = 64

	// minMTUv4 and minMTUv6 are the smallest MTUs a link may have: RFC 791
	// ("every internet module must be able to forward a datagram of 68
	// octets") and RFC 8200 §5 (1280). A frag-needed below them is ignored,
	// as Linux clamps to min_pmtu (552 by default; 68 is the floor).
	minMTUv4 = 68
	minMTUv6 = 1280
)

func be16(b []byte) uint16        { return binary.BigEndian.Uint16(b) }
func be32(b []byte) uint32        { return binary.BigEndian.Uint32(b) }
func put16(b []byte, v uint16)    { binary.BigEndian.PutUint16(b, v) }
func put32(b []byte, v uint32)    { binary.BigEndian.PutUint32(b, v) }
func macAt(b []byte) (m MAC)      { copy(m[:], b); return m }
func addr4At(b []byte) netip.Addr { return netip.AddrFrom4([4]byte(b[:4])) }
func addr16At(b []byte) netip.Addr {
	return netip.AddrFrom16([16]byte(b[:16]))
}

// putAddr writes a's 4 or 16 bytes at b and returns how many.
func putAddr(b []byte, a netip.Addr) int {
	if a.Is4() {
		v := a.As4()
		return copy(b, v[:])
	}
	v := a.As16()
	return copy(b, v[:])
}

// sum16 adds b to s as big-endian 16-bit words, a trailing odd byte padded
// with zero (RFC 1071 §4.1).
func sum16(b []byte, s uint64) uint64 {
	for len(b) >= 2 {
		s += uint64(b[0])<<8 | uint64(b[1])
		b = b[2:]
	}
	if len(b) == 1 {
		s += uint64(b[0]) << 8
	}
	return s
}

// finish folds s to 16 bits with end-around carry and complements it.
func finish(s uint64) uint16 {
	for s>>16 != 0 {
		s = s&0xffff + s>>16
	}
	return ^uint16(s)
}

// checksum is the Internet checksum of b, started from initial.
func checksum(b []byte, initial uint64) uint16 { return finish(sum16(b, initial)) }

// pseudoSum is the sum of the TCP/UDP/ICMPv6 pseudo-header (RFC 793 §3.1,
// RFC 768, RFC 8200 §8.1).
func pseudoSum(src, dst netip.Addr, proto uint8, length int) uint64 {
	var s uint64
	if src.Is4() {
		a, b := src.As4(), dst.As4()
		s = sum16(a[:], s)
		s = sum16(b[:], s)
	} else {
		a, b := src.As16(), dst.As16()
		s = sum16(a[:], s)
		s = sum16(b[:], s)
	}
	return s + uint64(proto) + uint64(length)
}

// l4Checksum computes the checksum of a TCP, UDP or ICMPv6 message whose
// checksum field is zero; over a message with its checksum in place it
// returns 0 when the checksum is right.
func l4Checksum(src, dst netip.Addr, proto uint8, msg []byte) uint16 {
	return checksum(msg, pseudoSum(src, dst, proto, len(msg)))
}

// ipHdr is a decoded IPv4 or IPv6 header.
type ipHdr struct {
	v6       bool
	src, dst netip.Addr
	proto    uint8 // upper-layer protocol (IPv6: after a fragment header)
	ttl      uint8
	tos      uint8 // IPv4 TOS / IPv6 traffic class
	hlen     int   // offset of the upper-layer header
	tlen     int   // total length of the packet (header included)
	id       uint32
	df, mf   bool
	fragOff  int  // fragment offset in bytes
	frag     bool // IPv6: a fragment header is present
	trunc    bool // loose parse: the packet is cut short (inside an ICMP error)
}

// isFragment reports whether the packet is a piece of a larger one.
func (h *ipHdr) isFragment() bool { return h.mf || h.fragOff != 0 || h.frag }

// parseIP decodes and validates the IP header at the start of b: version,
// lengths and the IPv4 header checksum (RFC 791; Linux ip_rcv_core). When
// loose is set, as for the copy of a packet inside an ICMP error, the total
// length may exceed b and the checksum is not checked.
func parseIP(b []byte, loose bool) (h ipHdr, r DropReason) {
	if len(b) < 1 {
		return h, DropMalformed
	}
	switch b[0] >> 4 {
	case 4:
		if len(b) < ipv4HdrLen {
			return h, DropMalformed
		}
		ihl := int(b[0]&0x0f) * 4
		tlen := int(be16(b[2:]))
		if ihl < ipv4HdrLen || len(b) < ihl || tlen < ihl {
			return h, DropMalformed
		}
		trunc := false
		if tlen > len(b) {
			if !loose {
				return h, DropMalformed
			}
			tlen, trunc = len(b), true
		}
		if !loose && checksum(b[:ihl], 0) != 0 {
			return h, DropBadIPChecksum
		}
		flags := be16(b[6:])
		h = ipHdr{
			src:     addr4At(b[12:]),
			dst:     addr4At(b[16:]),
			proto:   b[9],
			ttl:     b[8],
			tos:     b[1],
			hlen:    ihl,
			tlen:    tlen,
			id:      uint32(be16(b[4:])),
			df:      flags&0x4000 != 0,
			mf:      flags&0x2000 != 0,
			fragOff: int(flags&0x1fff) * 8,
			trunc:   trunc,
		}
		return h, 0
	case 6:
		if len(b) < ipv6HdrLen {
			return h, DropMalformed
		}
		tlen := ipv6HdrLen + int(be16(b[4:]))
		trunc := false
		if tlen > len(b) {
			if !loose {
				return h, DropMalformed
			}
			tlen, trunc = len(b), true
		}
		h = ipHdr{
			v6:    true,
			src:   addr16At(b[8:]),
			dst:   addr16At(b[24:]),
			proto: b[6],
			ttl:   b[7],
			tos:   uint8(be16(b[0:]) >> 4),
			hlen:  ipv6HdrLen,
			tlen:  tlen,
			trunc: trunc,
		}
		if h.proto == protoIPv6Frag {
			// RFC 8200 §4.5: next header(1) reserved(1)
			// offset(13 bits) res(2) M(1) identification(4).
			if tlen < ipv6HdrLen+fragHdrLen {
				return h, DropMalformed
			}
			f := b[ipv6HdrLen:]
			h.proto = f[0]
			off := be16(f[2:])
			h.fragOff = int(off &^ 7) // offset is in 8-byte units in the top 13 bits
			h.mf = off&1 != 0
			h.id = be32(f[4:])
			h.frag = true
			h.hlen += fragHdrLen
		}
		return h, 0
	}
	return h, DropMalformed
}

// putIPv4Header writes a 20-byte IPv4 header with its checksum at b.
func putIPv4Header(b []byte, tlen int, id uint16, df bool, ttl, proto uint8, src, dst netip.Addr) {
	b[0] = 0x45 // version 4, IHL 5 words
	b[1] = 0
	put16(b[2:], uint16(tlen))
	put16(b[4:], id)
	var flags uint16
	if df {
		flags = 0x4000
	}
	put16(b[6:], flags)
	b[8] = ttl
	b[9] = proto
	put16(b[10:], 0)
	putAddr(b[12:], src)
	putAddr(b[16:], dst)
	put16(b[10:], checksum(b[:ipv4HdrLen], 0))
}

// putIPv6Header writes a 40-byte IPv6 header at b.
func putIPv6Header(b []byte, payloadLen int, next, hop uint8, src, dst netip.Addr) {
	put32(b[0:], 6<<28) // version 6, traffic class 0, flow label 0
	put16(b[4:], uint16(payloadLen))
	b[6] = next
	b[7] = hop
	putAddr(b[8:], src)
	putAddr(b[24:], dst)
}

// ipv4HeaderChecksumFix recomputes the header checksum of the IPv4 packet b.
func ipv4HeaderChecksumFix(b []byte) {
	ihl := int(b[0]&0x0f) * 4
	put16(b[10:], 0)
	put16(b[10:], checksum(b[:ihl], 0))
}

// TCP flags (RFC 793 §3.1).
const (
	tcpFIN = 0x01
	tcpSYN = 0x02
	tcpRST = 0x04
	tcpPSH = 0x08
	tcpACK = 0x10
)

// tcpSeg is a decoded TCP segment.
type tcpSeg struct {
	sport, dport uint16
	seq, ack     uint32
	flags        uint8
	wnd          uint16
	mss          uint16 // MSS option; 0 when absent
	data         []byte
}

// parseTCP decodes the TCP segment b (checksum already verified).
func parseTCP(b []byte) (s tcpSeg, ok bool) {
	if len(b) < tcpHdrLen {
		return s, false
	}
	off := int(b[12]>>4) * 4
	if off < tcpHdrLen || off > len(b) {
		return s, false
	}
	s = tcpSeg{
		sport: be16(b[0:]),
		dport: be16(b[2:]),
		seq:   be32(b[4:]),
		ack:   be32(b[8:]),
		flags: b[13],
		wnd:   be16(b[14:]),
		data:  b[off:],
	}
	// Options (RFC 793 §3.1, RFC 9293 §3.2): kind 0 ends, kind 1 is a
	// one-byte no-op, every other kind has a length byte.
	opts := b[tcpHdrLen:off]
	for len(opts) > 0 {
		kind := opts[0]
		if kind == 0 {
			break
		}
		if kind == 1 {
			opts = opts[1:]
			continue
		}
		if len(opts) < 2 || int(opts[1]) < 2 || int(opts[1]) > len(opts) {
			return s, false
		}
		if kind == 2 && opts[1] == 4 {
			s.mss = be16(opts[2:])
		}
		opts = opts[opts[1]:]
	}
	return s, true
}

// segLen is the sequence space a segment occupies: its data, SYN and FIN.
func (s *tcpSeg) segLen() uint32 {
	n := uint32(len(s.data))
	if s.flags&tcpSYN != 0 {
		n++
	}
	if s.flags&tcpFIN != 0 {
		n++
	}
	return n
}

// Sequence number comparisons modulo 2^32 (RFC 793 §3.3).
func seqLT(a, b uint32) bool  { return int32(a-b) < 0 }
func seqLEQ(a, b uint32) bool { return int32(a-b) <= 0 }
func seqGT(a, b uint32) bool  { return int32(a-b) > 0 }

// multicastMAC maps an IP multicast group to its Ethernet address: RFC
// 1112 §6.4 (01:00:5e + low 23 bits) and RFC 2464 §7 (33:33 + low 32 bits).
func multicastMAC(group netip.Addr) MAC {
	if group.Is4() {
		a := group.As4()
		return MAC{0x01, 0x00, 0x5e, a[1] & 0x7f, a[2], a[3]}
	}
	a := group.As16()
	return MAC{0x33, 0x33, a[12], a[13], a[14], a[15]}
}

// solicitedNode is the solicited-node multicast group of a (RFC 4291
// §2.7.1): ff02::1:ff00:0/104 plus the low 24 bits of a.
func solicitedNode(a netip.Addr) netip.Addr {
	b := a.As16()
	return netip.AddrFrom16([16]byte{0xff, 0x02, 10: 0, 11: 0x01, 12: 0xff, 13: b[13], 14: b[14], 15: b[15]})
}

// allNodes is ff02::1 (RFC 4291 §2.7.1).
var allNodes = netip.MustParseAddr("ff02::1")

// allHosts4 is 224.0.0.1 (RFC 1112 §4).
var allHosts4 = netip.AddrFrom4([4]byte{224, 0, 0, 1})

// limitedBroadcast is 255.255.255.255 (RFC 919).
var limitedBroadcast = netip.AddrFrom4([4]byte{255, 255, 255, 255})
