// Package realserver prepares a Linux host to be an LVS real server for
// direct routing (DR) and tunnelling (TUN): what the classic realserver
// scripts do by hand (lvs_dr_rs / lvs_tun_rs), plus a user-space IP-in-IP
// decapsulator for kernels built without the ipip module.
//
// There is no kernel file for this side: IPVS (net/netfilter/ipvs) only
// runs on the director. The kernel files this package stands in for or
// relies on are net/ipv4/ipip.c, net/ipv6/sit.c and net/ipv6/ip6_tunnel.c
// (decapsulation, which Decap replaces in user space), net/ipv4/arp.c
// (arp_ignore, arp_announce: Documentation/networking/ip-sysctl.rst) and
// net/ipv4/fib_frontend.c (fib_validate_source, rp_filter).
//
// # What Setup does
//
// For every VIP:
//
//   - the address on lo with a /32 (IPv4) or /128 (IPv6) prefix, so the
//     host accepts packets for it without owning it on the wire. With TUN
//     on a kernel that decapsulates IPv4-in-IPv4 itself, IPv4 VIPs go on
//     tunl0 instead, as in the LVS-TUN howto;
//   - for IPv4, the scripts' host route ("route add -host VIP dev lo"): a
//     main-table route VIP/32 dev lo scope link. The kernel's own local
//     route already delivers the VIP; the host route only keeps the state
//     the scripts left, so that tools that look for it find it. IPv6 gets
//     none: the kernel turns an IPv6 route through lo into a reject route
//     (ip6_route_info_create), and the address's own /128 route suffices.
//
// Once for the host (only where the current value is not already strict
// enough; the rules are in sysctl.go):
//
//   - net.ipv4.conf.{all,lo}.arp_ignore = 1: answer ARP only for addresses
//     of the interface the request came in on, so the real server does not
//     answer for the VIP that only the director may answer for (the kernel
//     uses the larger of "all" and the interface's value; lo is set as the
//     scripts do, it never receives ARP). 2 and 8 are also strict enough
//     and are left alone; 3 is not (it answers for global-scope addresses
//     on lo).
//   - net.ipv4.conf.{all,lo}.arp_announce = 2: never use the VIP as the
//     source of the host's own ARP requests (the larger value wins, 2 is
//     the largest).
//   - IPv6 needs no equivalent: Neighbour Discovery answers a Neighbor
//     Solicitation only for an address of the interface it came in on
//     (ndisc_recv_ns looks the target up with ipv6_get_ifaddr(.., dev,
//     strict=1)), so an IPv6 VIP on lo is never answered for on the wire.
//   - with TUN, net.ipv4.conf.all.rp_filter relaxed from 1 (strict) to 2
//     (loose), and the same on the decapsulating interface (tunl0, or
//     Decap's TUN device): a decapsulated packet comes in on the tunnel
//     interface with the client's source address, which strict reverse-path
//     filtering rejects because the route back to the client leaves through
//     another interface (the kernel uses the larger of "all" and the
//     interface's value). 0 and 2 are left alone. "default" is not touched:
//     it only seeds interfaces created later, and Setup and Decap set the
//     one interface that needs it directly. Loose filtering still rejects
//     everything that arrives on an interface with no IPv4 address
//     (fib_validate_source: no_addr leads to the reject for any rp_filter
//     but 0), so the decapsulating interface carries the IPv4 VIPs: tunl0
//     instead of lo, Decap's device in addition to lo (seen on kernel
//     6.18, 2026-11-22: without the address every decapsulated packet was
//     counted as IPReversePathFilter).
//
// Everything Setup changes is recorded in a state file (DefaultStateDir,
// file StateFile) before it is changed, with the value it replaced, so
// that Teardown undoes exactly that and nothing else: an address or route
// that was already there stays, a sysctl is put back to its previous
// value (unless someone changed it since, which is then reported and left
// alone), an interface Setup brought up is brought down again. Setup run
// again with more VIPs adds to the same record; Teardown can undo a subset
// of the VIPs, and undoes the host-wide changes with the last one.
//
// # Tunnels (TUN real servers)
//
// IPVS's TUN method sends the client's packet inside an outer IP header to
// the real server: IPv4-in-IPv4 (protocol 4, RFC 2003), IPv6-in-IPv6 (next
// header 41, RFC 2473), and with mixed families IPv6-in-IPv4 (protocol 41)
// or IPv4-in-IPv6 (next header 4). A kernel with the ipip, sit and
// ip6_tunnel modules decapsulates them on its fallback devices tunl0, sit0
// and ip6tnl0 once they are up. The kernels of the project's machines are
// built without any of them (no CONFIG_NET_IPIP, no modules at all), so
// Decap does it in user space: a raw socket per encapsulation receives the
// whole outer packet (with no protocol handler the kernel delivers the
// protocol to raw sockets, and sends no ICMP unreachable while one is
// open), and Decap writes the inner packet into a TUN device (IFF_TUN,
// IFF_NO_PI), from which the stack delivers it to the VIP on lo like any
// received packet. The application sees the client's address and answers
// it directly, not through the director.
//
// Setup decides per encapsulation: IPv4-in-IPv4 is left to the kernel when
// tunl0 exists or can be created (an ipip link named tunl0, which is what
// "ip link add type ipip" needs the module for); IPv6-in-IPv4 when sit0
// exists, IPv6-in-IPv6 when ip6tnl0 exists. Those devices are brought up
// (and down again by Teardown). IPv4-in-IPv6 always goes to user space:
// the kernel's fallback ip6tnl0 is an ip6ip6 tunnel and drops it. The
// rest is Result.User, what Decap must open. Both never handle the same
// encapsulation: a raw socket also gets a copy of what a kernel handler
// decapsulates, which would deliver every packet twice. The kernel
// variant cannot run on the project's machines; it is written from the
// kernel sources and the LVS-TUN howto, not tested.
//
// Only inner packets addressed to a configured VIP are injected; anything
// else is counted and dropped, so the decapsulator is not an open relay
// into the host. It does not check the outer source (neither does the
// kernel's tunl0): filter IP-in-IP from anything but the directors with a
// firewall if the network is not trusted.
//
// # Checksums
//
// A packet can reach the decapsulator with a partial transport checksum
// (the field holds only the pseudo-header sum; the kernel's
// CHECKSUM_PARTIAL). Seen here (kernel 6.18, 2026-11-22): a client on a
// veth with the default tx offload sends every TCP and UDP packet that
// way, the director's AF_PACKET socket gets it with TP_STATUS_CSUMNOTREADY
// in PACKET_AUXDATA, and a director that tunnels it without finishing the
// checksum (GoLVS's does finish it; the kernel's IPVS leaves it partial
// in the skb for the outgoing device to finish) delivers the partial value
// to the real server. Expected from the kernel sources but not reproduced on veth:
// GRO on the real server's NIC merging IP-in-IP TCP segments (the ipip GRO
// handlers are built in even without the module) leaves the merged
// packet's inner checksum partial. Inside the kernel the skb carries that
// fact along and the stack does not verify the field. A raw socket hands
// over the bytes only, and the TUN device marks what it receives
// CHECKSUM_NONE, so the stack verifies the partial value and drops the
// packet (UdpInCsumErrors, TcpInCsumErrors: TestNetnsTUNDropsPartialChecksum
// shows it). Decap therefore recognises a TCP or UDP checksum field equal
// to the pseudo-header sum (a constant-time test) and completes it
// (skb_checksum_help) before injecting; see completePartial. A packet with
// a full checksum is never changed, and one with a wrong checksum reaches
// the stack as it came, which drops it. The end-to-end test runs TCP and
// UDP through a director that forwards partial checksums and through one
// that finishes them; both work.
//
// Large segments: a client's TSO segments (up to 64 KiB) that a director
// tunnels whole make outer packets larger than the MTU, which the
// director's stack fragments and the real server's reassembles; the raw
// socket then gets the whole datagram (the buffers hold 64 KiB), and the
// TUN device takes the 64 KiB inner segment regardless of its MTU, which
// only limits what it sends. Seen working with a 4 MiB upload (end-to-end
// test). A director that segments before tunnelling (as GoLVS's is meant
// to) avoids the fragmentation.
//
// What the stack routes out through Decap's device (nothing should) is
// never read: it fills the device's queue (txqueuelen 500 packets) and is
// dropped there.
//
// # Metrics
//
// Decap counts (DecapCounters): outer packets received, inner packets
// injected, dropped because the inner destination is not a VIP, dropped as
// malformed (truncated, wrong inner version or length), partial checksums
// completed, and failed TUN writes. They become lvs_realserver_*_total
// when the daemon exports metrics.
package realserver
