package engine

import (
	"fmt"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"golvs/internal/conntable"
	"golvs/internal/ipvssync"
)

// The master side of connection synchronisation (kernel ip_vs_sync.c,
// called from ip_vs_in): after each packet from a client, a worker counts
// it in the connection's InPkts and, with package ipvssync's rules
// (SyncChain, that is ip_vs_sync_conn and ip_vs_sync_conn_needed), decides
// whether the connection and its template are to be sent to the backups.
// What is to be sent is copied into the worker's ring of a SyncQueue,
// which the sync daemon (package syncd) drains; the worker neither blocks
// nor allocates, and a full ring drops the record and counts it. All of it
// only while a master daemon runs: Engine.SetSyncQueue, which workers look
// at once per batch.

// SyncRecord is a connection or template the master sends: a copy of its
// entry when the decision was made. It holds no pointers.
type SyncRecord struct {
	CAddr, VAddr, DAddr [16]byte // As16 forms; see Family
	FWMark              uint32
	Timeout             uint32 // whole seconds (cp->timeout / HZ, truncated)
	Flags               conntable.Flags
	CPort, VPort, DPort uint16
	Proto, State        uint8
	// Family: bit 0 set if the client and virtual addresses are IPv6,
	// bit 1 if the real server's is (the two differ for a tunnel to a
	// real server of the other family, which the protocol cannot carry).
	Family uint8
}

// Entry returns the sync entry of r (ipvssync.EntryFromConn).
func (r *SyncRecord) Entry() ipvssync.Entry {
	addr := func(b *[16]byte, v6 bool) netip.Addr {
		a := netip.AddrFrom16(*b)
		if !v6 {
			a = a.Unmap()
		}
		return a
	}
	return ipvssync.Entry{
		Proto:   r.Proto,
		Flags:   uint32(r.Flags),
		State:   uint16(r.State),
		CAddr:   addr(&r.CAddr, r.Family&1 != 0),
		VAddr:   addr(&r.VAddr, r.Family&1 != 0),
		DAddr:   addr(&r.DAddr, r.Family&2 != 0),
		CPort:   r.CPort,
		VPort:   r.VPort,
		DPort:   r.DPort,
		FWMark:  r.FWMark,
		Timeout: r.Timeout,
	}
}

// fill copies c into r, with the state, flags and timeout of si (the
// entry's as the decision saw them).
func (r *SyncRecord) fill(c *conntable.Conn, si *conntable.SyncInfo) {
	r.CAddr, r.VAddr, r.DAddr = c.CAddr.As16(), c.VAddr.As16(), c.DAddr.As16()
	r.FWMark = c.FWMark
	r.Timeout = uint32(min(si.Timeout/time.Second, 1<<32-1))
	r.Flags = si.Flags
	r.CPort, r.VPort, r.DPort = c.CPort, c.VPort, c.DPort
	r.Proto, r.State = c.Proto, si.State
	r.Family = 0
	if c.CAddr.Is6() {
		r.Family |= 1
	}
	if c.DAddr.Is6() {
		r.Family |= 2
	}
}

// SyncQueueConfig configures a SyncQueue.
type SyncQueueConfig struct {
	// Sysctls are the master's sync sysctls (sync_version,
	// sync_threshold, sync_refresh_period, sync_retries,
	// sync_persist_mode); the zero value is not the kernel's default:
	// start from ipvssync.DefaultSysctls.
	Sysctls ipvssync.Sysctls
	// RingSize is the number of records each worker's ring holds,
	// rounded up to a power of two (0: DefaultSyncRing).
	RingSize int
}

// DefaultSyncRing is the default ring size: at 20 ms between drains
// (ipvssync.SendDelay) a worker may queue 4096 records, about 200 000
// per second, three times the entries a 1 Gb/s sync link carries (41
// 36-byte entries per 1500-byte packet). Each ring takes 68 bytes a
// record: 272 KiB.
const DefaultSyncRing = 4096

// maxSyncRing bounds RingSize (16M records, about 1 GiB per worker).
const maxSyncRing = 1 << 24

// SyncQueue carries the master's sync records from the workers to the
// sync daemon: one single-producer, single-consumer ring per worker. The
// workers push (Engine.SetSyncQueue makes them); one goroutine drains
// (Drain). Its methods are safe for concurrent use, but Drain must be
// called by one goroutine at a time.
type SyncQueue struct {
	sysctls ipvssync.Sysctls // immutable
	size    int              // immutable, a power of two
	wake    chan struct{}    // capacity 1: a ring went from empty to not

	mu    sync.Mutex
	rings []*syncRing // guarded by mu; each written by one worker
}

// NewSyncQueue returns an empty queue.
func NewSyncQueue(cfg SyncQueueConfig) (*SyncQueue, error) {
	if err := cfg.Sysctls.Validate(); err != nil {
		return nil, err
	}
	n := cfg.RingSize
	if n == 0 {
		n = DefaultSyncRing
	}
	if n < 0 || n > maxSyncRing {
		return nil, fmt.Errorf("engine: sync ring of %d records: want 1 to %d", n, maxSyncRing)
	}
	size := 1
	for size < n {
		size <<= 1
	}
	return &SyncQueue{sysctls: cfg.Sysctls, size: size, wake: make(chan struct{}, 1)}, nil
}

// Sysctls returns the queue's sysctls.
func (q *SyncQueue) Sysctls() ipvssync.Sysctls { return q.sysctls }

// Wake returns a channel that receives when a ring that was empty gets a
// record: the drainer waits on it (as the kernel's master thread is woken
// when its queue fills).
func (q *SyncQueue) Wake() <-chan struct{} { return q.wake }

