package sched

import (
	"encoding/binary"
	"math/bits"
	"net/netip"
	"time"

	"golvs/internal/service"
)

// This file is the slow reference of lblc: net/netfilter/ipvs/ip_vs_lblc.c
// transcribed with the kernel's names. An hlist is a slice whose element 0
// is the first node; jiffies are the packet's (or Expire's) nanoseconds.
// It also holds what the lblcr reference shares with it.

// The kernel's constants, spelled as in ip_vs_lblc.c (the lblcr ones are
// identical).
const (
	lblcRefEntryTimeout           = int64(6 * 60 * time.Second)
	lblcRefDefaultExpiration      = int64(24 * 60 * 60 * time.Second)
	lblcRefCountForFullExpiration = 30
	lblcRefTabBits                = 10
	lblcRefTabSize                = 1 << lblcRefTabBits
	lblcRefTabMask                = lblcRefTabSize - 1
)

// lblcRefTimeBefore is time_before(a, b): (long)((a) - (b)) < 0.
func lblcRefTimeBefore(a, b int64) bool { return a-b < 0 }

// lblcRefTimeAfter is time_after(a, b): (long)((b) - (a)) < 0.
func lblcRefTimeAfter(a, b int64) bool { return b-a < 0 }

// lblcRefHashkey is ip_vs_lblc_hashkey: the address as the __be32 words a
// little-endian CPU loads from memory, folded for IPv6, then ntohl and
// hash_32 (include/linux/hash.h, GOLDEN_RATIO_32).
func lblcRefHashkey(addr netip.Addr) uint32 {
	var addrFold uint32
	if addr.Is4() {
		a := addr.As4()
		addrFold = binary.LittleEndian.Uint32(a[:])
	} else {
		a := addr.As16()
		addrFold = binary.LittleEndian.Uint32(a[0:]) ^ binary.LittleEndian.Uint32(a[4:]) ^
			binary.LittleEndian.Uint32(a[8:]) ^ binary.LittleEndian.Uint32(a[12:])
	}
	val := bits.ReverseBytes32(addrFold) // ntohl on a little-endian CPU
	return (val * 0x61C88647) >> (32 - lblcRefTabBits)
}

// lblcRefIsOverloaded is is_overloaded() of ip_vs_lblc.c and ip_vs_lblcr.c.
func lblcRefIsOverloaded(dest *service.Dest, destinations []*service.Dest) bool {
	if dest.ActiveConns() > dest.Weight() {
		for _, d := range destinations {
			if d.ActiveConns()*2 < d.Weight() {
				return true
			}
		}
	}
	return false
}

// lblcRefWLC is __ip_vs_lblc_schedule (and __ip_vs_lblcr_schedule, the same
// loop).
func lblcRefWLC(destinations []*service.Dest) *service.Dest {
	var dest, least *service.Dest
	var loh, doh int32
	var i int

	for i = 0; i < len(destinations); i++ {
		dest = destinations[i]
		if dest.Overloaded() {
			continue
		}
		if dest.Weight() > 0 {
			least = dest
			loh = loadRefConnOverhead(least)
			goto nextstage
		}
	}
	return nil

nextstage:
	for i++; i < len(destinations); i++ {
		dest = destinations[i]
		if dest.Overloaded() {
			continue
		}

		doh = loadRefConnOverhead(dest)
		if int64(loh)*int64(dest.Weight()) >
			int64(doh)*int64(least.Weight()) {
			least = dest
			loh = doh
		}
	}
	return least
}

// lblcRefEntry is struct ip_vs_lblc_entry.
type lblcRefEntry struct {
	addr    netip.Addr
	dest    *service.Dest
	lastuse int64
}

// lblcRefTable is struct ip_vs_lblc_table.
type lblcRefTable struct {
	bucket   [lblcRefTabSize][]*lblcRefEntry
	entries  int
	max_size int
	rover    int
	counter  int
	dead     bool
}

type lblcRef struct {
	tbl        *lblcRefTable
	expiration int64 // sysctl_lblc_expiration
}

func newLBLCRef(o Options) *lblcRef {
	r := &lblcRef{expiration: lblcRefDefaultExpiration}
	if o.LBLCExpiration != 0 {
		r.expiration = int64(o.LBLCExpiration)
	}
	return r
}

func (r *lblcRef) Name() string { return "lblc" }

// Init is ip_vs_lblc_init_svc.
func (r *lblcRef) Init([]*service.Dest) error {
	tbl := &lblcRefTable{}
	tbl.max_size = lblcRefTabSize * 16
	tbl.rover = 0
	tbl.counter = 1
	tbl.dead = false
	r.tbl = tbl
	return nil
}

