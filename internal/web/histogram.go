package web

import (
	"math"
	"slices"
	"sync/atomic"
	"time"

	"golvs/internal/datapath"
)

// HistogramData is a cumulative histogram as Prometheus exposes one. The
// zero value is "not measured".
type HistogramData struct {
	// Bounds are the buckets' upper bounds, ascending, without +Inf.
	Bounds []float64
	// Counts[i] is the number of observations <= Bounds[i] (cumulative).
	Counts []uint64
	Count  uint64  // all observations (the +Inf bucket)
	Sum    float64 // sum of the observed values
}

// Histogram counts observations into fixed buckets. It is safe for
// concurrent use and does not allocate in Observe, so a checker or a
// data-path worker can keep one and a Source provider can report its
// Snapshot.
type Histogram struct {
	bounds []float64       // immutable: ascending upper bounds
	counts []atomic.Uint64 // immutable length: len(bounds)+1, the last for +Inf; not cumulative
	sum    atomic.Uint64   // float64 bits of the sum
}

// NewHistogram returns a histogram with the given upper bounds (sorted
// and deduplicated; NaN and infinities are dropped).
func NewHistogram(bounds []float64) *Histogram {
	b := make([]float64, 0, len(bounds))
	for _, v := range bounds {
		if !math.IsNaN(v) && !math.IsInf(v, 0) {
			b = append(b, v)
		}
	}
	slices.Sort(b)
	b = slices.Compact(b)
	return &Histogram{bounds: b, counts: make([]atomic.Uint64, len(b)+1)}
}

// LatencyBuckets returns bucket bounds in seconds for health-check
// latencies: 0.5 ms (a check of a real server on the same LAN) to 10 s
// (beyond keepalived's default connect_timeout of 5 s, so timeouts land
// in a bucket of their own).
func LatencyBuckets() []float64 {
	return []float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}
}

// BatchSizeBuckets returns bucket bounds for frames per data-path batch:
// powers of two up to datapath.BatchSize, the largest batch a link hands a
// worker.
func BatchSizeBuckets() []float64 {
	var b []float64
	for n := 1; n <= datapath.BatchSize; n *= 2 {
		b = append(b, float64(n))
	}
	return b
}

// Observe counts one observation of v.
func (h *Histogram) Observe(v float64) {
	i, _ := slices.BinarySearch(h.bounds, v) // first bound >= v
	h.counts[i].Add(1)
	for {
		old := h.sum.Load()
		if h.sum.CompareAndSwap(old, math.Float64bits(math.Float64frombits(old)+v)) {
			return
		}
	}
}

// ObserveDuration counts one observation of d in seconds.
func (h *Histogram) ObserveDuration(d time.Duration) { h.Observe(d.Seconds()) }

// Snapshot returns the histogram's current counts. The count is the sum
// of the buckets read, so the snapshot is consistent in itself even while
// observations go on (the sum may be a few observations off).
func (h *Histogram) Snapshot() HistogramData {
	d := HistogramData{
		Bounds: slices.Clone(h.bounds),
		Counts: make([]uint64, len(h.bounds)),
		Sum:    math.Float64frombits(h.sum.Load()),
	}
	var cum uint64
	for i := range h.bounds {
		cum += h.counts[i].Load()
		d.Counts[i] = cum
	}
	d.Count = cum + h.counts[len(h.bounds)].Load()
	return d
}

// valid reports whether d can be exposed: it was measured and its slices
// agree.
func (d *HistogramData) valid() bool {
	return len(d.Bounds) == len(d.Counts) && (d.Count > 0 || len(d.Bounds) > 0)
}
