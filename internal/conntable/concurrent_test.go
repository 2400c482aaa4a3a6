package conntable

import (
	"math/rand/v2"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestConcurrent runs data-path workers, each on the clients of its own
// shards as the data path shards them (plus one that ignores the sharding),
// with templates that live in any shard, against an expirer moving the
// clock and a control plane walking the table. Run it with -race. At the
// end every entry inserted must have been removed exactly once.
func TestConcurrent(t *testing.T) {
	const workers = 3
	iters := 20000
	if raceEnabled || testing.Short() {
		iters = 3000
	}
	var inserted, removed atomic.Int64
	tab, err := New(Config{Max: 5000, Shards: 8, Seed: 3, OnRemove: func(c *Conn, forced bool) {
		if c.Ref == 0 || !c.DAddr.IsValid() {
			panic("OnRemove of an empty Conn")
		}
		removed.Add(1)
	}})
	if err != nil {
		t.Fatal(err)
	}
	var clock atomic.Int64
	clock.Store(t0)
	timeouts := []time.Duration{Tick, 100 * time.Millisecond, time.Second, 5 * time.Second}

	var wg, bg sync.WaitGroup
	for w := range workers + 1 {
		owned := w < workers // the last worker ignores the sharding
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(w), 1))
			var mine, tpls []Ref
			key := func() (netip.Addr, uint16) {
				for {
					c, p := scaleKey(r.IntN(1 << 12))
					if !owned || tab.ShardOf(tcp, c, p)%workers == w {
						return c, p
					}
				}
			}
			for range iters {
				now := clock.Load()
				c, p := key()
				switch r.IntN(10) {
				case 0:
					tp := template(netip.AddrFrom4([4]byte{198, 51, 100, byte(r.IntN(8))}), rs1, timeouts[r.IntN(4)])
					if ref, err := tab.Insert(&tp, now); err == nil {
						inserted.Add(1)
						tpls = append(tpls, ref)
					}
				case 1, 2, 3:
					cn := tcpConn(c, p, rs1, timeouts[r.IntN(4)])
					if len(tpls) > 0 && r.IntN(2) == 0 {
						cn.Control = tpls[r.IntN(len(tpls))]
					}
					if ref, err := tab.Insert(&cn, now); err == nil {
						inserted.Add(1)
						mine = append(mine, ref)
					}
				case 4, 5:
					if ref, ok := tab.LookupIn(tcp, c, p, vip, 80, now); ok {
						tab.Touch(ref, now)
						tab.SetState(ref, uint8(r.IntN(11)), FlagMasq, timeouts[r.IntN(4)], now)
						if cn, ok := tab.Get(ref); ok && cn.Control != 0 {
							tab.Assure(cn.Control)
						}
					}
					tab.LookupOut(tcp, rs1, 8080, c, p, now)
				case 6:
					if len(mine) > 0 {
						k := r.IntN(len(mine))
						if r.IntN(2) == 0 {
							tab.ExpireNow(mine[k])
						} else {
							tab.Delete(mine[k])
						}
						mine[k] = mine[len(mine)-1]
						mine = mine[:len(mine)-1]
					}
				case 7:
					if len(tpls) > 0 {
						k := r.IntN(len(tpls))
						tab.LookupTemplate(tcp, netip.AddrFrom4([4]byte{198, 51, 100, byte(r.IntN(8))}), vip, 80, 0, now)
						tab.Rearm(tpls[k], now)
						if r.IntN(20) == 0 {
							tab.Neutralise(tpls[k])
						}
					}
				default:
					tab.Expire(now, 16)
				}
				if len(mine) > 500 {
					mine = mine[250:]
				}
				if len(tpls) > 50 {
					tpls = tpls[25:]
				}
			}
		})
	}
	stop := make(chan struct{})
	bg.Go(func() {
		// The clock and the idle-director expiry.
		r := rand.New(rand.NewPCG(99, 1))
		for {
			select {
			case <-stop:
				return
			default:
			}
			clock.Add(r.Int64N(int64(20 * time.Millisecond)))
			tab.Expire(clock.Load(), 1+r.IntN(1000))
		}
	})
	bg.Go(func() {
		// The control plane listing.
		for {
			select {
			case <-stop:
				return
			default:
			}
			n := 0
			tab.Walk(func(c Conn) bool {
				n++
				return n < 2000
			})
			tab.Len()
			tab.Stats()
		}
	})
	wg.Wait()
	close(stop)
	bg.Wait()

	// Everything times out in the end.
	now := clock.Load()
	for i := 0; ; i++ {
		now += int64(10 * time.Second)
		tab.Expire(now, 1<<30)
		if c, tp := tab.Len(); c+tp == 0 {
			break
		}
		if i > 100 {
			c, tp := tab.Len()
			t.Fatalf("%d connections and %d templates never expired", c, tp)
		}
	}
	if st := tab.Stats(); st.Inserts != uint64(inserted.Load()) || st.Removes != st.Inserts {
		t.Fatalf("stats %+v, %d inserted", st, inserted.Load())
	}
	if removed.Load() != inserted.Load() {
		t.Fatalf("OnRemove called %d times for %d entries", removed.Load(), inserted.Load())
	}
	t.Logf("%d entries inserted and removed", inserted.Load())
}
