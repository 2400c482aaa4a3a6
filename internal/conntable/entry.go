package conntable

import (
	"encoding/binary"
	"math/bits"
	"net/netip"
	"time"
)

// Entry storage. Entries live in chunked arrays of pointer-free structs (the
// garbage collector never scans them) and are linked by 24-bit locations:
//
//	loc = kind<<22 | index     kind: 0 IPv4 entry, 1 IPv6 entry,
//	                                 2 wheel sentinel, 3 nil (nilLoc)
//
// A location is only meaningful inside its shard. 24 bits rather than 32
// save 3 bytes on each of the three links an entry carries (hash chain,
// and wheel next/prev), which is what brings an IPv4 entry to 60 bytes;
// the price is a limit of 2^22 entries of each family per shard (see
// maxPerShard).
const (
	idxBits  = 22
	idxMask  = 1<<idxBits - 1
	kind4    = 0
	kind6    = 1
	kindSent = 2
	nilLoc   = 1<<24 - 1 // kind 3
	maxIndex = 1 << idxBits
)

// loc24 is a location in 3 bytes, little-endian.
type loc24 [3]byte

func (b *loc24) get() uint32  { return uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16 }
func (b *loc24) set(v uint32) { b[0], b[1], b[2] = byte(v), byte(v>>8), byte(v>>16) }

// hdr is the family-independent part of an entry (48 bytes). Field order
// puts what a lookup compares (ports, flags, chain link, timer) first.
type hdr struct {
	cport, vport, dport uint16
	flags               Flags  // kernel flags plus fHashed, fAF4, fDAF4
	gen                 uint16 // generation of the slot, never 0 while in use
	states              uint8  // state | old state<<4
	hnext               loc24  // hash chain; free-list link while free
	wnext, wprev        loc24  // timer wheel list
	expires             uint32 // tick at which the timer fires
	ctl                 uint32 // a template: n_control; a connection: encoded control (0 = none)
	dp                  uint32 // dest ID<<8 | protocol
	fwmark              uint32
	timeout             uint32 // ticks
	inPkts              uint32
	// syncEnd is the master sync daemon's cp->sync_endtime: the tick of
	// the expiry time last synced (its retries are the fSyncRetry bits
	// of flags). Set to the creation tick by Insert.
	syncEnd uint32
}

// entry4 is an IPv4 entry: 60 bytes.
type entry4 struct {
	caddr, vaddr, daddr [4]byte
	h                   hdr
}

// entry6 is an entry with an IPv6 address (96 bytes). A connection whose
// client and virtual addresses are IPv4 but whose real server is IPv6 (or
// the reverse, both allowed by the kernel for tunnelling) lives here with
// fAF4 or fDAF4 set and its IPv4 addresses in IPv4-mapped form.
type entry6 struct {
	caddr, vaddr, daddr [16]byte
	h                   hdr
}

// Internal flag bits, never seen outside the package. Bits 0x0008,
// 0x0010, 0x4000 and 0x8000 are unused by the kernel (its flags above bit
// 15, NFCT, are not kept here).
const (
	fHashed Flags = 0x0040 // the kernel's IP_VS_CONN_F_HASHED: the slot is in use
	fAF4    Flags = 0x4000 // IPv6 store: client and virtual addresses are IPv4
	fDAF4   Flags = 0x8000 // IPv6 store: real server address is IPv4
	// fSyncRetry holds the sync retries counted in the low 2 bits of
	// the kernel's sync_endtime (sync_retries is 0 to 3).
	fSyncRetry Flags = 0x0018

	internalFlags = fHashed | fAF4 | fDAF4 | fSyncRetry
	// tableFlags are the flags that only the table changes.
	tableFlags = internalFlags | FlagTemplate | FlagNoCPort | FlagOnePacket
)

// fSyncRetryShift is the position of fSyncRetry.
const fSyncRetryShift = 3

func (h *hdr) proto() uint8         { return uint8(h.dp) }
func (h *hdr) template() bool       { return h.flags&FlagTemplate != 0 }
func (h *hdr) state() uint8         { return h.states & 0xf }
func (h *hdr) phase() int           { return int(h.flags>>12) & 1 } // FlagTemplate is 0x1000
func (h *hdr) stateOld() uint8      { return h.states >> 4 }
func (h *hdr) isAssured() bool      { return h.states&TemplateAssured != 0 }
func (h *hdr) controls() bool       { return h.template() && h.ctl != 0 }
func (h *hdr) alive(nt uint32) bool { return after(h.expires, nt) }

// visible reports whether lookups see the entry at tick nt: its timer has
// not fired, or it is a template that still controls connections (whose
// timer, in the kernel, would have been pushed back by expire_later).
func (h *hdr) visible(nt uint32) bool { return after(h.expires, nt) || h.controls() }

// store4 and store6 hold a shard's entries of one family in chunks of
// 1<<cb entries, allocated as the shard grows and never freed. Free slots
// form a FIFO list through hdr.hnext, so a freed slot is reused as late as
// possible and a stale Ref is caught by the 16-bit generation for as long
// as possible.
type store4 struct {
	chunks      [][]entry4
	used        uint32 // slots handed out at least once
	free, freeT uint32 // free list head and tail (indices), nilLoc if empty
}

