package estimator

import (
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"golvs/internal/stats"
)

const start = int64(1000 * time.Second) // an arbitrary monotonic origin

// addConns counts n new connections on c.
func addConns(c *stats.Counters, n int) {
	for i := 0; i < n; i++ {
		c.AddConn(0)
	}
}

// lastConns returns the connection count e's last estimate saw; it moves
// at each estimate when connections keep arriving.
func (e *Entry) lastConns() uint64 {
	var n uint64
	e.locked(func(est *Estimator) { n = est.last.Conns })
	return n
}

// TestSetEachEntryOncePerInterval ticks every Slot for ten intervals and
// checks that every entry is estimated exactly once per Interval, and that
// the first estimate of an entry comes a whole Interval after it was added
// when its row has room.
func TestSetEachEntryOncePerInterval(t *testing.T) {
	s := NewSet(start)
	const n = 10
	entries := make([]*Entry, n)
	for i := range entries {
		entries[i] = NewEntry(stats.New(1))
		s.Add(entries[i])
	}
	seen := make([]uint64, n)   // last counter value the estimator took
	estimated := make([]int, n) // estimates run per entry
	firstAt := make([]int64, n) // time of the first estimate
	for now := start; now <= start+int64(10*Interval); now += int64(Slot) {
		for i, e := range entries {
			e.Counters().AddConn(0) // one connection per slot: last moves on each estimate
			if e.lastConns() != seen[i] {
				t.Fatalf("entry %d estimated outside Tick", i)
			}
		}
		s.Tick(now)
		for i, e := range entries {
			if l := e.lastConns(); l != seen[i] {
				if estimated[i] == 0 {
					firstAt[i] = now
				}
				estimated[i]++
				seen[i] = l
			}
		}
	}
	for i := range entries {
		if estimated[i] != 10 {
			t.Errorf("entry %d: %d estimates in 10 intervals, want 10", i, estimated[i])
		}
		if got := firstAt[i] - start; got != int64(Interval) {
			t.Errorf("entry %d: first estimate %v after Add, want %v", i, time.Duration(got), Interval)
		}
	}
	// 50 connections per interval = 25 conns/s, converging.
	if got := entries[0].Rates().CPS; got < 20 || got > 25 {
		t.Errorf("CPS = %d, want about 25", got)
	}
}

// TestSetTickEveryInterval drives the set the pre-6.2 way, one Tick per
// 2 s, and compares with a bare Estimator.
func TestSetTickEveryInterval(t *testing.T) {
	s := NewSet(start)
	c := stats.New(2)
	e := NewEntry(c)
	s.Add(e)
	var ref Estimator
	now := start
	for i := 0; i < 8; i++ {
		addConns(c, 100*(i+1))
		c.AddIn(1, 1500)
		c.AddOut(0, 40)
		now += int64(Interval)
		s.Tick(now)
		ref.Update(c.Raw())
		if got, want := e.Rates(), ref.Rates(); got != want {
			t.Fatalf("interval %d: rates %+v, want %+v", i, got, want)
		}
	}
	if s.Next() != now+int64(Slot) {
		t.Errorf("Next = %d, want %d", s.Next(), now+int64(Slot))
	}
}

// TestSetMissedTicks checks that a Tick after a gap runs one estimate per
// missed interval, sharing the growth evenly.
func TestSetMissedTicks(t *testing.T) {
	s := NewSet(start)
	c := stats.New(1)
	e := NewEntry(c)
	s.Add(e)
	var ref Estimator
	now := start
	// Two intervals on time.
	for i := 0; i < 2; i++ {
		addConns(c, 2000)
		now += int64(Interval)
		s.Tick(now)
		ref.Update(c.Raw())
	}
	// The caller stalls for 3 intervals (plus a bit) at 1000 conns/s.
	for i := 0; i < 3; i++ {
		addConns(c, 2000)
		ref.Update(c.Raw())
	}
	now += 3*int64(Interval) + int64(Slot)/2
	s.Tick(now)
	if got, want := e.Rates(), ref.Rates(); got != want {
		t.Errorf("after gap rates %+v, want %+v", got, want)
	}
	// Five steps of the steady 1000 conns/s sequence (TestSteadyConnRate):
	// 700000 + (1024000-700000)>>2 = 781000 -> (781000+511)>>10 = 763.
	if got := e.Rates().CPS; got != 763 {
		t.Errorf("CPS %d, want 763", got)
	}
}

