package vsmgr

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golvs/internal/clock"
	"golvs/internal/control"
	"golvs/internal/service"
)

// Addresses from the benchmarking ranges (RFC 2544): the VIP in
// 198.18.0.0/24, real servers in 198.19.0.0/24.
var (
	vip  = netip.MustParseAddr("198.18.0.10")
	web  = service.Key{Family: service.IPv4, Proto: service.ProtoTCP, Addr: vip, Port: 80}
	web2 = service.Key{Family: service.IPv4, Proto: service.ProtoTCP, Addr: vip, Port: 443}
	mark = service.Key{Family: service.IPv4, FWMark: 7}
)

// rsAddr maps the short names of the tests to addresses: "a" is
// 198.19.0.1, "b" .2, ..., "s" (the sorry server) .100.
func rsAddr(name string) netip.Addr {
	if name == "s" {
		return netip.MustParseAddr("198.19.0.100")
	}
	return netip.AddrFrom4([4]byte{198, 19, 0, name[0] - 'a' + 1})
}

func rsName(a netip.Addr) string {
	b := a.As4()
	if b[3] == 100 {
		return "s"
	}
	return string(rune('a' + b[3] - 1))
}

// mkRS is a NAT real server on port 80 with one checker and notify
// scripts "up NAME" and "down NAME".
func mkRS(name string, w int32) RealServer {
	return RealServer{
		Addr: rsAddr(name), Port: 80,
		Dest:     service.DestConfig{Fwd: service.Masq, Weight: w},
		NotifyUp: "up " + name, NotifyDown: "down " + name,
		Checkers: []Checker{{ID: "tcp"}},
	}
}

func alpha(r RealServer) RealServer {
	r.Checkers = slices.Clone(r.Checkers)
	for i := range r.Checkers {
		r.Checkers[i].Alpha = true
	}
	return r
}

func inhibit(r RealServer) RealServer { r.InhibitOnFailure = true; return r }

func sorry() *RealServer {
	return &RealServer{Addr: rsAddr("s"), Port: 80, Dest: service.DestConfig{Fwd: service.Masq, Weight: 1}}
}

// mkVS is the virtual server TCP 198.18.0.10:80 (rr, quorum 1) with
// quorum scripts "qup" and "qdown".
func mkVS(reals ...RealServer) VirtualServer {
	return VirtualServer{
		Name: KeyName(web), Keys: []service.Key{web}, Config: service.Config{Sched: "rr"},
		Reals: reals, Quorum: 1, QuorumUp: "qup", QuorumDown: "qdown",
	}
}

// recorder is a fake RunScript that records command lines.
type recorder struct {
	mu    sync.Mutex
	calls []string
	block chan struct{} // when set, scripts wait for it or their ctx
}

func (r *recorder) run(ctx context.Context, cmd string) error {
	r.mu.Lock()
	r.calls = append(r.calls, cmd)
	b := r.block
	r.mu.Unlock()
	if b != nil {
		select {
		case <-b:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// take waits for the scripts launched so far and returns their command
// lines sorted and space-joined (scripts run concurrently, so their order
// is not defined), forgetting them.
func (r *recorder) take(m *Manager) string {
	m.scripts.Wait()
	r.mu.Lock()
	defer r.mu.Unlock()
	c := r.calls
	r.calls = nil
	sort.Strings(c)
	return strings.Join(c, " ")
}

// logSink collects log records as "msg k=v k=v" lines.
type logSink struct {
	mu    sync.Mutex
	attrs []map[string]string
}

func (s *logSink) Enabled(context.Context, slog.Level) bool { return true }
func (s *logSink) Handle(_ context.Context, r slog.Record) error {
	m := map[string]string{"msg": r.Message}
	r.Attrs(func(a slog.Attr) bool { m[a.Key] = a.Value.String(); return true })
	s.mu.Lock()
	s.attrs = append(s.attrs, m)
	s.mu.Unlock()
	return nil
}
func (s *logSink) WithAttrs([]slog.Attr) slog.Handler { return s }
func (s *logSink) WithGroup(string) slog.Handler      { return s }

// records returns the records with message msg.
func (s *logSink) records(msg string) []map[string]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []map[string]string
	for _, a := range s.attrs {
		if a["msg"] == msg {
			out = append(out, a)
		}
	}
	return out
}

func (s *logSink) reset() {
	s.mu.Lock()
	s.attrs = nil
	s.mu.Unlock()
}

type fixture struct {
	ctl  *control.Control
	m    *Manager
	rec  *recorder
	logs *logSink
}

func newFixture(t *testing.T, opts Options) *fixture {
	t.Helper()
	f := &fixture{ctl: control.New(control.Config{Clock: clock.NewManual(time.Hour)}), rec: &recorder{}, logs: &logSink{}}
	opts.RunScript = f.rec.run
	opts.Log = slog.New(f.logs)
	if opts.Now == nil {
		opts.Now = func() time.Time { return time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC) }
	}
	f.m = New(f.ctl, opts)
	t.Cleanup(func() { _ = f.m.Shutdown(context.Background()) })
	return f
}

func (f *fixture) apply(t *testing.T, vss ...VirtualServer) Diff {
	t.Helper()
	d, err := f.m.Apply(vss)
	if err != nil {
		t.Fatalf("Apply: %v", err)
	}
	return d
}

// dests renders the destinations of service k sorted by name: "a=1 s=0".
// A missing service renders as "-".
func dests(ctl *control.Control, k service.Key) string {
	s := ctl.Snapshot().Get(k)
	if s == nil {
		return "-"
	}
	var out []string
	for _, d := range s.Dests {
		out = append(out, fmt.Sprintf("%s=%d", rsName(d.Addr), d.Weight()))
	}
	sort.Strings(out)
	return strings.Join(out, " ")
}

// kernelOrder renders the destinations of k in the kernel's list order.
func kernelOrder(ctl *control.Control, k service.Key) string {
	var out []string
	for _, d := range ctl.Snapshot().Get(k).Dests {
		out = append(out, rsName(d.Addr))
	}
	return strings.Join(out, " ")
}

func findDest(ctl *control.Control, k service.Key, name string) *service.Dest {
	s := ctl.Snapshot().Get(k)
	if s == nil {
		return nil
	}
	for _, d := range s.Dests {
		if d.Addr == rsAddr(name) {
			return d
		}
	}
	return nil
}

// event applies a step of the tables: "a-" checker 0 of a down, "a+" up,
// "a1-" checker 1, "a+=5" up with absolute weight 5 (misc_dynamic),
// "a+~-3" up with contribution -3 (track_file).
func (f *fixture) event(t *testing.T, vsName, ev string) {
	t.Helper()
	name := ev[:1]
	rest := ev[1:]
	ck := 0
	if rest != "" && rest[0] >= '0' && rest[0] <= '9' {
		ck = int(rest[0] - '0')
		rest = rest[1:]
	}
	r := Report{Checker: ck, Up: rest[0] == '+'}
	if len(rest) > 1 {
		w, err := strconv.ParseInt(rest[2:], 10, 64)
		if err != nil {
			t.Fatalf("bad step %q", ev)
		}
		r.Weight, r.HasWeight, r.Absolute = w, true, rest[1] == '='
	}
	f.m.SetHealth(RSID{VS: vsName, Addr: rsAddr(name), Port: 80}, r)
}

func (f *fixture) status(t *testing.T, name string) VSStatus {
	t.Helper()
	for _, s := range f.m.Status() {
		if s.Name == name {
			return s
		}
	}
	t.Fatalf("no status for %q", name)
	return VSStatus{}
}