type store6 struct {
	chunks      [][]entry6
	used        uint32
	free, freeT uint32
}

func (s *shard) e4(i uint32) *entry4 { return &s.v4.chunks[i>>s.cb][i&s.cmask] }
func (s *shard) e6(i uint32) *entry6 { return &s.v6.chunks[i>>s.cb][i&s.cmask] }

// hdr returns the header of the entry at l (kind 0 or 1).
func (s *shard) hdr(l uint32) *hdr {
	if l>>idxBits == kind4 {
		return &s.e4(l & idxMask).h
	}
	return &s.e6(l & idxMask).h
}

// used returns the high-water index of the store of l's kind.
func (s *shard) used(l uint32) uint32 {
	if l>>idxBits == kind4 {
		return s.v4.used
	}
	return s.v6.used
}

// alloc returns a free slot of the given kind, growing the store by a chunk
// if needed. ok is false when the shard's index space is exhausted.
func (s *shard) alloc(kind uint32) (l uint32, ok bool) {
	var free, freeT, used *uint32
	var nchunks int
	if kind == kind4 {
		free, freeT, used, nchunks = &s.v4.free, &s.v4.freeT, &s.v4.used, len(s.v4.chunks)
	} else {
		free, freeT, used, nchunks = &s.v6.free, &s.v6.freeT, &s.v6.used, len(s.v6.chunks)
	}
	if i := *free; i != nilLoc {
		l = kind<<idxBits | i
		*free = s.hdr(l).hnext.get()
		if *free == nilLoc {
			*freeT = nilLoc
		}
		return l, true
	}
	i := *used
	if i >= maxIndex {
		return 0, false
	}
	if int(i>>s.cb) == nchunks {
		if kind == kind4 {
			s.v4.chunks = append(s.v4.chunks, make([]entry4, 1<<s.cb))
		} else {
			s.v6.chunks = append(s.v6.chunks, make([]entry6, 1<<s.cb))
		}
	}
	*used = i + 1
	l = kind<<idxBits | i
	s.hdr(l).gen = 1
	return l, true
}

// release clears the entry at l, bumps its generation (so Refs to it go
// stale) and appends it to the free list.
func (s *shard) release(l uint32) {
	i := l & idxMask
	var free, freeT *uint32
	var h *hdr
	if l>>idxBits == kind4 {
		e := s.e4(i)
		g := e.h.gen
		*e = entry4{}
		e.h.gen = g
		h, free, freeT = &e.h, &s.v4.free, &s.v4.freeT
	} else {
		e := s.e6(i)
		g := e.h.gen
		*e = entry6{}
		e.h.gen = g
		h, free, freeT = &e.h, &s.v6.free, &s.v6.freeT
	}
	h.gen++
	if h.gen == 0 {
		h.gen = 1
	}
	h.hnext.set(nilLoc)
	if *freeT == nilLoc {
		*free = i
	} else {
		s.hdr(l&^idxMask | *freeT).hnext.set(i)
	}
	*freeT = i
}

// check returns the header at l if l is a slot in use with generation gen.
func (s *shard) check(l uint32, gen uint16) *hdr {
	if l&idxMask >= s.used(l) {
		return nil
	}
	h := s.hdr(l)
	if h.gen != gen || h.flags&fHashed == 0 {
		return nil
	}
	return h
}

// Hash chains.

// bucket maps a hash to one of the shard's nb buckets (multiply-shift, so
// that nb need not be a power of two).
func (s *shard) bucket(h uint64) uint32 { return uint32(uint64(uint32(h)) * uint64(s.nb) >> 32) }

func (s *shard) pushHead(l, b uint32) {
	s.hdr(l).hnext.set(s.buckets[b])
	s.buckets[b] = l
}

func (s *shard) unhash(l, b uint32) {
	next := s.hdr(l).hnext.get()
	if s.buckets[b] == l {
		s.buckets[b] = next
		return
	}
	for p := s.buckets[b]; p != nilLoc; {
		ph := s.hdr(p)
		n := ph.hnext.get()
		if n == l {
			ph.hnext.set(next)
			return
		}
		p = n
	}
	panic("conntable: entry missing from its hash chain")
}

// Hashing. Connections hash on <proto, client address, client port>, so
// that both directions of a flow (the out lookup hashes on the packet's
// destination, the client) meet in one shard and bucket, as the kernel's
// ip_vs_conn_hashkey does. Templates hash on <proto, client net, virtual
// address or fwmark>, not on the port, so that neutralising one (its ports
// become 0xffff) leaves it where it is. The mixer is the 64x64->128
// multiply-fold of wyhash with per-table random secrets, against collision
// flooding.

func mum(a, b uint64) uint64 {
	hi, lo := bits.Mul64(a, b)
	return hi ^ lo
}

