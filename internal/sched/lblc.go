package sched

import (
	"net/netip"
	"sync"
	"time"

	"golvs/internal/service"
)

// This file holds the lblc scheduler and the locality table it shares with
// lblcr: the kernel's ip_vs_lblc_table / ip_vs_lblcr_table (1024 hash
// buckets keyed by the packet's destination address, entries with a last-use
// time, a periodic garbage collector with a rover).

// Locality table parameters, the same in ip_vs_lblc.c and ip_vs_lblcr.c.
const (
	// localityTabBits is CONFIG_IP_VS_LBLC_TAB_BITS (and _LBLCR_), default 10.
	localityTabBits = 10
	localityTabSize = 1 << localityTabBits
	localityTabMask = localityTabSize - 1
	// localityMaxSize is tbl->max_size = IP_VS_LBLC_TAB_SIZE*16: above it
	// the periodic check collects entries idle for ENTRY_TIMEOUT.
	localityMaxSize = localityTabSize * 16
	// localityEntryTimeout is ENTRY_TIMEOUT (6*60*HZ).
	localityEntryTimeout = int64(6 * time.Minute)
	// countForFullExpiration is COUNT_FOR_FULL_EXPIRATION: every 30th run
	// of the check (half an hour) without a partial collection is a full
	// expiration check.
	countForFullExpiration = 30
	// defaultLocalityExpiration is DEFAULT_EXPIRATION (24*60*60*HZ), the
	// default of the sysctls lblc_expiration and lblcr_expiration.
	defaultLocalityExpiration = 24 * time.Hour
	// localityChunk is the number of entries the pool allocates at once:
	// 256 entries are 12 KiB for lblc (48-byte entries), so a service that
	// sees a handful of destination addresses does not pay for thousands,
	// while a busy cache cluster grows in few steps.
	localityChunk = 256
)

// CheckExpireInterval is how often the owner of an lblc or lblcr scheduler
// must call Expire: the kernel's CHECK_EXPIRE_INTERVAL (60*HZ), the period
// of the table's garbage-collection timer. Each Expire call is one run of
// that timer (ip_vs_lblc_check_expire), so its rules ("every 30th run",
// "6 minutes idle") assume this cadence.
const CheckExpireInterval = 60 * time.Second

// timeBefore is the kernel's time_before(a, b) on jiffies, here on
// nanoseconds: wrapping subtraction, then the sign.
func timeBefore(a, b int64) bool { return a-b < 0 }

// localityHdr is the part of an entry the table manages: the key, the last
// use (en->lastuse) and the chain link.
type localityHdr struct {
	addr    netip.Addr
	lastuse int64
	// next is the 1-based pool index of the next entry of the bucket, or
	// of the free list; 0 ends the chain.
	next int32
}

// localityEntry is what an entry type provides to the table.
type localityEntry[E any] interface {
	*E
	hdr() *localityHdr
	// release drops the entry's references to dests, like
	// ip_vs_lblc_rcu_free / ip_vs_dest_set_eraseall, and zeroes it
	// (keeping buffers that the next user of the slot may reuse).
	release()
}

// localityTable is the kernel's ip_vs_lblc_table / ip_vs_lblcr_table
// (entries of type E). Entries live in a pool of fixed chunks and are
// chained by index, so that a miss takes a free slot instead of allocating:
// the pool only grows (by localityChunk entries) when more entries are live
// than ever before. It is not safe for concurrent use; the scheduler holds
// its lock (the kernel's svc->sched_lock) around every call.
type localityTable[E any, P localityEntry[E]] struct {
	bucket [localityTabSize]int32 // 1-based index of the first entry, 0 = empty
	chunks []*[localityChunk]E
	free   int32 // 1-based index of the first free slot, 0 = none
	// entries is tbl->entries. It may exceed the number of live entries:
	// see LBLC.Schedule.
	entries int
	rover   int // tbl->rover
	counter int // tbl->counter
}

func newLocalityTable[E any, P localityEntry[E]]() *localityTable[E, P] {
	return &localityTable[E, P]{counter: 1} // ip_vs_lblc_init_svc: tbl->counter = 1
}

// at returns the entry at 1-based index i.
func (t *localityTable[E, P]) at(i int32) P {
	i--
	return P(&t.chunks[i/localityChunk][i%localityChunk])
}

// get is ip_vs_lblc_get: the entry for addr in bucket b, or nil.
func (t *localityTable[E, P]) get(b uint32, addr netip.Addr) P {
	for i := t.bucket[b]; i != 0; {
		e := t.at(i)
		h := e.hdr()
		if h.addr == addr {
			return e
		}
		i = h.next
	}
	return nil
}

