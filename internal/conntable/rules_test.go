package conntable

import (
	"errors"
	"net/netip"
	"testing"
	"time"
)

// Targeted tests of the kernel's rules, one scenario each. Addresses are
// from RFC 5737 and RFC 3849.

const (
	tcp = 6
	udp = 17
)

var (
	cli  = netip.MustParseAddr("198.51.100.7")
	cli6 = netip.MustParseAddr("2001:db8::7")
	vip  = netip.MustParseAddr("192.0.2.10")
	vip6 = netip.MustParseAddr("2001:db8:ff::10")
	rs1  = netip.MustParseAddr("203.0.113.1")
	rs2  = netip.MustParseAddr("203.0.113.2")
	rs6  = netip.MustParseAddr("2001:db8:1::1")
)

// t0 is an arbitrary start time, on a tick boundary.
const t0 = int64(time.Hour)

func at(d time.Duration) int64 { return t0 + int64(d) }

type recorder struct{ got []removal }

func (r *recorder) onRemove(c *Conn, forced bool) { r.got = append(r.got, removal{*c, forced}) }

func (r *recorder) take() []removal {
	g := r.got
	r.got = nil
	return g
}

func newTable(t testing.TB, max int) (*Table, *recorder) {
	t.Helper()
	rec := &recorder{}
	tab, err := New(Config{Max: max, Shards: 4, Seed: 1, OnRemove: rec.onRemove})
	if err != nil {
		t.Fatal(err)
	}
	return tab, rec
}

func tcpConn(c netip.Addr, cport uint16, d netip.Addr, timeout time.Duration) Conn {
	v := vip
	if c.Is6() {
		v = vip6
	}
	return Conn{Proto: tcp, CAddr: c, CPort: cport, VAddr: v, VPort: 80, DAddr: d, DPort: 8080,
		Flags: FlagMasq | FlagInactive, DestID: 1, Timeout: timeout}
}

func template(snet netip.Addr, d netip.Addr, timeout time.Duration) Conn {
	return Conn{Proto: tcp, CAddr: snet, VAddr: vip, VPort: 80, DAddr: d, DPort: 8080,
		Flags: FlagTemplate | FlagRoute, DestID: 2, Timeout: timeout}
}

func insert(t testing.TB, tab *Table, c Conn, now int64) Ref {
	t.Helper()
	ref, err := tab.Insert(&c, now)
	if err != nil {
		t.Fatalf("Insert(%+v): %v", c, err)
	}
	return ref
}

func get(t testing.TB, tab *Table, ref Ref) Conn {
	t.Helper()
	c, ok := tab.Get(ref)
	if !ok {
		t.Fatalf("Get(%#x) failed", ref)
	}
	return c
}

func TestExpireLaterQuirk(t *testing.T) {
	tab, rec := newTable(t, 100)
	ct := insert(t, tab, template(cli, rs1, 360*time.Second), at(0))
	c := tcpConn(cli, 1000, rs1, 900*time.Second)
	c.Control = ct
	cr := insert(t, tab, c, at(0))
	if got := get(t, tab, ct).NControl; got != 1 {
		t.Fatalf("template NControl = %d, want 1", got)
	}
	// At 360 s the template's timer fires while it controls the
	// connection: re-armed for 60 s, and its timeout is 60 s from now on.
	tab.Expire(at(360*time.Second), 1000)
	tc := get(t, tab, ct)
	if tc.Timeout != 60*time.Second || tc.Expires != at(420*time.Second) {
		t.Fatalf("after its timer: timeout %v expires %v, want 60s at 420s", tc.Timeout, time.Duration(tc.Expires-t0))
	}
	if n := len(rec.take()); n != 0 {
		t.Fatalf("%d removals, want 0", n)
	}
	// Reuse by the scheduler re-arms it with the 60 s, not the 360 s.
	if !tab.Rearm(ct, at(400*time.Second)) {
		t.Fatal("Rearm failed")
	}
	if tc := get(t, tab, ct); tc.Expires != at(460*time.Second) {
		t.Fatalf("after reuse: expires %v, want 460s", time.Duration(tc.Expires-t0))
	}
	// The connection times out at 900 s; the template, expired-later
	// every 60 s meanwhile (460, 520, ..., 880, 940), goes at 940 s.
	tab.Expire(at(900*time.Second), 1000)
	got := rec.take()
	if len(got) != 1 || got[0].c.Ref != cr || got[0].forced || got[0].c.Control != ct {
		t.Fatalf("at 900 s removed %+v, want the connection", got)
	}
	if _, ok := tab.LookupTemplate(tcp, cli, vip, 80, 0, at(939*time.Second)); !ok {
		t.Fatal("template gone before 940 s")
	}
	tab.Expire(at(940*time.Second-time.Millisecond), 1000)
	if n := len(rec.take()); n != 0 {
		t.Fatalf("%d removals before 940 s", n)
	}
	tab.Expire(at(940*time.Second), 1000)
	if got := rec.take(); len(got) != 1 || got[0].c.Ref != ct || got[0].c.NControl != 0 {
		t.Fatalf("at 940 s removed %+v, want the template", got)
	}
	// Expire-laters at 360, 460, 520, ..., 880 s.
	if st := tab.Stats(); st.ExpireLater != 9 || st.Expired != 2 {
		t.Fatalf("stats %+v, want 9 expire-laters and 2 expired", st)
	}
}

