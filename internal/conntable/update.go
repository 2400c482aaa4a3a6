package conntable

import (
	"encoding/binary"
	"net/netip"
	"time"
)

// Insert adds an entry (kernel ip_vs_conn_new) and arms its timer for
// c.Timeout from now. The table takes c's key, addresses, ports, Flags,
// State, OldState, FWMark, DestID, Timeout and InPkts; it owns NControl
// (a new template controls nothing) and ignores Expires and Ref. If
// c.Control names a template, the new connection is controlled by it and
// the template's NControl is incremented.
//
// A template (FlagTemplate) has client port 0 and Control 0; with Proto 0 it
// is a fwmark template, keyed on c.FWMark in place of the virtual address
// (c.VAddr is ignored). A connection needs a protocol and a virtual address
// of the client's family; the real server may be of the other family (a
// tunnel). One-packet connections (FlagOnePacket) are never inserted: the
// engine forwards their single packet without an entry, as the kernel
// never hashes them (their templates are inserted as usual).
//
// Insert does not look for an existing entry with the same key: as in the
// kernel, the newer is found first. Errors: ErrFull (counted in
// Stats.FullDrops) when the table holds Max entries, ErrStale when
// c.Control is not a live template, ErrInvalid for an entry the table
// cannot hold. None allocates.
func (t *Table) Insert(c *Conn, now int64) (Ref, error) {
	tpl := c.Flags&FlagTemplate != 0
	fwm := tpl && c.Proto == 0
	af4 := c.CAddr.Is4()
	if c.Flags&FlagOnePacket != 0 || c.State > MaxState || c.OldState > MaxState ||
		!c.CAddr.IsValid() || !c.DAddr.IsValid() || c.DestID >= 1<<24 ||
		(!tpl && c.Proto == 0) || (tpl && c.Control != 0) ||
		(!fwm && (!c.VAddr.IsValid() || c.VAddr.Is4() != af4)) {
		return 0, ErrInvalid
	}
	t.observe(now)
	t.ensureStart(now)
	if !t.reserve() {
		t.fullDrops.Add(1)
		return 0, ErrFull
	}
	var ctl uint32
	if c.Control != 0 {
		var ok bool
		if ctl, ok = t.acquireControl(c.Control, now); !ok {
			t.count.Add(-1)
			return 0, ErrStale
		}
	}
	nocport := c.Flags&FlagNoCPort != 0
	if tpl {
		t.templates.Add(1)
	}
	if nocport {
		// Before the entry is visible, so that a lookup that
		// misses it on its port retries with port 0.
		t.noCPort.Add(1)
	}

	// The key as stored: a fwmark template has its mark in place of
	// the virtual address (in the first 4 bytes, as the kernel's
	// union nf_inet_addr .ip).
	var c4, v4 [4]byte
	var c16, v16 [16]byte
	if af4 {
		c4 = c.CAddr.As4()
		if fwm {
			binary.BigEndian.PutUint32(v4[:], c.FWMark)
		} else {
			v4 = c.VAddr.As4()
		}
	} else {
		c16 = c.CAddr.As16()
		if fwm {
			binary.BigEndian.PutUint32(v16[:4], c.FWMark)
		} else {
			v16 = c.VAddr.As16()
		}
	}
	var hv uint64
	switch {
	case af4 && tpl:
		hv = t.hashTpl4(c.Proto, c4, v4)
	case af4:
		hv = t.hashConn4(c.Proto, c4, c.CPort)
	case tpl:
		hv = t.hashTpl6(c.Proto, &c16, &v16)
	default:
		hv = t.hashConn6(c.Proto, &c16, c.CPort)
	}
	daf4 := c.DAddr.Is4()
	kind := uint32(kind6)
	if af4 && daf4 {
		kind = kind4
	}

	si := int(hv >> t.shardShift)
	s := &t.shards[si]
	s.mu.Lock()
	l, ok := s.alloc(kind)
	if !ok {
		s.mu.Unlock()
		t.undoInsert(tpl, nocport, ctl)
		t.fullDrops.Add(1)
		return 0, ErrFull
	}
	flags := c.Flags&^(internalFlags|FlagOnePacket) | fHashed
	var h *hdr
	if kind == kind4 {
		e := s.e4(l & idxMask)
		e.caddr, e.vaddr, e.daddr = c4, v4, c.DAddr.As4()
		h = &e.h
	} else {
		e := s.e6(l & idxMask)
		if af4 {
			flags |= fAF4
			e.caddr, e.vaddr = netip.AddrFrom4(c4).As16(), netip.AddrFrom4(v4).As16()
		} else {
			e.caddr, e.vaddr = c16, v16
		}
		if daf4 {
			flags |= fDAF4
		}
		e.daddr = c.DAddr.As16()
		h = &e.h
	}
	h.cport, h.vport, h.dport = c.CPort, c.VPort, c.DPort
	h.flags = flags
	h.states = c.State | c.OldState<<4
	h.ctl = ctl
	h.dp = c.DestID<<8 | uint32(c.Proto)
	h.fwmark = c.FWMark
	h.timeout = ticksOf(c.Timeout)
	h.inPkts = c.InPkts
	h.syncEnd = floorTick(now) // ip_vs_conn_new: sync_endtime = jiffies & ~3
	h.expires = ceilTick(now) + h.timeout
	s.pushHead(l, s.bucket(hv))
	s.fileW(l, h)
	s.inserts.Add(1)
	ref := mkRef(h.gen, si, l)
	s.mu.Unlock()
	return ref, nil
}

