package web

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"sync"
	"testing"
	"time"

	"golvs/internal/clock"
	"golvs/internal/control"
	"golvs/internal/estimator"
	"golvs/internal/service"
)

// Addresses from 198.18.0.0/15 and 2001:db8::/32 (documentation and
// benchmarking ranges).
var (
	vip   = netip.MustParseAddr("198.18.0.10")
	vip6  = netip.MustParseAddr("2001:db8::10")
	rs1   = netip.MustParseAddr("198.19.0.1")
	rs2   = netip.MustParseAddr("198.19.0.2")
	rs3   = netip.MustParseAddr("198.19.0.3")
	rs6   = netip.MustParseAddr("2001:db8:1::1")
	epoch = time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)

	webKey  = service.Key{Family: service.IPv4, Proto: service.ProtoTCP, Addr: vip, Port: 80}
	dnsKey  = service.Key{Family: service.IPv4, Proto: service.ProtoUDP, Addr: vip, Port: 53}
	markKey = service.Key{Family: service.IPv4, FWMark: 1}
	v6Key   = service.Key{Family: service.IPv6, Proto: service.ProtoTCP, Addr: vip6, Port: 443}
)

// lab is a control.Control with a known configuration, a manual clock for
// its rate estimator and a wall clock for the handler.
type lab struct {
	t   testing.TB
	clk *clock.Manual
	ctl *control.Control

	mu  sync.Mutex // the handler reads now from its requests' goroutines
	now time.Time  // guarded by mu
}

// newLab configures:
//
//	TCP 198.18.0.10:80 wlc
//	  -> 198.19.0.1:80 Masq 100, 198.19.0.2:80 Masq 50, 198.19.0.3:80 Masq 0
//	UDP 198.18.0.10:53 rr ops
//	  -> 198.19.0.1:53 Route 1
//	FWM 1 sh (sh-port) persistent 300
//	  -> 198.19.0.2:0 Tunnel 1
//	TCP [2001:db8::10]:443 lc
//	  -> [2001:db8:1::1]:443 Masq 1
func newLab(t testing.TB) *lab {
	t.Helper()
	l := &lab{t: t, clk: clock.NewManual(time.Hour), now: epoch}
	l.ctl = control.New(control.Config{Clock: l.clk, StatsShards: 2})
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(l.ctl.AddService(webKey, service.Config{Sched: "wlc"}))
	must(l.ctl.AddDest(webKey, rs1, 80, service.DestConfig{Fwd: service.Masq, Weight: 100}))
	must(l.ctl.AddDest(webKey, rs2, 80, service.DestConfig{Fwd: service.Masq, Weight: 50, UThreshold: 1000}))
	must(l.ctl.AddDest(webKey, rs3, 80, service.DestConfig{Fwd: service.Masq, Weight: 0}))
	must(l.ctl.AddService(dnsKey, service.Config{Sched: "rr", Flags: service.FlagOnePacket}))
	must(l.ctl.AddDest(dnsKey, rs1, 53, service.DestConfig{Fwd: service.Route, Weight: 1}))
	must(l.ctl.AddService(markKey, service.Config{Sched: "sh", Flags: service.FlagPersistent | service.FlagSHPort, Timeout: 300}))
	must(l.ctl.AddDest(markKey, rs2, 0, service.DestConfig{Fwd: service.Tunnel, Weight: 1}))
	must(l.ctl.AddService(v6Key, service.Config{Sched: "lc"}))
	must(l.ctl.AddDest(v6Key, rs6, 443, service.DestConfig{Fwd: service.Masq, Weight: 1}))
	return l
}

// dest returns the real server addr:port of service k.
func (l *lab) dest(k service.Key, addr netip.Addr, port uint16) *service.Dest {
	l.t.Helper()
	s := l.ctl.Snapshot().Get(k)
	if s == nil {
		l.t.Fatalf("no service %v", k)
	}
	for _, d := range s.Dests {
		if d.Addr == addr && d.Port == port {
			return d
		}
	}
	l.t.Fatalf("no real server %v:%d in %v", addr, port, k)
	return nil
}

// traffic counts what the engine counts for n connections to d, each
// with pkts packets of size bytes in each direction: on the real server,
// its service and the totals (engine in.go and out.go), spread over the
// counter shards as two workers would.
func (l *lab) traffic(d *service.Dest, n, pkts, size int) {
	for i := range n {
		w := i % 2
		for _, st := range []interface {
			AddConn(int)
			AddInN(int, uint64, uint64)
			AddOutN(int, uint64, uint64)
		}{d.Stats, d.SvcStats(), l.ctl.Total()} {
			st.AddConn(w)
			st.AddInN(w, uint64(pkts), uint64(pkts*size))
			st.AddOutN(w, uint64(pkts), uint64(pkts*size))
		}
	}
}

// steady runs the rate estimator as if the traffic counted since the last
// call had come evenly over intervals estimator intervals, enough for the
// moving averages to reach the rates (estimator.UpdateN's catch-up), and
// moves the wall clock as far.
func (l *lab) steady(intervals int) {
	d := time.Duration(intervals) * estimator.Interval
	l.clk.Advance(d)
	l.ctl.TickEstimators(l.clk.Nanotime())
	l.mu.Lock()
	l.now = l.now.Add(d)
	l.mu.Unlock()
}

// Now is the handler's wall clock.
func (l *lab) Now() time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.now
}

// setNow sets the handler's wall clock.
func (l *lab) setNow(t time.Time) {
	l.mu.Lock()
	l.now = t
	l.mu.Unlock()
}

func get(t testing.TB, h http.Handler, target string, hdr ...string) (*http.Response, string) {
	t.Helper()
	r := httptest.NewRequest(http.MethodGet, target, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		r.Header.Set(hdr[i], hdr[i+1])
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	res := w.Result()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res, string(b)
}
