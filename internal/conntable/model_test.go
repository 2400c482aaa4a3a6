package conntable

import (
	"encoding/binary"
	"flag"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

// The table against a slow model (style §10.3): a map of entries with the
// kernel's rules written out directly, driven by random operations over
// small address pools so that keys collide, tables fill up, templates
// control several connections and timers fire together. Every lookup,
// every Get, every removal (through OnRemove) and the counters are
// compared.

type mEntry struct {
	ref     Ref
	c       Conn // as Get returns it, but Control, NControl, Timeout, Expires, Ref
	timeout uint32
	expires uint32
	ctl     *mEntry
	nctl    uint32
	seq     int // hash order: the highest is found first
}

func (e *mEntry) tpl() bool { return e.c.Flags&FlagTemplate != 0 }

func (e *mEntry) visible(nt uint32) bool {
	return after(e.expires, nt) || (e.tpl() && e.nctl > 0)
}

type removal struct {
	c      Conn
	forced bool
}

type model struct {
	max      int
	entries  map[Ref]*mEntry
	seq      int
	lastNow  int64
	lastTick uint32
	started  bool
	st       Stats
	removed  []removal
}

func newModel(max int) *model {
	return &model{max: max, entries: map[Ref]*mEntry{}, lastNow: -1 << 63}
}

func (m *model) observe(now int64) {
	if now > m.lastNow {
		m.lastNow = now
	}
}

func (m *model) conn(e *mEntry) Conn {
	c := e.c
	c.Timeout = time.Duration(e.timeout) * Tick
	c.Expires = tickTime(e.expires, m.lastNow)
	c.NControl = 0
	if e.tpl() {
		c.NControl = e.nctl
	}
	c.Control = 0
	if e.ctl != nil {
		c.Control = e.ctl.ref
	}
	c.Ref = e.ref
	return c
}

func (m *model) catchUp(e *mEntry, nt uint32) {
	if after(e.expires, nt) || !e.tpl() || e.nctl == 0 {
		return
	}
	k := (nt-e.expires)/expireLaterTicks + 1
	e.expires += k * expireLaterTicks
	e.timeout = expireLaterTicks
	m.st.ExpireLater += uint64(k)
}

func (m *model) noCPort() bool {
	for _, e := range m.entries {
		if e.c.Flags&FlagNoCPort != 0 {
			return true
		}
	}
	return false
}

func (m *model) best(match func(e *mEntry) bool) (Ref, bool) {
	var b *mEntry
	for _, e := range m.entries {
		if match(e) && (b == nil || e.seq > b.seq) {
			b = e
		}
	}
	if b == nil {
		return 0, false
	}
	return b.ref, true
}

func (m *model) lookupIn(proto uint8, caddr netip.Addr, cport uint16, vaddr netip.Addr, vport uint16, now int64) (Ref, bool) {
	nt := floorTick(now)
	find := func(cport uint16) (Ref, bool) {
		return m.best(func(e *mEntry) bool {
			return !e.tpl() && e.c.Proto == proto && e.c.CAddr == caddr && e.c.CPort == cport &&
				e.c.VAddr == vaddr && e.c.VPort == vport &&
				(cport == 0) == (e.c.Flags&FlagNoCPort != 0) && after(e.expires, nt)
		})
	}
	r, ok := find(cport)
	if !ok && cport != 0 && m.noCPort() {
		r, ok = find(0)
	}
	return r, ok
}

func (m *model) lookupOut(proto uint8, saddr netip.Addr, sport uint16, daddr netip.Addr, dport uint16, now int64) (Ref, bool) {
	nt := floorTick(now)
	if saddr.Is4() != daddr.Is4() {
		return 0, false // not a packet
	}
	return m.best(func(e *mEntry) bool {
		if e.tpl() || e.c.Proto != proto || e.c.CAddr != daddr || e.c.CPort != dport || !after(e.expires, nt) {
			return false
		}
		if e.c.Flags&FlagFwdMask == FlagMasq {
			return e.c.DAddr == saddr && e.c.DPort == sport
		}
		return e.c.VAddr == saddr && e.c.VPort == sport
	})
}

// tplKey is the virtual address a template is keyed (and listed) with.
func tplKey(proto uint8, snet, vaddr netip.Addr, fwmark uint32) netip.Addr {
	if proto != 0 {
		return vaddr
	}
	if snet.Is4() {
		var b [4]byte
		binary.BigEndian.PutUint32(b[:], fwmark)
		return netip.AddrFrom4(b)
	}
	var b [16]byte
	binary.BigEndian.PutUint32(b[:4], fwmark)
	return netip.AddrFrom16(b)
}

func (m *model) lookupTemplate(proto uint8, snet, vaddr netip.Addr, vport uint16, fwmark uint32, now int64) (Ref, bool) {
	nt := floorTick(now)
	key := tplKey(proto, snet, vaddr, fwmark)
	return m.best(func(e *mEntry) bool {
		return e.tpl() && e.c.Proto == proto && e.c.CAddr == snet && e.c.VAddr == key &&
			e.c.VPort == vport && e.c.CPort == 0 && e.visible(nt)
	})
}

func (m *model) insert(c *Conn, now int64, ref Ref) error {
	m.observe(now)
	if len(m.entries) >= m.max {
		m.st.FullDrops++
		return ErrFull
	}
	var ctl *mEntry
	if c.Control != 0 {
		nt := floorTick(now)
		ctl = m.entries[c.Control]
		if ctl == nil || !ctl.tpl() || !ctl.visible(nt) {
			return ErrStale
		}
		m.catchUp(ctl, nt)
		ctl.nctl++
	}
	e := &mEntry{ref: ref, c: *c, ctl: ctl, timeout: ticksOf(c.Timeout)}
	e.c.Flags &^= internalFlags | FlagOnePacket
	if e.tpl() {
		e.c.VAddr = tplKey(c.Proto, c.CAddr, c.VAddr, c.FWMark)
	}
	e.expires = ceilTick(now) + e.timeout
	m.seq++
	e.seq = m.seq
	m.entries[ref] = e
	m.st.Inserts++
	return nil
}

// remove removes e; forced says how (and is what OnRemove gets).
func (m *model) remove(e *mEntry, forced bool) {
	m.removed = append(m.removed, removal{m.conn(e), forced})
	delete(m.entries, e.ref)
	m.st.Removes++
	if forced {
		m.st.Forced++
	} else {
		m.st.Expired++
	}
	if ct := e.ctl; ct != nil {
		ct.nctl--
		if e.timeout == 0 && ct.nctl == 0 && ct.c.State&TemplateAssured == 0 {
			m.remove(ct, true)
		}
	}
}

func (m *model) live(ref Ref, now int64) *mEntry {
	e := m.entries[ref]
	nt := floorTick(now)
	if e == nil || !e.visible(nt) {
		return nil
	}
	m.catchUp(e, nt)
	return e
}

func (m *model) kill(ref Ref, del bool) bool {
	e := m.entries[ref]
	if e == nil {
		return false
	}
	if e.tpl() && e.nctl > 0 {
		e.timeout = expireLaterTicks
		e.expires = ceilTick(m.lastNow) + expireLaterTicks
		m.st.ExpireLater++
		return false
	}
	if del && e.ctl != nil {
		e.timeout = 0
	}
	m.remove(e, true)
	return true
}

// expire runs the timers up to now. dropped are the templates the table
// removed by the unassured-template rule in its Expire call.
func (m *model) expire(now int64, dropped map[Ref]bool) int {
	m.observe(now)
	if !m.started {
		return 0
	}
	nt := floorTick(now)
	n := 0
	for {
		// The next tick at which something is due.
		tk := nt + 1
		for _, e := range m.entries {
			if before(e.expires, tk) {
				tk = e.expires
			}
		}
		if before(tk, m.lastTick+1) {
			tk = m.lastTick + 1
		}
		if after(tk, nt) {
			break
		}
		// Connections first, then templates. The order of the
		// connections due in one tick matters in one case: a template
		// whose last connections go in this tick, some with timeout 0
		// and some not, is dropped by the unassured-template rule only
		// if one with timeout 0 goes last. The kernel runs the timers
		// of one jiffy in no specified order, nor does the table across
		// shards: there the model takes the table's outcome, from its
		// removals (dropped is the set of templates it dropped).
		due := map[*mEntry][]*mEntry{}
		for _, e := range m.sorted() {
			if !e.tpl() && !after(e.expires, tk) && e.ctl != nil {
				due[e.ctl] = append(due[e.ctl], e)
			}
		}
		ambiguous := map[*mEntry]bool{}
		for ct, es := range due {
			zero := 0
			for _, e := range es {
				if e.timeout == 0 {
					zero++
				}
			}
			if zero > 0 && zero < len(es) && int(ct.nctl) == len(es) && ct.c.State&TemplateAssured == 0 {
				ambiguous[ct] = true
			}
		}
		for _, e := range m.sorted() {
			if m.entries[e.ref] != e || e.tpl() || after(e.expires, tk) {
				continue
			}
			before := len(m.removed)
			if ct := e.ctl; ct != nil && ambiguous[ct] {
				e.ctl = nil // the model settles the template itself
				m.remove(e, false)
				m.removed[len(m.removed)-1].c.Control = ct.ref
				ct.nctl--
				if ct.nctl == 0 && dropped[ct.ref] {
					m.remove(ct, true)
				}
			} else {
				m.remove(e, false)
			}
			n += len(m.removed) - before
		}
		for _, e := range m.sorted() {
			if m.entries[e.ref] != e || !e.tpl() || after(e.expires, tk) {
				continue
			}
			if e.nctl > 0 {
				e.expires += expireLaterTicks
				e.timeout = expireLaterTicks
				m.st.ExpireLater++
				continue
			}
			m.remove(e, false)
			n++
		}
		m.lastTick = tk
	}
	m.lastTick = nt
	return n
}

func (m *model) sorted() []*mEntry {
	es := make([]*mEntry, 0, len(m.entries))
	for _, e := range m.entries {
		es = append(es, e)
	}
	slices.SortFunc(es, func(a, b *mEntry) int { return a.seq - b.seq })
	return es
}

// The pools the random operations draw from: few values, so that keys
// collide. RFC 5737 and RFC 3849 addresses.
var (
	poolClients = []netip.Addr{
		netip.MustParseAddr("198.51.100.1"), netip.MustParseAddr("198.51.100.2"),
		netip.MustParseAddr("198.51.100.3"), netip.MustParseAddr("2001:db8::1"),
		netip.MustParseAddr("2001:db8::2"),
	}
	poolVIPs4  = []netip.Addr{netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2")}
	poolVIPs6  = []netip.Addr{netip.MustParseAddr("2001:db8:ff::1")}
	poolDests4 = []netip.Addr{netip.MustParseAddr("203.0.113.1"), netip.MustParseAddr("203.0.113.2")}
	poolDests6 = []netip.Addr{netip.MustParseAddr("2001:db8:1::1")}
	poolCPorts = []uint16{1000, 1001, 1002}
	poolVPorts = []uint16{80, 443}
	poolProtos = []uint8{6, 17}
	poolFwd    = []Flags{FlagMasq, FlagRoute, FlagTunnel}
	poolTOs    = []time.Duration{0, 5 * time.Millisecond, Tick, 2 * Tick, time.Second, 2 * time.Second,
		3 * time.Second, 60 * time.Second, 300 * time.Second}
)

func pick[T any](r *rand.Rand, s []T) T { return s[r.IntN(len(s))] }

type harness struct {
	t     *testing.T
	r     *rand.Rand
	tab   *Table
	m     *model
	now   int64
	got   []removal
	stale []Ref
	lag   bool // in a lag: no time steps
}

func (h *harness) vip(c netip.Addr) netip.Addr {
	if c.Is4() {
		return pick(h.r, poolVIPs4)
	}
	return pick(h.r, poolVIPs6)
}

func (h *harness) dest(c netip.Addr) netip.Addr {
	// Mostly the client's family; sometimes the other (a tunnel).
	if c.Is4() != (h.r.IntN(8) == 0) {
		return pick(h.r, poolDests4)
	}
	return pick(h.r, poolDests6)
}

// someRef returns the Ref of a random entry, a stale Ref, or garbage.
func (h *harness) someRef(tpl int) Ref {
	switch x := h.r.IntN(20); {
	case x == 0:
		return 0
	case x == 1:
		return mkRef(1, 300, 0) // no such shard
	case x < 4 && len(h.stale) > 0:
		return pick(h.r, h.stale)
	}
	var refs []Ref
	for ref, e := range h.m.entries {
		if tpl < 0 || e.tpl() == (tpl == 1) {
			refs = append(refs, ref)
		}
	}
	if len(refs) == 0 {
		return 0
	}
	slices.Sort(refs)
	return pick(h.r, refs)
}

func (h *harness) newConn() Conn {
	r := h.r
	c := Conn{
		Proto:    pick(r, poolProtos),
		CAddr:    pick(r, poolClients),
		CPort:    pick(r, poolCPorts),
		VPort:    pick(r, poolVPorts),
		DPort:    uint16(8000 + r.IntN(2)),
		Flags:    pick(r, poolFwd) | Flags(r.IntN(2))*FlagInactive,
		State:    uint8(r.IntN(MaxState + 1)),
		OldState: uint8(r.IntN(MaxState + 1)),
		FWMark:   uint32(r.IntN(3)),
		DestID:   uint32(r.IntN(1 << 24)),
		Timeout:  pick(r, poolTOs),
		InPkts:   uint32(r.IntN(3)),
	}
	c.VAddr = h.vip(c.CAddr)
	c.DAddr = h.dest(c.CAddr)
	if r.IntN(10) == 0 {
		c.Flags |= FlagNoCPort
		c.CPort = 0
	}
	if r.IntN(3) != 0 {
		c.Control = h.someRef(1)
	}
	return c
}

func (h *harness) newTemplate() Conn {
	r := h.r
	c := Conn{
		Proto:   pick(r, poolProtos),
		CAddr:   pick(r, poolClients),
		VPort:   pick(r, poolVPorts),
		DPort:   uint16(8000 + r.IntN(2)),
		Flags:   FlagTemplate | pick(r, poolFwd),
		State:   uint8(r.IntN(2)),
		FWMark:  uint32(r.IntN(3)),
		DestID:  uint32(r.IntN(100)),
		Timeout: pick(r, poolTOs),
	}
	if r.IntN(2) == 0 {
		c.Timeout = pick(r, poolTOs[4:]) // long enough to control something
	}
	c.VAddr = h.vip(c.CAddr)
	c.DAddr = h.dest(c.CAddr)
	if r.IntN(4) == 0 {
		// A fwmark template: <IPPROTO_IP, snet, 0, mark, 0>.
		c.Proto, c.VPort, c.FWMark = 0, 0, uint32(1+r.IntN(2))
	}
	return c
}

// dropped returns the templates removed forced in the table's last Expire
// (only the unassured-template rule does that during Expire).
func (h *harness) dropped() map[Ref]bool {
	d := map[Ref]bool{}
	for _, g := range h.got {
		if g.forced && g.c.Flags&FlagTemplate != 0 {
			d[g.c.Ref] = true
		}
	}
	return d
}

func (h *harness) checkRemovals(what string) {
	h.t.Helper()
	key := func(a, b removal) int {
		if a.c.Ref < b.c.Ref {
			return -1
		}
		if a.c.Ref > b.c.Ref {
			return 1
		}
		return 0
	}
	slices.SortFunc(h.got, key)
	slices.SortFunc(h.m.removed, key)
	if !slices.Equal(h.m.removed, h.got) {
		var b strings.Builder
		for i := range max(len(h.got), len(h.m.removed)) {
			var w, g removal
			if i < len(h.m.removed) {
				w = h.m.removed[i]
			}
			if i < len(h.got) {
				g = h.got[i]
			}
			if w != g {
				fmt.Fprintf(&b, "  #%d forced %v/%v %s\n", i, w.forced, g.forced, diffFields(w.c, g.c))
			}
		}
		h.t.Fatalf("%s: removals differ (model/table):\n%s", what, b.String())
	}
	for _, rm := range h.got {
		h.stale = append(h.stale, rm.c.Ref)
	}
	h.got, h.m.removed = h.got[:0], h.m.removed[:0]
}

// diffFields lists the fields in which two values of a struct type differ.
func diffFields[T any](want, got T) string {
	var b strings.Builder
	wv, gv := reflect.ValueOf(want), reflect.ValueOf(got)
	for i := range wv.NumField() {
		if wf, gf := wv.Field(i), gv.Field(i); !reflect.DeepEqual(wf.Interface(), gf.Interface()) {
			fmt.Fprintf(&b, "%s: want %v, got %v; ", wv.Type().Field(i).Name, wf, gf)
		}
	}
	return b.String()
}

func (h *harness) checkAll(what string) {
	h.t.Helper()
	for ref, e := range h.m.entries {
		got, ok := h.tab.Get(ref)
		if !ok {
			h.t.Fatalf("%s: Get(%#x) of a model entry failed", what, ref)
		}
		if want := h.m.conn(e); want != got {
			h.t.Fatalf("%s: entry %#x differs: %s", what, ref, diffFields(want, got))
		}
	}
	conns, tpls := h.tab.Len()
	var mc, mt int
	for _, e := range h.m.entries {
		if e.tpl() {
			mt++
		} else {
			mc++
		}
	}
	if conns != mc || tpls != mt {
		h.t.Fatalf("%s: Len = %d, %d; model %d, %d", what, conns, tpls, mc, mt)
	}
	if got := h.tab.Stats(); got != h.m.st {
		h.t.Fatalf("%s: Stats differ: %s", what, diffFields(h.m.st, got))
	}
	// Walk lists what lookups see at the table's latest time.
	var walked []Ref
	h.tab.Walk(func(c Conn) bool {
		walked = append(walked, c.Ref)
		return true
	})
	var want []Ref
	nt := floorTick(h.m.lastNow)
	for ref, e := range h.m.entries {
		if e.visible(nt) {
			want = append(want, ref)
		}
	}
	slices.Sort(walked)
	slices.Sort(want)
	if !slices.Equal(walked, want) {
		h.t.Fatalf("%s: Walk = %x, want %x", what, walked, want)
	}
}

func (h *harness) lookups(what string) {
	h.t.Helper()
	r := h.r
	for range 4 {
		c := pick(r, poolClients)
		p := pick(r, poolProtos)
		cport := pick(r, poolCPorts)
		if r.IntN(8) == 0 {
			cport = 0
		}
		v := h.vip(c)
		vport := pick(r, poolVPorts)
		gr, gok := h.tab.LookupIn(p, c, cport, v, vport, h.now)
		wr, wok := h.m.lookupIn(p, c, cport, v, vport, h.now)
		if gr != wr || gok != wok {
			h.t.Fatalf("%s: LookupIn(%d %v:%d %v:%d) = %#x %v, model %#x %v", what, p, c, cport, v, vport, gr, gok, wr, wok)
		}
		// A reply from the real server (NAT) or the VIP.
		src, sport := h.dest(c), uint16(8000+r.IntN(2))
		if r.IntN(2) == 0 {
			src, sport = v, vport
		}
		gr, gok = h.tab.LookupOut(p, src, sport, c, cport, h.now)
		wr, wok = h.m.lookupOut(p, src, sport, c, cport, h.now)
		if gr != wr || gok != wok {
			h.t.Fatalf("%s: LookupOut(%d %v:%d -> %v:%d) = %#x %v, model %#x %v", what, p, src, sport, c, cport, gr, gok, wr, wok)
		}
		tp, mark := p, uint32(0)
		if r.IntN(4) == 0 {
			tp, mark = 0, uint32(1+r.IntN(2))
			vport = 0
		}
		if r.IntN(10) == 0 {
			vport = templateInvalidPort
		}
		gr, gok = h.tab.LookupTemplate(tp, c, v, vport, mark, h.now)
		wr, wok = h.m.lookupTemplate(tp, c, v, vport, mark, h.now)
		if gr != wr || gok != wok {
			h.t.Fatalf("%s: LookupTemplate(%d %v %v:%d mark %d) = %#x %v, model %#x %v", what, tp, c, v, vport, mark, gr, gok, wr, wok)
		}
	}
}

func (h *harness) step(i int) {
	t, r, tab, m := h.t, h.r, h.tab, h.m
	t.Helper()
	what := fmt.Sprintf("op %d", i)
	op := r.IntN(100)
	for h.lag && op >= 69 && op < 93 {
		op = r.IntN(100) // no time steps while lagging
	}
	switch {
	case op < 22:
		c := h.newConn()
		if r.IntN(2) == 0 && len(m.entries) > 0 {
			// A reply-friendly or duplicate key.
			e := m.entries[h.someRef(0)]
			if e != nil {
				c.Proto, c.CAddr, c.CPort, c.VAddr, c.VPort = e.c.Proto, e.c.CAddr, e.c.CPort, e.c.VAddr, e.c.VPort
				if c.Flags&FlagNoCPort != 0 && c.CPort != 0 {
					c.Flags &^= FlagNoCPort
				}
			}
		}
		ref, err := tab.Insert(&c, h.now)
		werr := m.insert(&c, h.now, ref)
		if err != werr {
			t.Fatalf("%s: Insert(%+v) = %v, model %v", what, c, err, werr)
		}
		if err == nil {
			m.started = true
		}
	case op < 32:
		c := h.newTemplate()
		ref, err := tab.Insert(&c, h.now)
		werr := m.insert(&c, h.now, ref)
		if err != werr {
			t.Fatalf("%s: Insert(template %+v) = %v, model %v", what, c, err, werr)
		}
		if err == nil {
			m.started = true
		}
	case op < 42:
		ref := h.someRef(-1)
		n, ok := tab.Touch(ref, h.now)
		var wn uint32
		we := m.live(ref, h.now)
		if we != nil {
			we.c.InPkts++
			wn = we.c.InPkts
			we.expires = ceilTick(h.now) + we.timeout
		}
		if ok != (we != nil) || n != wn {
			t.Fatalf("%s: Touch(%#x) = %d %v, model %d %v", what, ref, n, ok, wn, we != nil)
		}
	case op < 46:
		ref := h.someRef(-1)
		ok := tab.Rearm(ref, h.now)
		we := m.live(ref, h.now)
		if we != nil {
			we.expires = ceilTick(h.now) + we.timeout
		}
		if ok != (we != nil) {
			t.Fatalf("%s: Rearm(%#x) = %v", what, ref, ok)
		}
	case op < 54:
		ref := h.someRef(-1)
		st := uint8(r.IntN(MaxState + 1))
		fl := pick(r, poolFwd) | Flags(r.IntN(2))*FlagInactive | Flags(r.IntN(2))*(FlagNoOutput|FlagTemplate|FlagNoCPort)
		to := pick(r, poolTOs)
		ok := tab.SetState(ref, st, fl, to, h.now)
		we := m.live(ref, h.now)
		if we != nil {
			we.c.OldState, we.c.State = we.c.State, st
			we.c.Flags = we.c.Flags&tableFlags | fl&^tableFlags
			we.timeout = ticksOf(to)
			we.expires = ceilTick(h.now) + we.timeout
		}
		if ok != (we != nil) {
			t.Fatalf("%s: SetState(%#x) = %v", what, ref, ok)
		}
	case op < 57:
		ref := h.someRef(-1)
		to := pick(r, poolTOs)
		ok := tab.SetTimeout(ref, to, h.now)
		we := m.live(ref, h.now)
		if we != nil {
			we.timeout = ticksOf(to)
			we.expires = ceilTick(h.now) + we.timeout
		}
		if ok != (we != nil) {
			t.Fatalf("%s: SetTimeout(%#x) = %v", what, ref, ok)
		}
	case op < 60:
		ref := h.someRef(1)
		ok := tab.Assure(ref)
		we := m.entries[ref]
		wok := we != nil && we.tpl()
		if wok {
			we.c.State |= TemplateAssured
		}
		if ok != wok {
			t.Fatalf("%s: Assure(%#x) = %v, model %v", what, ref, ok, wok)
		}
	case op < 62:
		ref := h.someRef(1)
		ok := tab.Neutralise(ref)
		we := m.entries[ref]
		wok := we != nil && we.tpl()
		if wok && we.c.VPort != templateInvalidPort {
			we.c.VPort, we.c.DPort, we.c.CPort = templateInvalidPort, templateInvalidPort, 0
			m.seq++
			we.seq = m.seq
		}
		if ok != wok {
			t.Fatalf("%s: Neutralise(%#x) = %v, model %v", what, ref, ok, wok)
		}
	case op < 67:
		ref := h.someRef(-1)
		del := r.IntN(2) == 0
		var ok bool
		if del {
			ok = tab.Delete(ref)
		} else {
			ok = tab.ExpireNow(ref)
		}
		if wok := m.kill(ref, del); ok != wok {
			t.Fatalf("%s: kill(%#x, del %v) = %v, model %v", what, ref, del, ok, wok)
		}
		h.checkRemovals(what)
	case op < 69:
		// FillCPort, on a connection without its client port if any.
		ref := h.someRef(0)
		for r2, e := range m.entries {
			if e.c.Flags&FlagNoCPort != 0 && r.IntN(2) == 0 {
				ref = r2
			}
		}
		cport := pick(r, poolCPorts)
		nref, ok := tab.FillCPort(ref, cport, h.now)
		we := m.live(ref, h.now)
		switch {
		case ok != (we != nil):
			t.Fatalf("%s: FillCPort(%#x) = %#x %v, model %v", what, ref, nref, ok, we != nil)
		case we != nil && we.c.Flags&FlagNoCPort != 0 && !we.tpl():
			delete(m.entries, ref)
			we.ref = nref
			we.c.CPort = cport
			we.c.Flags &^= FlagNoCPort
			m.seq++
			we.seq = m.seq
			m.entries[nref] = we
			h.stale = append(h.stale, ref)
		case ok && nref != ref:
			t.Fatalf("%s: FillCPort(%#x) moved an entry that had its port", what, ref)
		}
	case op < 90:
		// Time passes, and Expire runs.
		var d time.Duration
		switch r.IntN(4) {
		case 0:
			d = time.Duration(r.IntN(3)) * Tick
		case 1:
			d = time.Duration(r.Int64N(int64(Tick)))
		case 2:
			d = time.Duration(r.Int64N(int64(4 * time.Second)))
		default:
			d = time.Duration(r.Int64N(int64(15 * time.Second)))
		}
		h.now += int64(d)
		n := tab.Expire(h.now, 1<<30)
		if wn := m.expire(h.now, h.dropped()); n != wn {
			t.Fatalf("%s: Expire(+%v) = %d, model %d", what, d, n, wn)
		}
		h.checkRemovals(what)
	case op < 93:
		// Time passes without Expire: lookups must hide what has run
		// out, and operations on templates past their time that still
		// control connections must first bring them up to date. Then
		// Expire catches up, in time order.
		h.now += int64(time.Duration(r.Int64N(int64(5 * time.Second))))
		for j := range r.IntN(20) {
			h.lag = true
			h.step(i*1000 + j)
			h.lag = false
		}
		h.lookups(what + " (lagging)")
		h.checkAll(what + " (lagging)")
		n := tab.Expire(h.now, 1<<30)
		if wn := m.expire(h.now, h.dropped()); n != wn {
			t.Fatalf("%s: Expire after lag = %d, model %d", what, n, wn)
		}
		h.checkRemovals(what)
	default:
		h.lookups(what)
	}
}

var modelSeeds = flag.Int("seeds", 0, "number of TestModel seeds (0: the default)")

func TestModel(t *testing.T) {
	seeds := 60
	steps := 1500
	if testing.Short() {
		seeds = 15
	}
	if raceEnabled {
		seeds /= 10
	}
	if *modelSeeds > 0 {
		seeds = *modelSeeds
	}
	for seed := range seeds {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			r := rand.New(rand.NewPCG(uint64(seed), 7))
			max := 4 + r.IntN(60)
			h := &harness{t: t, r: r, m: newModel(max)}
			tab, err := New(Config{
				Max:    max,
				Shards: []int{1, 2, 4, 16}[r.IntN(4)],
				Seed:   uint64(seed) + 1,
				OnRemove: func(c *Conn, forced bool) {
					h.got = append(h.got, removal{*c, forced})
				},
			})
			if err != nil {
				t.Fatal(err)
			}
			h.tab = tab
			// Start anywhere, sometimes on a tick boundary, sometimes
			// just before the tick counter wraps.
			switch r.IntN(3) {
			case 0:
				h.now = int64(r.IntN(1<<20)) * tickNs
			case 1:
				h.now = (1<<32 - 3000) * tickNs
			default:
				h.now = r.Int64N(1 << 50)
			}
			h.m.lastTick = floorTick(h.now) - 1
			for i := range steps {
				if !h.m.started {
					h.m.lastTick = floorTick(h.now) - 1
				}
				h.step(i)
				if i%50 == 0 {
					h.checkAll(fmt.Sprintf("after op %d", i))
				}
			}
			// Everything expires in the end; templates last.
			for range 400 {
				if len(h.m.entries) == 0 {
					break
				}
				h.now += int64(10 * time.Second)
				n := tab.Expire(h.now, 1<<30)
				if wn := h.m.expire(h.now, h.dropped()); n != wn {
					t.Fatalf("final Expire = %d, model %d", n, wn)
				}
				h.checkRemovals("final")
			}
			h.checkAll("final")
			if c, tp := tab.Len(); c+tp != 0 {
				t.Fatalf("table not empty at the end: %d conns, %d templates", c, tp)
			}
		})
	}
}
