package web

import (
	"math"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestHistogram(t *testing.T) {
	h := NewHistogram([]float64{5, 1, math.NaN(), 2, 2, math.Inf(1)})
	for _, v := range []float64{0.5, 1, 1.5, 2, 3, 100, -1} {
		h.Observe(v)
	}
	got := h.Snapshot()
	want := HistogramData{
		Bounds: []float64{1, 2, 5},
		Counts: []uint64{3, 5, 6}, // le 1: 0.5, 1, -1; le 2: +1.5, 2; le 5: +3
		Count:  7,
		Sum:    0.5 + 1 + 1.5 + 2 + 3 + 100 - 1,
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("snapshot (-want +got):\n%s", d)
	}
	var zero HistogramData
	if zero.valid() {
		t.Error("the zero HistogramData is exposed")
	}
	if d := (HistogramData{Bounds: []float64{1}, Counts: nil, Count: 1}); d.valid() {
		t.Error("mismatched bounds and counts are exposed")
	}
}

func TestHistogramBuckets(t *testing.T) {
	if d := cmp.Diff([]float64{1, 2, 4, 8, 16, 32}, BatchSizeBuckets()); d != "" {
		t.Errorf("batch buckets (-want +got):\n%s", d)
	}
	b := LatencyBuckets()
	for i := 1; i < len(b); i++ {
		if b[i] <= b[i-1] {
			t.Errorf("latency buckets not ascending at %d: %v", i, b)
		}
	}
}

// TestHistogramConcurrent is for the race detector: observers and
// snapshots at once, and no observation lost.
func TestHistogramConcurrent(t *testing.T) {
	h := NewHistogram(LatencyBuckets())
	const workers, each = 4, 2000
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for range each {
				h.Observe(0.001)
			}
		})
	}
	wg.Go(func() {
		for range 100 {
			s := h.Snapshot()
			for i := 1; i < len(s.Counts); i++ {
				if s.Counts[i] < s.Counts[i-1] || s.Count < s.Counts[i] {
					t.Errorf("inconsistent snapshot %+v", s)
					return
				}
			}
		}
	})
	wg.Wait()
	s := h.Snapshot()
	if s.Count != workers*each || math.Abs(s.Sum-workers*each*0.001) > 1e-6 {
		t.Errorf("count %d sum %v", s.Count, s.Sum)
	}
}

func TestObserveNoAlloc(t *testing.T) {
	h := NewHistogram(LatencyBuckets())
	if n := testing.AllocsPerRun(100, func() { h.Observe(0.003) }); n != 0 {
		t.Errorf("Observe allocates %v times", n)
	}
}
