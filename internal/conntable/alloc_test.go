package conntable

import (
	"net/netip"
	"testing"
	"time"
)

// Zero allocations per lookup, per update, per new connection and per
// expiry, once the arrays have grown (style §4.2).

func addr4(i int) netip.Addr {
	return netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
}

func TestAllocs(t *testing.T) {
	var removed int
	tab, err := New(Config{Max: 1 << 14, Shards: 4, Seed: 1, OnRemove: func(*Conn, bool) { removed++ }})
	if err != nil {
		t.Fatal(err)
	}
	now := at(0)
	var refs []Ref
	for i := range 1000 {
		c := tcpConn(addr4(i), uint16(i), rs1, time.Hour)
		refs = append(refs, insert(t, tab, c, now))
	}
	ct := insert(t, tab, template(cli, rs1, time.Hour), now)
	c6 := insert(t, tab, tcpConn(cli6, 1, rs6, time.Hour), now)
	// Warm the arrays and the pool: one churn round.
	for i := range 2000 {
		c := tcpConn(addr4(5000+i), 1, rs1, time.Hour)
		tab.ExpireNow(insert(t, tab, c, now))
	}

	check := func(name string, f func()) {
		t.Helper()
		if n := testing.AllocsPerRun(1000, f); n != 0 {
			t.Errorf("%s: %v allocations per run, want 0", name, n)
		}
	}
	i := 0
	check("LookupIn hit", func() {
		i = i%999 + 1 // client port 0 is never found: skip it
		if _, ok := tab.LookupIn(tcp, addr4(i), uint16(i), vip, 80, now); !ok {
			t.Fatal("miss")
		}
	})
	check("LookupIn miss", func() { tab.LookupIn(tcp, addr4(7), 9999, vip, 80, now) })
	check("LookupIn IPv6", func() { tab.LookupIn(tcp, cli6, 1, vip6, 80, now) })
	check("LookupOut", func() {
		i = i%999 + 1 // client port 0 is never found: skip it
		if _, ok := tab.LookupOut(tcp, rs1, 8080, addr4(i), uint16(i), now); !ok {
			t.Fatal("miss")
		}
	})
	check("LookupTemplate", func() { tab.LookupTemplate(tcp, cli, vip, 80, 0, now) })
	check("Get", func() { tab.Get(refs[i]) })
	check("Get IPv6", func() { tab.Get(c6) })
	check("Touch", func() { tab.Touch(refs[i], now) })
	check("Rearm", func() { tab.Rearm(ct, now) })
	check("SetState", func() { tab.SetState(refs[i], 1, FlagMasq, 900*time.Second, now) })
	check("Assure", func() { tab.Assure(ct) })

	// A new connection and its end, the steady state of churn.
	j := 0
	check("Insert+ExpireNow", func() {
		j++
		c := tcpConn(addr4(100000+j%3000), uint16(j), rs1, time.Minute)
		ref, err := tab.Insert(&c, now)
		if err != nil {
			t.Fatal(err)
		}
		tab.ExpireNow(ref)
	})
	// A persistent one: template, controlled connection, Delete drops both.
	check("template+conn+Delete", func() {
		j++
		tp := template(addr4(200000+j%3000), rs1, time.Minute)
		tr, err := tab.Insert(&tp, now)
		if err != nil {
			t.Fatal(err)
		}
		c := tcpConn(addr4(200000+j%3000), uint16(j), rs1, time.Minute)
		c.Control = tr
		cr, err := tab.Insert(&c, now)
		if err != nil {
			t.Fatal(err)
		}
		tab.Delete(cr)
	})
	// Expiry: ten connections time out, one Expire call.
	check("Expire", func() {
		for k := range 10 {
			c := tcpConn(addr4(300000+k), uint16(j), rs1, Tick)
			if _, err := tab.Insert(&c, now); err != nil {
				t.Fatal(err)
			}
		}
		now += 2 * tickNs
		if n := tab.Expire(now, 1<<20); n < 10 {
			t.Fatalf("expired %d", n)
		}
	})
	if removed == 0 {
		t.Fatal("OnRemove never called")
	}
}