// undoInsert rolls back the counts of an Insert that found no slot.
func (t *Table) undoInsert(tpl, nocport bool, ctl uint32) {
	t.count.Add(-1)
	if tpl {
		t.templates.Add(-1)
	}
	if nocport {
		t.noCPort.Add(-1)
	}
	if ctl != 0 {
		t.releaseControl(ctl, false, nil, 0)
	}
}

// acquireControl makes a new connection one more controlled by the template
// ref names, if lookups would still find it at now.
func (t *Table) acquireControl(ref Ref, now int64) (uint32, bool) {
	s, si, l, gen, ok := t.locate(ref)
	if !ok {
		return 0, false
	}
	nt := floorTick(now)
	s.mu.Lock()
	h := s.check(l, gen)
	if h == nil || !h.template() || !h.visible(nt) {
		s.mu.Unlock()
		return 0, false
	}
	s.catchUp(h, nt)
	h.ctl++
	s.mu.Unlock()
	return encCtl(si, l), true
}

// The per-packet setters. Each fails (returns false) if ref is stale or its
// entry's timer has run out at now, and re-arms the timer from now (the
// kernel's ip_vs_conn_put after each packet); Assure and Neutralise leave
// the timer alone. None allocates.

// Touch counts one incoming packet (InPkts, which the sync daemon's
// threshold reads) and re-arms the timer with the entry's timeout. It
// returns the new InPkts.
func (t *Table) Touch(ref Ref, now int64) (inPkts uint32, ok bool) {
	s, l, h := t.lockLive(ref, now)
	if h == nil {
		return 0, false
	}
	h.inPkts++
	n := h.inPkts
	s.rearm(l, h, ceilTick(now)+h.timeout)
	s.mu.Unlock()
	return n, true
}

// Rearm re-arms the timer with the entry's timeout, without counting a
// packet (a reply, or a template reused by the scheduler).
func (t *Table) Rearm(ref Ref, now int64) bool {
	s, l, h := t.lockLive(ref, now)
	if h == nil {
		return false
	}
	s.rearm(l, h, ceilTick(now)+h.timeout)
	s.mu.Unlock()
	return true
}

// SetTimeout sets the entry's timeout and re-arms its timer with it.
func (t *Table) SetTimeout(ref Ref, timeout time.Duration, now int64) bool {
	s, l, h := t.lockLive(ref, now)
	if h == nil {
		return false
	}
	h.timeout = ticksOf(timeout)
	s.rearm(l, h, ceilTick(now)+h.timeout)
	s.mu.Unlock()
	return true
}

// SetState records a protocol state transition decided by the engine: the
// old state becomes OldState, state (<= MaxState, else SetState panics)
// the State, flags the Flags (except FlagTemplate and FlagNoCPort, which
// only the table changes: those bits of flags are ignored), timeout the
// Timeout; and it re-arms the timer with the new timeout.
func (t *Table) SetState(ref Ref, state uint8, flags Flags, timeout time.Duration, now int64) bool {
	if state > MaxState {
		panic("conntable: SetState with a state above MaxState")
	}
	s, l, h := t.lockLive(ref, now)
	if h == nil {
		return false
	}
	h.states = state | h.state()<<4
	h.flags = h.flags&tableFlags | flags&^tableFlags
	h.timeout = ticksOf(timeout)
	s.rearm(l, h, ceilTick(now)+h.timeout)
	s.mu.Unlock()
	return true
}

// Assure marks the template ref names ASSURED (kernel
// ip_vs_control_assure_ct, when a connection it controls gets
// established), without touching its timer. It fails if ref is stale or
// not a template.
func (t *Table) Assure(ref Ref) bool {
	s, _, _, h := t.lockRef(ref)
	if h == nil {
		return false
	}
	ok := h.template()
	if ok {
		h.states |= TemplateAssured
	}
	s.mu.Unlock()
	return ok
}

// templateInvalidPort is the port a neutralised template gets.
const templateInvalidPort = 0xffff

// Neutralise invalidates the template ref names (kernel
// ip_vs_check_template, when the template's real server is no longer
// available): its virtual and real ports become 0xffff, so that template
// lookups stop finding it, but it stays in the table, with its timer,
// until the connections it controls are gone. It fails if ref is stale or
// not a template.
func (t *Table) Neutralise(ref Ref) bool {
	s, _, l, h := t.lockRef(ref)
	if h == nil {
		return false
	}
	if !h.template() {
		s.mu.Unlock()
		return false
	}
	if h.vport != templateInvalidPort {
		// The template hash does not cover the ports: the entry
		// stays in its bucket, moved to the head as the kernel's
		// rehash does.
		b := s.bucket(t.entryHash(s, l))
		s.unhash(l, b)
		h.vport, h.dport, h.cport = templateInvalidPort, templateInvalidPort, 0
		s.pushHead(l, b)
	}
	s.mu.Unlock()
	return true
}