func TestUnassuredTemplateRule(t *testing.T) {
	for _, tc := range []struct {
		name      string
		assured   bool
		second    bool // the template controls another connection
		del       bool // Delete (timeout 0) rather than ExpireNow
		wantGone  bool
		wantCount int
	}{
		{name: "delete drops unassured template", del: true, wantGone: true, wantCount: 2},
		{name: "assured template stays", del: true, assured: true, wantCount: 1},
		{name: "template still controlling stays", del: true, second: true, wantCount: 1},
		{name: "expire-now keeps the timeout: template stays", wantCount: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tab, rec := newTable(t, 100)
			ct := insert(t, tab, template(cli, rs1, 300*time.Second), at(0))
			c := tcpConn(cli, 1000, rs1, 60*time.Second)
			c.Control = ct
			cr := insert(t, tab, c, at(0))
			if tc.second {
				c.CPort = 1001
				insert(t, tab, c, at(0))
			}
			if tc.assured && !tab.Assure(ct) {
				t.Fatal("Assure failed")
			}
			kill := tab.ExpireNow
			if tc.del {
				kill = tab.Delete
			}
			if !kill(cr) {
				t.Fatal("connection not removed")
			}
			got := rec.take()
			if len(got) != tc.wantCount {
				t.Fatalf("removed %d entries, want %d: %+v", len(got), tc.wantCount, got)
			}
			for _, g := range got {
				if !g.forced {
					t.Errorf("removal of %#x not forced", g.c.Ref)
				}
			}
			_, ok := tab.Get(ct)
			if ok == tc.wantGone {
				t.Fatalf("template present = %v, want %v", ok, !tc.wantGone)
			}
		})
	}
}

func TestExpireNowTemplateControlling(t *testing.T) {
	tab, rec := newTable(t, 100)
	ct := insert(t, tab, template(cli, rs1, 300*time.Second), at(0))
	c := tcpConn(cli, 1000, rs1, 60*time.Second)
	c.Control = ct
	insert(t, tab, c, at(0))
	tab.Expire(at(10*time.Second), 10) // the table's time is now 10 s
	if tab.ExpireNow(ct) || tab.Delete(ct) {
		t.Fatal("a template controlling a connection was removed")
	}
	if tc := get(t, tab, ct); tc.Timeout != 60*time.Second || tc.Expires != at(70*time.Second) {
		t.Fatalf("template timeout %v expires %v, want 60s at 70s (expire_later)", tc.Timeout, time.Duration(tc.Expires-t0))
	}
	if len(rec.take()) != 0 {
		t.Fatal("unexpected removal")
	}
}