// add is kmalloc + ip_vs_lblc_hash: a new entry for addr at the head of
// bucket b, with lastuse now; entries is incremented.
func (t *localityTable[E, P]) add(b uint32, addr netip.Addr, now int64) P {
	if t.free == 0 {
		t.grow()
	}
	i := t.free
	e := t.at(i)
	h := e.hdr()
	t.free = h.next
	h.addr, h.lastuse = addr, now
	h.next = t.bucket[b]
	t.bucket[b] = i
	t.entries++
	return e
}

// grow adds a chunk of free slots to the pool.
func (t *localityTable[E, P]) grow() {
	c := new([localityChunk]E)
	base := int32(len(t.chunks)) * localityChunk
	t.chunks = append(t.chunks, c)
	for k := int32(localityChunk); k >= 1; k-- {
		P(&c[k-1]).hdr().next = t.free
		t.free = base + k
	}
}

// sweep deletes, bucket by bucket starting after the rover, the entries with
// !time_before(now, lastuse + idle), and stops after a bucket once goal
// entries were deleted; the rover ends at the last bucket visited (back at
// its start after a full turn). It is the loop of ip_vs_lblc_full_check
// (goal never reached) and of ip_vs_lblc_check_expire.
func (t *localityTable[E, P]) sweep(now, idle int64, goal int) {
	j := t.rover
	for i := 0; i < localityTabSize; i++ {
		j = (j + 1) & localityTabMask
		link := &t.bucket[j]
		for *link != 0 {
			idx := *link
			e := t.at(idx)
			h := e.hdr()
			if timeBefore(now, h.lastuse+idle) {
				link = &h.next
				continue
			}
			*link = h.next
			e.release()
			h.next = t.free
			t.free = idx
			t.entries--
			goal--
		}
		if goal <= 0 {
			break
		}
	}
	t.rover = j
}

// expire is one run of the periodic timer, ip_vs_lblc_check_expire (and
// ip_vs_lblcr_check_expire, which is the same): every 30th run without a
// partial collection is a full check with the sysctl expiration; otherwise
// nothing happens unless entries exceeds max_size, in which case entries
// idle for ENTRY_TIMEOUT are collected until the goal
// min((entries - max_size) * 4/3, max_size/2) is met. Note that a partial
// collection does not advance the counter, so a table kept above max_size
// never gets a full check.
func (t *localityTable[E, P]) expire(now, expiration int64) {
	if t.counter%countForFullExpiration == 0 {
		// ip_vs_lblc_full_check has no goal: it turns the whole table.
		t.sweep(now, expiration, int(^uint(0)>>1))
		t.counter = 1
		return
	}
	if t.entries <= localityMaxSize {
		t.counter++
		return
	}
	goal := (t.entries - localityMaxSize) * 4 / 3
	if goal > localityMaxSize/2 {
		goal = localityMaxSize / 2
	}
	t.sweep(now, localityEntryTimeout, goal)
}

// lblcEntry is struct ip_vs_lblc_entry: a destination address and its
// cached real server.
type lblcEntry struct {
	localityHdr
	dest *service.Dest
}

func (e *lblcEntry) hdr() *localityHdr { return &e.localityHdr }
func (e *lblcEntry) release()          { *e = lblcEntry{} }

// LBLC is the lblc scheduler, Locality-Based Least-Connection
// (net/netfilter/ipvs/ip_vs_lblc.c), meant for cache clusters where the
// packet's destination address varies (fwmark services): each destination
// address sticks to one real server, chosen by wlc over all dests, until
// that server is unavailable, quiescent or overloaded by lblc's own rule
// (more active connections than its weight while some dest has fewer active
// connections than half its weight). The OVERLOAD threshold flag is not
// checked for a cached server, as in the kernel.
//
// The owner calls Expire every CheckExpireInterval. Schedule and Expire are
// safe for concurrent use with each other and with LoadChanged. A miss takes
// an entry from a pool that grows by chunks only when more entries are live
// than ever before; in steady state nothing allocates. Use NewLBLC.
type LBLC struct {
	locality[lblcEntry, *lblcEntry]
}

// NewLBLC returns an unbound lblc scheduler; o.LBLCExpiration is the sysctl
// lblc_expiration (zero: 24 hours).
func NewLBLC(o Options) *LBLC {
	s := &LBLC{}
	s.locality.init("lblc", o.LBLCExpiration)
	return s
}