// TestSetMissedTicksRows checks the per-row count of due estimates when the
// gap is not a whole number of intervals: rows whose slot came round twice
// get two estimates, the others one.
func TestSetMissedTicksRows(t *testing.T) {
	s := NewSet(start)
	entries := make([]*Entry, Rows)
	for i := range entries {
		entries[i] = NewEntry(stats.New(1))
		s.Add(entries[i])
	}
	// Put one entry in every row, by hand, so each row is observable.
	for _, e := range entries {
		s.Remove(e)
	}
	s.mu.Lock()
	for i, e := range entries {
		e.row, e.idx = i, 0
		s.rows[i] = append(s.rows[i], member{c: e.c, est: e.est, entry: e})
		e.set.Store(s)
	}
	s.n = len(entries)
	s.mu.Unlock()
	for _, e := range entries {
		addConns(e.Counters(), 6000) // 1.5 intervals' worth at 2000/interval
	}
	// 75 slots: rows 0..24 come due twice, rows 25..49 once.
	s.Tick(start + 75*int64(Slot))
	for i, e := range entries {
		k := int64(1)
		if i < 25 {
			k = 2
		}
		var ref Estimator
		ref.UpdateN(stats.Values{Conns: 6000}, k)
		if got, want := e.Rates(), ref.Rates(); got != want {
			t.Errorf("row %d: rates %+v, want %+v", i, got, want)
		}
	}
	if s.row != 25 || s.next != start+76*int64(Slot) {
		t.Errorf("row %d next %d, want 25 and %d", s.row, s.next, start+76*int64(Slot))
	}
}

func TestSetTickBeforeNextDoesNothing(t *testing.T) {
	s := NewSet(start)
	e := NewEntry(stats.New(1))
	s.Add(e)
	addConns(e.Counters(), 10)
	s.Tick(start) // the first row is due at start+Slot
	s.Tick(start - int64(time.Hour))
	if e.lastConns() != 0 || s.Next() != start+int64(Slot) {
		t.Errorf("Tick before Next changed state")
	}
}

// TestSetRemoveAndReAdd checks that a removed entry keeps its rates frozen
// and resumes from them when added again (a destination from the trash).
func TestSetRemoveAndReAdd(t *testing.T) {
	s := NewSet(start)
	c := stats.New(1)
	e := NewEntry(c)
	s.Add(e)
	s.Add(e) // idempotent
	if s.Len() != 1 {
		t.Fatalf("Len = %d after double Add, want 1", s.Len())
	}
	now := start
	addConns(c, 2000)
	now += int64(Interval)
	s.Tick(now)
	frozen := e.Rates()
	if frozen.CPS != 250 {
		t.Fatalf("CPS = %d, want 250", frozen.CPS)
	}
	s.Remove(e)
	s.Remove(e) // idempotent
	if s.Len() != 0 {
		t.Fatalf("Len = %d after Remove, want 0", s.Len())
	}
	now += 5 * int64(Interval)
	s.Tick(now)
	if e.Rates() != frozen {
		t.Errorf("removed entry's rates changed: %+v, want %+v", e.Rates(), frozen)
	}
	s.Add(e)
	now += int64(Interval)
	s.Tick(now)
	// One idle interval from avg 256000: 256000 - 64000 = 192000, i.e.
	// 187.5, which the kernel's 0x1FF rounds down to 187.
	if got := e.Rates().CPS; got != 187 {
		t.Errorf("CPS after re-add = %d, want 187", got)
	}
}

func TestSetAddToSecondSetPanics(t *testing.T) {
	a, b := NewSet(start), NewSet(start)
	e := NewEntry(stats.New(1))
	a.Add(e)
	b.Remove(e) // not in b: nothing
	if a.Len() != 1 {
		t.Fatalf("Remove from another set removed the entry")
	}
	defer func() {
		if recover() == nil {
			t.Errorf("Add to a second Set did not panic")
		}
	}()
	b.Add(e)
}

// TestSetSpread adds a burst of entries and checks that no row holds more
// than about twice the average, and that removals keep the bookkeeping
// right.
func TestSetSpread(t *testing.T) {
	s := NewSet(start)
	const n = 20000
	entries := make([]*Entry, n)
	for i := range entries {
		entries[i] = NewEntry(stats.New(1))
		s.Add(entries[i])
	}
	limit := 2*((n+Rows-1)/Rows) + minRowCap // twice the average, rounded up to minRowCap
	total := 0
	s.mu.Lock()
	for r, row := range s.rows {
		if len(row) > limit {
			t.Errorf("row %d holds %d entries, limit %d", r, len(row), limit)
		}
		total += len(row)
	}
	s.mu.Unlock()
	if total != n || s.Len() != n {
		t.Fatalf("rows hold %d, Len %d, want %d", total, s.Len(), n)
	}
	for i := 0; i < n; i += 2 {
		s.Remove(entries[i])
	}
	s.mu.Lock()
	total = 0
	for r, row := range s.rows {
		for i, sl := range row {
			if e := sl.entry; e.row != r || e.idx != i || e.set.Load() != s || sl.c != e.c {
				t.Fatalf("entry at row %d idx %d records row %d idx %d", r, i, e.row, e.idx)
			}
		}
		total += len(row)
	}
	s.mu.Unlock()
	if total != n/2 || s.Len() != n/2 {
		t.Errorf("after removals rows hold %d, Len %d, want %d", total, s.Len(), n/2)
	}
}

