package sched

import (
	"golvs/internal/service"
)

// lblcrSetInline is the number of set members an entry holds without
// allocating: replication sets are small (a destination address spreads to
// a second or third server only under overload), and four pointers keep an
// entry at 104 bytes. A larger set allocates once; the slot keeps the grown
// buffer for its next user.
const lblcrSetInline = 4

// lblcrEntry is struct ip_vs_lblcr_entry with its struct ip_vs_dest_set.
type lblcrEntry struct {
	localityHdr
	lastmod int64 // set.lastmod
	// set is set.list in reverse: set[len(set)-1] is the list head (the
	// kernel inserts members with list_add_rcu), so the kernel's loops
	// run from the end to the start. len(set) is set.size.
	set []*service.Dest
	buf [lblcrSetInline]*service.Dest
}

func (e *lblcrEntry) hdr() *localityHdr { return &e.localityHdr }

func (e *lblcrEntry) release() {
	clear(e.set)
	set := e.set[:0]
	*e = lblcrEntry{set: set}
	if cap(set) <= lblcrSetInline {
		e.set = nil // it pointed into buf; insert points it there again
	}
}

// insert is ip_vs_dest_set_insert.
func (e *lblcrEntry) insert(d *service.Dest, check bool, now int64) {
	if check {
		for _, x := range e.set {
			if x == d {
				return
			}
		}
	}
	if e.set == nil {
		e.set = e.buf[:0]
	}
	e.set = append(e.set, d) // list_add_rcu: d becomes the head
	e.lastmod = now
}

// erase is ip_vs_dest_set_erase.
func (e *lblcrEntry) erase(d *service.Dest, now int64) {
	for i := len(e.set) - 1; i >= 0; i-- {
		if e.set[i] == d {
			e.lastmod = now
			copy(e.set[i:], e.set[i+1:])
			e.set[len(e.set)-1] = nil
			e.set = e.set[:len(e.set)-1]
			return
		}
	}
}

// min is ip_vs_dest_set_min: the weighted least-connection member among
// those that are not OVERLOADED, have a weight > 0 and are available.
func (e *lblcrEntry) min() *service.Dest {
	set := e.set
	i := len(set) - 1
	var least *service.Dest
	var loh int32
	// select the first destination server, whose weight > 0
	for ; i >= 0; i-- {
		least = set[i]
		if least.Overloaded() {
			continue
		}
		if least.Weight() > 0 && least.Available() {
			loh = least.Overhead()
			break
		}
	}
	if i < 0 {
		return nil
	}
	// find the destination with the weighted least load
	for i--; i >= 0; i-- {
		d := set[i]
		if d.Overloaded() {
			continue
		}
		doh := d.Overhead()
		if int64(loh)*int64(d.Weight()) > int64(doh)*int64(least.Weight()) && d.Available() {
			least, loh = d, doh
		}
	}
	return least
}

// max is ip_vs_dest_set_max: the weighted most-connection member among
// those with a weight > 0 (OVERLOAD and availability do not matter).
func (e *lblcrEntry) max() *service.Dest {
	set := e.set
	i := len(set) - 1
	var most *service.Dest
	var moh int32
	for ; i >= 0; i-- {
		most = set[i]
		if most.Weight() > 0 {
			moh = most.Overhead()
			break
		}
	}
	if i < 0 {
		return nil
	}
	for i--; i >= 0; i-- {
		d := set[i]
		doh := d.Overhead()
		// moh/mw < doh/dw ==> moh*dw < doh*mw, where mw,dw>0
		if int64(moh)*int64(d.Weight()) < int64(doh)*int64(most.Weight()) && d.Weight() > 0 {
			most, moh = d, doh
		}
	}
	return most
}

// LBLCR is the lblcr scheduler, Locality-Based Least-Connection with
// Replication (net/netfilter/ipvs/ip_vs_lblcr.c): each destination address
// maps to a set of real servers; a connection goes to the set's weighted
// least-connection member, and when that member is missing or overloaded by
// lblc's rule the wlc choice over all dests joins the set. A set with more
// than one member that has not changed for lblcr_expiration loses its most
// loaded member.
//
// The owner calls Expire every CheckExpireInterval. Schedule and Expire are
// safe for concurrent use with each other and with LoadChanged. Entries come
// from a pool as for LBLC; in steady state nothing allocates. Use NewLBLCR.
type LBLCR struct {
	locality[lblcrEntry, *lblcrEntry]
}

// NewLBLCR returns an unbound lblcr scheduler; o.LBLCRExpiration is the
// sysctl lblcr_expiration (zero: 24 hours).
func NewLBLCR(o Options) *LBLCR {
	s := &LBLCR{}
	s.locality.init("lblcr", o.LBLCRExpiration)
	return s
}

// Schedule is ip_vs_lblcr_schedule. On a hit: the set's least-loaded
// member; then, if the set has more than one member and has not changed for
// lblcr_expiration, its most loaded member leaves it (possibly the member
// just chosen, which is still returned, as in the kernel); if there was no
// usable member or it is overloaded by is_overloaded(), the wlc choice over
// all dests is returned and joins the set. On a miss: the wlc choice, in a
// new one-member set. It returns nil when no dest is eligible.
func (s *LBLCR) Schedule(_ []*service.Dest, p *service.Packet) *service.Dest {
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
		d := en.min()
		// time_after(jiffies, en->set.lastmod + expiration)
		if len(en.set) > 1 && timeBefore(en.lastmod+s.expiration, p.Now) {
			if m := en.max(); m != nil {
				en.erase(m, p.Now)
			}
		}
		if d != nil && !s.isOverloaded(d) {
			return d
		}
		d = s.idx.best() // __ip_vs_lblcr_schedule is wlc
		if d == nil {
			return nil
		}
		en.insert(d, true, p.Now)
		return d
	}
	d := s.idx.best()
	if d == nil {
		return nil
	}
	// ip_vs_lblcr_new
	en = t.add(b, p.Dst, p.Now)
	en.insert(d, false, p.Now)
	return d
}

// Interface guards.
var (
	_ service.Scheduler    = (*LBLCR)(nil)
	_ service.LoadObserver = (*LBLCR)(nil)
	_ service.Expirer      = (*LBLCR)(nil)
	_ service.Doner        = (*LBLCR)(nil)
)