// FillCPort gives a connection created without its client port
// (FlagNoCPort) the port cport and clears the flag (kernel
// ip_vs_conn_fill_cport). The connection hashes on its client port, so it
// moves, usually to another shard: FillCPort returns its new Ref (the old
// one goes stale). For a connection without FlagNoCPort it does nothing
// and returns ref.
func (t *Table) FillCPort(ref Ref, cport uint16, now int64) (Ref, bool) {
	s, l, h := t.lockLive(ref, now)
	if h == nil {
		return 0, false
	}
	if h.flags&FlagNoCPort == 0 || h.template() {
		s.mu.Unlock()
		return ref, true
	}
	kind := l >> idxBits
	var e4 entry4
	var e6 entry6
	nh := &e4.h
	if kind == kind4 {
		e4 = *s.e4(l & idxMask)
	} else {
		e6 = *s.e6(l & idxMask)
		nh = &e6.h
	}
	s.unhash(l, s.bucket(t.entryHash(s, l)))
	s.unlinkW(l)
	s.release(l)
	s.mu.Unlock()

	nh.cport = cport
	nh.flags &^= FlagNoCPort
	var hv uint64
	switch {
	case kind == kind4:
		hv = t.hashConn4(nh.proto(), e4.caddr, cport)
	case nh.flags&fAF4 != 0:
		hv = t.hashConn4(nh.proto(), [4]byte(e6.caddr[12:]), cport)
	default:
		hv = t.hashConn6(nh.proto(), &e6.caddr, cport)
	}
	si := int(hv >> t.shardShift)
	s = &t.shards[si]
	s.mu.Lock()
	l, ok := s.alloc(kind)
	if !ok {
		// The target shard is out of indices (see maxPerShard): the
		// connection is lost, as if deleted.
		s.mu.Unlock()
		t.lostMove(kind, &e4, &e6, now)
		return 0, false
	}
	h = s.hdr(l)
	gen := h.gen
	if kind == kind4 {
		*s.e4(l & idxMask) = e4
	} else {
		*s.e6(l & idxMask) = e6
	}
	h.gen = gen
	s.pushHead(l, s.bucket(hv))
	s.fileW(l, h)
	r := mkRef(gen, si, l)
	s.mu.Unlock()
	t.noCPort.Add(-1)
	return r, true
}

// lostMove completes the removal of a connection FillCPort could not
// re-insert.
func (t *Table) lostMove(kind uint32, e4 *entry4, e6 *entry6, now int64) {
	buf := t.pool.Get().(*recBuf)
	r := &buf.r[0]
	h := &e4.h
	if kind == kind4 {
		load4(e4, &r.c, 0, now)
	} else {
		load6(e6, &r.c, 0, now)
		h = &e6.h
	}
	r.tpl, r.ctl, r.drop, r.nocport = false, h.ctl, true, false
	t.noCPort.Add(-1)
	t.shards[0].removes.Add(1)
	t.shards[0].forced.Add(1)
	t.finish(buf, 1, true)
	t.pool.Put(buf)
}

// ExpireNow runs the entry's timer now (kernel ip_vs_conn_expire_now): the
// entry is removed at once and OnRemove called (forced), unless it is a
// template that still controls connections, which is instead re-armed for
// 60 s with timeout 60 s (expire_later). Its timeout is left as it is, so
// its template is dropped by the unassured-template rule only if that
// timeout was 0; Delete drops it. It returns whether the entry was
// removed. The time of the re-arm is the latest time the table has seen.
func (t *Table) ExpireNow(ref Ref) bool { return t.kill(ref, false) }

// Delete removes an entry as the kernel's ip_vs_conn_del does (flush,
// expire_nodest_conn, drop_entry): like ExpireNow, but a connection
// controlled by a template first gets timeout 0 ("drop cp->control chain
// too"), so that its template goes with it if it is not ASSURED and now
// controls nothing.
func (t *Table) Delete(ref Ref) bool { return t.kill(ref, true) }

func (t *Table) kill(ref Ref, del bool) bool {
	s, si, l, h := t.lockRef(ref)
	if h == nil {
		return false
	}
	now := t.lastNow.Load()
	if h.controls() {
		h.timeout = expireLaterTicks
		s.rearm(l, h, ceilTick(now)+expireLaterTicks)
		s.expireLater.Add(1)
		s.mu.Unlock()
		return false
	}
	if del && !h.template() && h.ctl != 0 {
		h.timeout = 0
	}
	buf := t.pool.Get().(*recBuf)
	t.removeLocked(s, si, l, &buf.r[0], now)
	s.forced.Add(1)
	s.mu.Unlock()
	t.finish(buf, 1, true)
	t.pool.Put(buf)
	return true
}