func (t *Table) hashConn4(proto uint8, c [4]byte, port uint16) uint64 {
	k := uint64(binary.BigEndian.Uint32(c[:]))<<24 | uint64(port)<<8 | uint64(proto)
	return mum(mum(k^t.k[0], t.k[1])^t.k[2], t.k[3])
}

func (t *Table) hashConn6(proto uint8, c *[16]byte, port uint16) uint64 {
	hi := binary.BigEndian.Uint64(c[:8])
	lo := binary.BigEndian.Uint64(c[8:])
	return mum(mum(hi^t.k[0], lo^t.k[1])^(uint64(port)<<8|uint64(proto))^t.k[2], t.k[3])
}

func (t *Table) hashTpl4(proto uint8, snet, vkey [4]byte) uint64 {
	k := uint64(binary.BigEndian.Uint32(snet[:]))<<32 | uint64(binary.BigEndian.Uint32(vkey[:]))
	return mum(mum(k^t.k[0], uint64(proto)^t.k[4])^t.k[2], t.k[3])
}

func (t *Table) hashTpl6(proto uint8, snet, vkey *[16]byte) uint64 {
	a := mum(binary.BigEndian.Uint64(snet[:8])^t.k[0], binary.BigEndian.Uint64(snet[8:])^t.k[1])
	b := mum(binary.BigEndian.Uint64(vkey[:8])^t.k[4], binary.BigEndian.Uint64(vkey[8:])^t.k[5])
	return mum(a^b^uint64(proto)^t.k[2], t.k[3])
}

// entryHash recomputes the hash an entry was filed under.
func (t *Table) entryHash(s *shard, l uint32) uint64 {
	h := s.hdr(l)
	p := h.proto()
	if l>>idxBits == kind4 {
		e := s.e4(l & idxMask)
		if h.template() {
			return t.hashTpl4(p, e.caddr, e.vaddr)
		}
		return t.hashConn4(p, e.caddr, h.cport)
	}
	e := s.e6(l & idxMask)
	if h.flags&fAF4 != 0 {
		c, v := [4]byte(e.caddr[12:]), [4]byte(e.vaddr[12:])
		if h.template() {
			return t.hashTpl4(p, c, v)
		}
		return t.hashConn4(p, c, h.cport)
	}
	if h.template() {
		return t.hashTpl6(p, &e.caddr, &e.vaddr)
	}
	return t.hashConn6(p, &e.caddr, h.cport)
}

// load copies the entry at l into c (everything but Control, which needs
// the template's shard). ref is the entry's handle; now is the reference
// time for Expires.
func (s *shard) load(l uint32, c *Conn, ref Ref, now int64) {
	if l>>idxBits == kind4 {
		load4(s.e4(l&idxMask), c, ref, now)
		return
	}
	load6(s.e6(l&idxMask), c, ref, now)
}

func load4(e *entry4, c *Conn, ref Ref, now int64) {
	c.CAddr = netip.AddrFrom4(e.caddr)
	c.VAddr = netip.AddrFrom4(e.vaddr)
	c.DAddr = netip.AddrFrom4(e.daddr)
	loadHdr(&e.h, c, ref, now)
}

func load6(e *entry6, c *Conn, ref Ref, now int64) {
	if e.h.flags&fAF4 != 0 {
		c.CAddr = netip.AddrFrom4([4]byte(e.caddr[12:]))
		c.VAddr = netip.AddrFrom4([4]byte(e.vaddr[12:]))
	} else {
		c.CAddr = netip.AddrFrom16(e.caddr)
		c.VAddr = netip.AddrFrom16(e.vaddr)
	}
	if e.h.flags&fDAF4 != 0 {
		c.DAddr = netip.AddrFrom4([4]byte(e.daddr[12:]))
	} else {
		c.DAddr = netip.AddrFrom16(e.daddr)
	}
	loadHdr(&e.h, c, ref, now)
}

func loadHdr(h *hdr, c *Conn, ref Ref, now int64) {
	c.Proto = h.proto()
	c.State = h.state()
	c.OldState = h.stateOld()
	c.Flags = h.flags &^ internalFlags
	c.CPort, c.VPort, c.DPort = h.cport, h.vport, h.dport
	c.FWMark = h.fwmark
	c.DestID = h.dp >> 8
	c.Control = 0
	c.NControl = 0
	if h.template() {
		c.NControl = h.ctl
	}
	c.Timeout = time.Duration(h.timeout) * Tick
	c.Expires = tickTime(h.expires, now)
	c.InPkts = h.inPkts
	c.Ref = ref
}

// Control links. A connection names its template by shard and location in
// 32 bits: present<<31 | kind<<30 | shard<<22 | index, which is why there
// are at most 256 shards. No generation is needed: a template is never
// removed while it controls a connection.
const ctlPresent = 1 << 31

func encCtl(shard int, l uint32) uint32 {
	return ctlPresent | (l>>idxBits)<<30 | uint32(shard)<<idxBits | l&idxMask
}

func decCtl(c uint32) (shard int, l uint32) {
	return int(c >> idxBits & 0xff), (c>>30&1)<<idxBits | c&idxMask
}
