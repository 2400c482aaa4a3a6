// Package conntable is the IPVS connection table (kernel
// net/netfilter/ipvs/ip_vs_conn.c): the connections the director forwards
// and the persistence templates that pin a client to a real server, found
// by the packet path, timed out by timers. It stores, finds and expires
// entries; the engine (package engine) decides their states, timeouts and
// accounting, and learns of each removal through Config.OnRemove.
//
// # Keys and lookups
//
// A connection is keyed on the client side, <proto, client addr:port,
// virtual addr:port>, and hashed on <proto, client addr, client port> with
// a random per-table secret (gVisor conntrack's seeded hash), so that a
// reply, looked up by its destination (the client), lands in the same
// shard and bucket (kernel ip_vs_conn_hashkey). LookupIn finds the
// connection of a client packet, with the kernel's NO_CPORT retry;
// LookupOut that of a reply, matching the real server for NAT and the
// virtual address for the other methods; LookupTemplate a persistence
// template <proto, client net, virtual address or fwmark, port>. The
// table is sharded (Config.Shards, a power of two): ShardOf gives the
// shard of a client flow, so that data-path workers can own shards.
//
// # Templates
//
// A template (FlagTemplate) is created by the engine for a persistent
// service and named as Control by the connections it schedules through it;
// the table keeps its NControl. Its timer may run out only when it
// controls nothing: a template whose timer fires while it still controls
// connections is re-armed for 60 s and its timeout becomes 60 s for good
// (kernel expire_later, and its quirk: a template once expired-later only
// outlives its last use by 60 s). When a connection whose timeout is 0
// is removed (Delete sets it, as ip_vs_conn_del does for controlled
// connections), its template is removed too if that leaves it controlling
// nothing and it is not ASSURED. Neutralise invalidates a template whose
// real server went away. One-packet (OPS) connections are never inserted.
//
// # Timers
//
// Time is passed in, as clock.Nanotime() values (the time of the caller's
// batch); nothing in the package reads a clock or starts a goroutine. Timers
// have a resolution of Tick (10 ms, the kernel's HZ=100 jiffy): an entry
// re-armed at now with timeout d expires at the first tick boundary at or
// after now+d. Each shard has two hashed timer wheels (connections and
// templates) of 2048 ten-millisecond slots; re-arming for a later time only
// stores the new expiry, and an entry is re-filed when its old slot comes
// up. Expire(now, budget), called by each worker once per batch with a
// small budget, runs the due timers tick by tick in time order,
// connections before templates within a tick, and calls OnRemove outside
// the shard locks. A lookup never returns an entry whose timer has run
// out, even before Expire removes it; a template that still controls
// connections stays visible, as expire_later would have kept it.
//
// # Memory
//
// Entries are pointer-free structs in chunked arrays, so the garbage
// collector never scans them, linked by 24-bit indices: 60 bytes for an
// IPv4 entry (96 for an entry with an IPv6 address) against the kernel's
// ~300, 4 of which are the sync daemon's sync_endtime. With the bucket
// array (one 4-byte head per entry at capacity) and the wheels, a full
// table of a million IPv4 connections costs about 66 bytes per connection
// (measured by TestScaleMemory). Config.Max bounds the
// entries, templates included: Insert on a full table fails with ErrFull
// and is counted, while lookups and updates of existing entries go on.
// Lookups, inserts, updates and expiry do not allocate once the arrays
// have grown.
//
// # Connection sync
//
// The master sync daemon's per-packet count and bookkeeping (CountIn,
// SetSynced) and a backup's update of an entry it has (UpdateSynced) are
// in sync.go; the decisions are package ipvssync's.
//
// # Concurrency
//
// A Table is safe for concurrent use; see Table for the lock order. A Ref
// is a handle on an entry that goes stale when the entry is removed, and
// is then refused.
package conntable
