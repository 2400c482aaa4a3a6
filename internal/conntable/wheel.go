package conntable

import "time"

// Time. Timers count Ticks in a uint32 that wraps (every 497 days at 10 ms)
// and is compared like the kernel's time_after, which is exact while the
// two times compared are less than 2^31 ticks (248 days) apart; timeouts
// are capped well below that (maxTimeoutTicks).

// Tick is the resolution of connection timers, the kernel's jiffy at
// HZ=100. An entry re-armed at time now with timeout d expires at the
// first tick boundary at or after now+d: never before its timeout, and at
// most one Tick after it (if Expire keeps up).
const Tick = 10 * time.Millisecond

const tickNs = int64(Tick)

// maxTimeoutTicks caps timeouts at 2^30 ticks (124 days), half of the range
// in which wrapping tick comparisons are exact.
const maxTimeoutTicks = 1 << 30

// expireLaterTicks is the kernel's expire_later delay, 60*HZ: a template
// whose timer fires while it still controls connections is re-armed for
// 60 s and its timeout becomes 60 s.
const expireLaterTicks = uint32(60 * time.Second / Tick)

// after reports whether tick a is later than tick b (kernel time_after).
func after(a, b uint32) bool { return int32(a-b) > 0 }

// before reports whether tick a is earlier than tick b.
func before(a, b uint32) bool { return int32(a-b) < 0 }

// floorTick is the tick containing now.
func floorTick(now int64) uint32 {
	q := now / tickNs
	if now%tickNs < 0 {
		q--
	}
	return uint32(q)
}

// ceilTick is the first tick boundary at or after now.
func ceilTick(now int64) uint32 {
	q := now / tickNs
	if now%tickNs > 0 {
		q++
	}
	return uint32(q)
}

// ticksOf converts a timeout to ticks, rounding up, within [0, maxTimeoutTicks].
func ticksOf(d time.Duration) uint32 {
	if d <= 0 {
		return 0
	}
	if d >= maxTimeoutTicks*Tick {
		return maxTimeoutTicks
	}
	return uint32((int64(d) + tickNs - 1) / tickNs)
}

// tickTime converts tick tk to nanoseconds on the clock of now (tk within
// 2^31 ticks of now).
func tickTime(tk uint32, now int64) int64 {
	q := now / tickNs
	if now%tickNs < 0 {
		q--
	}
	return (q + int64(int32(tk-uint32(q)))) * tickNs
}

// The timer wheel. Each shard has two hashed wheels of wheelSlots slots,
// one for connections and one for templates; slot i of a wheel holds the
// entries filed for ticks t with t mod wheelSlots == i, in a circular
// doubly linked list through hdr.wnext/wprev whose sentinel is a wlink in
// shard.wl. Re-arming an entry for a later time only stores the new expiry
// (O(1), no list operation); the entry stays in its old slot and is
// re-filed when that slot comes up, the lazy equivalent of the kernel's
// mod_timer. Re-arming for an earlier time (a shorter timeout) moves the
// entry at once. So an entry is always filed at or before its expiry.
//
// Expire walks the ticks in order, and for each tick first the connection
// slot of every shard, then the template slot of every shard: the kernel
// runs timers in time order, and of a connection and its template that
// expire in the same tick, handling the connection first lets the template
// see that it controls nothing any more.

// wheelSlots is the number of slots per wheel: 2048 slots of 10 ms turn
// once every 20.48 s, so a busy established connection (900 s) is re-filed
// about 44 times in its life, and the sentinels of both wheels cost 32 KiB
// a shard (0.52 B per entry at a million entries in 16 shards).
const wheelSlots = 2048

const wheelMask = wheelSlots - 1

// wlink is a list sentinel.
type wlink struct{ next, prev uint32 }

// Sentinel numbers in shard.wl: wheel slots of phase p (0 connections, 1
// templates) at p*wheelSlots + slot, then the two pending lists, which hold
// the detached slot that Expire is working through.
const (
	pending0 = 2 * wheelSlots
	wlLen    = 2*wheelSlots + 2
)

func slotSent(phase int, tick uint32) uint32 {
	return uint32(phase)*wheelSlots + tick&wheelMask
}

func sentLoc(n uint32) uint32 { return kindSent<<idxBits | n }

// Links of l, an entry or a sentinel.

func (s *shard) setWnext(l, v uint32) {
	if l>>idxBits == kindSent {
		s.wl[l&idxMask].next = v
		return
	}
	s.hdr(l).wnext.set(v)
}

func (s *shard) setWprev(l, v uint32) {
	if l>>idxBits == kindSent {
		s.wl[l&idxMask].prev = v
		return
	}
	s.hdr(l).wprev.set(v)
}

// unlinkW removes entry l from its wheel list.
func (s *shard) unlinkW(l uint32) {
	h := s.hdr(l)
	n, p := h.wnext.get(), h.wprev.get()
	s.setWnext(p, n)
	s.setWprev(n, p)
	h.wnext.set(nilLoc)
	h.wprev.set(nilLoc)
}

// pushW appends entry l to the list of sentinel number sn.
func (s *shard) pushW(sn, l uint32) {
	sl := sentLoc(sn)
	tail := s.wl[sn].prev
	h := s.hdr(l)
	h.wnext.set(sl)
	h.wprev.set(tail)
	s.setWnext(tail, l)
	s.wl[sn].prev = l
}

