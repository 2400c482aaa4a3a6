// Package lvslab is a deterministic, in-memory Ethernet network on which the
// GoLVS director runs end to end without root: clients, routers and real
// servers are simulated Linux hosts, the director is a Host whose ingress is
// handed to the real data path (style.md §10.7; modelled on Tailscale's
// tstest/natlab/vnet and gVisor's link/channel).
//
// It stands in for the parts of the Linux stack that an IPVS deployment
// leans on, and each piece follows the kernel file it imitates, as of Linux
// 6.1 (2024-06):
//
//   - net/ethernet, net/bridge: Segments are L2 broadcast domains with a
//     learning switch; frames are Ethernet II, padded to the 60-byte minimum.
//   - net/ipv4/arp.c, net/ipv6/ndisc.c: ARP and neighbour discovery with a
//     neighbour cache (net/core/neighbour.c: 3 solicitations one second
//     apart, a 212992-byte queue per unresolved neighbour). Hosts answer only
//     for addresses on the receiving interface and pick the ARP sender
//     address from the outgoing interface, i.e. arp_ignore=1 and
//     arp_announce=2, the settings an LVS-DR real server needs; an address
//     on the loopback is never announced (HostConfig.ARPAnyLocal restores
//     arp_ignore=0).
//   - net/ipv4/route.c, ip_forward.c, ip_output.c, ip_fragment.c: routes
//     with longest-prefix match, source address selection, forwarding with
//     TTL decrement, ICMP time exceeded / unreachable / fragmentation needed,
//     a path MTU cache, IPv4 fragmentation and reassembly.
//   - net/ipv4/icmp.c, net/ipv6/icmp.c: echo reply, and ICMP errors
//     delivered to the socket they are about.
//   - net/ipv4/ipip.c, net/ipv6/ip6_tunnel.c: IP-in-IP (protocol 4) and
//     IPv6-in-IP (41) decapsulation on hosts with HostConfig.Decap, as the
//     tunl0/ip6tnl0 fallback devices of an LVS-TUN real server do.
//   - net/ipv4/udp.c, tcp_input.c, tcp_output.c, tcp_timer.c: UDP sockets
//     and a small but real TCP (handshake, MSS option, in-order data with
//     cumulative ACKs, a fixed window, retransmission, FIN in both orders,
//     RST, TIME_WAIT, PMTU).
//
// Links have no delay, no bandwidth limit and lose nothing unless a test
// installs Segment.SetDropFilter. Not modelled: ICMP redirects and rate
// limits, rp_filter, neighbour entry aging (entries stay REACHABLE), IPv6
// fragmentation, TCP options other than MSS, out-of-order queueing, zero
// windows, delayed ACKs and congestion control.
//
// Determinism: nothing runs on its own. Frames sent are queued on the
// Network; Step delivers one, Drain delivers until the network is quiet,
// Advance moves the injected manual clock and fires timers (retransmission,
// neighbour solicitation, TIME_WAIT, reassembly) in deadline order. All
// randomness (ISNs, ephemeral ports, IP IDs) comes from math/rand/v2 sources
// seeded from Config.Seed and the host's name, so a seed reproduces a run
// byte for byte, pcaps included. There are no goroutines.
//
// Attaching the director under test: make it a Host with its interfaces,
// addresses (the VIP on an interface) and routes, then
//
//   - Host.SetIngressHook receives every frame arriving on its interfaces
//     before its stack; return true to consume it (the data path's input);
//   - Host.Transmit puts a frame on an interface's segment (the output),
//     dropping and counting it if it exceeds the interface's MTU;
//   - Host.Inject hands a frame to the host's own stack (a "pass to host"
//     verdict); frames the hook does not consume get there anyway, so the
//     host still answers ARP for the VIP and forwards what is not service
//     traffic;
//   - Host.Interfaces, Routes, RouteTo, SourceAddr and Neighbours give the
//     routing and neighbour view; Resolve asks for a neighbour's MAC
//     (soliciting it if needed) and SetNeighbourHook reports changes.
//
// Every frame a host's stack accepts is validated (IPv4 header checksum,
// TCP, UDP and ICMP checksums, the UDP zero-checksum rule); failures are
// counted per host (Counters) and reported through Config.OnDrop, so a
// director that corrupts packets fails the test that drives it.
//
// Debugging: Segment.SetPCAP or Config.PCAPDir write a pcap per segment
// (libpcap format, written by hand), Config.Trace prints one line per
// delivered frame. The library never reads the environment: the test
// helpers decide (LVSLAB_TRACE=1 in this package's tests).
//
// lvslab is test infrastructure. It must never be imported by cmd/lvsd's
// production graph.
package lvslab
