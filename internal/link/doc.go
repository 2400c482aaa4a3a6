// Package link moves frames between the network interfaces and the
// data-path pipeline (package datapath), in batches, behind a small
// interface (Batch) that every kind of link implements: AF_PACKET rings
// (package link/afpacket) now, an AF_XDP socket or an XDP fast path later.
// It stands where the kernel's IPVS hooks into netfilter
// (net/netfilter/ipvs/ip_vs_core.c, ip_vs_ops: packets come in at
// NF_INET_LOCAL_IN and FORWARD) and where ip_vs_xmit.c hands packets to
// dst_output, or back to the stack (NF_ACCEPT).
//
// A worker's loop is Run: Recv a batch, Process it (datapath.Worker),
// Send the verdicts, Release the buffers.
//
// # What the data path sees: Filter
//
// A Filter lists the virtual services (VIP, protocol, port, or the
// classes of firewall-mark services), the NAT real servers whose replies
// come back through the director, and the director's own addresses. A
// link hands the pipeline only
//
//   - packets to a service (Services, on the destination),
//   - packets from a NAT real server to an address that is not the
//     director's (Replies, on the source; the director's own traffic
//     with its real servers, health checks for instance, is not a reply),
//   - ICMP errors quoting a packet from a service address or to a service
//     or real-server address (ICMPErrors),
//
// unicast to the host (not broadcast, multicast or another host's) and
// untagged (a VLAN's traffic is taken on the VLAN's own interface, where
// the kernel delivers it without the tag). Compiled.Class is the
// specification; a link's kernel filter implements it, possibly passing a
// documented superset (the pipeline decides on everything it gets).
// Everything else (ARP, ssh, health checks, VRRP, other ports of the VIP)
// the host's stack handles as if GoLVS were not there.
//
// # The host's copy and ToHost
//
// A link takes frames from a tap that runs before the host's own
// processing (for AF_PACKET, the ptype_all taps run before tc and
// nftables netdev ingress): the host's stack gets its own copy of every
// frame. Left alone, the stack would answer the service's traffic itself
// (a TCP reset from the VIP, whose port has no listener) or forward it a
// second time (a NAT reply to a client). So the host layer (package
// hostnet) installs an ingress rule that drops exactly the frames
// Compiled.Taken reports: the Services matches whose destination is
// local, and the Replies matches (whose destination is not); its
// hostnet.IngressRules{Services, Replies} and this Filter's Services,
// Replies and Local must be built from the same data, and changed
// together.
//
// The pipeline's verdict ToHost ("let the host's stack have it, as
// IPVS's NF_ACCEPT does") then means:
//
//   - for a frame that is not Taken, nothing: the host already has it;
//   - for a Taken frame, that the link gives it to the host's stack
//     (the link's Reinject option; afpacket writes it to the loopback
//     interface, where it is received as if it had arrived): the
//     director as one of its own real servers, and the service packets
//     IPVS passes on to the stack (a TCP segment that opens no
//     connection, answered by the stack's reset as the kernel would).
//
// Without an ingress rule (Reinject off), ToHost is always "nothing", and
// the host's stack sees every frame as well: fine for tests and for
// watching, wrong for a director.
//
// Firewalling: the taps and the ingress rule act before the host's
// netfilter hooks, so INPUT and FORWARD rules never see the service
// traffic GoLVS forwards (IPVS would run after the INPUT filter); the
// re-injected frames do traverse them, arriving on the loopback interface
// ("-i lo" rules apply to them).
package link
