// Package flow decodes a received Ethernet frame once into a reused,
// pointer-free summary (Parsed) and names a flow with a packed, comparable
// key (Tuple), so that the data path can find a packet's connection
// without reading the headers again. It is the counterpart of the
// kernel's struct ip_vs_iphdr and ip_vs_fill_iph_skb / ip_vs_fill_iph_skb_icmp
// (include/net/ip_vs.h), of the sanity checks of ip_rcv_core and
// ipv6_rcv that run before IPVS sees a packet (net/ipv4/ip_input.c,
// net/ipv6/ip6_input.c), and of the ICMP parsing of ip_vs_in_icmp
// (net/netfilter/ipvs/ip_vs_core.c); after tailscale's net/packet.Parsed
// and net/flowtrack.Tuple.
//
// Decode allocates nothing and never panics, whatever the bytes. The
// header offsets it uses are package header's; flow adds the policy (what
// is malformed, what to read for each protocol) and the summary.
package flow
