// Package header provides zero-allocation views of the wire formats that
// the packet path reads and rewrites: Ethernet with one 802.1Q tag, ARP for
// IPv4, IPv4, IPv6 and its extension headers, TCP, UDP, SCTP, ICMPv4,
// ICMPv6, and the outer headers of IP-in-IP and IPv6-in-IPv6 tunnels. It is
// the counterpart of the kernel's uapi headers (linux/if_ether.h,
// if_arp.h, ip.h, ipv6.h, tcp.h, udp.h, icmp.h, icmpv6.h, sctp.h) as
// net/netfilter/ipvs/ip_vs_core.c and ip_vs_xmit.c read them, and of
// net/ipv6/exthdrs_core.c (ipv6_find_hdr), after gVisor's
// pkg/tcpip/header.
//
// Each header is a named []byte starting at the header's first byte, with
// one accessor and one setter per field, all big-endian (network order)
// except where a comment says otherwise. Addresses are returned as arrays,
// copies that neither allocate nor alias the packet. Every wire format has
// its RFC diagram above its offsets.
//
// Validate once, then read freely (style.md §4.1): a view's IsValid
// method, or a length check the caller has already made (flow.Parsed does
// this once per packet), guarantees that the accessors stay in range.
// Accessors do no checking of their own beyond Go's bounds checks, so an
// accessor on an unvalidated view may panic with an index out of range;
// IsValid and the extension walk never panic.
//
// Setters write in place. Those named ...WithChecksumUpdate also fix the
// header's own checksum incrementally (RFC 1624); a transport checksum
// that covers an IP address through the pseudo header is the caller's to
// update (checksum.Update32, checksum.UpdateAddr).
//
// Views are plain slices: they are as safe for concurrent use as the bytes
// they look at.
package header
