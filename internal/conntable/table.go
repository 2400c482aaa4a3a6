package conntable

import (
	"errors"
	"fmt"
	"math"
	"math/bits"
	"math/rand/v2"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// Flags are a connection's IP_VS_CONN_F_* flags (uapi linux/ip_vs.h), bits
// 0 to 15: what the kernel syncs.
type Flags uint16

// The kernel's connection flags. The forwarding method is the value under
// FlagFwdMask.
const (
	FlagFwdMask   Flags = 0x0007 // IP_VS_CONN_F_FWD_MASK
	FlagMasq      Flags = 0x0000 // NAT
	FlagLocalNode Flags = 0x0001
	FlagTunnel    Flags = 0x0002
	FlagRoute     Flags = 0x0003 // DR (IP_VS_CONN_F_DROUTE)
	FlagBypass    Flags = 0x0004
	FlagSync      Flags = 0x0020 // created by the sync daemon
	FlagNoOutput  Flags = 0x0080 // the director does not see replies (DR, TUN)
	FlagInactive  Flags = 0x0100 // counted in the dest's InActConn
	FlagOutSeq    Flags = 0x0200
	FlagInSeq     Flags = 0x0400
	FlagNoCPort   Flags = 0x0800 // client port not known yet
	FlagTemplate  Flags = 0x1000 // persistence template
	FlagOnePacket Flags = 0x2000 // OPS: never in the table
)

// TemplateAssured is the template state ASSURED (IP_VS_CTPL_S_ASSURED): a
// connection it controls got established (TCP, SCTP) or answered (UDP).
// Templates are in state 0 (NONE) or 1; it is the only state the table
// interprets.
const TemplateAssured uint8 = 1

// MaxState is the largest protocol state the table stores (states are kept
// in four bits; the kernel's largest, SCTP CLOSED, is 13).
const MaxState = 15

// Ref is a handle on an entry, valid until the entry is removed. It holds
// the entry's shard, location and a 16-bit generation of its slot, so that
// a Ref to a removed entry is refused (unless its slot has since been
// reused a multiple of 65536 times; free slots are reused in FIFO order,
// which makes that take at least 65536 times the number of free slots
// removals). The zero Ref is never valid.
type Ref uint64

func mkRef(gen uint16, shard int, l uint32) Ref {
	return Ref(uint64(gen)<<48 | uint64(shard)<<32 | uint64(l))
}

// Conn is a copy of an entry, what the API takes and returns (kernel
// struct ip_vs_conn). Addresses are in the family of the packet that
// created the entry; a template's CAddr is the client's network (the
// address masked with the service's netmask), and a fwmark template
// (Proto 0) has the mark as its virtual address, as the kernel stores it.
type Conn struct {
	Proto    uint8 // IP protocol; 0 (IPPROTO_IP) only for fwmark templates
	State    uint8 // protocol state (template: 0 or TemplateAssured), <= MaxState
	OldState uint8
	Flags    Flags
	CAddr    netip.Addr // client
	VAddr    netip.Addr // virtual address
	DAddr    netip.Addr // real server
	CPort    uint16
	VPort    uint16
	DPort    uint16
	FWMark   uint32 // the packet's mark (skb->mark); a fwmark template's key
	DestID   uint32 // service.Dest ID (< 2^24), 0 if none
	Control  Ref    // the template controlling a connection, 0 if none
	NControl uint32 // connections a template controls (table-owned)
	Timeout  time.Duration
	Expires  int64  // clock time at which the timer fires
	InPkts   uint32 // packets counted by Touch
	Ref      Ref    // the entry's own handle (set by Get, Walk, OnRemove; ignored by Insert)
}

// Config configures a Table.
type Config struct {
	// Max bounds the number of entries, connections and templates
	// together (0: DefaultMax). Inserting into a full table fails with
	// ErrFull. With the default 16 shards the table holds up to 32M.
	Max int

	// Shards is the number of shards, a power of two from 1 to MaxShards
	// (0: DefaultShards). Each shard has its own lock, arrays and timer
	// wheel.
	Shards int

	// Seed seeds the hash secrets (0: random). Fix it only in tests.
	Seed uint64

	// OnRemove, if not nil, is called once for every entry removed from
	// the table, with no lock held: the engine releases the real
	// server's counters there (ip_vs_unbind_dest). forced is false for
	// an entry whose timer ran out (Expire) and true for one removed by
	// ExpireNow, Delete, Flush, or with its connection by the
	// unassured-template rule. c is valid only during the call. OnRemove
	// may call the Table.
	OnRemove func(c *Conn, forced bool)
}

// Defaults and limits of Config.
const (
	DefaultMax    = 1 << 20
	DefaultShards = 16
	MaxShards     = 256 // a control link holds the shard in 8 bits
	// maxPerShard bounds Max/Shards at half the per-shard index space
	// of each family, so that no shard runs out of indices before the
	// table is full even with an uneven hash.
	maxPerShard = maxIndex / 2
)

// Errors returned by Insert (preallocated: no allocation on failure).
var (
	ErrFull    = errors.New("conntable: table full")
	ErrStale   = errors.New("conntable: stale or invalid control reference")
	ErrInvalid = errors.New("conntable: invalid connection")
)

// Stats counts the table's events since New.
type Stats struct {
	Inserts     uint64 // entries inserted
	Removes     uint64 // entries removed, by any cause
	Expired     uint64 // removed because their timer ran out (Expire)
	Forced      uint64 // removed by ExpireNow, Delete, Flush or the unassured-template rule
	FullDrops   uint64 // inserts refused with ErrFull
	ExpireLater uint64 // template timers pushed back 60 s because they still controlled connections
}

// Table is the IPVS connection table (kernel ip_vs_conn_tab): connections
// and persistence templates, found by the packet path, timed out by a
// timer wheel. It is safe for concurrent use.
//
// Locking: each shard has a mutex that guards its entries, buckets, free
// lists and wheel; every method takes one shard lock at a time and never
// two. An operation that involves a connection and its template in another
// shard (Insert with a Control, the removal of a controlled connection,
// Get of a controlled connection) locks the two shards one after the
// other. Expire holds expMu (one expirer at a time) while it takes shard
// locks; the first Insert takes startMu, then expMu, then each shard lock.
// Lock order: startMu, expMu, shard. OnRemove is called with no lock held
// but possibly with expMu held (from Expire): it may call any method, an
// Expire from within it returns 0.
type Table struct {
	shards     []shard // immutable after New
	shardShift uint    // 64 - log2(len(shards))
	max        int64
	k          [6]uint64 // hash secrets
	onRemove   func(*Conn, bool)
	pool       sync.Pool // *recBuf for removals outside Expire

	count     atomic.Int64  // entries, connections and templates
	templates atomic.Int64  // templates
	noCPort   atomic.Int64  // entries with FlagNoCPort (ip_vs_conn_no_cport_cnt)
	fullDrops atomic.Uint64 // ErrFull
	lastNow   atomic.Int64  // latest time seen by Insert and Expire

	startMu sync.Mutex
	started atomic.Bool // set once the timer wheels have their origin

	expMu  sync.Mutex
	cur    cursor // guarded by expMu
	expBuf recBuf // guarded by expMu
}

// shard is one part of the table. Fields under mu are guarded by it; the
// statistics are written under mu and read atomically.
type shard struct {
	mu sync.Mutex

	cb    uint   // chunk size is 1<<cb entries; immutable
	cmask uint32 // 1<<cb - 1; immutable
	nb    uint32 // number of buckets; immutable

	buckets []uint32 // chain heads (locations)
	v4      store4
	v6      store6
	wl      []wlink   // wheel slot and pending sentinels
	next    [2]uint32 // per wheel: first tick whose slot Expire has not detached

	inserts, removes, expired, forced, expireLater atomic.Uint64

	_ [64]byte // keep neighbouring shards' locks off one cache line
}

// rec is a removed entry on its way to OnRemove.
type rec struct {
	c       Conn
	ctl     uint32 // control of a removed connection, 0 if none
	drop    bool   // its timeout was 0: may drop its unassured template
	tpl     bool
	nocport bool
}

// expireBatch is how many removals Expire collects under a shard lock
// before it releases the lock to run OnRemove: small enough to keep the
// lock hold short, large enough to amortise the locking.
const expireBatch = 16

type recBuf struct {
	r   [expireBatch]rec
	tpl rec // a template removed by the unassured-template rule
}

// Chunk sizes: 1<<maxChunkBits entries (2048: 112 KiB of IPv4 entries,
// exactly 14 pages, and 23 pages of IPv6 ones) for big tables, down to
// 1<<minChunkBits for small ones, so that a small table stays small.
const (
	minChunkBits = 6
	maxChunkBits = 11
)

// New returns an empty table.
func New(cfg Config) (*Table, error) {
	n := cfg.Shards
	if n == 0 {
		n = DefaultShards
	}
	if n < 1 || n > MaxShards || n&(n-1) != 0 {
		return nil, fmt.Errorf("conntable: %d shards: want a power of two from 1 to %d", n, MaxShards)
	}
	limit := cfg.Max
	if limit == 0 {
		limit = DefaultMax
	}
	if limit < 0 || limit > maxPerShard*n {
		return nil, fmt.Errorf("conntable: max %d with %d shards: want 1 to %d", limit, n, maxPerShard*n)
	}
	per := (limit + n - 1) / n
	seed := cfg.Seed
	if seed == 0 {
		seed = rand.Uint64()
	}
	t := &Table{
		shards:     make([]shard, n),
		shardShift: uint(64 - bits.TrailingZeros(uint(n))),
		max:        int64(limit),
		onRemove:   cfg.OnRemove,
	}
	t.pool.New = func() any { return new(recBuf) }
	t.lastNow.Store(math.MinInt64)
	for i := range t.k {
		t.k[i] = splitmix(&seed) | 1
	}
	cb := uint(bits.Len(uint(per))) - 1
	cb = min(max(cb, minChunkBits), maxChunkBits)
	for i := range t.shards {
		s := &t.shards[i]
		s.cb, s.cmask = cb, 1<<cb-1
		// One bucket per entry at capacity: chains of 1.5 entries
		// on average for a hit in a full table.
		s.nb = uint32(per)
		s.buckets = make([]uint32, per)
		for b := range s.buckets {
			s.buckets[b] = nilLoc
		}
		s.wl = make([]wlink, wlLen)
		for j := range s.wl {
			s.wl[j] = wlink{sentLoc(uint32(j)), sentLoc(uint32(j))}
		}
		s.v4.free, s.v4.freeT = nilLoc, nilLoc
		s.v6.free, s.v6.freeT = nilLoc, nilLoc
	}
	return t, nil
}

// splitmix is the SplitMix64 generator, to derive the hash secrets.
func splitmix(x *uint64) uint64 {
	*x += 0x9e3779b97f4a7c15
	z := *x
	z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
	z = (z ^ z>>27) * 0x94d049bb133111eb
	return z ^ z>>31
}

// Shards returns the number of shards.
func (t *Table) Shards() int { return len(t.shards) }

// ShardOf returns the shard of the connections of client caddr:cport over
// proto: the shard of its entry, found by both its in and out lookups. The
// data path shards its workers the same way, so that a worker's lookups
// take an uncontended lock.
func (t *Table) ShardOf(proto uint8, caddr netip.Addr, cport uint16) int {
	if caddr.Is4() {
		return int(t.hashConn4(proto, caddr.As4(), cport) >> t.shardShift)
	}
	a := caddr.As16()
	return int(t.hashConn6(proto, &a, cport) >> t.shardShift)
}

// Len returns the number of connections and of templates in the table
// (entries whose timer has run out are counted until Expire removes them).
func (t *Table) Len() (conns, templates int) {
	tp := t.templates.Load()
	return int(t.count.Load() - tp), int(tp)
}

// Stats returns the table's counters.
func (t *Table) Stats() Stats {
	st := Stats{FullDrops: t.fullDrops.Load()}
	for i := range t.shards {
		s := &t.shards[i]
		st.Inserts += s.inserts.Load()
		st.Removes += s.removes.Load()
		st.Expired += s.expired.Load()
		st.Forced += s.forced.Load()
		st.ExpireLater += s.expireLater.Load()
	}
	return st
}

// observe records now as the table's latest time, the reference of the
// methods that take no time (Get, Walk, ExpireNow, Delete, Flush).
func (t *Table) observe(now int64) {
	if now > t.lastNow.Load() {
		t.lastNow.Store(now)
	}
}

// ensureStart gives the timer wheels their origin, the tick of the first
// insert.
func (t *Table) ensureStart(now int64) {
	if t.started.Load() {
		return
	}
	t.startMu.Lock()
	defer t.startMu.Unlock()
	if t.started.Load() {
		return
	}
	nt := floorTick(now)
	t.expMu.Lock()
	t.cur = cursor{tick: nt}
	t.expMu.Unlock()
	for i := range t.shards {
		s := &t.shards[i]
		s.mu.Lock()
		s.next = [2]uint32{nt, nt}
		s.mu.Unlock()
	}
	t.started.Store(true)
}

// reserve counts one more entry if the table has room.
func (t *Table) reserve() bool {
	for {
		n := t.count.Load()
		if n >= t.max {
			return false
		}
		if t.count.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

// locate decodes a Ref.
func (t *Table) locate(r Ref) (s *shard, si int, l uint32, gen uint16, ok bool) {
	gen, si, l = uint16(r>>48), int(uint16(r>>32)), uint32(r)
	if gen == 0 || si >= len(t.shards) || l>>idxBits > kind6 {
		return nil, 0, 0, 0, false
	}
	return &t.shards[si], si, l, gen, true
}

// lockLive locks the shard of ref and returns its entry if lookups would
// see it at now (a template past its time that still controls connections
// is first brought up to date). On failure h is nil and nothing is locked.
func (t *Table) lockLive(ref Ref, now int64) (s *shard, l uint32, h *hdr) {
	s, _, l, gen, ok := t.locate(ref)
	if !ok {
		return nil, 0, nil
	}
	nt := floorTick(now)
	s.mu.Lock()
	h = s.check(l, gen)
	if h == nil || !h.visible(nt) {
		s.mu.Unlock()
		return nil, 0, nil
	}
	s.catchUp(h, nt)
	return s, l, h
}

// lockRef locks the shard of ref and returns its entry, whatever its timer.
// On failure h is nil and nothing is locked.
func (t *Table) lockRef(ref Ref) (s *shard, si int, l uint32, h *hdr) {
	s, si, l, gen, ok := t.locate(ref)
	if !ok {
		return nil, 0, 0, nil
	}
	s.mu.Lock()
	h = s.check(l, gen)
	if h == nil {
		s.mu.Unlock()
		return nil, 0, 0, nil
	}
	return s, si, l, h
}

// controlRef returns the Ref of the template a connection's ctl names.
func (t *Table) controlRef(ctl uint32) Ref {
	si, l := decCtl(ctl)
	s := &t.shards[si]
	s.mu.Lock()
	g := s.hdr(l).gen
	s.mu.Unlock()
	return mkRef(g, si, l)
}

// removeLocked unhashes and frees entry l of shard si (locked), copying it
// to r for OnRemove.
func (t *Table) removeLocked(s *shard, si int, l uint32, r *rec, now int64) {
	h := s.hdr(l)
	s.load(l, &r.c, mkRef(h.gen, si, l), now)
	r.tpl = h.template()
	r.ctl = 0
	if !r.tpl {
		r.ctl = h.ctl
	}
	r.drop = h.timeout == 0
	r.nocport = h.flags&FlagNoCPort != 0
	s.unhash(l, s.bucket(t.entryHash(s, l)))
	s.unlinkW(l)
	s.release(l)
	s.removes.Add(1)
}

// finish completes the removal of buf.r[:n] with no shard lock held: the
// counts, the templates' NControl (and the unassured-template rule), and
// OnRemove. It returns the number of templates the rule removed.
func (t *Table) finish(buf *recBuf, n int, forced bool) int {
	dropped := 0
	for i := 0; i < n; i++ {
		r := &buf.r[i]
		t.count.Add(-1)
		if r.tpl {
			t.templates.Add(-1)
		}
		if r.nocport {
			t.noCPort.Add(-1)
		}
		drop := false
		if r.ctl != 0 {
			r.c.Control, drop = t.releaseControl(r.ctl, r.drop, &buf.tpl, t.lastNow.Load())
		}
		if t.onRemove != nil {
			t.onRemove(&r.c, forced)
		}
		if drop {
			dropped++
			t.count.Add(-1)
			t.templates.Add(-1)
			if t.onRemove != nil {
				t.onRemove(&buf.tpl.c, true)
			}
		}
	}
	return dropped
}

// releaseControl decrements the NControl of the template ctl names, after
// the removal of a connection it controlled. If drop (the connection's
// timeout was 0) and the template is unassured and controls nothing any
// more, the template is removed too, into out (kernel ip_vs_conn_expire:
// "Drop CTL or non-assured TPL if not used anymore"). now is the reference
// time for out's Expires.
func (t *Table) releaseControl(ctl uint32, drop bool, out *rec, now int64) (Ref, bool) {
	si, l := decCtl(ctl)
	s := &t.shards[si]
	s.mu.Lock()
	h := s.hdr(l)
	if h.flags&fHashed == 0 || !h.template() || h.ctl == 0 {
		s.mu.Unlock()
		panic("conntable: control link to an entry that is not a controlling template")
	}
	ref := mkRef(h.gen, si, l)
	h.ctl--
	if drop && h.ctl == 0 && !h.isAssured() {
		t.removeLocked(s, si, l, out, now)
		s.forced.Add(1)
		s.mu.Unlock()
		return ref, true
	}
	s.mu.Unlock()
	return ref, false
}
