package estimator

import (
	"testing"

	"golvs/internal/stats"
)

// grow returns v with every counter increased by the given amounts.
func grow(v stats.Values, conns, inPkts, outPkts, inBytes, outBytes uint64) stats.Values {
	return stats.Values{
		Conns:    v.Conns + conns,
		InPkts:   v.InPkts + inPkts,
		OutPkts:  v.OutPkts + outPkts,
		InBytes:  v.InBytes + inBytes,
		OutBytes: v.OutBytes + outBytes,
	}
}

// TestSteadyConnRate runs 1000 conns/s (2000 per 2 s interval), i.e. a
// scaled rate of 2000<<9 = 1024000, and checks every intermediate value:
//
//	step 1: 0      + (1024000-0)     >> 2 = 256000  -> (256000+511)>>10 = 250
//	step 2: 256000 + (1024000-256000)>> 2 = 448000  -> 437 (437.5 rounds down)
//	step 3: 448000 + 576000>>2          = 592000  -> 578 (578.125)
//	step 4: 592000 + 432000>>2          = 700000  -> 684 (683.59)
func TestSteadyConnRate(t *testing.T) {
	wantAvg := []uint64{256000, 448000, 592000, 700000}
	wantCPS := []uint64{250, 437, 578, 684}
	var e Estimator
	var v stats.Values
	for i := range wantAvg {
		v = grow(v, 2000, 0, 0, 0, 0)
		e.Update(v)
		if e.cps != wantAvg[i] {
			t.Errorf("step %d: avg = %d, want %d", i+1, e.cps, wantAvg[i])
		}
		if got := e.Rates().CPS; got != wantCPS[i] {
			t.Errorf("step %d: CPS = %d, want %d", i+1, got, wantCPS[i])
		}
	}
	// The average stops within 3 below the rate: (rate-avg)>>2 is 0 there.
	for i := 0; i < 100; i++ {
		v = grow(v, 2000, 0, 0, 0, 0)
		e.Update(v)
	}
	if e.cps < 1024000-3 || e.cps > 1024000 {
		t.Errorf("converged avg = %d, want in [1023997, 1024000]", e.cps)
	}
	if got := e.Rates(); got != (Rates{CPS: 1000}) {
		t.Errorf("converged rates = %+v, want CPS 1000 only", got)
	}
}

// TestSteadyByteRate runs 1 MB/s in (2e6 bytes per interval, scaled rate
// 2e6<<4 = 32e6) and 1000 packets/s out:
//
//	step 1: 8000000  -> (8000000+15)>>5  = 250000
//	step 2: 14000000 -> 437500
//	step 3: 18500000 -> 578125
//	step 4: 21875000 -> 683594 (683593.75)
func TestSteadyByteRate(t *testing.T) {
	wantAvg := []uint64{8000000, 14000000, 18500000, 21875000}
	wantBPS := []uint64{250000, 437500, 578125, 683594}
	wantPPS := []uint64{250, 437, 578, 684} // as TestSteadyConnRate
	var e Estimator
	var v stats.Values
	for i := range wantAvg {
		v = grow(v, 0, 0, 2000, 2000000, 0)
		e.Update(v)
		if e.inbps != wantAvg[i] {
			t.Errorf("step %d: avg = %d, want %d", i+1, e.inbps, wantAvg[i])
		}
		want := Rates{InBPS: wantBPS[i], OutPPS: wantPPS[i]}
		if got := e.Rates(); got != want {
			t.Errorf("step %d: rates = %+v, want %+v", i+1, got, want)
		}
	}
	for i := 0; i < 200; i++ {
		v = grow(v, 0, 0, 2000, 2000000, 0)
		e.Update(v)
	}
	if got, want := e.Rates(), (Rates{OutPPS: 1000, InBPS: 1000000}); got != want {
		t.Errorf("converged rates = %+v, want %+v", got, want)
	}
}

// TestReadRounding checks the read-back rounding of ip_vs_read_estimator at
// its edges: 0x1FF and 0xF are one below half, so an exact .5 rounds down.
func TestReadRounding(t *testing.T) {
	tests := []struct {
		name string
		avg  uint64
		want uint64
	}{
		{"zero", 0, 0},
		{"just below half", 511, 0},
		{"exactly half rounds down", 512, 0},
		{"just above half", 513, 1},
		{"one", 1024, 1},
		{"1.5 rounds down", 1024 + 512, 1},
		{"1.5 plus one", 1024 + 513, 2},
		// The kernel's u64 addition wraps near the top; so does ours. Not
		// reachable in practice (2^54 connections per second).
		{"wraps at the top like the kernel", 1<<64 - 1, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := Estimator{cps: tt.avg, inpps: tt.avg, outpps: tt.avg}
			r := e.Rates()
			if r.CPS != tt.want || r.InPPS != tt.want || r.OutPPS != tt.want {
				t.Errorf("avg %d: rates %+v, want %d", tt.avg, r, tt.want)
			}
		})
	}
	byteTests := []struct {
		avg, want uint64
	}{
		{15, 0}, {16, 0}, {17, 1}, {32, 1}, {48, 1}, {49, 2},
	}
	for _, tt := range byteTests {
		e := Estimator{inbps: tt.avg, outbps: tt.avg}
		if r := e.Rates(); r.InBPS != tt.want || r.OutBPS != tt.want {
			t.Errorf("byte avg %d: rates %+v, want %d", tt.avg, r, tt.want)
		}
	}
}