func TestFullTable(t *testing.T) {
	tab, rec := newTable(t, 3)
	var refs []Ref
	for i := range 3 {
		refs = append(refs, insert(t, tab, tcpConn(cli, uint16(1000+i), rs1, 10*time.Second), at(0)))
	}
	c := tcpConn(cli, 2000, rs1, 10*time.Second)
	if _, err := tab.Insert(&c, at(0)); !errors.Is(err, ErrFull) {
		t.Fatalf("Insert into a full table: %v, want ErrFull", err)
	}
	tpl := template(cli, rs1, time.Minute)
	if _, err := tab.Insert(&tpl, at(0)); !errors.Is(err, ErrFull) {
		t.Fatalf("Insert of a template into a full table: %v, want ErrFull", err)
	}
	if st := tab.Stats(); st.FullDrops != 2 || st.Inserts != 3 {
		t.Fatalf("stats %+v, want 2 full drops, 3 inserts", st)
	}
	// Established connections keep flowing.
	for i, ref := range refs {
		r, ok := tab.LookupIn(tcp, cli, uint16(1000+i), vip, 80, at(5*time.Second))
		if !ok || r != ref {
			t.Fatalf("LookupIn of connection %d in a full table: %#x %v", i, r, ok)
		}
		if _, ok := tab.Touch(ref, at(5*time.Second)); !ok {
			t.Fatalf("Touch of connection %d in a full table failed", i)
		}
		if !tab.SetState(ref, 1, FlagMasq, 900*time.Second, at(5*time.Second)) {
			t.Fatalf("SetState of connection %d in a full table failed", i)
		}
		if _, ok := tab.LookupOut(tcp, rs1, 8080, cli, uint16(1000+i), at(5*time.Second)); !ok {
			t.Fatalf("LookupOut of connection %d in a full table failed", i)
		}
	}
	// A removal makes room.
	if !tab.ExpireNow(refs[0]) {
		t.Fatal("ExpireNow failed")
	}
	rec.take()
	if _, err := tab.Insert(&c, at(5*time.Second)); err != nil {
		t.Fatalf("Insert after a removal: %v", err)
	}
}

func TestStaleRef(t *testing.T) {
	tab, _ := newTable(t, 10)
	ct := insert(t, tab, template(cli, rs1, time.Minute), at(0))
	cr := insert(t, tab, tcpConn(cli, 1000, rs1, time.Minute), at(0))
	if !tab.ExpireNow(cr) || !tab.ExpireNow(ct) {
		t.Fatal("ExpireNow failed")
	}
	// The slots are reused, with new generations.
	ct2 := insert(t, tab, template(cli, rs1, time.Minute), at(0))
	cr2 := insert(t, tab, tcpConn(cli, 1000, rs1, time.Minute), at(0))
	if ct2 == ct || cr2 == cr {
		t.Fatal("a new entry got the Ref of a removed one")
	}
	for _, ref := range []Ref{cr, ct, 0, Ref(1<<48 | 255<<32)} {
		if _, ok := tab.Get(ref); ok {
			t.Errorf("Get(%#x) of a stale Ref succeeded", ref)
		}
		if _, ok := tab.Touch(ref, at(0)); ok {
			t.Errorf("Touch(%#x) succeeded", ref)
		}
		if tab.Rearm(ref, at(0)) || tab.SetTimeout(ref, time.Second, at(0)) ||
			tab.SetState(ref, 1, 0, time.Second, at(0)) || tab.Assure(ref) || tab.Neutralise(ref) ||
			tab.ExpireNow(ref) || tab.Delete(ref) {
			t.Errorf("a setter accepted stale Ref %#x", ref)
		}
		if _, ok := tab.FillCPort(ref, 1, at(0)); ok {
			t.Errorf("FillCPort(%#x) succeeded", ref)
		}
		if ref == 0 {
			continue // Control 0 is no control
		}
		c := tcpConn(cli, 1001, rs1, time.Minute)
		c.Control = ref
		if _, err := tab.Insert(&c, at(0)); !errors.Is(err, ErrStale) {
			t.Errorf("Insert with stale control %#x: %v, want ErrStale", ref, err)
		}
	}
	// A connection is not a template.
	c := tcpConn(cli, 1001, rs1, time.Minute)
	c.Control = cr2
	if _, err := tab.Insert(&c, at(0)); !errors.Is(err, ErrStale) {
		t.Errorf("Insert controlled by a connection: %v, want ErrStale", err)
	}
	if tab.Assure(cr2) || tab.Neutralise(cr2) {
		t.Error("Assure or Neutralise accepted a connection")
	}
	if n, tp := tab.Len(); n != 1 || tp != 1 {
		t.Fatalf("Len = %d, %d, want 1, 1 (failed inserts leave no trace)", n, tp)
	}
}

func TestInvalidInsert(t *testing.T) {
	tab, _ := newTable(t, 10)
	ok := tcpConn(cli, 1000, rs1, time.Minute)
	for _, tc := range []struct {
		name string
		mod  func(c *Conn)
	}{
		{"one-packet", func(c *Conn) { c.Flags |= FlagOnePacket }},
		{"no client", func(c *Conn) { c.CAddr = netip.Addr{} }},
		{"no real server", func(c *Conn) { c.DAddr = netip.Addr{} }},
		{"families differ", func(c *Conn) { c.VAddr = vip6 }},
		{"no protocol", func(c *Conn) { c.Proto = 0 }},
		{"state too big", func(c *Conn) { c.State = MaxState + 1 }},
		{"dest ID too big", func(c *Conn) { c.DestID = 1 << 24 }},
		{"template with control", func(c *Conn) { c.Flags |= FlagTemplate; c.Control = 1 }},
	} {
		c := ok
		tc.mod(&c)
		if _, err := tab.Insert(&c, at(0)); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: Insert = %v, want ErrInvalid", tc.name, err)
		}
	}
	if n, tp := tab.Len(); n+tp != 0 {
		t.Fatal("an invalid insert left an entry")
	}
}

