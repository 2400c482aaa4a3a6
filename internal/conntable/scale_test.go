package conntable

import (
	"errors"
	"fmt"
	"math"
	"net/netip"
	"reflect"
	"runtime"
	"testing"
	"time"
	"unsafe"
)

// scaleKey is the i-th client of the scale tests and benchmarks: distinct
// addresses in 10.0.0.0/8 and ports spread over the ephemeral range.
func scaleKey(i int) (netip.Addr, uint16) {
	return netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}), uint16(1024 + i%60000)
}

func scaleConn(i int) Conn {
	c, p := scaleKey(i)
	return Conn{Proto: tcp, CAddr: c, CPort: p, VAddr: vip, VPort: 80, DAddr: rs1, DPort: 8080,
		Flags: FlagMasq, State: 1, DestID: 1, Timeout: 900 * time.Second}
}

// footprint is the arithmetic of the table's memory from the struct sizes:
// entry chunks, buckets, wheel sentinels and shard structs.
func (t *Table) footprint() (total uintptr) {
	total = unsafe.Sizeof(*t) + uintptr(len(t.shards))*unsafe.Sizeof(shard{})
	for i := range t.shards {
		s := &t.shards[i]
		total += uintptr(len(s.v4.chunks)<<s.cb) * unsafe.Sizeof(entry4{})
		total += uintptr(len(s.v6.chunks)<<s.cb) * unsafe.Sizeof(entry6{})
		total += uintptr(len(s.buckets)) * unsafe.Sizeof(uint32(0))
		total += uintptr(len(s.wl)) * unsafe.Sizeof(wlink{})
	}
	return total
}

// The entry arrays must hold no pointers, so that the garbage collector
// never scans them.
func TestPointerFree(t *testing.T) {
	var hasPtr func(reflect.Type) bool
	hasPtr = func(rt reflect.Type) bool {
		switch rt.Kind() {
		case reflect.Pointer, reflect.UnsafePointer, reflect.Map, reflect.Slice, reflect.String,
			reflect.Chan, reflect.Func, reflect.Interface:
			return true
		case reflect.Array:
			return hasPtr(rt.Elem())
		case reflect.Struct:
			for i := range rt.NumField() {
				if hasPtr(rt.Field(i).Type) {
					return true
				}
			}
		}
		return false
	}
	for _, v := range []any{entry4{}, entry6{}, hdr{}, wlink{}, uint32(0)} {
		if rt := reflect.TypeOf(v); hasPtr(rt) {
			t.Errorf("%v holds pointers", rt)
		}
	}
	if s := unsafe.Sizeof(entry4{}); s != 60 {
		t.Errorf("IPv4 entry is %d bytes, want 60", s)
	}
	if s := unsafe.Sizeof(entry6{}); s != 96 {
		t.Errorf("IPv6 entry is %d bytes, want 96", s)
	}
}

// TestScaleMemory holds a million IPv4 connections, looks each of them up
// and reports the bytes per connection, measured and computed.
func TestScaleMemory(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("a million entries: not with -short or -race")
	}
	const n = 1_000_000
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	tab, err := New(Config{Max: n, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	for i := range n {
		c := scaleConn(i)
		if _, err := tab.Insert(&c, t0); err != nil {
			t.Fatalf("insert %d: %v", i, err)
		}
	}
	insertTime := time.Since(start)
	runtime.GC()
	runtime.ReadMemStats(&after)
	measured := float64(after.HeapAlloc-before.HeapAlloc) / n
	computed := float64(tab.footprint()) / n
	t.Logf("%d IPv4 connections: %.1f B/conn measured (heap), %.1f B/conn computed (entry %d B, buckets %.2f B, wheels %.2f B, chunk slack %.1f%%); insert %v/conn",
		n, measured, computed, unsafe.Sizeof(entry4{}),
		float64(tab.shards[0].nb)*4*float64(len(tab.shards))/n,
		float64(wlLen*8*len(tab.shards))/n,
		100*(float64(tab.chunkSlots())/n-1), insertTime/n)
	// 68: a 60-byte entry (56 until the sync daemon's sync_endtime
	// took 4 bytes, 2026-11-23), buckets, wheels and slack.
	if measured > 68 || computed > 68 {
		t.Errorf("more than 68 B per connection")
	}

	c := scaleConn(n)
	if _, err := tab.Insert(&c, t0); !errors.Is(err, ErrFull) {
		t.Fatalf("insert into the full table: %v", err)
	}
	start = time.Now()
	now := t0 + int64(time.Second)
	for i := range n {
		ca, cp := scaleKey(i)
		if _, ok := tab.LookupIn(tcp, ca, cp, vip, 80, now); !ok {
			t.Fatalf("connection %d not found", i)
		}
		if i%16 == 0 {
			if _, ok := tab.LookupOut(tcp, rs1, 8080, ca, cp, now); !ok {
				t.Fatalf("reply of connection %d not found", i)
			}
		}
	}
	t.Logf("lookups: %v each (sequential keys)", time.Since(start)/time.Duration(n+n/16))
	if conns, _ := tab.Len(); conns != n {
		t.Fatalf("Len = %d", conns)
	}
	// And they all time out.
	if got := tab.Expire(t0+int64(900*time.Second), math.MaxInt); got != n {
		t.Fatalf("expired %d, want %d", got, n)
	}
	runtime.KeepAlive(tab)
}

func (t *Table) chunkSlots() int {
	n := 0
	for i := range t.shards {
		n += len(t.shards[i].v4.chunks) << t.shards[i].cb
	}
	return n
}

func ExampleTable() {
	tab, _ := New(Config{Max: 1000})
	now := int64(0) // clock.Nanotime() of the batch
	client := netip.MustParseAddr("198.51.100.7")
	vip := netip.MustParseAddr("192.0.2.10")
	c := Conn{Proto: 6, CAddr: client, CPort: 40000, VAddr: vip, VPort: 80,
		DAddr: netip.MustParseAddr("203.0.113.1"), DPort: 8080, Flags: FlagMasq | FlagInactive,
		DestID: 1, Timeout: 3 * time.Second}
	ref, _ := tab.Insert(&c, now)
	if r, ok := tab.LookupIn(6, client, 40000, vip, 80, now); ok && r == ref {
		fmt.Println("found")
	}
	tab.Expire(now+int64(3*time.Second), 64)
	_, ok := tab.LookupIn(6, client, 40000, vip, 80, now+int64(3*time.Second))
	fmt.Println(ok)
	// Output:
	// found
	// false
}
