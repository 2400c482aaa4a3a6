// Package vrrpd runs VRRP for lvsd: the vrrp_instance and vrrp_sync_group
// blocks of a keepalived.conf, driven by package vrrp's pure state machine
// with real time, real sockets and the kernel's addresses. It is the
// runtime counterpart of keepalived's VRRP process: vrrp_daemon.c and
// vrrp_scheduler.c (the event loop, timers, reload), vrrp.c's socket and
// address side (vrrp_send_adv, open_vrrp_read_socket,
// vrrp_handle_ipaddress), vrrp_arp.c and vrrp_ndisc.c (gratuitous ARPs,
// unsolicited neighbour adverts), vrrp_track.c and vrrp_scheduler.c's
// script threads (track_interface, vrrp_script), vrrp_notify.c (notify
// scripts) and vrrp_ipaddress.c.
//
// # Who owns what
//
// A Daemon (New, Apply, Status, Close) owns a set of units. A unit is one
// goroutine running a lone instance or a whole sync group (whose members
// must change state together, so one goroutine steps them all): it owns
// the vrrp.Instance or vrrp.Group, reads the clock, calls Tick at
// NextDeadline, and performs the Actions: adverts on the instance's
// socket, VIPs added and removed through rtnetlink, gratuitous ARPs
// (AF_PACKET) and unsolicited neighbour adverts (raw ICMPv6), notify
// scripts queued, OnState called. Each instance has a reader goroutine
// on its socket that hands adverts to the unit. The daemon owns one link
// watcher (rtnetlink link updates) and one goroutine per vrrp_script in
// use; their results live in the daemon and units are kicked to re-read
// them. Notify scripts run on a per-unit goroutine, in order, each bounded
// by Options.NotifyTimeout, never on the protocol's goroutine. Close stops
// everything and waits for every goroutine; Apply and Close are
// serialised.
//
// # Sockets
//
// IPv4: a raw IP socket for protocol 112 with IP_HDRINCL (TOS 0xc0 and
// TTL 255 as keepalived sends them; the received header gives the TTL and
// destination), bound to the interface, multicast loop off, joined to
// 224.0.0.18 (or mcast_dst_ip); with unicast_peer it is bound to the
// source address and sends to each peer with unicast_ttl. IPv6 likewise
// with ancillary data (hop limit, destination, source: the interface's
// link-local address). Every advert is checked by vrrp.Decode,
// vrrp.CheckIPHeader and Instance.Advert; rejects are counted by reason
// (Status.Rejects); our own adverts are ignored.
//
// # Addresses, start and stop
//
// BecomeMaster adds the VIPs (virtual_ipaddress and _excluded, with their
// prefix, dev, label, scope, brd, peer and flags; IPv6 ones with nodad and
// preferred_lft 0, as keepalived 2.2.7 adds them), then announces them
// (garp_master_repeat packets per VIP, again after garp_master_delay,
// spaced by vrrp_garp_interval / vrrp_gna_interval when set). Leaving
// MASTER removes them at once. At start, a unit removes its VIPs found on
// their interfaces with the same prefix length: they were left by an lvsd
// killed with SIGKILL while master (keepalived 2.2.7 does the same,
// measured). Close (lvsd's SIGTERM) sends priority 0 from masters, so
// that their backups take over after Skew_Time, removes the VIPs and runs
// notify_stop and notify ... STOP.
//
// # Reload
//
// Apply diffs by unit: a unit whose configuration (everything that makes
// it, positions in the file excepted) is unchanged keeps running
// untouched; a removed one stops (notify_deleted, or FAULT, as
// keepalived's reload reports deleted instances); a changed one stops
// and starts again (keepalived keeps the state of an instance it can
// match across a reload; here a changed master resigns and the election
// runs again); a new one starts.
//
// # Not done (warned when configured)
//
// track_file, track_process, track_bfd, virtual_routes and virtual_rules,
// no_accept (the firewall rule), use_vmac, track_src_ip,
// unicast_fault_no_peer, unicast_peer min_ttl/max_ttl, the notify FIFOs,
// garp_group and a per-interface (rather than per-burst) GARP rate limit,
// IPsec AH authentication (refused). Scripts run as their user (or
// script_user); with neither they run as lvsd's user where keepalived
// would pick keepalived_script or root.
package vrrpd
