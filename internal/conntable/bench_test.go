package conntable

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"testing"
	"time"
)

// Benchmarks. Run them short on the shared machine:
//
//	go test ./internal/conntable -run '^$' -bench . -benchtime 200ms

// benchTable is a full table of n IPv4 connections and a random order in
// which to look them up (so that the lookups miss the CPU caches as a
// real traffic mix does).
type benchTable struct {
	tab   *Table
	order []int32
}

var benchTables = map[int]*benchTable{}

func benchTab(b *testing.B, n int) *benchTable {
	if bt := benchTables[n]; bt != nil {
		return bt
	}
	tab, err := New(Config{Max: n, Seed: 1})
	if err != nil {
		b.Fatal(err)
	}
	for i := range n {
		c := scaleConn(i)
		if _, err := tab.Insert(&c, t0); err != nil {
			b.Fatal(err)
		}
	}
	r := rand.New(rand.NewPCG(1, 2))
	order := make([]int32, n)
	for i := range order {
		order[i] = int32(i)
	}
	r.Shuffle(n, func(i, j int) { order[i], order[j] = order[j], order[i] })
	bt := &benchTable{tab: tab, order: order}
	benchTables[n] = bt
	return bt
}

var benchSizes = []int{1_000, 100_000, 1_000_000}

func BenchmarkLookupIn(b *testing.B) {
	for _, n := range benchSizes {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			bt := benchTab(b, n)
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				c, p := scaleKey(int(bt.order[i]))
				if i++; i == n {
					i = 0
				}
				if _, ok := bt.tab.LookupIn(tcp, c, p, vip, 80, t0); !ok {
					b.Fatal("miss")
				}
			}
		})
	}
}

func BenchmarkLookupInMiss(b *testing.B) {
	bt := benchTab(b, 1_000_000)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		c, p := scaleKey(int(bt.order[i]))
		if i++; i == len(bt.order) {
			i = 0
		}
		if _, ok := bt.tab.LookupIn(tcp, c, p+1, vip, 80, t0); ok {
			b.Fatal("hit")
		}
	}
}

func BenchmarkLookupOut(b *testing.B) {
	bt := benchTab(b, 1_000_000)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		c, p := scaleKey(int(bt.order[i]))
		if i++; i == len(bt.order) {
			i = 0
		}
		if _, ok := bt.tab.LookupOut(tcp, rs1, 8080, c, p, t0); !ok {
			b.Fatal("miss")
		}
	}
}

// BenchmarkTouch is the per-packet update of an existing connection.
func BenchmarkTouch(b *testing.B) {
	bt := benchTab(b, 1_000_000)
	refs := make([]Ref, len(bt.order))
	for i, k := range bt.order {
		c, p := scaleKey(int(k))
		refs[i], _ = bt.tab.LookupIn(tcp, c, p, vip, 80, t0)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, ok := bt.tab.Touch(refs[i], t0); !ok {
			b.Fatal("Touch failed")
		}
		if i++; i == len(refs) {
			i = 0
		}
	}
}

// BenchmarkInsertRemove is the steady state of new connections: in a table
// of 100,000, each op inserts one connection and removes the oldest.
func BenchmarkInsertRemove(b *testing.B) {
	const live = 100_000
	tab, err := New(Config{Max: 2 * live, Seed: 1})
	if err != nil {
		b.Fatal(err)
	}
	ring := make([]Ref, live)
	next := 0
	add := func() Ref {
		c := scaleConn(next % 4_000_000)
		next++
		ref, err := tab.Insert(&c, t0)
		if err != nil {
			b.Fatal(err)
		}
		return ref
	}
	for i := range ring {
		ring[i] = add()
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if !tab.ExpireNow(ring[i]) {
			b.Fatal("ExpireNow failed")
		}
		ring[i] = add()
		if i++; i == live {
			i = 0
		}
	}
}

// BenchmarkExpire is the cost per connection that times out, in a table of
// 100,000 long-lived ones.
func BenchmarkExpire(b *testing.B) {
	tab, err := New(Config{Max: 200_000, Seed: 1, OnRemove: func(*Conn, bool) {}})
	if err != nil {
		b.Fatal(err)
	}
	for i := range 100_000 {
		c := scaleConn(i)
		c.Timeout = 24 * time.Hour
		if _, err := tab.Insert(&c, t0); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	now := t0
	next := 100_000
	for b.Loop() {
		// Batches of 64 connections expiring together.
		if next%64 == 0 {
			b.StopTimer()
			for k := range 64 {
				c := scaleConn(next + k)
				c.Timeout = Tick
				if _, err := tab.Insert(&c, now); err != nil {
					b.Fatal(err)
				}
			}
			now += 2 * tickNs
			b.StartTimer()
			if n := tab.Expire(now, 1<<20); n != 64 {
				b.Fatalf("expired %d", n)
			}
		}
		next++
	}
}

// BenchmarkShardOf is the data path's sharding function.
func BenchmarkShardOf(b *testing.B) {
	tab, _ := New(Config{Max: 1000, Seed: 1})
	c := netip.MustParseAddr("198.51.100.7")
	var p uint16
	s := 0
	for b.Loop() {
		p++
		s += tab.ShardOf(tcp, c, p)
	}
	_ = s
}
