package sched

import (
	"net/netip"

	"golvs/internal/service"
)

// This file is the slow reference of lblcr: net/netfilter/ipvs/ip_vs_lblcr.c
// transcribed with the kernel's names. A list is a slice whose element 0 is
// the first node (list_add_rcu prepends); jiffies are nanoseconds. Hashing,
// time comparisons, is_overloaded and the wlc loop are lblc's (the kernel
// files are copies of each other there).

// lblcrRefDestSet is struct ip_vs_dest_set.
type lblcrRefDestSet struct {
	size    int
	lastmod int64
	list    []*service.Dest
}

// insert is ip_vs_dest_set_insert.
func (set *lblcrRefDestSet) insert(dest *service.Dest, check bool, jiffies int64) {
	if check {
		for _, e := range set.list {
			if e == dest {
				return
			}
		}
	}

	set.list = append([]*service.Dest{dest}, set.list...) // list_add_rcu
	set.size++

	set.lastmod = jiffies
}

// erase is ip_vs_dest_set_erase.
func (set *lblcrRefDestSet) erase(dest *service.Dest, jiffies int64) {
	for i, e := range set.list {
		if e == dest {
			// HIT
			set.size--
			set.lastmod = jiffies
			set.list = append(set.list[:i:i], set.list[i+1:]...)
			break
		}
	}
}

// min is ip_vs_dest_set_min.
func (set *lblcrRefDestSet) min() *service.Dest {
	var dest, least *service.Dest
	var loh, doh int32
	var i int

	// select the first destination server, whose weight > 0
	for i = 0; i < len(set.list); i++ {
		least = set.list[i]
		if least.Overloaded() {
			continue
		}

		if (least.Weight() > 0) &&
			least.Available() {
			loh = loadRefConnOverhead(least)
			goto nextstage
		}
	}
	return nil

	// find the destination with the weighted least load
nextstage:
	for i++; i < len(set.list); i++ {
		dest = set.list[i]
		if dest.Overloaded() {
			continue
		}

		doh = loadRefConnOverhead(dest)
		if (int64(loh)*int64(dest.Weight()) >
			int64(doh)*int64(least.Weight())) &&
			dest.Available() {
			least = dest
			loh = doh
		}
	}
	return least
}

// max is ip_vs_dest_set_max.
func (set *lblcrRefDestSet) max() *service.Dest {
	var dest, most *service.Dest
	var moh, doh int32
	var i int

	if set == nil {
		return nil
	}

	// select the first destination server, whose weight > 0
	for i = 0; i < len(set.list); i++ {
		most = set.list[i]
		if most.Weight() > 0 {
			moh = loadRefConnOverhead(most)
			goto nextstage
		}
	}
	return nil

	// find the destination with the weighted most load
nextstage:
	for i++; i < len(set.list); i++ {
		dest = set.list[i]
		doh = loadRefConnOverhead(dest)
		// moh/mw < doh/dw ==> moh*dw < doh*mw, where mw,dw>0
		if (int64(moh)*int64(dest.Weight()) <
			int64(doh)*int64(most.Weight())) &&
			(dest.Weight() > 0) {
			most = dest
			moh = doh
		}
	}
	return most
}

// lblcrRefEntry is struct ip_vs_lblcr_entry.
type lblcrRefEntry struct {
	addr    netip.Addr
	set     lblcrRefDestSet
	lastuse int64
}

// lblcrRefTable is struct ip_vs_lblcr_table.
type lblcrRefTable struct {
	bucket   [lblcRefTabSize][]*lblcrRefEntry
	entries  int
	max_size int
	rover    int
	counter  int
	dead     bool
}

type lblcrRef struct {
	tbl        *lblcrRefTable
	expiration int64 // sysctl_lblcr_expiration
}

func newLBLCRRef(o Options) *lblcrRef {
	r := &lblcrRef{expiration: lblcRefDefaultExpiration}
	if o.LBLCRExpiration != 0 {
		r.expiration = int64(o.LBLCRExpiration)
	}
	return r
}

func (r *lblcrRef) Name() string { return "lblcr" }

// Init is ip_vs_lblcr_init_svc.
func (r *lblcrRef) Init([]*service.Dest) error {
	tbl := &lblcrRefTable{}
	tbl.max_size = lblcRefTabSize * 16
	tbl.rover = 0
	tbl.counter = 1
	tbl.dead = false
	r.tbl = tbl
	return nil
}

