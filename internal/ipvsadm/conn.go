package ipvsadm

import (
	"fmt"
	"strconv"
	"strings"

	"golvs/internal/service"
)

// This file is `ipvsadm -L -c` (ipvsadm.c list_conn and print_conn), which
// reformats the kernel's /proc/net/ip_vs_conn (ip_vs_conn.c
// ip_vs_conn_seq_show): ipvsadm parses each line back with sscanf and
// prints it with its own column widths. What survives that round trip is
// reproduced here from ConnEntry directly.

// Headers of the connection listing; with --persistent-conn the header
// names a destination column 18 wide while the rows make it 16 (as
// ipvsadm does).
var (
	connHeader = "IPVS connection entries\n" +
		fmt.Sprintf("pro expire %-11s %-18s %-18s %s\n", "state", "source", "virtual", "destination")
	connHeaderPE = "IPVS connection entries\n" +
		fmt.Sprintf("pro expire %-11s %-18s %-18s %-18s %-16s %s\n",
			"state", "source", "virtual", "destination", "pe name", "pe_data")
)

// kernelProtoName is ip_vs_proto_name: the protocol column of
// /proc/net/ip_vs_conn, which ipvsadm prints as it reads it.
func kernelProtoName(proto uint8) string {
	switch proto {
	case 0: // IPPROTO_IP: templates of fwmark services
		return "IP"
	case service.ProtoTCP:
		return "TCP"
	case service.ProtoUDP:
		return "UDP"
	case service.ProtoSCTP:
		return "SCTP"
	case 1: // IPPROTO_ICMP
		return "ICMP"
	case 58: // IPPROTO_ICMPV6
		return "ICMPv6"
	}
	return "IP_" + strconv.Itoa(int(proto))
}

// firstToken is what sscanf's "%s" takes of a field: up to the first
// white space.
func firstToken(s string) string {
	s = strings.TrimLeft(s, " \t\n\v\f\r")
	if i := strings.IndexAny(s, " \t\n\v\f\r"); i >= 0 {
		return s[:i]
	}
	return s
}

// conns is list_conn: the header, then one row per connection in the order
// of s.Conns.
//
//	"%-3s %-6s %-11s %-18s %-18s %s\n"
//	"%-3s %-6s %-11s %-18s %-18s %-16s %-18s %s\n" (--persistent-conn, PE data present)
func (p *printer) conns(s *State) {
	pe := p.fl&fmtPersistentConn != 0
	if pe {
		p.str(connHeaderPE)
	} else {
		p.str(connHeader)
	}
	for i := range s.Conns {
		p.conn(&s.Conns[i], pe)
	}
}

func (p *printer) conn(c *ConnEntry, pe bool) {
	// ipvsadm resolves port names only for the protocols it knows by
	// name; "IP" and the others are numeric.
	proto := c.Proto
	switch proto {
	case service.ProtoTCP, service.ProtoUDP, service.ProtoSCTP:
	default:
		proto = 0
	}
	// The client's family is the connection's (cp->af): the virtual
	// address is printed in it too. The destination has its own (daf).
	af := service.IPv4
	if c.CAddr.Is6() {
		af = service.IPv6
	}
	daf := service.IPv4
	if c.DAddr.Is6() {
		daf = service.IPv6
	}
	vaddr := c.VAddr
	if c.Proto == 0 && !vaddr.IsValid() && c.FWMark != 0 {
		vaddr = FWMarkAddr(af, c.FWMark)
	}
	cu, vu, du := inetUnion(c.CAddr), inetUnion(vaddr), inetUnion(c.DAddr)

	p.left(kernelProtoName(c.Proto), 3)
	p.buf = append(p.buf, ' ')
	// expire_str: "%02d:%02d" of minutes and seconds, minutes unbounded.
	start := len(p.buf)
	appendPad2(p, uint64(c.Expires/60))
	p.buf = append(p.buf, ':')
	appendPad2(p, uint64(c.Expires%60))
	p.padFrom(start, 6)
	p.buf = append(p.buf, ' ')
	p.left(firstToken(c.State), 11)
	p.buf = append(p.buf, ' ')
	start = len(p.buf)
	p.addrPort(af, &cu, c.CPort, proto)
	p.padFrom(start, 18)
	p.buf = append(p.buf, ' ')
	start = len(p.buf)
	p.addrPort(af, &vu, c.VPort, proto)
	p.padFrom(start, 18)
	p.buf = append(p.buf, ' ')
	peName, peData := firstToken(c.PEName), firstToken(c.PEData)
	if pe && peName != "" && peData != "" {
		start = len(p.buf)
		p.addrPort(daf, &du, c.DPort, proto)
		p.padFrom(start, 16)
		p.buf = append(p.buf, ' ')
		p.left(peName, 18)
		p.buf = append(p.buf, ' ')
		p.str(peData)
	} else {
		p.addrPort(daf, &du, c.DPort, proto)
	}
	p.nl()
}

// appendPad2 appends v as "%02d".
func appendPad2(p *printer, v uint64) {
	if v < 10 {
		p.buf = append(p.buf, '0')
	}
	p.buf = strconv.AppendUint(p.buf, v, 10)
}
