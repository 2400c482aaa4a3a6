// Package hostnet is the kernel side of the director (seesaw's ncc): it
// reads the host's interfaces, addresses, routes and neighbours over
// rtnetlink for the user-space data path, adds and removes VIPs, and keeps
// the host's own IP stack away from the traffic the data path takes. It is
// pure Go (vishvananda/netlink, google/nftables) and works in any network
// namespace (Open).
//
// Kernel counterparts: the routing and neighbour lookups IPVS makes in
// net/netfilter/ipvs/ip_vs_xmit.c (__ip_vs_get_out_rt, and the neighbour
// output of ip_finish_output2) against net/ipv4/fib_*.c and
// net/core/neighbour.c, followed here through the rtnetlink notifications
// of net/core/rtnetlink.c; the drop at ingress is an nf_tables netdev chain
// (net/netfilter/nft_chain_filter.c) hooked in __netif_receive_skb_core
// (net/core/dev.c).
//
// # The view (WatchView)
//
// A ViewWatcher dumps links, addresses and the main routing table (IPv4
// and IPv6) into a Snapshot and publishes its datapath.View (for
// Pipeline.SetView). It subscribes to link, address and route
// notifications and, DefaultDebounce after a change, dumps again and
// publishes the new view if it differs. When a subscription overflows
// (ENOBUFS: events were lost) it subscribes again and dumps.
//
// The data path's interfaces are a configured list (lvsd --interfaces) or
// every up, non-loopback Ethernet interface that is not a bridge or bond
// port. Addresses of other interfaces (VIPs on lo) are local addresses
// of the view. Routes keep their gateway, output interface, preferred
// source and MTU metric; unreachable, blackhole, prohibit and throw routes
// become routes without an interface, which the data path answers with
// "no route", and routes through interfaces outside the list likewise.
//
// Not followed (as of 2026-11-22): policy routing (ip rule, tables other
// than main), the other hops of a multipath route (the first one is used),
// nexthop objects, and routes learnt only for a mark (the data path has no
// mark).
//
// # Neighbours (SyncNeighbours)
//
// A NeighSync fills the data path's datapath.Neighbours from the kernel's
// ARP and NDP tables (reachable, stale, delay, probe, permanent and noarp
// entries) and follows them through rtnetlink. A neighbour the data path
// misses is resolved by the kernel: an RTM_NEWNEIGH with NTF_USE makes
// neigh_add call neigh_event_send as a packet would, so the kernel sends
// its ARP request or neighbour solicitation with its own timers, and the
// answer comes back as a notification (ProbeNetlink). A datagram to the
// discard port from a socket bound to the interface does the same on a
// kernel that refuses NTF_USE (ProbeUDP). Both are tested. A resolution
// the kernel reports failed (NUD_FAILED) or that times out ends with
// Set(ok=false). An IPv6 solicitation needs the interface's link-local
// address: until its duplicate address detection ends, a resolution
// waits for the kernel's next retry.
//
// # VIPs
//
// Host.AddVIP, DelVIP and HasAddr add, remove and find a /32 (/128)
// address, as the administrator or VRRP does for a VIP.
//
// # Keeping the host's stack off service traffic (OpenIngress)
//
// The data path's AF_PACKET socket receives a copy of each frame; the
// original goes on into the host's stack, which would answer a TCP SYN to
// the VIP's service port with an RST (nothing listens there) and, with
// forwarding on, forward a NAT real server's reply to its client a second
// time, un-NATed. The table `netdev golvs` (Ingress) drops those originals
// in a netdev ingress chain per data-path interface, before the IP stack:
// packets unicast to this host that go to a virtual service (VIP,
// protocol, port, or a firewall-mark class) on a local address, and
// packets from a NAT real server (address, protocol, port) to an address
// that is not local. A real server's packets to the director itself
// (health checks, their answers) are left to the stack. Apply replaces the
// table in one transaction; Close deletes it; OpenIngress (and
// RemoveStaleIngress) first removes the table of an instance that was
// killed.
//
// # Where the host's firewall applies
//
// In the kernel, IPVS takes a packet at LOCAL_IN after the filter INPUT
// chain, so INPUT rules apply to service traffic (and FORWARD rules to
// NAT replies). With GoLVS the order on a data-path interface is
// (__netif_receive_skb_core, kernel 6.x):
//
//  1. AF_PACKET taps (ETH_P_ALL): the data path gets every frame here,
//     before any hook; nothing after can keep a frame from it.
//  2. tc ingress (clsact) filters.
//  3. netfilter netdev ingress: the golvs table, priority -500, drops the
//     stack's copy of service traffic and NAT replies.
//  4. The IP stack: prerouting, conntrack, input, forward, output.
//
// So for service traffic and NAT replies:
//   - Rules in ip, ip6 and inet tables (prerouting, input and forward
//     chains: iptables INPUT, FORWARD and mangle PREROUTING included) do
//     not see them any more, and conntrack has no entries for them. The
//     namespace test checks this with a counter in `inet filter input`.
//   - netdev ingress chains of other tables and tc ingress filters still
//     see them, but dropping them there only hides them from the host's
//     stack: the data path already has them.
//   - Frames the data path sends (AF_PACKET) cross none of the host's IP
//     output or postrouting hooks, and with PACKET_QDISC_BYPASS no egress
//     hook (tc or netdev) either.
//
// A director's firewall for service traffic therefore belongs upstream of
// the director, or in GoLVS itself (a set of denied clients honoured by
// the data path, or the XDP program of a later issue), not in its
// iptables/nftables rules. Everything else (other ports of the VIP, ssh,
// health checks, VRRP, ARP and neighbour discovery, ping) goes through the
// host's stack and its firewall as before.
//
// What the table leaves to the stack, on purpose: frames not addressed to
// this host's MAC (the data path leaves those to the host too); traffic
// to a VIP that is not (or no longer) a local address, as IPVS only sees
// local traffic; non-first IP fragments, which carry no ports (the stack
// holds them until its reassembly times out, and sends nothing since the
// first fragment never reached it); ICMP errors about connections, which
// the data path also relays (the stack finds no socket for them, and with
// forwarding on may forward a real server's error un-NATed, as the kernel
// does for errors IPVS does not match). A frame the data path hands back
// to the host (a local real server) must be re-injected through a device
// without the golvs chain, such as a TUN, or it is dropped again.
//
// The counters (NeighSync.Stats, ViewWatcher.Stats, Ingress.Counters) are
// read by the metrics layer; the package exports no metrics itself.
package hostnet
