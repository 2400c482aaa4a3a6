package stats

import (
	"sync"
	"testing"
)

func TestCountersAddReadZero(t *testing.T) {
	c := New(4)
	var wg sync.WaitGroup
	for w := range 8 { // more workers than shards: they share, atomically
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 1000 {
				c.AddConn(w)
				c.AddIn(w, 100)
				c.AddOut(w, 60)
			}
		}()
	}
	wg.Wait()
	c.AddInN(0, 10, 1000)
	c.AddOutN(1, 5, 300)
	want := Values{Conns: 8000, InPkts: 8010, OutPkts: 8005, InBytes: 801000, OutBytes: 480300}
	if got := c.Read(); got != want {
		t.Fatalf("read %+v, want %+v", got, want)
	}
	c.Zero()
	if got := c.Read(); got != (Values{}) {
		t.Fatalf("after zero %+v", got)
	}
	if c.Raw() != want {
		t.Fatal("zero changed the raw counters")
	}
	c.AddIn(-1, 40) // a negative worker index still lands in a shard
	if got := c.Read(); got.InPkts != 1 || got.InBytes != 40 {
		t.Fatalf("after zero and one packet %+v", got)
	}
}

func TestCountersNoAlloc(t *testing.T) {
	c := New(2)
	if n := testing.AllocsPerRun(100, func() { c.AddIn(1, 1500); c.AddOut(0, 60); c.AddConn(1) }); n != 0 {
		t.Fatalf("%v allocs", n)
	}
}

func BenchmarkAddIn(b *testing.B) {
	c := New(2)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		c.AddIn(0, 1500)
	}
}
