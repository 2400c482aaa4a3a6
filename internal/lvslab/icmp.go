package lvslab

import (
	"fmt"
	"net/netip"
)

// ICMP (RFC 792, RFC 1191, RFC 4443). Every message starts
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|     Type      |     Code      |          Checksum             |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|  echo: Identifier / Sequence; frag-needed: unused / MTU;      |
//	|  ICMPv6 packet too big: MTU; parameter problem: pointer       |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//
// and an error carries as much of the offending packet as fits.
const (
	icmpEchoReply     = 0
	icmpDestUnreach   = 3
	icmpEcho          = 8
	icmpTimeExceeded  = 11
	icmpParamProblem  = 12
	unreachNet        = 0
	unreachHost       = 1
	unreachProto      = 2
	unreachPort       = 3
	unreachFragNeeded = 4

	icmp6DestUnreach  = 1
	icmp6PacketTooBig = 2
	icmp6TimeExceeded = 3
	icmp6ParamProblem = 4
	icmp6EchoRequest  = 128
	icmp6EchoReply    = 129

	// icmpErrorMax and icmp6ErrorMax bound an error message with its IP
	// header: RFC 1812 §4.3.2.3 (576) and RFC 4443 §2.4(c) (the minimum
	// IPv6 MTU, 1280).
	icmpErrorMax  = 576
	icmp6ErrorMax = 1280
)

// ICMPError is an ICMP or ICMPv6 error a host received about a packet it
// had sent.
type ICMPError struct {
	From netip.Addr     // sender of the error (a router or the destination)
	V6   bool           // ICMPv6 numbering
	Type uint8          // as on the wire
	Code uint8          // as on the wire
	MTU  int            // next-hop MTU of frag-needed / packet too big
	Dst  netip.AddrPort // destination of the packet the error is about
}

// Error formats e.
func (e *ICMPError) Error() string {
	v := "ICMP"
	if e.V6 {
		v = "ICMPv6"
	}
	s := fmt.Sprintf("%s type %d code %d from %v about %v", v, e.Type, e.Code, e.From, e.Dst)
	if e.MTU != 0 {
		s += fmt.Sprintf(" mtu %d", e.MTU)
	}
	return s
}

// IsFragNeeded reports a fragmentation needed or packet too big error.
func (e *ICMPError) IsFragNeeded() bool {
	if e.V6 {
		return e.Type == icmp6PacketTooBig
	}
	return e.Type == icmpDestUnreach && e.Code == unreachFragNeeded
}

// IsPortUnreachable reports a port unreachable error.
func (e *ICMPError) IsPortUnreachable() bool {
	if e.V6 {
		return e.Type == icmp6DestUnreach && e.Code == 4
	}
	return e.Type == icmpDestUnreach && e.Code == unreachPort
}

// IsUnreachable reports any destination unreachable other than
// fragmentation needed, or a time exceeded: a hard error for a connect.
func (e *ICMPError) IsUnreachable() bool {
	if e.V6 {
		return e.Type == icmp6DestUnreach || e.Type == icmp6TimeExceeded
	}
	return e.Type == icmpDestUnreach && e.Code != unreachFragNeeded || e.Type == icmpTimeExceeded
}

// ICMPErrors returns every ICMP error the host has received, in order.
func (h *Host) ICMPErrors() []ICMPError { return append([]ICMPError(nil), h.icmpErrs...) }

// isICMPError reports whether the packet is itself an ICMP error, about
// which no error may be sent (RFC 1122 §3.2.2, RFC 4443 §2.4(e)).
func isICMPError(pkt []byte, ip ipHdr) bool {
	if ip.fragOff != 0 || ip.tlen <= ip.hlen {
		return false
	}
	t := pkt[ip.hlen]
	if ip.v6 {
		return ip.proto == protoICMPv6 && t < 128
	}
	return ip.proto == protoICMP && t != icmpEcho && t != icmpEchoReply && t != 13 && t != 14 // timestamp (13, 14) are queries too
}

// sendUnreachable sends a destination unreachable of the IPv4 code to the
// packet's source, mapped to ICMPv6 for an IPv6 packet.
func (h *Host) sendUnreachable(pkt []byte, ip ipHdr, code uint8) {
	if !ip.v6 {
		h.sendICMPError(pkt, ip, icmpDestUnreach, code, 0)
		return
	}
	switch code {
	case unreachNet:
		h.sendICMPError(pkt, ip, icmp6DestUnreach, 0, 0) // no route
	case unreachHost:
		h.sendICMPError(pkt, ip, icmp6DestUnreach, 3, 0) // address unreachable
	case unreachPort:
		h.sendICMPError(pkt, ip, icmp6DestUnreach, 4, 0) // port unreachable
	}
}

