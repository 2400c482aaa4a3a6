// Package afpacket is the AF_PACKET link of the data path: it takes frames
// from the kernel's packet taps through TPACKET_V3 receive rings and sends
// frames with sendmmsg(2), in pure Go over golang.org/x/sys/unix (no
// cgo). It is the user-space side of the kernel's net/packet/af_packet.c
// (tpacket_rcv, packet_snd, the fanout code), the fastest user-space path
// measured on the project's machines (feasibility.md §2: about 1.8 µs per
// forwarded frame, against 2.5 for recvmmsg/sendmmsg and 2.8 for AF_XDP in
// copy mode). BenchmarkForwardVeth measured 1.9-2.2 µs of the forwarding
// thread's CPU per 60-byte frame veth to veth (2026-11-22, a shared
// 2-core box, noisy), of which 60-100 ns in Go: the rest is the kernel's
// transmit path and the receiving peer's stack, which veth runs in the
// sender's syscall.
//
// # Receiving
//
// Each Queue has one packet socket per interface (protocol ETH_P_ALL, so
// that it is a ptype_all tap that sees frames before tc and nftables
// ingress; PACKET_IGNORE_OUTGOING, so not the host's own or the link's
// frames) with a TPACKET_V3 ring mapped into the process. Recv walks the
// blocks the kernel has handed over and returns frames that point into
// the ring (zero copy), each with forward.Headroom bytes free in front
// (PACKET_RESERVE, plus the kernel's own alignment: the pipeline prepends
// tunnel headers and builds ICMP errors there, in place). Release, or the
// next Recv, gives the blocks back. A block is handed over when full or
// after Config.BlockTimeout (0.7-0.8 ms for 1 ms, measured 2026-11-22 on
// kernel 6.18), which is the latency a lone packet sees.
//
// The kernel's socket filter (SO_ATTACH_FILTER, a classic BPF program
// built from a link.Filter by FilterProgram) keeps the rest of the host's
// traffic out of the rings; SetFilter replaces it while the link runs.
//
// Checksums. A frame from a local sender (a veth peer, a container) or
// merged by GRO carries a partial transport checksum (the skb is
// CHECKSUM_PARTIAL: its checksum field holds only the pseudo-header sum,
// for the egress device to finish). The ring says so per frame
// (TP_STATUS_CSUMNOTREADY, which the pipeline gets as Frame.PartialCsum,
// the same information PACKET_AUXDATA gives recvmsg), and the virtio_net
// header in front of each frame (PACKET_VNET_HDR) says where the checksum
// starts. Send hands the same information back to the kernel with each
// such frame (VIRTIO_NET_HDR_F_NEEDS_CSUM, csum_start counted from the
// frame's end, which the pipeline's rewrites never move): the egress
// finishes the checksum, in software (skb_checksum_help) or in the NIC.
// Send finishes it itself when the egress cannot be trusted with it: an
// SCTP CRC32c, which the virtio header cannot ask for, and a checksum
// inside a tunnel the pipeline added (a NIC may not find an inner header
// the skb does not mark as encapsulated; a real server that decapsulates
// the bytes itself, over veth, would get the partial value; and a GUE or
// GRE outer checksum, computed over the partial value, is then updated
// for the change). An ICMP error the pipeline built from such a frame
// needs nothing. Offloads are never turned off.
//
// GSO. The taps also see frames larger than the MTU that stand for many
// segments: 64 KiB TCP segments from a veth peer's stack (TSO), GRO's
// merges on a real NIC. The virtio header gives their segment size; Recv
// cuts them into the segments they stand for (what the kernel's software
// GSO does when it forwards: tcp_gso_segment for TCPv4 and TCPv6,
// __udp_gso_segment for UDP_L4), each copied into a buffer of the queue's
// pool (Config.Batch buffers of 10 KiB, jumbo frames included), with a
// partial checksum. A GSO frame the kernel cannot describe in a virtio
// header is dropped by the kernel (counted in RingDrops), and one Recv
// cannot cut is dropped and counted (GSODropped).
//
// VLANs. The kernel moves an 802.1Q tag from the frame into metadata
// before the taps (skb_vlan_untag), and delivers the frame again,
// untagged, on the VLAN's own interface. The filter refuses tagged frames
// on the parent: a VLAN's traffic is taken on its VLAN interface (list it
// in Config.Interfaces), whose index the pipeline's routes name. Without a
// filter, Recv puts the tag back into the frame (TP_STATUS_VLAN_VALID,
// tp_vlan_tci, tp_vlan_tpid), so that what the pipeline sees is what was
// on the wire.
//
// # Queues and fanout
//
// With Config.Queues > 1 each interface's rings form a PACKET_FANOUT
// group, one member per queue, and each queue is one worker's. The
// pipeline needs both directions of a NAT connection on one worker, and
// the kernel's own PACKET_FANOUT_HASH cannot do that: its flow hash is
// symmetric for one address pair (__flow_hash_consistentify orders the
// two ends), but a NAT request (client to VIP) and its reply (real server
// to client) have different pairs, and a NIC's RSS hash (skb->hash set by
// the driver) is not symmetric at all. So the group is PACKET_FANOUT_CBPF
// with a program (FanoutProgram) that hashes the client's address and
// port: the source of a packet to a service address, the destination of
// one from a real server, the right end of the packet an ICMP error
// quotes. The kernel numbers a group's members in the order they join, so
// every interface's rings join in queue order and "hash modulo the number
// of queues" picks the same queue on every interface. Without a filter
// there is no such program, and the group falls back to
// PACKET_FANOUT_HASH.
//
// # Sending
//
// Each Queue has one transmit socket (protocol 0: it never receives),
// with PACKET_QDISC_BYPASS (the frames are forwarded, already queued by
// their sender; the device's queue is still honoured) and
// PACKET_VNET_HDR. Send makes one sendmmsg(2) per batch whose messages
// name their interface (a sockaddr_ll each), with two iovecs: the virtio
// header and the frame, in the ring (zero copy). It never blocks
// (MSG_DONTWAIT): a frame the kernel refuses (a full send buffer, a
// frame over the egress MTU) is counted and dropped. WriteFrame sends one
// frame kept outside the rings (the neighbour table's parked frames).
//
// ToHost frames that the host's ingress rule kept from the stack
// (link.Compiled.Taken; see package link) are sent, with Config.Reinject,
// to the loopback interface addressed to its all-zero MAC address:
// loopback_xmit hands them to the stack as received (PACKET_HOST on lo),
// partial checksum and all. A packet socket cannot do that on the
// interface the frame came in on (a frame written there leaves it); a
// TUN/TAP device could, at the cost of one more device to manage.
//
// # Buffers and allocation
//
// Frames live in the rings and in the queues' segment pools, both sized
// at Open: Recv, Send and Release allocate nothing (proven by tests). The
// ring memory is the kernel's (not locked into RAM by the process: the
// kernel never swaps it).
//
// # Counters
//
// Stats: frames and bytes received and sent, the kernel's ring statistics
// (PACKET_STATISTICS: frames the filter passed, frames dropped on a full
// ring, ring freezes), truncated frames, GSO frames and segments, restored
// VLAN tags, send errors, ToHost verdicts and re-injected frames. For
// Prometheus: lvs_link_rx_frames_total, lvs_link_rx_bytes_total,
// lvs_link_filter_passed_total, lvs_link_ring_drops_total,
// lvs_link_ring_freezes_total, lvs_link_truncated_total,
// lvs_link_gso_frames_total, lvs_link_gso_segments_total,
// lvs_link_gso_dropped_total, lvs_link_tx_frames_total,
// lvs_link_tx_bytes_total, lvs_link_tx_errors_total,
// lvs_link_reinjected_total (the metrics package names them).
//
// # Privileges
//
// CAP_NET_RAW for the packet sockets; CAP_NET_ADMIN for SO_SNDBUFFORCE
// (without it the send buffer is what net.core.wmem_max allows).
package afpacket