// splice moves every entry of list src to the end of list dst.
func (s *shard) splice(dst, src uint32) {
	first := s.wl[src].next
	if first == sentLoc(src) {
		return
	}
	last := s.wl[src].prev
	tail := s.wl[dst].prev
	s.setWnext(tail, first)
	s.setWprev(first, tail)
	s.setWnext(last, sentLoc(dst))
	s.wl[dst].prev = last
	s.wl[src] = wlink{sentLoc(src), sentLoc(src)}
}

// fileW files entry l in the wheel slot of its expiry, or of the next tick
// Expire will look at if that expiry is already behind it.
func (s *shard) fileW(l uint32, h *hdr) {
	ph := h.phase()
	tk := h.expires
	if before(tk, s.next[ph]) {
		tk = s.next[ph]
	}
	s.pushW(slotSent(ph, tk), l)
}

// rearm sets the expiry of entry l to exp.
func (s *shard) rearm(l uint32, h *hdr, exp uint32) {
	if before(exp, h.expires) {
		h.expires = exp
		s.unlinkW(l)
		s.fileW(l, h)
		return
	}
	h.expires = exp
}

// catchUp brings a template whose timer is past but which still controls
// connections up to date at tick nt: its timer would have fired and
// expire_later would have re-armed it, 60 s at a time, with timeout 60 s.
func (s *shard) catchUp(h *hdr, nt uint32) {
	if after(h.expires, nt) || !h.controls() {
		return
	}
	k := (nt-h.expires)/expireLaterTicks + 1
	h.expires += k * expireLaterTicks
	h.timeout = expireLaterTicks
	s.expireLater.Add(uint64(k))
}

// cursor is Expire's position: the next (tick, phase, shard) slot to work
// through.
type cursor struct {
	tick  uint32
	phase int
	shard int
}

// Expire runs the timers that are due at time now, working through at most
// budget entries (an entry re-filed or re-armed counts as well as an entry
// removed), and returns how many entries it removed. A connection whose
// timer fires is removed, its template's NControl decremented (and, if its
// timeout was 0, an unassured template left controlling nothing is removed
// too); a template whose timer fires is removed unless it still controls
// connections, in which case it is re-armed for 60 s with timeout 60 s
// (kernel expire_later). OnRemove is called for each removed entry.
//
// The data path calls Expire once per batch with a small budget; work left
// over is continued by the next call, and the control plane may call it
// with a large budget when the director is idle. Only one goroutine expires
// at a time: a call made while another is running returns 0 at once, as
// does a call with budget <= 0. Expire records now as the table's latest
// time in any case.
//
// Timers are run tick by tick in time order, the connections of a tick
// before its templates; the connections of one tick in no specified order
// (as the kernel's timers of one jiffy), which matters only when a
// template's last connections go in the same tick with timeouts of 0 and
// not 0 (see the unassured-template rule). If Expire has not run for more
// than a wheel turn (20.48 s), the ticks in between are not visited one by
// one: each slot is visited once and everything due is expired, in slot
// order rather than time order.
func (t *Table) Expire(now int64, budget int) int {
	t.observe(now)
	if budget <= 0 || !t.started.Load() || !t.expMu.TryLock() {
		return 0
	}
	defer t.expMu.Unlock()
	nt := floorTick(now)
	c := &t.cur
	removed := 0
	for budget > 0 && !after(c.tick, nt) {
		if c.phase == 0 && c.shard == 0 && nt-c.tick >= wheelSlots {
			c.tick = nt - (wheelSlots - 1)
		}
		n, used, done := t.expireSlot(c.tick, c.phase, c.shard, now, nt, budget)
		removed += n
		budget -= used
		if !done {
			break
		}
		if c.shard++; c.shard == len(t.shards) {
			c.shard = 0
			if c.phase++; c.phase == 2 {
				c.phase = 0
				c.tick++
			}
		}
	}
	return removed
}

// expireSlot works through the slot of tick in wheel phase of shard si.
// The slot's list is first moved to the shard's pending list of that
// phase, so that entries re-filed into the same slot for a later turn are
// not seen again. It returns the entries removed, the budget used, and
// whether the slot is done. Called with t.expMu held.
func (t *Table) expireSlot(tick uint32, phase, si int, now int64, nt uint32, budget int) (removed, used int, done bool) {
	s := &t.shards[si]
	buf := &t.expBuf
	pend := pending0 + uint32(phase)
	for {
		n := 0
		s.mu.Lock()
		if !after(s.next[phase], tick) {
			s.splice(pend, slotSent(phase, tick))
			s.next[phase] = tick + 1
		}
		for used < budget && n < len(buf.r) {
			l := s.wl[pend].next
			if l == sentLoc(pend) {
				done = true
				break
			}
			h := s.hdr(l)
			used++
			if after(h.expires, tick) {
				// Not due yet (it was re-armed, or belongs to
				// a later turn): file it where its expiry is,
				// to be run in time order, in this call if
				// that is before nt.
				s.unlinkW(l)
				s.fileW(l, h)
				continue
			}
			if h.controls() {
				// expire_later: the kernel re-arms from the
				// time its timer fired.
				h.expires += expireLaterTicks
				h.timeout = expireLaterTicks
				s.expireLater.Add(1)
				s.unlinkW(l)
				s.fileW(l, h)
				continue
			}
			t.removeLocked(s, si, l, &buf.r[n], now)
			s.expired.Add(1)
			n++
		}
		if !done && used >= budget && s.wl[pend].next == sentLoc(pend) {
			done = true
		}
		s.mu.Unlock()
		removed += n + t.finish(buf, n, false)
		if done || used >= budget {
			return removed, used, done
		}
	}
}
