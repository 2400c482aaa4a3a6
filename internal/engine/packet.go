package engine

import (
	"net/netip"

	"golvs/internal/conntable"
	"golvs/internal/service"
)

// Packet is what the engine needs to know of a packet, filled by the packet
// path's parser. It holds no pointers into packet memory.
type Packet struct {
	Proto            uint8 // service.ProtoTCP, ProtoUDP, ProtoSCTP
	Src, Dst         netip.Addr
	SrcPort, DstPort uint16
	// TCPFlags is the TCP flags byte (FIN 0x01, SYN 0x02, RST 0x04,
	// ACK 0x10); for SCTP the first chunk type with the bundled-ABORT rule
	// applied (proto.SCTPEffectiveChunk).
	TCPFlags uint8
	// Len is the length of the IP packet in bytes (no link header): what
	// the byte counters count.
	Len int
	// Mark is the firewall mark the packet classifies to (0: none).
	Mark uint32
	// Fragment is set for a non-first fragment, which has no ports: it
	// never creates or reuses a connection.
	Fragment bool
}

// Verdict says what the packet path does with a packet.
type Verdict uint8

const (
	// Pass: not IPVS traffic; hand the packet to the host stack unchanged.
	Pass Verdict = iota
	// Forward: transmit per the Decision (request to the real server by
	// its forwarding method, or a reply to the client after SNAT).
	Forward
	// Reject: no real server is available: send ICMP (or ICMPv6) port
	// unreachable to the client and drop the packet (ip_vs_leave).
	Reject
	// Drop: discard the packet; Decision.Reason says why.
	Drop
)

func (v Verdict) String() string {
	switch v {
	case Pass:
		return "pass"
	case Forward:
		return "forward"
	case Reject:
		return "reject"
	case Drop:
		return "drop"
	}
	return "verdict?"
}

// DropReason says why a packet was dropped. Each has a counter.
type DropReason uint8

const (
	// DropNone is the reason of a packet that was not dropped.
	DropNone DropReason = iota
	// DropDestUnavailable: the connection's real server was deleted and
	// expire_nodest_conn is off.
	DropDestUnavailable
	// DropTableFull: a new connection found the connection table full.
	DropTableFull
	// DropNoDest: no real server available for an ICMP-related packet
	// (ip_vs_leave drops instead of answering ICMP with ICMP).
	DropNoDest

	// NumDropReasons is the number of drop reasons.
	NumDropReasons
)

var dropNames = [NumDropReasons]string{
	DropNone:            "none",
	DropDestUnavailable: "dest_unavailable",
	DropTableFull:       "conn_table_full",
	DropNoDest:          "no_dest",
}

func (r DropReason) String() string {
	if r < NumDropReasons {
		return dropNames[r]
	}
	return "unknown"
}

// Decision is the engine's answer for one packet.
type Decision struct {
	Verdict Verdict
	Reason  DropReason // with Drop

	// With Forward of a request: the real server and how to reach it.
	// DAddr:DPort is the NAT destination (for DR and TUN the port equals
	// the packet's). With Forward of a reply: VAddr:VPort is the source
	// to put back for NAT (SNAT); other methods leave the reply unchanged.
	Fwd          service.FwdMethod
	Dest         *service.Dest
	DAddr, VAddr netip.Addr
	DPort, VPort uint16
	// Conn is the connection entry (0 for a one-packet connection, which
	// is not kept).
	Conn conntable.Ref
}
