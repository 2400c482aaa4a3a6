// Package statefile keeps the director's configuration across restarts:
// the virtual services with their real servers, the protocol timeouts and
// the settings, as a versioned JSON document (Document) that lvsd writes
// after every successful change and reads back at start.
//
// The kernel keeps this state in memory only (net/netfilter/ipvs/ip_vs_ctl.c)
// and leaves persistence to ipvsadm-save and ipvsadm-restore scripts run by
// the init system; lvsd does it itself, so that a restart, even after
// kill -9, finds the table as it was. Counters, rates, connections and sync
// daemons are not kept, as a reboot with the kernel's IPVS would not keep
// them.
//
// Write replaces the file atomically: the document goes to a temporary
// file in the same directory, which is fsynced, renamed over the state
// file, and the directory fsynced. A reader therefore sees the old
// document or the new one, never a mixture nor a truncated file, whenever
// the writer dies; a crash leaves at most a stray temporary file, which
// RemoveTemps deletes.
package statefile
