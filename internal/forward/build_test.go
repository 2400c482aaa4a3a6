package forward

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"testing"

	"golvs/internal/checksum"
	"golvs/internal/flow"
	"golvs/internal/header"
)

// Frame builders for the tests. A pkt is built from scratch with every
// checksum computed in full, so that "rewrite a built frame" can be
// compared byte for byte with "build the rewritten frame": the incremental
// updates must give exactly what a fresh computation gives.

var (
	macClient = [6]byte{0x02, 0x00, 0x5e, 0x10, 0x00, 0x01}
	macLB     = [6]byte{0x02, 0x00, 0x5e, 0x10, 0x00, 0x02}
	macRS     = [6]byte{0x02, 0x00, 0x5e, 0x10, 0x00, 0x03}

	client4 = netip.MustParseAddr("192.0.2.10")   // RFC 5737 TEST-NET-1
	vip4    = netip.MustParseAddr("198.51.100.1") // RFC 5737 TEST-NET-2
	rs4     = netip.MustParseAddr("203.0.113.20") // RFC 5737 TEST-NET-3
	lb4     = netip.MustParseAddr("203.0.113.1")
	client6 = netip.MustParseAddr("2001:db8::a") // RFC 3849
	vip6    = netip.MustParseAddr("2001:db8::1")
	rs6     = netip.MustParseAddr("2001:db8:1::14")
	lb6     = netip.MustParseAddr("2001:db8:1::1")
)

// Fragment kinds of a pkt.
const (
	notFrag   = iota
	firstFrag // offset 0, MF
	laterFrag // offset > 0: no transport header
)

// pkt describes a frame.
type pkt struct {
	v6           bool
	vlan         uint16 // 0: untagged
	pcp          uint8  // priority of the tag
	proto        uint8
	src, dst     netip.Addr
	sport, dport uint16
	ttl, tos     uint8
	df           bool
	id           uint16
	opts         []byte // IPv4 options (a multiple of 4)
	ext          bool   // IPv6: a Destination Options header first
	frag         int
	fragOff      uint16 // laterFrag: offset in bytes (a multiple of 8)
	mf           bool   // laterFrag: more fragments
	payload      []byte
	udpZero      bool // UDP checksum 0 (no checksum)
	partial      bool // transport checksum is the pseudo-header sum
	flags        uint8
	icmpType     uint8 // proto ICMP: type, code, rest, quoted packet in payload
	icmpCode     uint8
	icmpRest     uint32
	pad          int // Ethernet padding after the IP packet
	dstMAC       [6]byte
	srcMAC       [6]byte
}

func (s *pkt) macs() ([6]byte, [6]byte) {
	d, sr := s.dstMAC, s.srcMAC
	if d == [6]byte{} && sr == [6]byte{} {
		d, sr = macLB, macClient
	}
	return d, sr
}

// l4 returns the transport header and payload with the checksum field
// per the pkt (full, zero, or partial).
func (s *pkt) l4() []byte {
	if s.frag == laterFrag {
		return append([]byte(nil), s.payload...)
	}
	var b []byte
	switch s.proto {
	case header.ProtoTCP:
		b = make([]byte, header.TCPMinimumSize, header.TCPMinimumSize+len(s.payload))
		header.TCP(b).Encode(&header.TCPFields{SrcPort: s.sport, DstPort: s.dport, Seq: 0x01020304, Ack: 0x0a0b0c0d, Flags: s.flags, Window: 65535})
		b = append(b, s.payload...)
	case header.ProtoUDP:
		b = make([]byte, header.UDPSize, header.UDPSize+len(s.payload))
		header.UDP(b).Encode(s.sport, s.dport, uint16(header.UDPSize+len(s.payload)), 0)
		b = append(b, s.payload...)
	case header.ProtoSCTP:
		b = make([]byte, header.SCTPCommonHeaderSize, header.SCTPCommonHeaderSize+len(s.payload))
		sc := header.SCTP(b)
		sc.SetSourcePort(s.sport)
		sc.SetDestinationPort(s.dport)
		sc.SetVerificationTag(0xdeadbeef)
		b = append(b, s.payload...)
		header.SCTP(b).SetChecksum(header.SCTP(b).CalculateChecksum())
		return b
	case header.ProtoICMPv4, header.ProtoICMPv6:
		b = make([]byte, header.ICMPv4MinimumSize, header.ICMPv4MinimumSize+len(s.payload))
		b[0], b[1] = s.icmpType, s.icmpCode
		binary.BigEndian.PutUint32(b[4:], s.icmpRest)
		b = append(b, s.payload...)
		if s.proto == header.ProtoICMPv4 {
			header.ICMPv4(b).SetChecksum(header.ICMPv4(b).CalculateChecksum())
		} else {
			header.ICMPv6(b).SetChecksum(header.ICMPv6(b).CalculateChecksum(s.pseudo(len(b))))
		}
		return b
	default:
		return append([]byte(nil), s.payload...)
	}
	if s.proto == header.ProtoUDP && s.udpZero {
		return b
	}
	ps := s.pseudo(len(b))
	off := 16 // TCP checksum
	if s.proto == header.ProtoUDP {
		off = 6
	}
	var c uint16
	switch {
	case s.partial:
		c = ps
	default:
		c = ^checksum.Sum(b, ps)
		if s.proto == header.ProtoUDP {
			c = checksum.ForUDP(c)
		}
	}
	binary.BigEndian.PutUint16(b[off:], c)
	return b
}