// sendICMPError sends an ICMP error about pkt to its source (Linux
// icmp_send / icmp6_send), unless the rules forbid it: never about an ICMP
// error, a non-first fragment, a packet to a group address or from a
// non-unicast source.
func (h *Host) sendICMPError(pkt []byte, ip ipHdr, typ, code uint8, info uint32) {
	if ip.fragOff != 0 || isICMPError(pkt, ip) ||
		ip.dst.IsMulticast() || ip.dst == limitedBroadcast ||
		!ip.src.IsValid() || ip.src.IsUnspecified() || ip.src.IsMulticast() || ip.src == limitedBroadcast {
		return
	}
	// Reply from the address the packet was sent to if it is ours,
	// else from the address the route back selects (Linux's default,
	// icmp_errors_use_inbound_ifaddr=0).
	var src netip.Addr
	if h.IsLocal(ip.dst) {
		src = ip.dst
	} else {
		var ok bool
		if src, ok = h.SourceAddr(ip.src); !ok {
			return
		}
	}
	limit, proto := icmpErrorMax-ipv4HdrLen, uint8(protoICMP)
	if ip.v6 {
		limit, proto = icmp6ErrorMax-ipv6HdrLen, protoICMPv6
	}
	body := pkt[:min(ip.tlen, limit-icmpHdrLen)]
	msg := make([]byte, icmpHdrLen+len(body))
	msg[0], msg[1] = typ, code
	put32(msg[4:], info)
	copy(msg[icmpHdrLen:], body)
	if ip.v6 {
		put16(msg[2:], l4Checksum(src, ip.src, protoICMPv6, msg))
	} else {
		put16(msg[2:], checksum(msg, 0))
	}
	_ = h.sendIP(src, ip.src, proto, msg, false)
}

// icmpInput handles ICMP and ICMPv6 messages addressed to the host
// (checksum already verified).
func (h *Host) icmpInput(ifc *Interface, pkt []byte, ip ipHdr, msg []byte) {
	if len(msg) < icmpHdrLen {
		h.dropIP(DropMalformed, ifc.index, pkt)
		return
	}
	typ := msg[0]
	if ip.v6 {
		switch typ {
		case icmp6EchoRequest:
			h.echoReply(ip, msg, icmp6EchoReply)
		case icmp6EchoReply:
			h.pingReply(ip, msg)
		case icmp6DestUnreach, icmp6PacketTooBig, icmp6TimeExceeded, icmp6ParamProblem:
			h.icmpErrorInput(ip, msg)
		case icmp6NS, icmp6NA:
			h.ndInput(ifc, ip, msg)
		}
		return
	}
	switch typ {
	case icmpEcho:
		h.echoReply(ip, msg, icmpEchoReply)
	case icmpEchoReply:
		h.pingReply(ip, msg)
	case icmpDestUnreach, icmpTimeExceeded, icmpParamProblem:
		h.icmpErrorInput(ip, msg)
	}
}

// echoReply answers an echo request from the address it was sent to
// (Linux icmp_reply); requests to group addresses are ignored
// (icmp_echo_ignore_broadcasts=1).
func (h *Host) echoReply(ip ipHdr, msg []byte, replyType uint8) {
	if !h.IsLocal(ip.dst) {
		return
	}
	reply := append([]byte(nil), msg...)
	reply[0], reply[1] = replyType, 0
	put16(reply[2:], 0)
	proto := uint8(protoICMP)
	if ip.v6 {
		proto = protoICMPv6
		put16(reply[2:], l4Checksum(ip.dst, ip.src, protoICMPv6, reply))
	} else {
		put16(reply[2:], checksum(reply, 0))
	}
	// The kernel's ICMP socket sends with IP_PMTUDISC_DONT: no DF.
	_ = h.sendIP(ip.dst, ip.src, proto, reply, false)
}

// wantDF is IP_PMTUDISC_WANT, Linux's default for UDP and ping: set DF on
// an IPv4 packet that fits the path MTU; a bigger one is fragmented.
func (h *Host) wantDF(dst netip.Addr, size int) bool {
	return dst.Is4() && size <= h.PathMTU(dst)
}