func (r *lblcRef) AddDest([]*service.Dest, *service.Dest) {}
func (r *lblcRef) DelDest([]*service.Dest, *service.Dest) {}
func (r *lblcRef) UpdDest([]*service.Dest, *service.Dest) {}

// hlistDel removes en from its bucket (ip_vs_lblc_del; no entries--).
func (tbl *lblcRefTable) hlistDel(en *lblcRefEntry) {
	hash := lblcRefHashkey(en.addr)
	l := tbl.bucket[hash]
	for i, x := range l {
		if x == en {
			tbl.bucket[hash] = append(l[:i:i], l[i+1:]...)
			return
		}
	}
}

// hash is ip_vs_lblc_hash: hlist_add_head_rcu and entries++.
func (tbl *lblcRefTable) hash(en *lblcRefEntry) {
	hash := lblcRefHashkey(en.addr)
	tbl.bucket[hash] = append([]*lblcRefEntry{en}, tbl.bucket[hash]...)
	tbl.entries++
}

// get is ip_vs_lblc_get.
func (tbl *lblcRefTable) get(addr netip.Addr) *lblcRefEntry {
	hash := lblcRefHashkey(addr)
	for _, en := range tbl.bucket[hash] {
		if en.addr == addr {
			return en
		}
	}
	return nil
}

// lblcNew is ip_vs_lblc_new.
func (tbl *lblcRefTable) lblcNew(daddr netip.Addr, dest *service.Dest, jiffies int64) *lblcRefEntry {
	en := tbl.get(daddr)
	if en != nil {
		if en.dest == dest {
			return en
		}
		tbl.hlistDel(en) // ip_vs_lblc_del
	}
	en = &lblcRefEntry{}
	en.addr = daddr
	en.lastuse = jiffies
	en.dest = dest
	tbl.hash(en)
	return en
}

// fullCheck is ip_vs_lblc_full_check.
func (r *lblcRef) fullCheck(now int64) {
	tbl := r.tbl
	var i, j int
	for i, j = 0, tbl.rover; i < lblcRefTabSize; i++ {
		j = (j + 1) & lblcRefTabMask

		var keep []*lblcRefEntry
		for _, en := range tbl.bucket[j] { // hlist_for_each_entry_safe
			if lblcRefTimeBefore(now, en.lastuse+r.expiration) {
				keep = append(keep, en)
				continue
			}
			tbl.entries--
		}
		tbl.bucket[j] = keep
	}
	tbl.rover = j
}

// Expire is ip_vs_lblc_check_expire.
func (r *lblcRef) Expire(now int64) {
	tbl := r.tbl
	var goal int
	var i, j int

	if (tbl.counter % lblcRefCountForFullExpiration) == 0 {
		// do full expiration check
		r.fullCheck(now)
		tbl.counter = 1
		return
	}

	if tbl.entries <= tbl.max_size {
		tbl.counter++
		return
	}

	goal = (tbl.entries - tbl.max_size) * 4 / 3
	if goal > tbl.max_size/2 {
		goal = tbl.max_size / 2
	}

	for i, j = 0, tbl.rover; i < lblcRefTabSize; i++ {
		j = (j + 1) & lblcRefTabMask

		var keep []*lblcRefEntry
		for _, en := range tbl.bucket[j] {
			if lblcRefTimeBefore(now, en.lastuse+lblcRefEntryTimeout) {
				keep = append(keep, en)
				continue
			}
			tbl.entries--
			goal--
		}
		tbl.bucket[j] = keep
		if goal <= 0 {
			break
		}
	}
	tbl.rover = j
}

// Schedule is ip_vs_lblc_schedule; svc->destinations is the dests argument.
func (r *lblcRef) Schedule(destinations []*service.Dest, p *service.Packet) *service.Dest {
	tbl := r.tbl
	var dest *service.Dest
	jiffies := p.Now

	// First look in our cache
	en := tbl.get(p.Dst)
	if en != nil {
		en.lastuse = jiffies

		dest = en.dest
		if dest.Available() &&
			dest.Weight() > 0 && !lblcRefIsOverloaded(dest, destinations) {
			return dest
		}
	}

	// No cache entry or it is invalid, time to schedule
	dest = lblcRefWLC(destinations)
	if dest == nil {
		return nil
	}

	// If we fail to create a cache entry, we'll just use the valid dest
	if !tbl.dead {
		tbl.lblcNew(p.Dst, dest, jiffies)
	}
	return dest
}
