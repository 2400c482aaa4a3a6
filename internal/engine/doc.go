// Package engine makes the per-packet decisions of IPVS (kernel
// net/netfilter/ipvs/ip_vs_core.c): for a packet from a client it finds the
// connection or schedules a new one (ip_vs_in, ip_vs_schedule,
// ip_vs_sched_persist, ip_vs_leave), for a reply it finds the connection
// (ip_vs_out), and for both it runs the protocol state machine, keeps the
// real servers' active/inactive counts and the counters, and says what the
// packet path must do with the packet.
//
// The engine does not touch packet bytes: package datapath parses a frame
// into a Packet, asks the engine for a Decision, and rewrites and transmits
// accordingly. It reads the services through the lock-free snapshot of
// package control, keeps connections in a conntable.Table, and takes time
// from an injected clock once per batch.
//
// Concurrency: an Engine is shared by all data-path workers; each worker
// owns a Worker value (its stats shard and the time of its current batch).
// Per-flow ordering is the caller's: the packets of one connection (both
// directions) must be handled by one worker at a time, which the data path
// guarantees by sharding on Table.ShardOf.
package engine
