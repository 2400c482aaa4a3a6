package conntable

import "time"

// The connection-sync daemon's bookkeeping (kernel ip_vs_sync.c): a master
// counts the packets of each connection and records, per entry, the state
// and expiry time it last sent (cp->old_state, cp->sync_endtime); a
// backup writes what it receives over an entry it already has. The
// decisions are package ipvssync's; these are the table's side of them.
// None allocates.

// SyncInfo is what a master's sync decision reads of an entry
// (ipvssync.ConnInfo): its state, flags and timeout, its packet count, and
// what was last synced.
type SyncInfo struct {
	State    uint8
	OldState uint8 // the state last synced, or the previous state (see SetSynced)
	Flags    Flags
	Timeout  time.Duration
	InPkts   uint32
	// SyncEndtime is the expiry time last synced, in clock
	// nanoseconds at the resolution of Tick, with the retries counted
	// in its low 2 bits (the kernel's cp->sync_endtime). A new entry
	// has its creation time (ip_vs_conn_new: jiffies & ~3).
	SyncEndtime int64
}

// CountIn counts one packet from the client in the entry's InPkts (the
// kernel's atomic_inc_return(&cp->in_pkts) in ip_vs_in, before it asks
// the sync daemon) and returns the entry's SyncInfo with the new count.
// If out is not nil the entry is also copied into it, under the same lock,
// without its Control (left 0). Unlike Touch it does not re-arm the timer.
// It fails if ref is stale or the entry's timer has run out at now.
func (t *Table) CountIn(ref Ref, now int64, out *Conn) (SyncInfo, bool) {
	s, l, h := t.lockLive(ref, now)
	if h == nil {
		return SyncInfo{}, false
	}
	h.inPkts++
	si := SyncInfo{
		State:       h.state(),
		OldState:    h.stateOld(),
		Flags:       h.flags &^ internalFlags,
		Timeout:     time.Duration(h.timeout) * Tick,
		InPkts:      h.inPkts,
		SyncEndtime: tickTime(h.syncEnd, now) | int64(h.flags&fSyncRetry>>fSyncRetryShift),
	}
	if out != nil {
		s.load(l, out, ref, now)
	}
	s.mu.Unlock()
	return si, true
}

// SetSynced records a master's decision to sync the entry
// (ip_vs_sync_conn_needed's "set"): oldState becomes its OldState (the
// state last synced) and syncEndtime (a SyncInfo.SyncEndtime, retries in
// the low 2 bits) its SyncEndtime. The timer is left alone. It fails if
// ref is stale or oldState is above MaxState.
//
// SetState, too, writes the state a transition leaves into OldState, where
// the kernel's old_state changes only when a connection is synced; so the
// master's "state changed since the last sync" compares with the later of
// the two. The two differ only when a connection changes state twice
// between packets from its client and comes back to the state last
// synced: a sync the kernel would not force is then forced.
func (t *Table) SetSynced(ref Ref, oldState uint8, syncEndtime int64) bool {
	if oldState > MaxState {
		return false
	}
	s, _, _, h := t.lockRef(ref)
	if h == nil {
		return false
	}
	h.states = h.state() | oldState<<4
	h.syncEnd = floorTick(syncEndtime &^ 3)
	h.flags = h.flags&^fSyncRetry | Flags(syncEndtime&3)<<fSyncRetryShift
	s.mu.Unlock()
	return true
}

// UpdateSynced writes what a backup received about an entry it already
// has (the update of the kernel's ip_vs_proc_conn, ipvssync.Update): c's
// Flags (except FlagTemplate, FlagNoCPort and FlagOnePacket, which only
// the table changes), State, OldState, Timeout and InPkts; and c.DestID if
// the entry has no real server yet (ip_vs_try_bind_dest), which bound
// reports. It re-arms the timer with the new timeout (ip_vs_conn_put). It
// fails (ok false, nothing changed) if ref is stale, the entry's timer has
// run out at now, or a state or DestID is out of range.
func (t *Table) UpdateSynced(ref Ref, c *Conn, now int64) (bound, ok bool) {
	if c.State > MaxState || c.OldState > MaxState || c.DestID >= 1<<24 {
		return false, false
	}
	s, l, h := t.lockLive(ref, now)
	if h == nil {
		return false, false
	}
	h.flags = h.flags&tableFlags | c.Flags&^tableFlags
	h.states = c.State | c.OldState<<4
	h.timeout = ticksOf(c.Timeout)
	h.inPkts = c.InPkts
	if c.DestID != 0 && h.dp>>8 == 0 {
		h.dp = c.DestID<<8 | h.dp&0xff
		bound = true
	}
	s.rearm(l, h, ceilTick(now)+h.timeout)
	s.mu.Unlock()
	return bound, true
}