func (r *lblcrRef) AddDest([]*service.Dest, *service.Dest) {}
func (r *lblcrRef) DelDest([]*service.Dest, *service.Dest) {}
func (r *lblcrRef) UpdDest([]*service.Dest, *service.Dest) {}

// hash is ip_vs_lblcr_hash.
func (tbl *lblcrRefTable) hash(en *lblcrRefEntry) {
	hash := lblcRefHashkey(en.addr)
	tbl.bucket[hash] = append([]*lblcrRefEntry{en}, tbl.bucket[hash]...)
	tbl.entries++
}

// get is ip_vs_lblcr_get.
func (tbl *lblcrRefTable) get(addr netip.Addr) *lblcrRefEntry {
	hash := lblcRefHashkey(addr)
	for _, en := range tbl.bucket[hash] {
		if en.addr == addr {
			return en
		}
	}
	return nil
}

// lblcrNew is ip_vs_lblcr_new.
func (tbl *lblcrRefTable) lblcrNew(daddr netip.Addr, dest *service.Dest, jiffies int64) *lblcrRefEntry {
	en := tbl.get(daddr)
	if en == nil {
		en = &lblcrRefEntry{}
		en.addr = daddr
		en.lastuse = jiffies

		// initialize its dest set
		en.set.size = 0
		en.set.list = nil

		en.set.insert(dest, false, jiffies)

		tbl.hash(en)
		return en
	}

	en.set.insert(dest, true, jiffies)
	return en
}

// sweep is the loop shared by ip_vs_lblcr_full_check (goal never reached)
// and ip_vs_lblcr_check_expire: ip_vs_lblcr_free and entries-- for each
// stale entry.
func (tbl *lblcrRefTable) sweep(stale func(en *lblcrRefEntry) bool, goal *int) {
	var i, j int
	for i, j = 0, tbl.rover; i < lblcRefTabSize; i++ {
		j = (j + 1) & lblcRefTabMask

		var keep []*lblcrRefEntry
		for _, en := range tbl.bucket[j] {
			if !stale(en) {
				keep = append(keep, en)
				continue
			}
			tbl.entries--
			if goal != nil {
				*goal--
			}
		}
		tbl.bucket[j] = keep
		if goal != nil && *goal <= 0 {
			break
		}
	}
	tbl.rover = j
}

// Expire is ip_vs_lblcr_check_expire.
func (r *lblcrRef) Expire(now int64) {
	tbl := r.tbl
	var goal int

	if (tbl.counter % lblcRefCountForFullExpiration) == 0 {
		// do full expiration check: ip_vs_lblcr_full_check
		tbl.sweep(func(en *lblcrRefEntry) bool {
			return !lblcRefTimeAfter(en.lastuse+r.expiration, now)
		}, nil)
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

	tbl.sweep(func(en *lblcrRefEntry) bool {
		return !lblcRefTimeBefore(now, en.lastuse+lblcRefEntryTimeout)
	}, &goal)
}

// Schedule is ip_vs_lblcr_schedule; svc->destinations is the dests argument.
func (r *lblcrRef) Schedule(destinations []*service.Dest, p *service.Packet) *service.Dest {
	tbl := r.tbl
	var dest *service.Dest
	jiffies := p.Now

	// First look in our cache
	en := tbl.get(p.Dst)
	if en != nil {
		en.lastuse = jiffies

		// Get the least loaded destination
		dest = en.set.min()

		// More than one destination + enough time passed by, cleanup
		if en.set.size > 1 &&
			lblcRefTimeAfter(jiffies, en.set.lastmod+
				r.expiration) {
			if en.set.size > 1 {
				m := en.set.max()
				if m != nil {
					en.set.erase(m, jiffies)
				}
			}
		}

		// If the destination is not overloaded, use it
		if dest != nil && !lblcRefIsOverloaded(dest, destinations) {
			return dest
		}

		// The cache entry is invalid, time to schedule
		dest = lblcRefWLC(destinations)
		if dest == nil {
			return nil
		}

		// Update our cache entry
		if !tbl.dead {
			en.set.insert(dest, true, jiffies)
		}
		return dest
	}

	// No cache entry, time to schedule
	dest = lblcRefWLC(destinations)
	if dest == nil {
		return nil
	}

	// If we fail to create a cache entry, we'll just use the valid dest
	if !tbl.dead {
		tbl.lblcrNew(p.Dst, dest, jiffies)
	}
	return dest
}