// locality is what lblc and lblcr share: the sysctl, the wlc index over the
// service's dests for new choices, and the locality table with its lock
// and garbage collection (ip_vs_lblc.c and ip_vs_lblcr.c repeat the same
// code around their different entries).
type locality[E any, P localityEntry[E]] struct {
	name       string
	expiration int64 // sysctl lblc(r)_expiration, in nanoseconds
	idx        loadIndex

	mu  sync.Mutex           // svc->sched_lock
	tab *localityTable[E, P] // guarded by mu; nil when unbound
}

func (s *locality[E, P]) init(name string, exp time.Duration) {
	if exp == 0 {
		exp = defaultLocalityExpiration
	}
	s.name, s.expiration = name, int64(exp)
	s.idx.kind = loadWLC
}

// Name returns "lblc" or "lblcr".
func (s *locality[E, P]) Name() string { return s.name }

// Init binds the scheduler to a service with an empty table
// (ip_vs_lblc_init_svc, ip_vs_lblcr_init_svc).
func (s *locality[E, P]) Init(dests []*service.Dest) error {
	s.mu.Lock()
	s.tab = newLocalityTable[E, P]()
	s.mu.Unlock()
	return s.idx.Init(dests)
}

// AddDest is called after d was inserted at the head of dests.
func (s *locality[E, P]) AddDest(dests []*service.Dest, d *service.Dest) { s.idx.AddDest(dests, d) }

// DelDest is called after d was removed from dests. Entries keep pointing at
// d (the kernel holds a reference); Schedule ignores them while d is not
// available.
func (s *locality[E, P]) DelDest(dests []*service.Dest, d *service.Dest) { s.idx.DelDest(dests, d) }

// UpdDest is called after d's weight or thresholds were edited.
func (s *locality[E, P]) UpdDest(dests []*service.Dest, d *service.Dest) { s.idx.UpdDest(dests, d) }

// LoadChanged implements service.LoadObserver for the wlc index.
func (s *locality[E, P]) LoadChanged(d *service.Dest) { s.idx.LoadChanged(d) }

// Done unbinds the scheduler and drops its table (ip_vs_lblc_done_svc).
func (s *locality[E, P]) Done() {
	s.idx.Done()
	s.mu.Lock()
	s.tab = nil
	s.mu.Unlock()
}

// Expire is one run of the kernel's garbage-collection timer
// (ip_vs_lblc_check_expire, ip_vs_lblcr_check_expire); the owner calls it
// every CheckExpireInterval.
func (s *locality[E, P]) Expire(now int64) {
	s.mu.Lock()
	if s.tab != nil {
		s.tab.expire(now, s.expiration)
	}
	s.mu.Unlock()
}

// isOverloaded is is_overloaded() of ip_vs_lblc.c (and ip_vs_lblcr.c): d
// has more active connections than its weight and some dest of the service
// has fewer than half its weight. The "some dest" scan is the index's
// counter.
func (s *locality[E, P]) isOverloaded(d *service.Dest) bool {
	return d.ActiveConns() > d.Weight() && s.idx.anyLight()
}

// Schedule is ip_vs_lblc_schedule: the cached server of p.Dst if it is
// available, has a weight > 0 and is not overloaded by is_overloaded();
// else the wlc choice over all dests, which then becomes the cached server.
// It returns nil when no dest is eligible.
func (s *LBLC) Schedule(_ []*service.Dest, p *service.Packet) *service.Dest {
	b := hash32(fold(p.Dst), localityTabBits)
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.tab
	if t == nil {
		return nil
	}
	en := t.get(b, p.Dst)
	if en != nil {
		en.lastuse = p.Now
		d := en.dest
		if d.Available() && d.Weight() > 0 && !s.isOverloaded(d) {
			return d
		}
	}
	d := s.idx.best() // __ip_vs_lblc_schedule is wlc
	if d == nil {
		return nil
	}
	// ip_vs_lblc_new: keep an entry that already has d; otherwise the
	// kernel deletes the old entry (ip_vs_lblc_del, which does not
	// decrement tbl->entries) and hashes a new one (which increments
	// it). Replacing the dest in place gives the same table: a bucket
	// holds one entry per address, and neither lookup nor collection
	// depends on the order within a bucket. tbl->entries drifts up by
	// one per replacement, exactly as in the kernel, which brings the
	// partial collection forward on long-lived services.
	switch {
	case en == nil:
		en = t.add(b, p.Dst, p.Now)
		en.dest = d
	case en.dest != d:
		en.dest = d
		en.lastuse = p.Now
		t.entries++
	}
	return d
}

// Interface guards.
var (
	_ service.Scheduler    = (*LBLC)(nil)
	_ service.LoadObserver = (*LBLC)(nil)
	_ service.Expirer      = (*LBLC)(nil)
	_ service.Doner        = (*LBLC)(nil)
)
