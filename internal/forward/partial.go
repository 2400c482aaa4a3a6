package forward

import (
	"golvs/internal/checksum"
	"golvs/internal/flow"
	"golvs/internal/header"
)

// CompleteChecksum computes in software a transport checksum that was
// left partial for offload (the kernel's skb_checksum_help for
// CHECKSUM_PARTIAL): for TCP and UDP the checksum field holds the
// un-complemented pseudo-header sum, and summing the segment with it in
// place gives the sum a full computation would, so the field gets its
// complement (a UDP 0 sent as 0xFFFF); for SCTP the CRC32c is computed.
// Use it when the frame must leave without offload, for example before
// Encap with an outer checksum. The partial flag of the other functions
// no longer applies afterwards.
//
// A fragment never carries a partial checksum (offload happens before
// fragmentation): Malformed, as for a packet that is not TCP, UDP or
// SCTP or whose transport header is not all there.
func CompleteChecksum(b *Buf, p *flow.Parsed) Result {
	f, ok := ipFrame(b, p)
	if !ok || p.IsFragment || !p.HasPorts || p.Reason != flow.ReasonNone {
		return Malformed
	}
	end := p.L3Off + p.IPLen
	if p.L4Off < p.L3Off+p.IPHdrLen || p.L4Off > end {
		return Malformed
	}
	l4 := f[p.L4Off:end]
	switch p.Tuple.Proto {
	case header.ProtoTCP:
		if len(l4) < header.TCPMinimumSize {
			return Malformed
		}
		header.TCP(l4).SetChecksum(^checksum.Sum(l4, 0))
	case header.ProtoUDP:
		u := header.UDP(l4)
		if !u.IsValid() {
			return Malformed
		}
		u.SetChecksum(checksum.ForUDP(^checksum.Sum(l4[:u.Length()], 0)))
	case header.ProtoSCTP:
		if len(l4) < header.SCTPCommonHeaderSize {
			return Malformed
		}
		s := header.SCTP(l4)
		s.SetChecksum(s.CalculateChecksum())
	default:
		return Malformed
	}
	return Done
}
