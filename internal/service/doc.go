// Package service is the virtual-service model that the data path reads:
// virtual services (kernel struct ip_vs_service), their destinations
// (struct ip_vs_dest), and the immutable Snapshot through which the packet
// path finds the service of a packet (ip_vs_ctl.c ip_vs_service_find).
//
// Identity and configuration of a service are immutable values; a change
// builds a new Service and a new Snapshot that the control plane swaps in
// atomically. Destinations are long-lived objects shared by successive
// snapshots, so that connections keep their real server (and its counters)
// across edits: their configuration is replaced atomically and their
// connection counts are atomics, exactly what the kernel edits in place.
//
// Schedulers (package sched) implement the Scheduler interface declared
// here, where it is consumed.
package service
