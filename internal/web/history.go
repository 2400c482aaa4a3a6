package web

import (
	"sync"
	"time"

	"golvs/internal/control"
	"golvs/internal/estimator"
	"golvs/internal/service"
)

// historyLen is the number of samples kept per service: 150 samples, one
// per estimator interval (2 s), are the last 5 minutes, enough for the
// page's small graphs. With 1000 services the history takes about 7 MB
// (150 x 48 bytes each).
const historyLen = 150

// minSampleGap is the least time between two samples. The rates change
// once per estimator.Interval; 9/10 of it lets the owner's 2 s ticker and
// the page's 2 s polls sample about once per interval between them,
// whichever comes first, despite their jitter.
const minSampleGap = estimator.Interval * 9 / 10

type sample struct {
	t int64 // Unix milliseconds
	r estimator.Rates
}

// ring holds the last historyLen samples, oldest first from next.
type ring struct {
	buf  [historyLen]sample
	n    int // samples held, <= historyLen
	next int // index of the next write
}

func (r *ring) add(s sample) {
	r.buf[r.next] = s
	r.next = (r.next + 1) % historyLen
	if r.n < historyLen {
		r.n++
	}
}

// since returns the samples taken after t (Unix ms), oldest first.
func (r *ring) since(t int64) *History {
	h := &History{}
	start := (r.next - r.n + historyLen) % historyLen
	for i := 0; i < r.n; i++ {
		s := &r.buf[(start+i)%historyLen]
		if s.t <= t {
			continue
		}
		h.T = append(h.T, s.t)
		h.CPS = append(h.CPS, s.r.CPS)
		h.InPPS = append(h.InPPS, s.r.InPPS)
		h.OutPPS = append(h.OutPPS, s.r.OutPPS)
		h.InBPS = append(h.InBPS, s.r.InBPS)
		h.OutBPS = append(h.OutBPS, s.r.OutBPS)
	}
	return h
}

// history is the rate history of the totals and of every service.
type history struct {
	mu    sync.Mutex
	last  time.Time                // guarded by mu: time of the last sample
	total ring                     // guarded by mu
	svcs  map[service.Key]*ring    // guarded by mu: by normKey; services gone are dropped
	seen  map[service.Key]struct{} // guarded by mu: scratch of sample
}

func (h *history) init() {
	h.svcs = make(map[service.Key]*ring)
	h.seen = make(map[service.Key]struct{})
}

// sample records the rates at now unless the last sample is more recent
// than minSampleGap.
func (h *history) sample(now time.Time, ctl *control.Control) {
	if ctl == nil {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.last.IsZero() && now.Sub(h.last) < minSampleGap {
		return
	}
	h.last = now
	ms := now.UnixMilli()
	h.total.add(sample{ms, ctl.Rates(ctl.Total())})
	clear(h.seen)
	for _, s := range ctl.Snapshot().Services() {
		k := normKey(s.Key)
		h.seen[k] = struct{}{}
		r := h.svcs[k]
		if r == nil {
			r = new(ring)
			h.svcs[k] = r
		}
		r.add(sample{ms, ctl.Rates(s.Stats)})
	}
	for k := range h.svcs {
		if _, ok := h.seen[k]; !ok {
			delete(h.svcs, k)
		}
	}
}

// get returns the samples after t of the service k (normKey) and of the
// totals.
func (h *history) get(keys []service.Key, t int64) (total *History, svcs []*History) {
	h.mu.Lock()
	defer h.mu.Unlock()
	total = h.total.since(t)
	svcs = make([]*History, len(keys))
	for i, k := range keys {
		if r := h.svcs[k]; r != nil {
			svcs[i] = r.since(t)
		} else {
			svcs[i] = &History{}
		}
	}
	return total, svcs
}