// Drain passes every record queued so far to fn, in each worker's order,
// and frees their slots. The record is valid only during the call. It
// returns the number of records. One goroutine at a time.
func (q *SyncQueue) Drain(fn func(*SyncRecord)) int {
	q.mu.Lock()
	rings := q.rings
	q.mu.Unlock()
	n := 0
	for _, r := range rings {
		h, t := r.head.Load(), r.tail.Load()
		for i := h; i != t; i++ {
			fn(&r.recs[i&r.mask])
		}
		r.head.Store(t)
		n += int(t - h)
	}
	return n
}

// Drops returns the records dropped because a ring was full.
func (q *SyncQueue) Drops() uint64 {
	q.mu.Lock()
	defer q.mu.Unlock()
	var n uint64
	for _, r := range q.rings {
		n += r.drops.Load()
	}
	return n
}

// attach gives a worker its own ring.
func (q *SyncQueue) attach() *syncRing {
	r := &syncRing{recs: make([]SyncRecord, q.size), mask: uint64(q.size - 1)}
	q.mu.Lock()
	q.rings = append(q.rings, r)
	q.mu.Unlock()
	return r
}

// syncRing is a single-producer, single-consumer ring: the worker writes
// a slot then publishes it by storing tail; the drainer reads the slots up
// to tail then frees them by storing head. The atomics order the slots'
// writes and reads.
type syncRing struct {
	head  atomic.Uint64 // next slot to drain; written by the drainer
	_     [56]byte      // keep head and tail on separate cache lines
	tail  atomic.Uint64 // next slot to fill; written by the worker
	drops atomic.Uint64
	_     [48]byte
	recs  []SyncRecord // immutable slice header
	mask  uint64
}

// push queues a copy of c. It reports whether the ring was empty (the
// drainer should be woken); a full ring counts a drop.
func (r *syncRing) push(c *conntable.Conn, si *conntable.SyncInfo) (wasEmpty bool) {
	t := r.tail.Load()
	h := r.head.Load()
	if t-h > r.mask {
		r.drops.Add(1)
		return false
	}
	r.recs[t&r.mask].fill(c, si)
	r.tail.Store(t + 1)
	return t == h
}

// SetSyncQueue starts (q not nil) or stops (nil) the master's side of
// connection sync: workers hand the connections to be synced to q from
// their next batch on.
func (e *Engine) SetSyncQueue(q *SyncQueue) { e.syncq.Store(q) }

// syncBegin picks up the engine's sync queue for a batch.
func (w *Worker) syncBegin() {
	q := w.e.syncq.Load()
	if q == w.sq {
		return
	}
	w.sq, w.ring = q, nil
	if q != nil {
		w.ring = q.attach()
	}
}

// syncIn is the end of ip_vs_in on a master: ++cp->in_pkts, then
// ip_vs_sync_conn over the connection ref (c as the packet path copied it)
// and its template. It reads and writes the entries (the counts and the
// sync bookkeeping) under their shard locks, one at a time.
func (w *Worker) syncIn(ref conntable.Ref, c *conntable.Conn) {
	t := w.e.conns
	si, ok := t.CountIn(ref, w.now, nil)
	if !ok {
		return
	}
	w.syncChain(ref, c, &si, int(si.InPkts))
}

// syncOnePacket is ip_vs_in's sync of a one-packet connection, which is
// never in the table: only its template can be sent (pkts is the
// threshold, as ip_vs_in passes).
func (w *Worker) syncOnePacket(c *conntable.Conn) {
	si := conntable.SyncInfo{Flags: c.Flags | conntable.FlagOnePacket, State: c.State, Timeout: c.Timeout}
	w.syncChain(0, c, &si, w.sq.sysctls.Threshold)
}

// syncChain decides on the connection (ref, c, si) and its template, and
// queues what is to be sent.
func (w *Worker) syncChain(ref conntable.Ref, c *conntable.Conn, si *conntable.SyncInfo, pkts int) {
	t := w.e.conns
	ch := &w.chain
	ch[0] = connInfo(c, si)
	n := 1
	var tc conntable.Conn
	var tsi conntable.SyncInfo
	if c.Control != 0 {
		// The template's count goes up before the decision (ipvssync
		// SyncChain counts it again: hence the -1), even when a
		// version-0 walk would not reach it.
		var ok bool
		if tsi, ok = t.CountIn(c.Control, w.now, &tc); ok {
			ch[1] = connInfo(&tc, &tsi)
			ch[1].InPkts--
			n = 2
		}
	}
	q := w.sq
	send := ipvssync.SyncChain(ch[:n], pkts, w.now, &q.sysctls)
	if send&1 != 0 && t.SetSynced(ref, ch[0].OldState, ch[0].SyncEndtime) {
		w.queue(c, si)
	}
	if send&2 != 0 && t.SetSynced(c.Control, ch[1].OldState, ch[1].SyncEndtime) {
		w.queue(&tc, &tsi)
	}
}

// queue copies c into the worker's ring, waking the drainer if the ring
// was empty.
func (w *Worker) queue(c *conntable.Conn, si *conntable.SyncInfo) {
	if w.ring.push(c, si) {
		select {
		case w.sq.wake <- struct{}{}:
		default:
		}
	}
}

// connInfo is what ipvssync's decision reads of an entry.
func connInfo(c *conntable.Conn, si *conntable.SyncInfo) ipvssync.ConnInfo {
	return ipvssync.ConnInfo{
		Proto:       c.Proto,
		Flags:       si.Flags,
		State:       si.State,
		OldState:    si.OldState,
		Timeout:     si.Timeout,
		IPv6:        c.CAddr.Is6(),
		SyncEndtime: si.SyncEndtime,
		InPkts:      si.InPkts,
	}
}
