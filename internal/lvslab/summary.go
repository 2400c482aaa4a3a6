package lvslab

import (
	"fmt"
	"strings"
)

// Summarize describes an Ethernet frame in one line, tcpdump-like:
//
//	02:00:00:00:00:01 > 02:00:00:00:00:02 IPv4 192.0.2.1:40000 > 192.0.2.2:80 TCP [S] seq=1 win=65535 mss=1460 len=0
//
// Tunnelled packets show the inner packet in brackets. It never fails: a
// frame it cannot decode is described as such.
func Summarize(frame []byte) string {
	if len(frame) < ethHdrLen {
		return fmt.Sprintf("short frame (%d bytes)", len(frame))
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%v > %v ", macAt(frame[6:]), macAt(frame))
	payload := frame[ethHdrLen:]
	switch et := be16(frame[12:]); et {
	case etherTypeARP:
		summarizeARP(&b, payload)
	case etherTypeIPv4, etherTypeIPv6:
		summarizeIP(&b, payload, 0)
	default:
		fmt.Fprintf(&b, "ethertype %#04x len=%d", et, len(payload))
	}
	return b.String()
}

// SummarizeIP describes an IP packet (no Ethernet header) in one line.
func SummarizeIP(pkt []byte) string {
	var b strings.Builder
	summarizeIP(&b, pkt, 0)
	return b.String()
}

func summarizeARP(b *strings.Builder, p []byte) {
	if len(p) < arpLen {
		b.WriteString("ARP truncated")
		return
	}
	switch be16(p[6:]) {
	case arpRequest:
		fmt.Fprintf(b, "ARP who-has %v tell %v", addr4At(p[24:]), addr4At(p[14:]))
	case arpReply:
		fmt.Fprintf(b, "ARP %v is-at %v", addr4At(p[14:]), macAt(p[8:]))
	default:
		fmt.Fprintf(b, "ARP op %d", be16(p[6:]))
	}
}

func summarizeIP(b *strings.Builder, p []byte, depth int) {
	ip, r := parseIP(p, true)
	if r != 0 {
		fmt.Fprintf(b, "IP malformed (%d bytes)", len(p))
		return
	}
	v := "IPv4"
	if ip.v6 {
		v = "IPv6"
	}
	if !ip.v6 && len(p) >= ipv4HdrLen && checksum(p[:ip.hlen], 0) != 0 {
		v += " BAD-IP-CSUM"
	}
	b.WriteString(v)
	if ip.trunc {
		b.WriteString(" truncated")
	}
	if ip.isFragment() {
		fmt.Fprintf(b, " frag id=%d off=%d", ip.id, ip.fragOff)
		if ip.mf {
			b.WriteString("+")
		}
	}
	if ip.fragOff != 0 {
		fmt.Fprintf(b, " %v > %v proto %d len=%d", ip.src, ip.dst, ip.proto, ip.tlen)
		return
	}
	l4 := p[min(ip.hlen, len(p)):min(ip.tlen, len(p))]
	switch ip.proto {
	case protoTCP:
		s, ok := parseTCP(l4)
		if !ok {
			fmt.Fprintf(b, " %v > %v TCP truncated", ip.src, ip.dst)
			return
		}
		fmt.Fprintf(b, " %v:%d > %v:%d TCP [%s] seq=%d", ip.src, s.sport, ip.dst, s.dport, tcpFlagString(s.flags), s.seq)
		if s.flags&tcpACK != 0 {
			fmt.Fprintf(b, " ack=%d", s.ack)
		}
		fmt.Fprintf(b, " win=%d", s.wnd)
		if s.mss != 0 {
			fmt.Fprintf(b, " mss=%d", s.mss)
		}
		fmt.Fprintf(b, " len=%d", len(s.data))
		if !ip.mf && !ip.trunc && l4Checksum(ip.src, ip.dst, protoTCP, l4) != 0 {
			b.WriteString(" BAD-CSUM")
		}
	case protoUDP:
		if len(l4) < udpHdrLen {
			fmt.Fprintf(b, " %v > %v UDP truncated", ip.src, ip.dst)
			return
		}
		fmt.Fprintf(b, " %v:%d > %v:%d UDP len=%d", ip.src, be16(l4), ip.dst, be16(l4[2:]), len(l4)-udpHdrLen)
		if !ip.mf && !ip.trunc {
			switch {
			case be16(l4[6:]) == 0:
				b.WriteString(" csum=0")
			case l4Checksum(ip.src, ip.dst, protoUDP, l4) != 0:
				b.WriteString(" BAD-CSUM")
			}
		}
	case protoICMP, protoICMPv6:
		fmt.Fprintf(b, " %v > %v ", ip.src, ip.dst)
		summarizeICMP(b, l4, ip.v6, depth)
	case protoIPIP, protoIPv6:
		fmt.Fprintf(b, " %v > %v ", ip.src, ip.dst)
		if ip.proto == protoIPIP {
			b.WriteString("IPIP [")
		} else {
			b.WriteString("IP6IP [")
		}
		if depth < maxTunnelDepth {
			summarizeIP(b, l4, depth+1)
		}
		b.WriteString("]")
	default:
		fmt.Fprintf(b, " %v > %v proto %d len=%d", ip.src, ip.dst, ip.proto, len(l4))
	}
}

func summarizeICMP(b *strings.Builder, m []byte, v6 bool, depth int) {
	if len(m) < icmpHdrLen {
		b.WriteString("ICMP truncated")
		return
	}
	typ, code := m[0], m[1]
	name := "ICMP"
	if v6 {
		name = "ICMPv6"
	}
	switch {
	case !v6 && typ == icmpEcho, v6 && typ == icmp6EchoRequest:
		fmt.Fprintf(b, "%s echo request id=%d seq=%d len=%d", name, be16(m[4:]), be16(m[6:]), len(m)-icmpHdrLen)
		return
	case !v6 && typ == icmpEchoReply, v6 && typ == icmp6EchoReply:
		fmt.Fprintf(b, "%s echo reply id=%d seq=%d len=%d", name, be16(m[4:]), be16(m[6:]), len(m)-icmpHdrLen)
		return
	case v6 && typ == icmp6NS && len(m) >= 24:
		fmt.Fprintf(b, "ICMPv6 neighbor solicitation who-has %v", addr16At(m[8:]))
		return
	case v6 && typ == icmp6NA && len(m) >= 24:
		fmt.Fprintf(b, "ICMPv6 neighbor advertisement %v", addr16At(m[8:]))
		return
	case !v6 && typ == icmpDestUnreach && code == unreachFragNeeded:
		fmt.Fprintf(b, "ICMP frag-needed mtu=%d", be16(m[6:]))
	case v6 && typ == icmp6PacketTooBig:
		fmt.Fprintf(b, "ICMPv6 packet-too-big mtu=%d", be32(m[4:]))
	case !v6 && typ == icmpDestUnreach:
		fmt.Fprintf(b, "ICMP unreachable code=%d", code)
	case v6 && typ == icmp6DestUnreach:
		fmt.Fprintf(b, "ICMPv6 unreachable code=%d", code)
	case !v6 && typ == icmpTimeExceeded, v6 && typ == icmp6TimeExceeded:
		fmt.Fprintf(b, "%s time-exceeded code=%d", name, code)
	default:
		fmt.Fprintf(b, "%s type=%d code=%d len=%d", name, typ, code, len(m)-icmpHdrLen)
		return
	}
	if depth < maxTunnelDepth && len(m) > icmpHdrLen {
		b.WriteString(" [")
		summarizeIP(b, m[icmpHdrLen:], depth+1)
		b.WriteString("]")
	}
}

func tcpFlagString(f uint8) string {
	var s []byte
	for _, x := range []struct {
		bit uint8
		c   byte
	}{{tcpSYN, 'S'}, {tcpFIN, 'F'}, {tcpRST, 'R'}, {tcpPSH, 'P'}, {tcpACK, '.'}} {
		if f&x.bit != 0 {
			s = append(s, x.c)
		}
	}
	if len(s) == 0 {
		return "none"
	}
	return string(s)
}
