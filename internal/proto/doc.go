// Package proto holds the per-protocol connection state machines and
// timeouts of IPVS: the TCP, UDP and SCTP transition tables, the state names
// that `ipvsadm -L -c` prints, which states count as active connections,
// and the per-state timeout table that `ipvsadm --set` edits.
//
// It corresponds to the kernel files net/netfilter/ipvs/ip_vs_proto.c
// (template state names), ip_vs_proto_tcp.c (tcp_states, tcp_states_dos,
// set_tcp_state, tcp_timeouts), ip_vs_proto_udp.c (udp_state_transition,
// udp_timeouts), ip_vs_proto_sctp.c (sctp_events, sctp_states,
// set_sctp_state, sctp_timeouts), and to ip_vs_set_timeout /
// __ip_vs_get_timeouts in ip_vs_ctl.c. The tables were checked cell by cell
// against the kernel source and against ../shared/reference/ipvs-features.md
// §3.4; the visible behaviour against the kernel 6.1 oracle (see the
// transcripts in testdata/).
//
// Everything here is pure data and pure functions: no locks, no clock, no
// allocation, no dependency on other GoLVS packages. The caller (the
// connection table) owns the connection and its flags; it asks Step what a
// packet does to them and applies the answer:
//
//	tr := tmo.Step(proto.TCP, c.state, proto.Input, c.noOutput, tcpFlags, secure)
//	c.state, c.timeout = tr.State, tr.Timeout
//	if tr.ClearNoOutput { c.noOutput = false }
//	switch tr.Flip {
//	case proto.ToActive:   dest.ToActive()
//	case proto.ToInactive: dest.ToInactive()
//	}
//	if tr.Assure { /* mark the controlling template ASSURED */ }
//
// A new connection starts in state 0 (NONE, or UDP's only state) with
// InitialTimeout and is counted inactive; the kernel runs the first packet
// through the state machine right after creating the connection.
//
// This package has no metrics.
package proto
