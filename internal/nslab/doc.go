// Package nslab is the namespace lab behind `lvslab` (`lvslab up`): GoLVS
// running for real in network namespaces on one machine, built by one
// command so that a newcomer sees it work, and broken on demand so that
// an operator sees it react.
//
// The topology, in namespaces named PREFIX-ROLE (golvs-lab-client, ...),
// with addresses from 198.18.0.0/15 only (RFC 2544's benchmarking range):
//
//	client 198.18.0.1 ──┐
//	director1 eth0 .2 ──┤ bridge "front" 198.18.0.0/24   VIPs .101 .102 .103
//	director2 eth0 .3 ──┤   (and the router's leg .254)
//	                    │
//	   namespace "switch": the two bridges, and a router between them
//	                    │
//	director1 eth1 .2 ──┤ bridge "lan" 198.18.1.0/24     NAT gateway VIP .1
//	director2 eth1 .3 ──┤   (and the router's leg .254)
//	rs1..rs3 .11-.13 ───┘
//
// director1 (VRRP priority 150) and director2 (100) run lvsd with a
// keepalived.conf the lab writes: a vrrp_instance holding the VIPs and
// the NAT real servers' gateway, lvs_sync_daemon on the LAN, and four
// virtual servers (NAT, DR, TUN and a UDP echo) with health checkers.
// The real servers run the lab's own small servers (Serve: HTTP answering
// the server's name, a UDP echo) and `lvsd realserver --tun` for the DR
// and TUN VIPs. NAT real servers route the client network through the
// gateway VIP; replies from the DR and TUN VIPs go, by a source rule, to
// the router, so they reach the client without crossing a director, as
// LVS-DR and LVS-TUN replies do.
//
// The lab corresponds to no kernel file: it is the set-up of the LVS
// HOWTO's test networks (one director pair, NAT, DR and TUN real servers)
// and of keepalived's sample configurations
// (/usr/share/doc/keepalived/samples/keepalived.conf.vrrp.lvs_syncd).
//
// Ownership: Up returns a Lab that owns every process it started (lvsd,
// the real servers' daemons, the servers), its goroutines (client
// traffic, the status-page proxies, the control socket's server, the log
// readers) and its namespaces and files; Lab.Close stops and removes them
// all. Cleanup removes what a lab left behind (a crashed or killed `up`),
// found by the names and the state file, never by pattern.
package nslab