func TestNoCPort(t *testing.T) {
	tab, rec := newTable(t, 10)
	// A connection from the sync daemon, client port unknown.
	c := tcpConn(cli, 0, rs1, time.Minute)
	c.Flags |= FlagNoCPort | FlagSync
	ref := insert(t, tab, c, at(0))
	// A normal connection with client port 0 is never found by a
	// port-0 lookup (the kernel's rule), only NO_CPORT ones are.
	r, ok := tab.LookupIn(tcp, cli, 4321, vip, 80, at(time.Second))
	if !ok || r != ref {
		t.Fatalf("LookupIn with the real port did not fall back to port 0: %#x %v", r, ok)
	}
	nref, ok := tab.FillCPort(ref, 4321, at(time.Second))
	if !ok {
		t.Fatal("FillCPort failed")
	}
	if _, ok := tab.Get(ref); ok && nref != ref {
		t.Fatal("the old Ref still works after the move")
	}
	nc := get(t, tab, nref)
	if nc.CPort != 4321 || nc.Flags&FlagNoCPort != 0 || nc.Expires != at(time.Minute) {
		t.Fatalf("after FillCPort: %+v", nc)
	}
	if tab.ShardOf(tcp, cli, 4321) != int(uint16(nref>>32)) {
		t.Fatal("the moved entry is not in the shard of its new key")
	}
	if r, ok := tab.LookupIn(tcp, cli, 4321, vip, 80, at(time.Second)); !ok || r != nref {
		t.Fatalf("LookupIn after FillCPort: %#x %v", r, ok)
	}
	if _, ok := tab.LookupIn(tcp, cli, 4322, vip, 80, at(time.Second)); ok {
		t.Fatal("another port found the filled connection")
	}
	if r, ok := tab.LookupOut(tcp, rs1, 8080, cli, 4321, at(time.Second)); !ok || r != nref {
		t.Fatalf("LookupOut after FillCPort: %#x %v", r, ok)
	}
	tab.Expire(at(time.Minute), 100)
	if got := rec.take(); len(got) != 1 || got[0].c.CPort != 4321 {
		t.Fatalf("removals %+v", got)
	}
}

func TestMixedFamilies(t *testing.T) {
	tab, _ := newTable(t, 10)
	// An IPv4 service tunnelled to an IPv6 real server, and the reverse.
	c4 := tcpConn(cli, 1000, rs6, time.Minute)
	c4.Flags = FlagTunnel | FlagNoOutput
	r4 := insert(t, tab, c4, at(0))
	c6 := tcpConn(cli6, 1000, rs1, time.Minute)
	c6.Flags = FlagTunnel | FlagNoOutput
	r6 := insert(t, tab, c6, at(0))
	if r, ok := tab.LookupIn(tcp, cli, 1000, vip, 80, at(0)); !ok || r != r4 {
		t.Fatalf("LookupIn v4 client, v6 real server: %#x %v", r, ok)
	}
	if r, ok := tab.LookupIn(tcp, cli6, 1000, vip6, 80, at(0)); !ok || r != r6 {
		t.Fatalf("LookupIn v6 client, v4 real server: %#x %v", r, ok)
	}
	// A reply through the director from the VIP (non-NAT matches VAddr).
	if r, ok := tab.LookupOut(tcp, vip, 80, cli, 1000, at(0)); !ok || r != r4 {
		t.Fatalf("LookupOut non-NAT: %#x %v", r, ok)
	}
	for _, tc := range []struct {
		ref  Ref
		want Conn
	}{{r4, c4}, {r6, c6}} {
		g := get(t, tab, tc.ref)
		if g.CAddr != tc.want.CAddr || g.VAddr != tc.want.VAddr || g.DAddr != tc.want.DAddr {
			t.Errorf("Get: %v %v %v, want %v %v %v", g.CAddr, g.VAddr, g.DAddr, tc.want.CAddr, tc.want.VAddr, tc.want.DAddr)
		}
		if g.Flags != tc.want.Flags {
			t.Errorf("Get flags %#x, want %#x (internal bits leak?)", g.Flags, tc.want.Flags)
		}
	}
	// The IPv4 client's family decides the hash, whatever the store.
	if tab.ShardOf(tcp, cli, 1000) != int(uint16(r4>>32)) {
		t.Error("mixed entry not in ShardOf's shard")
	}
}

