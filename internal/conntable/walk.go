package conntable

// walkBuckets is how many buckets Walk copies under one shard lock: a few
// hundred entries at most, so that a listing of a million connections
// never holds a shard for long.
const walkBuckets = 256

// Walk calls fn for each entry lookups would see at the latest time the
// table has seen, until fn returns false: the listing of ipvsadm -L -c and
// /proc/net/ip_vs_conn. The order is shard by shard, then bucket by bucket
// as the kernel lists its single table, newest first within a bucket; it
// is stable while the table does not change. Walk copies a few hundred
// entries at a time under their shard's lock and calls fn with no lock
// held, so fn may call the Table; entries inserted or removed during the
// walk may or may not be seen. For the control plane: Walk allocates.
func (t *Table) Walk(fn func(Conn) bool) {
	type item struct {
		c   Conn
		ctl uint32
	}
	now := t.lastNow.Load()
	nt := floorTick(now)
	var items []item
	for si := range t.shards {
		s := &t.shards[si]
		for b := uint32(0); b < s.nb; {
			items = items[:0]
			s.mu.Lock()
			for end := min(b+walkBuckets, s.nb); b < end; b++ {
				for l := s.buckets[b]; l != nilLoc; {
					h := s.hdr(l)
					if h.visible(nt) {
						items = append(items, item{})
						it := &items[len(items)-1]
						s.load(l, &it.c, mkRef(h.gen, si, l), now)
						if !h.template() {
							it.ctl = h.ctl
						}
					}
					l = h.hnext.get()
				}
			}
			s.mu.Unlock()
			for i := range items {
				if items[i].ctl != 0 {
					items[i].c.Control = t.controlRef(items[i].ctl)
				}
				if !fn(items[i].c) {
					return
				}
			}
		}
	}
}

// Flush removes every entry, connections first, then templates (kernel
// ip_vs_conn_flush, which runs when IPVS is unloaded; ipvsadm -C leaves
// connections to expire). Each connection is removed as by Delete, and
// OnRemove is called for everything, forced. A template that controls a
// connection inserted during the flush stays. It returns the number of
// entries removed.
func (t *Table) Flush() int {
	now := t.lastNow.Load()
	buf := t.pool.Get().(*recBuf)
	removed := 0
	for phase := 0; phase < 2; phase++ {
		for si := range t.shards {
			s := &t.shards[si]
			for sn := uint32(phase) * wheelSlots; sn < uint32(phase+1)*wheelSlots; sn++ {
				removed += t.flushList(s, si, sn, buf, now)
			}
			removed += t.flushList(s, si, pending0+uint32(phase), buf, now)
		}
	}
	t.pool.Put(buf)
	return removed
}

// flushList removes the entries of wheel list sn of shard si, except
// templates that still control connections.
func (t *Table) flushList(s *shard, si int, sn uint32, buf *recBuf, now int64) int {
	removed := 0
	for {
		n := 0
		s.mu.Lock()
		l := s.wl[sn].next
		for l != sentLoc(sn) && n < len(buf.r) {
			h := s.hdr(l)
			next := h.wnext.get()
			if !h.controls() {
				if !h.template() && h.ctl != 0 {
					h.timeout = 0
				}
				t.removeLocked(s, si, l, &buf.r[n], now)
				s.forced.Add(1)
				n++
			}
			l = next
		}
		more := l != sentLoc(sn)
		s.mu.Unlock()
		removed += n + t.finish(buf, n, true)
		if !more {
			return removed
		}
	}
}
