package afpacket

import (
	"encoding/binary"
	"net/netip"

	"golvs/internal/checksum"
	"golvs/internal/header"
)

// pkt describes a test packet; ip and frame build it, checksums included.
type pkt struct {
	src, dst     netip.Addr
	proto        uint8
	sport, dport uint16
	// IPv4: fragment offset in bytes and MF; options bytes (a multiple
	// of 4).
	fragOff uint16
	mf      bool
	ipOpts  int
	// IPv6: extension headers to put before the transport header
	// (header.ProtoHopByHop, ProtoDestOpts, ProtoRouting, ProtoFragment),
	// the fragment header taking fragOff and mf.
	ext []uint8
	// ICMP: type and code; quoted is the packet an error quotes.
	icmpType, icmpCode uint8
	quoted             *pkt
	// tcpFlags for TCP (default ACK).
	tcpFlags uint8
	payload  []byte
	ttl      uint8
}

func (p *pkt) is4() bool { return p.src.Is4() }

// l4 builds the transport part (header and payload) of p.
func (p *pkt) l4() []byte {
	switch p.proto {
	case header.ProtoTCP:
		b := make([]byte, 20+len(p.payload))
		binary.BigEndian.PutUint16(b[0:], p.sport)
		binary.BigEndian.PutUint16(b[2:], p.dport)
		binary.BigEndian.PutUint32(b[4:], 1000)
		b[12] = 5 << 4
		b[13] = p.tcpFlags
		if b[13] == 0 {
			b[13] = header.TCPFlagACK
		}
		binary.BigEndian.PutUint16(b[14:], 65535)
		copy(b[20:], p.payload)
		return b
	case header.ProtoUDP:
		b := make([]byte, 8+len(p.payload))
		binary.BigEndian.PutUint16(b[0:], p.sport)
		binary.BigEndian.PutUint16(b[2:], p.dport)
		binary.BigEndian.PutUint16(b[4:], uint16(len(b)))
		copy(b[8:], p.payload)
		return b
	case header.ProtoSCTP:
		b := make([]byte, 12+16+len(p.payload))
		binary.BigEndian.PutUint16(b[0:], p.sport)
		binary.BigEndian.PutUint16(b[2:], p.dport)
		b[12] = 0 // DATA chunk
		binary.BigEndian.PutUint16(b[14:], uint16(16+len(p.payload)))
		copy(b[28:], p.payload)
		return b
	case header.ProtoICMPv4, header.ProtoICMPv6:
		var q []byte
		if p.quoted != nil {
			q = p.quoted.ip()
			if p.is4() && len(q) > 28+p.quoted.ipOptsLen() {
				q = q[:20+p.quoted.ipOptsLen()+8] // header + 64 bits
			}
		}
		b := make([]byte, 8+len(q)+len(p.payload))
		b[0], b[1] = p.icmpType, p.icmpCode
		copy(b[8:], q)
		copy(b[8+len(q):], p.payload)
		return b
	}
	return append([]byte(nil), p.payload...)
}

func (p *pkt) ipOptsLen() int {
	if p.is4() {
		return p.ipOpts
	}
	return 0
}

// ip builds the IP packet of p.
func (p *pkt) ip() []byte {
	l4 := p.l4()
	ttl := p.ttl
	if ttl == 0 {
		ttl = 64
	}
	if p.is4() {
		hl := 20 + p.ipOpts
		b := make([]byte, hl+len(l4))
		opts := make([]byte, p.ipOpts)
		for i := range opts {
			opts[i] = 1 // NOP
		}
		header.IPv4(b).Encode(&header.IPv4Fields{
			TotalLength: uint16(len(b)), ID: 7, MF: p.mf, FragmentOffset: p.fragOff,
			TTL: ttl, Protocol: p.proto, Src: p.src.As4(), Dst: p.dst.As4(), Options: opts,
		})
		copy(b[hl:], l4)
		if p.fragOff == 0 {
			p.setL4Checksum(b[hl:], checksum.PseudoHeaderIPv4(p.src.As4(), p.dst.As4(), p.proto, uint16(len(l4))))
		}
		return b
	}
	// IPv6 with extension headers: each is 8 bytes.
	next := p.proto
	var ext []byte
	for i := len(p.ext) - 1; i >= 0; i-- {
		h := make([]byte, 8)
		h[0] = next
		if p.ext[i] == header.ProtoFragment {
			binary.BigEndian.PutUint16(h[2:], p.fragOff)
			if p.mf {
				h[3] |= 1
			}
			binary.BigEndian.PutUint32(h[4:], 99)
		} else {
			h[2], h[3] = 1, 4 // a PadN option filling the header
		}
		next = p.ext[i]
		ext = append(h, ext...)
	}
	b := make([]byte, 40+len(ext)+len(l4))
	header.IPv6(b).Encode(&header.IPv6Fields{
		PayloadLength: uint16(len(ext) + len(l4)), NextHeader: next, HopLimit: ttl,
		Src: p.src.As16(), Dst: p.dst.As16(),
	})
	copy(b[40:], ext)
	copy(b[40+len(ext):], l4)
	if p.fragOff == 0 {
		p.setL4Checksum(b[40+len(ext):], header.IPv6(b).PseudoHeaderSum(p.proto, uint32(len(l4))))
	}
	return b
}

// setL4Checksum fills the transport checksum of l4 given its pseudo
// header sum.
func (p *pkt) setL4Checksum(l4 []byte, pseudo uint16) {
	switch p.proto {
	case header.ProtoTCP:
		binary.BigEndian.PutUint16(l4[16:], ^checksum.Sum(l4, pseudo))
	case header.ProtoUDP:
		binary.BigEndian.PutUint16(l4[6:], checksum.ForUDP(^checksum.Sum(l4, pseudo)))
	case header.ProtoICMPv4:
		binary.BigEndian.PutUint16(l4[2:], ^checksum.Sum(l4, 0))
	case header.ProtoICMPv6:
		binary.BigEndian.PutUint16(l4[2:], ^checksum.Sum(l4, pseudo))
	case header.ProtoSCTP:
		header.SCTP(l4).SetChecksum(header.SCTP(l4).CalculateChecksum())
	}
}

// frame builds p in an Ethernet frame from srcMAC to dstMAC.
func (p *pkt) frame(dstMAC, srcMAC [6]byte) []byte {
	ip := p.ip()
	f := make([]byte, 14+len(ip))
	copy(f[0:], dstMAC[:])
	copy(f[6:], srcMAC[:])
	et := header.EtherTypeIPv4
	if !p.is4() {
		et = header.EtherTypeIPv6
	}
	binary.BigEndian.PutUint16(f[12:], et)
	copy(f[14:], ip)
	return f
}

// pad pads an Ethernet frame to the 60-byte minimum, as a sender does.
func pad(f []byte) []byte {
	for len(f) < 60 {
		f = append(f, 0)
	}
	return f
}

func mustAddr(s string) netip.Addr { return netip.MustParseAddr(s) }
