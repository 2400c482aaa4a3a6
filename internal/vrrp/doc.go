// Package vrrp is the protocol core of GoLVS's VRRP: the advertisement
// codec (RFC 3768 VRRPv2, RFC 5798 VRRPv3), the per-instance state machine
// and sync groups, with keepalived 2.2.7's behaviour where it departs from
// the RFCs. It is the user-space counterpart of keepalived's
// keepalived/vrrp/vrrp.c (packet build and check, vrrp_state_backup,
// vrrp_state_master_rx/_tx, leave_master/leave_fault), vrrp_scheduler.c
// (vrrp_init_state, timer expiry, try_up_instance), vrrp_sync.c (sync
// groups) and vrrp_track.c (effective priority, down_instance).
//
// Everything here is pure: no sockets, no clock, no goroutines, no logging.
// The caller (the daemon's VRRP adapter) owns the sockets, reads the clock,
// and performs the Actions an Instance returns: it sends adverts (built with
// Instance.Build and Append), adds and removes the virtual addresses, sends
// gratuitous ARPs / unsolicited neighbour adverts, runs notify scripts, and
// calls Tick when NextDeadline passes. See Instance for the state diagram,
// Group for vrrp_sync_group, EffectivePriority for tracking weights.
//
// # Sources and deviations
//
// The behaviour was read from keepalived's vrrp.c, vrrp_scheduler.c,
// vrrp_sync.c and vrrp_track.c of the 2.x series (acassen/keepalived; the
// 2.2.7 tag itself was not available to read, the installed 2.2.7 binary's
// messages were checked with strings(1)), its keepalived.conf(5) for 2.2.7,
// and ../shared/reference/ipvs-features.md §7.7–7.8; then checked (as of
// 2026-11-22) against the real keepalived 2.2.7 run in network namespaces
// (testdata/keepalived-2.2.7.capture, TestKeepalivedCapture): its adverts
// byte for byte (VRRPv2 with PASS, VRRPv3 over IPv4 and IPv6, priority 0),
// and its timings: Master_Down_Interval for several priorities and
// intervals, the owner's immediate takeover, a non-owner configured MASTER
// waiting the full down interval, sync group members going MASTER
// together, and preempt_delay counting again from the first lower-priority
// advert after a FAULT, not only after startup.
// Known departures, each also noted where it is implemented:
//
//   - v3_checksum_as_v2 is not in keepalived 2.2.7 (added in a later
//     release); Codec.V3ChecksumAsV2 follows the later release's meaning.
//   - IPsec AH authentication (keepalived auth_type AH, VRRPv2 only) is
//     recognised by the codec (AuthAH) but not implemented: the caller must
//     strip the AH header, and NewInstance refuses Config.Auth == AuthAH.
//   - A master that discards an invalid advert does not postpone its next
//     advert (keepalived re-arms its advert timer after every packet it
//     reads while master unless lower_prio_no_advert is set).
//   - A master entering FAULT sends one priority-0 advert (keepalived's
//     down_instance path sends two back to back).
//   - Sync groups of three or more members go MASTER together (keepalived's
//     vrrp_sync_master, as read, may leave a member in BACKUP for one more
//     down interval; not measured; see Group).
//   - vrrp_strict, VMACs, track_src_ip, unicast min/max TTL, the
//     auth_hmac extension, timer_expired_backup and notify_priority_changes
//     FIFOs are not here (the last two are the caller's, from Actions).
//
// # Timing
//
// Times are time.Time values supplied by the caller (monotonic readings);
// durations follow keepalived's microsecond arithmetic, so Skew_Time is
// truncated to whole microseconds exactly as VRRP_TIMER_SKEW does. With
// priority 100 and a 1 s advert interval the master down interval is
// 3.609375 s; with VRRPv3 and 100 ms it is 360.937 ms.
package vrrp
