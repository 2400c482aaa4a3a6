// Package vsmgr is the part of keepalived's check process that programs
// IPVS: it takes the virtual servers of keepalived.conf and the results of
// the health checkers, and adds, edits and removes services and real
// servers through package control. Its keepalived counterparts, read in
// the 2.2.7 release, are keepalived/check/ipwrapper.c (real server up and
// down, quorum with hysteresis, sorry server, weight updates, the reload
// diff, shutdown), the command rewriting of ipvs_cmd and the error
// tolerance of ipvs_talk in keepalived/check/ipvswrapper.c
// (inhibit_on_failure turns a removal into weight 0; "exists" on an add and
// "no such" on a delete are not errors; an edit of a missing real server
// adds it), and the reload sequence of start_check in
// keepalived/check/check_daemon.c. The behaviour spec is §7.3, §7.4 and
// §7.6 of ipvs-features.md.
//
// # Model
//
// Health is a pure state machine transcribed from ipwrapper.c: every real
// server has checkers, each up or down; the server is alive while none of
// its checkers is down (update_svr_checker_state, perform_svr_state); a
// virtual server has a quorum state that flips with hysteresis on the
// summed weight of its alive servers (update_quorum_state). What IPVS
// holds is then a function of that state (see desiredDests), and every
// event ends by reconciling IPVS with it, in one control.Batch so that the
// data path sees one new snapshot per event. keepalived instead issues
// each command as it goes; the end states are the same, and the few places
// where 2.2.7's command sequence leaves IPVS inconsistent with its own
// state (recorded in the comments of desiredDests and reloadVS) follow the
// later keepalived fixes. One more departure follows the spec rather than
// 2.2.7: an alpha checker still waiting for its first result stays down
// across a reload (rsState.migrate).
//
// # Ownership
//
// The manager owns the services it created (or adopted, see Apply) and
// the real servers of the configuration; services added with ipvsadm
// beside them are never touched. It compares the new configuration with
// the one it applied last, not with IPVS: a service deleted with ipvsadm
// behind its back is re-created only by a reload that changes that
// virtual server (§7.6).
//
// # Scripts
//
// notify_up, notify_down, quorum_up and quorum_down run asynchronously
// through Options.RunScript (default /bin/sh -c), with no arguments added
// (keepalived's notify_exec adds none for LVS scripts), bounded in time;
// their failures are logged.
package vsmgr
