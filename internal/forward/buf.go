package forward

import (
	"golvs/internal/flow"
	"golvs/internal/header"
)

// Headroom is the number of bytes the pipeline leaves free in front of a
// received frame, so that every function here can prepend headers without
// copying the packet. The largest need is ICMPError with IPv6: the new
// Ethernet (14), IPv6 (40) and ICMPv6 (8) headers, 62 bytes, go in front
// of the quoted IPv6 header, which sits 14 bytes into the received frame,
// so 62 - 14 = 48 bytes of headroom are used. TUN with an outer IPv6
// header needs 40 (plus 12 for GUE or 8 for GRE with checksum: 52), the
// Ethernet header being reused in place. 64 covers both with room to
// spare and keeps the IP header of a received frame at the same 16-byte
// alignment (64 + 14) in every buffer.
const Headroom = 64

// Buf is a frame buffer: B[Off:Off+Len] is the Ethernet frame, B[:Off] is
// headroom, and B[Off+Len:cap(B)] tailroom. The pipeline allocates each
// buffer once with Headroom bytes in front; functions here may move Off
// (into the headroom, or forward when a VLAN tag is stripped) and change
// Len, but write only inside B[:Off+Len] (the tailroom is never used).
//
// A Buf is a plain value owned by the worker handling the packet; it is
// not safe for concurrent use.
type Buf struct {
	B        []byte
	Off, Len int
}

// Frame returns the frame, B[Off:Off+Len].
func (b *Buf) Frame() []byte { return b.B[b.Off : b.Off+b.Len] }

// valid reports whether Off and Len describe a slice of B.
func (b *Buf) valid() bool {
	return b.Off >= 0 && b.Len >= 0 && b.Off <= len(b.B) && b.Len <= len(b.B)-b.Off
}

// Result says how a rewrite went. Every value but Done leaves the frame
// unchanged (the checks come before the first write), and each is a drop
// reason with its own counter in the pipeline.
type Result uint8

const (
	// Done: the frame was rewritten.
	Done Result = iota
	// TTLExpired: the TTL or hop limit was 1 or 0 (DecTTL, DR); the
	// packet must be answered with an ICMP time exceeded and dropped
	// (the kernel's decrement_ttl).
	TTLExpired
	// Malformed: the Parsed does not describe an IP packet inside the
	// frame with what the rewrite needs (ports for NAT, an ICMP error for
	// NATICMPIn/Out), or an address is of the wrong family. A decoded,
	// forwardable frame never gets this.
	Malformed
	// NoHeadroom: fewer than Headroom bytes in front of the frame.
	NoHeadroom
	// TooBig: the encapsulated packet would exceed 65535 bytes (CheckMTU
	// catches this first on any real link).
	TooBig
	// Refused: ICMPError may not answer this packet (RFC 1122 §3.2.2,
	// RFC 1812 §4.3.2.7, RFC 4443 §2.4 (e)): an ICMP error, a non-first
	// fragment, a packet to a broadcast or multicast address or from one
	// that is not a single host.
	Refused
	// NeedsReassembly: the rewrite needs the whole datagram: an SCTP
	// first fragment whose port changes (its CRC32c covers the whole
	// packet), or an ICMP error that is itself fragmented. The kernel
	// never sees either: it defragments before IPVS.
	NeedsReassembly
	// NoRoom: FragmentIPv4 was given too few or too small buffers.
	NoRoom

	// NumResults is the number of results, for arrays of counters.
	NumResults
)

var resultNames = [NumResults]string{
	Done:            "done",
	TTLExpired:      "ttl_expired",
	Malformed:       "malformed",
	NoHeadroom:      "no_headroom",
	TooBig:          "too_big",
	Refused:         "icmp_refused",
	NeedsReassembly: "needs_reassembly",
	NoRoom:          "no_room",
}

// String returns the result's metric-label name.
func (r Result) String() string {
	if r < NumResults {
		return resultNames[r]
	}
	return "unknown"
}

// ipFrame returns the frame of b if p describes an IP packet lying inside
// it: family set, IP header where p says with the length p says (IPv4 IHL
// included), and at least an Ethernet header in front. These are the
// checks that keep every later slice expression in range whatever b and
// p hold; for a p that Decode filled from this very frame they all hold.
func ipFrame(b *Buf, p *flow.Parsed) ([]byte, bool) {
	if !b.valid() {
		return nil, false
	}
	var hlen int
	switch p.Tuple.Family {
	case flow.FamilyIPv4:
		hlen = header.IPv4MinimumSize
	case flow.FamilyIPv6:
		hlen = header.IPv6MinimumSize
	default:
		return nil, false
	}
	if p.L3Off < header.EthernetMinimumSize || p.IPHdrLen < hlen || p.IPLen < p.IPHdrLen ||
		p.L3Off > b.Len || p.IPLen > b.Len-p.L3Off {
		return nil, false
	}
	f := b.B[b.Off : b.Off+b.Len]
	v := f[p.L3Off] >> 4 // the version nibble: 4 or 6, as the family constants
	if v != p.Tuple.Family {
		return nil, false
	}
	if v == 4 && header.IPv4(f[p.L3Off:]).HeaderLength() != p.IPHdrLen {
		return nil, false
	}
	return f, true
}