func (s *pkt) pseudo(n int) uint16 {
	if s.v6 {
		return checksum.PseudoHeaderIPv6(s.src.As16(), s.dst.As16(), s.proto, uint32(n))
	}
	return checksum.PseudoHeaderIPv4(s.src.As4(), s.dst.As4(), s.proto, uint16(n))
}

// ip returns the IP packet.
func (s *pkt) ip() []byte {
	l4 := s.l4()
	if !s.v6 {
		f := &header.IPv4Fields{
			TOS: s.tos, ID: s.id, DF: s.df, TTL: s.ttl, Protocol: s.proto,
			Src: s.src.As4(), Dst: s.dst.As4(), Options: s.opts,
		}
		switch s.frag {
		case firstFrag:
			f.MF = true
		case laterFrag:
			f.MF, f.FragmentOffset = s.mf, s.fragOff
		}
		hl := header.IPv4MinimumSize + len(s.opts)
		f.TotalLength = uint16(hl + len(l4))
		b := make([]byte, hl, hl+len(l4))
		header.IPv4(b).Encode(f)
		return append(b, l4...)
	}
	var ext []byte
	nh := s.proto
	if s.frag != notFrag {
		fh := make([]byte, 8)
		fh[0] = nh
		w := uint16(0)
		if s.frag == laterFrag {
			w = s.fragOff &^ 7
			if s.mf {
				w |= 1
			}
		} else {
			w = 1
		}
		binary.BigEndian.PutUint16(fh[2:], w)
		binary.BigEndian.PutUint32(fh[4:], 0x11223344)
		ext = fh
		nh = header.ProtoFragment
	}
	if s.ext {
		ext = append([]byte{nh, 0, 1, 4, 0, 0, 0, 0}, ext...) // PadN fills it
		nh = header.ProtoDestOpts
	}
	b := make([]byte, header.IPv6MinimumSize, header.IPv6MinimumSize+len(ext)+len(l4))
	header.IPv6(b).Encode(&header.IPv6Fields{
		TrafficClass: s.tos, PayloadLength: uint16(len(ext) + len(l4)), NextHeader: nh,
		HopLimit: s.ttl, Src: s.src.As16(), Dst: s.dst.As16(),
	})
	b = append(b, ext...)
	return append(b, l4...)
}

// frame returns the Ethernet frame.
func (s *pkt) frame() []byte {
	d, sr := s.macs()
	et := header.EtherTypeIPv4
	if s.v6 {
		et = header.EtherTypeIPv6
	}
	var e []byte
	if s.vlan != 0 {
		e = make([]byte, header.EthernetTaggedSize)
		header.Ethernet(e).EncodeTagged(d, sr, s.vlan, et)
		e[14] |= s.pcp << 5
	} else {
		e = make([]byte, header.EthernetMinimumSize)
		header.Ethernet(e).Encode(d, sr, et)
	}
	out := append(e, s.ip()...)
	return append(out, make([]byte, s.pad)...)
}

// ethHdr returns an untagged Ethernet header.
func ethHdr(dst, src [6]byte, et uint16) []byte {
	e := make([]byte, header.EthernetMinimumSize)
	header.Ethernet(e).Encode(dst, src, et)
	return e
}

// Test buffers: the frame with Headroom in front and a little tailroom,
// everything around the frame filled with a canary.

const (
	tailroom = 16
	canary   = 0xa5
)

type tbuf struct {
	Buf
	before []byte // B before the call
}

func load(frame []byte) *tbuf {
	return loadRoom(frame, Headroom)
}

func loadRoom(frame []byte, room int) *tbuf {
	b := make([]byte, room+len(frame)+tailroom)
	for i := range b {
		b[i] = canary
	}
	copy(b[room:], frame)
	return &tbuf{Buf: Buf{B: b, Off: room, Len: len(frame)}, before: bytes.Clone(b)}
}

// untouched reports an error if a byte outside the current frame changed.
func (t *tbuf) untouched(tb testing.TB) {
	tb.Helper()
	for i := range t.B {
		if (i < t.Off || i >= t.Off+t.Len) && t.B[i] != t.before[i] {
			tb.Fatalf("byte %d outside the frame [%d,%d) changed: %#02x -> %#02x", i, t.Off, t.Off+t.Len, t.before[i], t.B[i])
		}
	}
}

func parse(frame []byte) *flow.Parsed {
	p := new(flow.Parsed)
	p.Decode(frame)
	return p
}
