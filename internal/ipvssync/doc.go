// Package ipvssync is the protocol core of IPVS connection synchronisation
// (kernel net/netfilter/ipvs/ip_vs_sync.c, with the flag masks of
// include/uapi/linux/ip_vs.h and the dest binding of ip_vs_conn.c and
// ip_vs_ctl.c): the wire formats a master director multicasts to its
// backups, the rules that decide which connections are sent and when, and
// what a backup makes of what it receives. It opens no socket, reads no
// clock and starts no goroutine; another package moves the bytes.
//
// # Wire formats
//
// Version 1 (sysctl sync_version=1, the default) is an 8-byte header
// followed by connection entries, each padded to 4 bytes; see Reader for
// the layout and AppendEntry for the encoding. Version 0 (sync_version=0,
// IPv4 only, no timeout nor fwmark) has a 4-byte header and 24-byte
// entries (48 with sequence-number data); Reader decodes it and
// AppendEntryV0 encodes it. A receiver tells them apart as the kernel does
// (ip_vs_process_message): a message is version 1 when its first byte is
// 0, its version byte 1 and its spare bytes 0; anything else is read as
// version 0. Decoding allocates nothing: Reader walks a message entry by
// entry, reusing one Entry, with the kernel's checks in the kernel's
// order; each reason to reject is a sentinel error, either of the whole
// rest of the message (Reader.Err) or of one entry (Reader.EntryErr), so
// that the caller can count them.
//
// # Master side
//
// EntryFromConn makes the entry of a conntable connection; Builder packs
// entries into messages of at most the sync_maxlen the
// kernel derives (MaxLen: 1472 bytes for a master over IPv4) and hands out
// full messages, as ip_vs_sync_conn fills its sync buffers; FlushTime says
// when a partial one is due. Needed and SyncChain are
// ip_vs_sync_conn_needed and the walk of ip_vs_sync_conn over a
// connection and its controlling template, as pure functions of the
// connection's state, its packet count, the time and the sysctls.
//
// # Backup side
//
// Backup.Plan is ip_vs_proc_conn as a decision: given a decoded entry, the
// backup's current entry with that key (if any) and the services, it says
// whether to insert, update, replace or ignore, with the flags, state,
// timeout and real server the connection table must get, and how the real
// server's active/inactive counts move. Like the kernel, a backup creates
// connections for which it has no service or real server (unbound, bound
// later when one appears); Plan says so, for counting.
//
// # Authentication (not in the kernel)
//
// The kernel's protocol is unauthenticated: anyone on the sync network can
// create connections on a backup. Signer and Verifier add an optional
// HMAC-SHA-256-128 trailer with a key ID, a sender ID, a sequence number
// and a timestamp, so that a GoLVS backup refuses unsigned, forged,
// replayed and stale messages. A signed message has version byte
// AuthVersion and a header size that leaves the trailer out, so that a
// kernel backup drops it whole (its length does not match the size; and
// were that check absent, the version byte would send it down the
// version-0 path with 0 entries). With authentication off the bytes are
// exactly the kernel's. See Signer for the layout.
//
// This package has no metrics; its callers count the errors it returns.
package ipvssync