// icmpErrorInput hands an ICMP error to the socket it is about (Linux
// icmp_unreach → tcp_v4_err / __udp4_lib_err / ping_err).
func (h *Host) icmpErrorInput(ip ipHdr, msg []byte) {
	emb := msg[icmpHdrLen:]
	in, r := parseIP(emb, true)
	if r != 0 || in.v6 != ip.v6 || !h.IsLocal(in.src) {
		return
	}
	h.ctr.icmpErrs.Add(1)
	e := ICMPError{From: ip.src, V6: ip.v6, Type: msg[0], Code: msg[1], Dst: netip.AddrPortFrom(in.dst, 0)}
	if e.IsFragNeeded() {
		if ip.v6 {
			e.MTU = int(be32(msg[4:]))
		} else {
			e.MTU = int(be16(msg[6:]))
		}
		if e.MTU > 0 {
			h.learnPMTU(in.dst, e.MTU)
		}
	}
	l4 := emb[min(in.hlen, len(emb)):]
	if in.fragOff != 0 || len(l4) < 8 {
		h.icmpErrs = append(h.icmpErrs, e)
		return
	}
	sport, dport := be16(l4[0:]), be16(l4[2:])
	switch in.proto {
	case protoTCP, protoUDP:
		e.Dst = netip.AddrPortFrom(in.dst, dport)
	}
	h.icmpErrs = append(h.icmpErrs, e)
	switch in.proto {
	case protoTCP:
		k := tcpKey{local: netip.AddrPortFrom(in.src, sport), remote: netip.AddrPortFrom(in.dst, dport)}
		if c := h.tcpConns[k]; c != nil {
			c.icmpError(e, be32(l4[4:]))
		}
	case protoUDP:
		if c := h.udpLookup(in.src, sport); c != nil {
			c.errs = append(c.errs, e)
		}
	case protoICMP, protoICMPv6:
		if l4[0] == icmpEcho || l4[0] == icmp6EchoRequest {
			if p := h.pings[uint32(be16(l4[4:]))<<16|uint32(be16(l4[6:]))]; p != nil {
				p.Err = &e
			}
		}
	}
}

// Ping is an echo request a host sent and what came back.
type Ping struct {
	Src, Dst  netip.Addr
	ID, Seq   uint16
	Replies   int        // echo replies received (more than 1 means duplicates)
	ReplyFrom netip.Addr // source of the first reply
	Err       *ICMPError // an ICMP error about the request, if one came
}

// Ping sends an ICMP or ICMPv6 echo request with size bytes of data from
// src (zero: chosen by the route) to dst. Drain, then look at the Ping.
func (h *Host) Ping(src, dst netip.Addr, size int) (*Ping, error) {
	dst = dst.Unmap()
	if !src.IsValid() {
		var ok bool
		if src, ok = h.SourceAddr(dst); !ok {
			return nil, fmt.Errorf("lvslab: %s: ping %v: %w", h.name, dst, ErrNoRoute)
		}
	}
	h.pingSeq++
	p := &Ping{Src: src, Dst: dst, ID: h.pingID, Seq: h.pingSeq}
	h.pings[uint32(p.ID)<<16|uint32(p.Seq)] = p
	msg := make([]byte, icmpHdrLen+size)
	put16(msg[4:], p.ID)
	put16(msg[6:], p.Seq)
	for i := range size {
		msg[icmpHdrLen+i] = byte(i) // a recognisable pattern, like ping's
	}
	proto := uint8(protoICMP)
	if dst.Is6() {
		msg[0] = icmp6EchoRequest
		proto = protoICMPv6
		put16(msg[2:], l4Checksum(src, dst, protoICMPv6, msg))
	} else {
		msg[0] = icmpEcho
		put16(msg[2:], checksum(msg, 0))
	}
	if err := h.sendIP(src, dst, proto, msg, h.wantDF(dst, ipv4HdrLen+len(msg))); err != nil {
		return nil, fmt.Errorf("lvslab: %s: ping %v: %w", h.name, dst, err)
	}
	return p, nil
}

func (h *Host) pingReply(ip ipHdr, msg []byte) {
	p := h.pings[uint32(be16(msg[4:]))<<16|uint32(be16(msg[6:]))]
	if p == nil {
		return
	}
	if p.Replies == 0 {
		p.ReplyFrom = ip.src
	}
	p.Replies++
}