// TestEntryZero checks ipvsadm -Z through an Entry: counters read 0, rates
// are 0, and the next estimate covers the whole interval since the last one.
func TestEntryZero(t *testing.T) {
	s := NewSet(start)
	c := stats.New(1)
	e := NewEntry(c)
	s.Add(e)
	now := start
	for i := 0; i < 4; i++ {
		addConns(c, 2000)
		now += int64(Interval)
		s.Tick(now)
	}
	addConns(c, 2000) // before the -Z, in the current interval
	e.Zero()
	if got := e.Rates(); got != (Rates{}) {
		t.Errorf("rates after Zero = %+v, want zero", got)
	}
	if got := c.Read(); got != (stats.Values{}) {
		t.Errorf("counters after Zero = %+v, want zero", got)
	}
	now += int64(Interval)
	s.Tick(now)
	if got := e.Rates().CPS; got != 250 {
		t.Errorf("CPS after Zero and one interval = %d, want 250", got)
	}
}

// TestSetConcurrent runs Tick, Add, Remove, Rates, Zero and counter updates
// at once; run with -race.
func TestSetConcurrent(t *testing.T) {
	s := NewSet(start)
	const n = 64
	entries := make([]*Entry, n)
	for i := range entries {
		entries[i] = NewEntry(stats.New(2))
	}
	for _, e := range entries[:n/2] {
		s.Add(e)
	}
	var wg sync.WaitGroup
	stop := make(chan struct{})
	run := func(f func(i int)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				f(i)
			}
		}()
	}
	run(func(i int) { s.Tick(start + int64(i)*int64(Slot)) })
	run(func(i int) {
		e := entries[i%n]
		if i%3 == 0 {
			s.Remove(e)
		} else {
			s.Add(e)
		}
	})
	run(func(i int) { _ = entries[i%n].Rates(); _ = s.Len() })
	run(func(i int) {
		c := entries[i%n].Counters()
		c.AddConn(i % 2)
		c.AddIn(i%2, 100)
		c.AddOut(i%2, 60)
	})
	run(func(i int) {
		if i%100 == 0 {
			entries[i%n].Zero()
		}
	})
	time.Sleep(200 * time.Millisecond)
	close(stop)
	wg.Wait()
	in := 0
	for _, e := range entries {
		if e.set.Load() == s {
			in++
		}
	}
	if in != s.Len() {
		t.Errorf("%d entries think they are in the set, Len %d", in, s.Len())
	}
}

// TestTickAllocs checks that Tick does not allocate in steady state.
func TestTickAllocs(t *testing.T) {
	s := NewSet(start)
	for i := 0; i < 1000; i++ {
		e := NewEntry(stats.New(2))
		e.Counters().AddConn(0)
		s.Add(e)
	}
	now := start
	if n := testing.AllocsPerRun(200, func() {
		now += int64(Slot)
		s.Tick(now)
	}); n != 0 {
		t.Errorf("Tick allocs = %v, want 0", n)
	}
	if n := testing.AllocsPerRun(20, func() {
		now += 7 * int64(Interval) // missed ticks too
		s.Tick(now)
	}); n != 0 {
		t.Errorf("catch-up Tick allocs = %v, want 0", n)
	}
}

// BenchmarkTick measures the estimation cost per entry with 100,000
// entries. "round" ticks every Interval (all entries each Tick), "slot"
// every Slot (one row, a fiftieth of the entries, each Tick). "burst" adds
// the entries in the order their counters were allocated (a configuration
// loaded at once); "scattered" adds them in random order, so that reading
// the counters of one row jumps around the heap (services and destinations
// created over time), the worst case.
func BenchmarkTick(b *testing.B) {
	const n = 100000
	for _, shards := range []int{1, 4} {
		for _, order := range []string{"burst", "scattered"} {
			counters := make([]*stats.Counters, n)
			for i := range counters {
				counters[i] = stats.New(shards)
				counters[i].AddConn(0)
				counters[i].AddIn(0, 100)
			}
			if order == "scattered" {
				r := rand.New(rand.NewPCG(1, 2))
				r.Shuffle(n, func(i, j int) { counters[i], counters[j] = counters[j], counters[i] })
			}
			s := NewSet(start)
			for _, c := range counters {
				s.Add(NewEntry(c))
			}
			now := start
			b.Run(fmt.Sprintf("%s/round/shards=%d", order, shards), func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					now += int64(Interval)
					s.Tick(now)
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/n, "ns/entry")
			})
			b.Run(fmt.Sprintf("%s/slot/shards=%d", order, shards), func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					now += int64(Slot)
					s.Tick(now)
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/(n/Rows), "ns/entry")
			})
		}
	}
}