func TestFwmarkTemplate(t *testing.T) {
	tab, _ := newTable(t, 10)
	tc := Conn{Proto: 0, CAddr: netip.MustParseAddr("198.51.100.0"), FWMark: 1, DAddr: rs1,
		Flags: FlagTemplate | FlagRoute, DestID: 1, Timeout: time.Minute}
	ref := insert(t, tab, tc, at(0))
	// The mark is the key: vaddr and the protocol of the packet do not
	// matter, the kernel's <IPPROTO_IP, snet, 0, fwmark, 0>.
	if r, ok := tab.LookupTemplate(0, tc.CAddr, netip.Addr{}, 0, 1, at(0)); !ok || r != ref {
		t.Fatalf("LookupTemplate by mark: %#x %v", r, ok)
	}
	if _, ok := tab.LookupTemplate(0, tc.CAddr, netip.Addr{}, 0, 2, at(0)); ok {
		t.Fatal("another mark found the template")
	}
	if _, ok := tab.LookupTemplate(tcp, tc.CAddr, netip.MustParseAddr("0.0.0.1"), 0, 0, at(0)); ok {
		t.Fatal("a TCP template lookup found a fwmark template")
	}
	// Listed as the kernel does: the mark as the virtual address.
	if g := get(t, tab, ref); g.VAddr != netip.MustParseAddr("0.0.0.1") || g.FWMark != 1 {
		t.Fatalf("fwmark template VAddr %v FWMark %d, want 0.0.0.1, 1", g.VAddr, g.FWMark)
	}
	// The same for IPv6: the mark in the first 4 bytes.
	tc6 := tc
	tc6.CAddr, tc6.DAddr = netip.MustParseAddr("2001:db8::"), rs6
	ref6 := insert(t, tab, tc6, at(0))
	if r, ok := tab.LookupTemplate(0, tc6.CAddr, netip.Addr{}, 0, 1, at(0)); !ok || r != ref6 {
		t.Fatalf("LookupTemplate v6 by mark: %#x %v", r, ok)
	}
	if g := get(t, tab, ref6); g.VAddr != netip.MustParseAddr("0:1::") {
		t.Fatalf("v6 fwmark template VAddr %v, want 0:1::", g.VAddr)
	}
}

func TestNeutralise(t *testing.T) {
	tab, rec := newTable(t, 10)
	ct := insert(t, tab, template(cli, rs1, time.Minute), at(0))
	c := tcpConn(cli, 1000, rs1, 10*time.Second)
	c.Control = ct
	insert(t, tab, c, at(0))
	if !tab.Neutralise(ct) {
		t.Fatal("Neutralise failed")
	}
	if _, ok := tab.LookupTemplate(tcp, cli, vip, 80, 0, at(0)); ok {
		t.Fatal("a neutralised template is still found")
	}
	g := get(t, tab, ct)
	if g.VPort != 0xffff || g.DPort != 0xffff || g.Expires != at(time.Minute) || g.NControl != 1 {
		t.Fatalf("neutralised template %+v", g)
	}
	// A new template for the same client can be created beside it.
	ct2 := insert(t, tab, template(cli, rs2, time.Minute), at(0))
	if r, ok := tab.LookupTemplate(tcp, cli, vip, 80, 0, at(0)); !ok || r != ct2 {
		t.Fatal("the new template is not found")
	}
	// The old one lives on with its connection, then expires.
	tab.Expire(at(time.Minute), 100)
	if got := rec.take(); len(got) != 3 {
		t.Fatalf("removed %d, want the connection and both templates", len(got))
	}
}

