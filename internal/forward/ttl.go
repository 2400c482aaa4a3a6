package forward

import (
	"golvs/internal/flow"
	"golvs/internal/header"
)

// DecTTL decrements the IPv4 TTL (updating the header checksum, RFC 1624)
// or the IPv6 hop limit of the packet, as every forwarding method does
// before the MTU check (the kernel's decrement_ttl in ip_vs_xmit.c, which
// uses ip_decrease_ttl). A TTL or hop limit of 1 or 0 is left as it is and
// TTLExpired returned: the packet must be answered with ICMP time exceeded
// (ICMPError with TimeExceeded) and dropped, as RFC 1812 §5.3.1 and RFC
// 8200 §3 require of a router.
//
// Afterwards p.TTL is stale (it holds the value before the decrement).
func DecTTL(b *Buf, p *flow.Parsed) Result {
	f, ok := ipFrame(b, p)
	if !ok {
		return Malformed
	}
	ip := f[p.L3Off:]
	if p.Tuple.Family == flow.FamilyIPv4 {
		h := header.IPv4(ip)
		ttl := h.TTL()
		if ttl <= 1 {
			return TTLExpired
		}
		h.SetTTLWithChecksumUpdate(ttl - 1)
		return Done
	}
	h := header.IPv6(ip)
	hl := h.HopLimit()
	if hl <= 1 {
		return TTLExpired
	}
	h.SetHopLimit(hl - 1)
	return Done
}
