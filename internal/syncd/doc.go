// Package syncd runs the IPVS connection-synchronisation daemons (kernel
// net/netfilter/ipvs/ip_vs_sync.c: sync_thread_master, sync_thread_backup,
// start_sync_thread, stop_sync_thread) around the protocol core of package
// ipvssync.
//
// A master daemon takes the connections the data path decided to sync
// (engine.SyncQueue: per-worker rings the workers fill without blocking or
// allocating, ipvssync.SyncChain's decision after each packet from a
// client), packs them into messages of up to sync_maxlen
// (ipvssync.Builder), and sends a message when it is full or
// ipvssync.FlushTime (2 s) after its first entry, to the multicast group
// (224.0.0.81:8848 and TTL 1 by default, on the daemon's interface, from
// its primary IPv4 address, multicast loop off, fragmentation allowed).
// A backup daemon joins the group on its interface, decodes what it
// receives (ipvssync.Reader, with the sync ID filter) and applies each
// entry to the engine's connection table as the kernel's ip_vs_proc_conn
// does (ipvssync.Backup.Plan): new connections and templates with their
// state and timeout, updates of known ones, bound to the local real
// server with its active/inactive counts, or unbound when there is none.
//
// Two additions to the kernel, both off by default: unicast peers
// (Config.Peers), for sync across networks without multicast, and
// authentication (Config.Keys): an HMAC-SHA-256-128 trailer that the
// backup checks, refusing unsigned, forged, replayed and stale messages
// (ipvssync.Signer, ipvssync.Verifier).
//
// Manager holds at most one daemon of each role, started and stopped by
// ipvsadm --start-daemon/--stop-daemon through the control API, or by
// keepalived's lvs_sync_daemon (SetLVSSyncDaemon, and SetRole from the
// VRRP instance it names). Each daemon is one goroutine, which Stop and
// Close wait for.
//
// The package exports no metrics itself: Manager.Stats returns the
// counters (messages and entries sent and received, send errors, ring
// drops, entries inserted, updated, replaced, ignored and left unbound,
// refusals by Reason, the times of the last messages) for the metrics
// endpoint and the control API (lvs_sync_* when exported).
package syncd