// TestArithmeticShiftFloors checks that the decay uses the kernel's signed
// arithmetic shift, which floors: 504 bytes in one interval (scaled rate
// 504<<4 = 8064) then silence gives 2016, 1512, 1134, then
// 1134 + (-1134>>2) = 1134 - 284 = 850 (truncating -283.5 would give 851),
// 850 - 213 = 637 and 637 - 160 = 477.
func TestArithmeticShiftFloors(t *testing.T) {
	want := []uint64{2016, 1512, 1134, 850, 637, 477}
	var e Estimator
	v := grow(stats.Values{}, 0, 0, 0, 0, 504)
	for i, w := range want {
		e.Update(v)
		if e.outbps != w {
			t.Fatalf("step %d: avg = %d, want %d", i+1, e.outbps, w)
		}
	}
}

// TestGoldenA2Rates replays the services of the oracle transcript
// /work/shared/oracle/golden/a2-traffic-formats.out (kernel 6.1,
// ipvsadm 1.31) whose traffic was short: their counters (ipvsadm -L -n
// --stats) all grew within one 2 s interval, and five idle intervals later
// (sleep 2.5, listings, sleep 5) ipvsadm -L -n --rate printed the rates
// below. This confirms the units (bytes/s), the rounding and the arithmetic
// shift against the real kernel.
func TestGoldenA2Rates(t *testing.T) {
	tests := []struct {
		name  string
		stats stats.Values // --stats --exact
		rates Rates        // --rate --exact
	}{
		{"TCP 198.18.0.100:81", stats.Values{Conns: 3, InPkts: 15, OutPkts: 9, InBytes: 804, OutBytes: 504}, Rates{InBPS: 24, OutBPS: 15}},
		{"  -> 198.19.0.11:81", stats.Values{Conns: 1, InPkts: 5, OutPkts: 3, InBytes: 268, OutBytes: 168}, Rates{InBPS: 8, OutBPS: 5}},
		{"  -> 198.19.0.12:81", stats.Values{Conns: 2, InPkts: 10, OutPkts: 6, InBytes: 536, OutBytes: 336}, Rates{InBPS: 16, OutBPS: 10}},
		{"UDP 198.18.0.100:80", stats.Values{Conns: 4, InPkts: 4, OutPkts: 4, InBytes: 120, OutBytes: 128}, Rates{InBPS: 4, OutBPS: 4}},
		{"  -> 198.19.0.11:80", stats.Values{Conns: 1, InPkts: 1, OutPkts: 1, InBytes: 30, OutBytes: 32}, Rates{InBPS: 1, OutBPS: 1}},
		{"  -> 198.19.0.12:80", stats.Values{Conns: 1, InPkts: 1, OutPkts: 1, InBytes: 30, OutBytes: 32}, Rates{InBPS: 1, OutBPS: 1}},
		{"  -> 198.19.0.13:80", stats.Values{Conns: 2, InPkts: 2, OutPkts: 2, InBytes: 60, OutBytes: 64}, Rates{InBPS: 2, OutBPS: 2}},
		{"TCP [2001:db8:c::100]:80", stats.Values{Conns: 2, InPkts: 10, OutPkts: 6, InBytes: 736, OutBytes: 456}, Rates{InBPS: 22, OutBPS: 13}},
		{"  -> [2001:db8:5::11]:80", stats.Values{Conns: 1, InPkts: 5, OutPkts: 3, InBytes: 368, OutBytes: 228}, Rates{InBPS: 11, OutBPS: 7}},
		{"  -> [2001:db8:5::12]:80", stats.Values{Conns: 1, InPkts: 5, OutPkts: 3, InBytes: 368, OutBytes: 228}, Rates{InBPS: 11, OutBPS: 7}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var e Estimator
			for i := 0; i < 6; i++ { // one interval with the traffic, five idle
				e.Update(tt.stats)
			}
			if got := e.Rates(); got != tt.rates {
				t.Errorf("rates = %+v, want %+v", got, tt.rates)
			}
		})
	}
}