func TestExpireBudget(t *testing.T) {
	// The same work in budget-1 steps as in one call.
	build := func() (*Table, *recorder) {
		tab, rec := newTable(t, 1000)
		for i := range 300 {
			ct := insert(t, tab, template(netip.AddrFrom4([4]byte{198, 51, 100, byte(i)}), rs1, time.Duration(1+i%7)*time.Second), at(0))
			c := tcpConn(cli, uint16(i), rs1, time.Duration(i%5)*time.Second)
			c.Control = ct
			insert(t, tab, c, at(0))
		}
		return tab, rec
	}
	big, brec := build()
	small, srec := build()
	now := at(10 * time.Second)
	nb := big.Expire(now, 1<<30)
	ns := 0
	for range 100000 {
		ns += small.Expire(now, 1)
	}
	if nb != ns || nb != 600-big.mustLen(t) {
		t.Fatalf("removed %d in one call, %d in steps", nb, ns)
	}
	if len(brec.got) != len(srec.got) {
		t.Fatalf("%d and %d removals", len(brec.got), len(srec.got))
	}
	for i := range brec.got {
		if brec.got[i].c.Ref != srec.got[i].c.Ref {
			t.Fatalf("removal %d differs: %#x and %#x", i, brec.got[i].c.Ref, srec.got[i].c.Ref)
		}
	}
}

func (t *Table) mustLen(tb testing.TB) int {
	c, tp := t.Len()
	return c + tp
}

func TestExpireAfterLongPause(t *testing.T) {
	tab, rec := newTable(t, 1000)
	for i := range 200 {
		insert(t, tab, tcpConn(cli, uint16(i), rs1, time.Duration(i)*time.Second), at(0))
	}
	keep := insert(t, tab, tcpConn(cli, 5000, rs1, 2*time.Hour), at(0))
	// An hour without Expire: more than a wheel turn.
	n := tab.Expire(at(time.Hour), 1<<30)
	if n != 200 || len(rec.take()) != 200 {
		t.Fatalf("expired %d, want 200", n)
	}
	if _, ok := tab.Get(keep); !ok {
		t.Fatal("a connection with 2 h to go was expired")
	}
	tab.Expire(at(2*time.Hour-time.Millisecond), 1<<30)
	if _, ok := tab.Get(keep); !ok {
		t.Fatal("expired early")
	}
	tab.Expire(at(2*time.Hour), 1<<30)
	if _, ok := tab.Get(keep); ok {
		t.Fatal("not expired at 2 h")
	}
}

func TestFlush(t *testing.T) {
	tab, rec := newTable(t, 100)
	ct := insert(t, tab, template(cli, rs1, time.Minute), at(0))
	tab.Assure(ct)
	for i := range 5 {
		c := tcpConn(cli, uint16(1000+i), rs1, time.Minute)
		c.Control = ct
		insert(t, tab, c, at(0))
	}
	insert(t, tab, tcpConn(cli6, 1, rs6, time.Minute), at(0))
	if n := tab.Flush(); n != 7 {
		t.Fatalf("Flush removed %d, want 7", n)
	}
	got := rec.take()
	if len(got) != 7 || got[6].c.Ref != ct {
		t.Fatalf("removals %d, last %#x; want 7, the template last", len(got), got[len(got)-1].c.Ref)
	}
	for _, g := range got {
		if !g.forced {
			t.Fatal("a flushed entry was not forced")
		}
	}
	if n, tp := tab.Len(); n+tp != 0 {
		t.Fatal("table not empty after Flush")
	}
}

func TestLookupOutNAT(t *testing.T) {
	tab, _ := newTable(t, 10)
	ref := insert(t, tab, tcpConn(cli, 1000, rs1, time.Minute), at(0))
	if r, ok := tab.LookupOut(tcp, rs1, 8080, cli, 1000, at(0)); !ok || r != ref {
		t.Fatalf("reply from the real server: %#x %v", r, ok)
	}
	// For NAT the reply must come from the real server, not the VIP.
	if _, ok := tab.LookupOut(tcp, vip, 80, cli, 1000, at(0)); ok {
		t.Fatal("NAT connection found from the VIP")
	}
	if _, ok := tab.LookupOut(tcp, rs2, 8080, cli, 1000, at(0)); ok {
		t.Fatal("found from another real server")
	}
	if _, ok := tab.LookupOut(udp, rs1, 8080, cli, 1000, at(0)); ok {
		t.Fatal("found over another protocol")
	}
}

func TestNewConfig(t *testing.T) {
	for _, cfg := range []Config{{Shards: 3}, {Shards: 512}, {Max: -1}, {Max: 1 << 30, Shards: 1}} {
		if _, err := New(cfg); err == nil {
			t.Errorf("New(%+v) accepted", cfg)
		}
	}
	tab, err := New(Config{})
	if err != nil || tab.Shards() != DefaultShards {
		t.Fatalf("New(Config{}) = %v, %v", tab, err)
	}
}
