// Package forward applies, byte for byte, the rewrites the director makes
// to a frame once the engine has decided what to do with it: NAT
// (masquerading) in both directions, the TTL decrement and MAC rewrite of
// direct routing, IP-in-IP / GUE / GRE encapsulation for tunnelling, the
// MTU check, ICMP errors built in place, and the rewrite of ICMP errors
// that concern a NAT connection. It is the user-space counterpart of the
// kernel's net/netfilter/ipvs/ip_vs_xmit.c (ip_vs_nat_xmit,
// ip_vs_dr_xmit, ip_vs_tunnel_xmit[_v6], ipvs_gue_encap, ipvs_gre_encap,
// decrement_ttl, ensure_mtu_is_adequate), of the NAT handlers of
// ip_vs_proto_tcp.c, ip_vs_proto_udp.c and ip_vs_proto_sctp.c
// ({tcp,udp,sctp}_{dnat,snat}_handler), of ip_vs_core.c's
// ip_vs_nat_icmp[_v6], and of net/ipv4/icmp.c icmp_send /
// net/ipv6/icmp.c icmp6_send for the errors the director originates.
//
// Everything here is a pure function of a frame buffer (Buf), the flow.Parsed
// the pipeline decoded from it, and the values the engine and the routing
// step chose: no lookups, no decisions, no routing, no clock. Nothing
// allocates (proven by tests), nothing panics whatever the bytes (fuzzed),
// and nothing writes outside the frame and the headroom it claims.
// Checksums are updated incrementally (RFC 1624) where the kernel does;
// the tests check every result against a fresh computation.
//
// # Recipes
//
// What the pipeline calls per forwarding method, in the kernel's order
// (__ip_vs_get_out_rt decrements the TTL before the MTU check, and both
// come before the rewrite, so an ICMP error quotes the packet as the
// client sent it, TTL decremented):
//
//	NAT request:  DecTTL, CheckMTU(p, mtu, nil), DNAT, SetMACs
//	NAT reply:    DecTTL, CheckMTU(p, mtu, nil), SNAT, SetMACs
//	DR:           DecTTL, CheckMTU(p, mtu, nil), SetMACs   (or DR for the first and last)
//	TUN:          DecTTL, CheckMTU(p, mtu, t), Encap, SetMACs
//	ICMP error about a NAT connection (ip_vs_icmp_xmit, handle_response_icmp):
//	              DecTTL, CheckMTU, NATICMPIn or NATICMPOut, SetMACs
//	              (CheckMTU sees p.ICMPError and never asks for an error
//	              about an error)
//	ICMP error about a DR or TUN connection: the method's steps, unchanged
//
// A frame whose transport checksum was left partial for offload is
// rewritten with partialCsum set; CompleteChecksum finishes it in
// software when the egress cannot (before Encap with an outer checksum).
//
// CheckMTU answering MTUFragment means the finished frame (after SetMACs)
// goes out in pieces: FragmentIPv4 copies it into fragments.
//
// DecTTL answering TTLExpired, or CheckMTU answering MTUFragNeeded, means
// the packet is not forwarded: ICMPError turns the same buffer into the
// error (TimeExceeded, or FragNeeded with the MTU CheckMTU returned), and
// SetMACs addresses it to the next hop towards the packet's source. A
// port unreachable for ip_vs_leave (no destination available) is built
// the same way.
//
// # What a Parsed still says afterwards
//
// The functions read the flow.Parsed the pipeline decoded from the frame
// and never write it. After a rewrite these fields of it are stale
// (everything not listed still describes the frame):
//
//	DecTTL         TTL
//	DR             TTL, and as SetMACs
//	DNAT           Tuple.Dst, Tuple.DstPort
//	SNAT           Tuple.Src, Tuple.SrcPort
//	SetMACs*       VLAN, VLANID and every offset (L3Off, L4Off,
//	               PayloadOff, FragHdrOff, Inner.L3Off, Inner.L4Off),
//	               which move by -4 when a tag is stripped, +4 when one is
//	               added; lengths do not change
//	Encap          all of it: the frame is now the outer packet, and the
//	               Parsed describes the inner one (whose offsets moved)
//	ICMPError      all of it: the frame is a new packet
//	NATICMPIn/Out  Tuple.Dst (In) or Tuple.Src (Out), and Inner.Tuple
//
// So SetMACs comes last, and a function that reads offsets from the
// Parsed is never called after one that moved them.
//
// # Buffers
//
// A Buf is a frame with headroom in front (Headroom bytes are enough for
// every function here). Functions that add headers move Off back into the
// headroom and never copy the packet; ICMPError also shortens the frame.
// The Ethernet header of a frame built here (Encap, ICMPError) is
// untagged, with zero MAC addresses and the right EtherType, for SetMACs
// to fill.
//
// Package forward has no metrics of its own: each Result and MTUVerdict
// that is not a success is a drop reason the pipeline counts.
package forward
