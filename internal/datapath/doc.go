// Package datapath is the director's per-packet pipeline, the user-space
// counterpart of the netfilter hooks of net/netfilter/ipvs/ip_vs_core.c: a
// link hands a worker a batch of Ethernet frames; for each one the worker
// parses it once (flow.Parsed), asks the engine what IPVS would do with it
// (engine.Worker.In, Out, InRelated, OutRelated), applies the rewrite of the
// connection's forwarding method (package forward), finds the egress
// interface and next hop in its View and Neighbours, and returns a verdict:
// transmit on an interface, pass to the host's own stack, or drop with a
// counted reason.
//
// A worker is owned by one goroutine and processes whole batches without
// allocating. The View (routes, interfaces, local addresses) is replaced
// atomically by the host layer; the Neighbours view likewise.
package datapath