func TestNewStartsAtCounters(t *testing.T) {
	start := stats.Values{Conns: 1e9, InPkts: 1e12, OutPkts: 1e12, InBytes: 1e15, OutBytes: 1e15}
	e := New(start)
	e.Update(grow(start, 2000, 0, 0, 0, 0))
	if got, want := e.Rates(), (Rates{CPS: 250}); got != want {
		t.Errorf("first estimate = %+v, want %+v (history before New must not count)", got, want)
	}
}

// TestReset checks ipvsadm -Z: rates drop to 0 at once, and the next estimate
// covers the whole interval since the previous estimate (last is not moved,
// as in ip_vs_zero_estimator where last_* = kstats is a no-op).
func TestReset(t *testing.T) {
	var e Estimator
	v := grow(stats.Values{}, 2000, 2000, 2000, 2000, 2000)
	e.Update(v)
	v = grow(v, 2000, 2000, 2000, 2000, 2000) // traffic before the -Z
	e.Reset()
	if got := e.Rates(); got != (Rates{}) {
		t.Fatalf("after Reset rates = %+v, want zero", got)
	}
	e.Update(v)
	want := Rates{CPS: 250, InPPS: 250, OutPPS: 250, InBPS: 250, OutBPS: 250}
	if got := e.Rates(); got != want {
		t.Errorf("first estimate after Reset = %+v, want %+v", got, want)
	}
}

func TestUpdateN(t *testing.T) {
	t.Run("even growth equals n updates", func(t *testing.T) {
		var a, b Estimator
		var v stats.Values
		for i := 0; i < 3; i++ {
			v = grow(v, 2000, 3000, 4000, 5000, 6000)
			a.Update(v)
		}
		b.UpdateN(v, 3)
		if a != b {
			t.Errorf("UpdateN = %+v, want %+v", b, a)
		}
	})
	t.Run("remainder goes to the last interval", func(t *testing.T) {
		var a, b Estimator
		v := stats.Values{Conns: 10, OutBytes: 11}
		a.Update(stats.Values{Conns: 3, OutBytes: 3})
		a.Update(stats.Values{Conns: 6, OutBytes: 6})
		a.Update(v) // 4 and 5 in the last interval
		b.UpdateN(v, 3)
		if a != b {
			t.Errorf("UpdateN = %+v, want %+v", b, a)
		}
	})
	t.Run("n < 1 does nothing", func(t *testing.T) {
		var e Estimator
		e.UpdateN(stats.Values{Conns: 5}, 0)
		e.UpdateN(stats.Values{Conns: 5}, -3)
		if e != (Estimator{}) {
			t.Errorf("state changed: %+v", e)
		}
	})
	t.Run("huge n is bounded and converges", func(t *testing.T) {
		var e Estimator
		const n = 1 << 40 // about 70,000 years of intervals
		v := stats.Values{Conns: 2000 * n, InBytes: 2e6 * n}
		e.UpdateN(v, n)
		if got, want := e.Rates(), (Rates{CPS: 1000, InBPS: 1000000}); got != want {
			t.Errorf("rates = %+v, want %+v", got, want)
		}
		// A long silence decays to zero.
		e.UpdateN(v, n)
		if got := e.Rates(); got != (Rates{}) {
			t.Errorf("after idle gap rates = %+v, want zero", got)
		}
	})
	t.Run("cap differs from the full run by at most 3", func(t *testing.T) {
		// From a high average, decay over 1000 idle intervals with the
		// same per-interval rate: both must sit at the fixed point.
		full := Estimator{cps: 1 << 62}
		capped := full
		v := stats.Values{Conns: 7 * 1000}
		for i := 1; i <= 1000; i++ {
			full.Update(stats.Values{Conns: 7 * uint64(i)})
		}
		capped.UpdateN(v, 1000)
		if d := int64(full.cps) - int64(capped.cps); d < -3 || d > 3 {
			t.Errorf("full %d, capped %d: differ by %d", full.cps, capped.cps, d)
		}
		if full.Rates() != capped.Rates() {
			t.Errorf("rates differ: full %+v, capped %+v", full.Rates(), capped.Rates())
		}
	})
}

func TestEstimatorUpdateAllocs(t *testing.T) {
	var e Estimator
	var v stats.Values
	if n := testing.AllocsPerRun(100, func() {
		v = grow(v, 1, 2, 3, 4, 5)
		e.Update(v)
		e.UpdateN(v, 5)
		_ = e.Rates()
	}); n != 0 {
		t.Errorf("allocs = %v, want 0", n)
	}
}
