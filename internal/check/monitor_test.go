package check

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

// scripted is a fake prober: call i returns results[i] ('+' success, '-'
// failure; the last one repeats) and records when it was called,
// relative to start.
type scripted struct {
	start   time.Time
	results string
	mu      sync.Mutex
	calls   []time.Duration
}

func (s *scripted) Probe(context.Context) Result {
	s.mu.Lock()
	defer s.mu.Unlock()
	i := min(len(s.calls), len(s.results)-1)
	s.calls = append(s.calls, time.Since(s.start))
	if s.results[i] == '+' {
		return Result{OK: true}
	}
	return Result{Err: errors.New("scripted failure")}
}

func (s *scripted) times() []time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]time.Duration(nil), s.calls...)
}

// recorder collects events; its transcript gives each as "up@11s" or
// "down@11s" (time since start) with ",w=N" when a weight is set.
type recorder struct {
	start time.Time
	mu    sync.Mutex
	evs   []Event
}

func (r *recorder) on(ev Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.evs = append(r.evs, ev)
}

func (r *recorder) transcript() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, ev := range r.evs {
		s := fmt.Sprintf("%s@%v", stateWord(ev.Up), ev.At.Sub(r.start))
		if ev.Weight != NoWeight {
			s += fmt.Sprintf(",w=%d", ev.Weight)
		}
		out = append(out, s)
	}
	return strings.Join(out, " ")
}

var testTarget = Target{Addr: lo4, Port: 80}

func newTestMonitor(t *testing.T, cfg Config) *Monitor {
	t.Helper()
	if cfg.Target == (Target{}) {
		cfg.Target = testTarget
	}
	if cfg.Rand == nil {
		cfg.Rand = rand.New(rand.NewPCG(1, 2))
	}
	m, err := NewMonitor(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func durs(ds ...time.Duration) string { return fmt.Sprint(ds) }

// TestMonitorTiming runs the state machine in real goroutines under
// synctest's fake clock and checks when probes run and events arrive.
func TestMonitorTiming(t *testing.T) {
	s := time.Second
	timing := Spec{Kind: KindTCP, DelayLoop: 10 * s, DelayBeforeRetry: s, Retry: 1}
	for _, tt := range []struct {
		name    string
		spec    Spec
		results string
		run     time.Duration
		calls   string
		events  string
		upFirst bool
	}{
		{
			name: "retry 1, delay_before_retry 1s: down at the second failure", spec: timing,
			results: "+-", run: 30 * s, upFirst: true,
			calls:  durs(0, 10*s, 11*s, 21*s),
			events: "down@11s",
		},
		{
			name: "a first failure at start is enough", spec: timing,
			results: "-", run: 15 * s, upFirst: true,
			calls:  durs(0, 10*s),
			events: "down@0s",
		},
		{
			name: "recovery at the first success", spec: timing,
			results: "+--++", run: 35 * s, upFirst: true,
			calls:  durs(0, 10*s, 11*s, 21*s, 31*s),
			events: "down@11s up@21s",
		},
		{
			name: "retry 3", spec: Spec{Kind: KindTCP, DelayLoop: 10 * s, DelayBeforeRetry: 2 * s, Retry: 3},
			results: "+-", run: 20 * s, upFirst: true,
			calls:  durs(0, 10*s, 12*s, 14*s, 16*s),
			events: "down@16s",
		},
		{
			name:    "alpha starts down and comes up at the first success",
			spec:    Spec{Kind: KindTCP, DelayLoop: 10 * s, DelayBeforeRetry: s, Retry: 1, Alpha: true},
			results: "--+", run: 25 * s, upFirst: false,
			calls:  durs(0, 10*s, 20*s),
			events: "up@20s",
		},
		{
			name:    "warmup delays the first check",
			spec:    Spec{Kind: KindTCP, DelayLoop: 10 * s, Warmup: 10 * s},
			results: "+", run: 20 * s, upFirst: true,
			calls: "", events: "",
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				start := time.Now()
				p := &scripted{start: start, results: tt.results}
				rec := &recorder{start: start}
				m := newTestMonitor(t, Config{Checkers: []Spec{tt.spec}, Probers: []Prober{p}, OnEvent: rec.on})
				if m.Up() != tt.upFirst {
					t.Errorf("initial Up %v, want %v", m.Up(), tt.upFirst)
				}
				m.Start()
				time.Sleep(tt.run)
				synctest.Wait()
				m.Stop()
				if tt.calls != "" {
					if got := fmt.Sprint(p.times()); got != tt.calls {
						t.Errorf("probes at %s, want %s", got, tt.calls)
					}
				}
				if got := rec.transcript(); got != tt.events {
					t.Errorf("events %q, want %q", got, tt.events)
				}
				if tt.spec.Warmup > 0 {
					c := p.times()
					if len(c) == 0 || c[0] < 0 || c[0] >= tt.spec.Warmup || (len(c) > 1 && c[1]-c[0] != tt.spec.DelayLoop) {
						t.Errorf("probes at %v with warmup %v", c, tt.spec.Warmup)
					}
				}
			})
		})
	}
}

// TestMonitorWarmupBounds: first checks spread within [0, warmup).
func TestMonitorWarmupBounds(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const n = 50
		warmup := 5 * time.Second
		start := time.Now()
		specs := make([]Spec, n)
		probers := make([]Prober, n)
		ps := make([]*scripted, n)
		for i := range specs {
			specs[i] = Spec{Kind: KindTCP, DelayLoop: time.Minute, Warmup: warmup}
			ps[i] = &scripted{start: start, results: "+"}
			probers[i] = ps[i]
		}
		m := newTestMonitor(t, Config{Checkers: specs, Probers: probers, Rand: rand.New(rand.NewPCG(7, 7))})
		m.Start()
		time.Sleep(warmup)
		synctest.Wait()
		m.Stop()
		seen := map[time.Duration]bool{}
		for i, p := range ps {
			c := p.times()
			if len(c) != 1 || c[0] < 0 || c[0] >= warmup {
				t.Fatalf("checker %d probed at %v, want once within [0, %v)", i, c, warmup)
			}
			seen[c[0]] = true
		}
		if len(seen) < n/2 {
			t.Errorf("only %d distinct start times for %d checkers", len(seen), n)
		}
	})
}

// TestMonitorAllCheckers: the server is up only while every checker is.
func TestMonitorAllCheckers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		a := &scripted{start: start, results: "+"}
		// b: up, fails from 10s, back at 30s.
		b := &scripted{start: start, results: "+--+"}
		rec := &recorder{start: start}
		spec := Spec{Kind: KindTCP, DelayLoop: 10 * time.Second, Retry: 0}
		m := newTestMonitor(t, Config{
			Checkers: []Spec{spec, {Kind: KindHTTP, DelayLoop: 10 * time.Second}},
			Probers:  []Prober{a, b}, OnEvent: rec.on,
		})
		m.Start()
		time.Sleep(35 * time.Second)
		synctest.Wait()
		st := m.Status()
		m.Stop()
		if got, want := rec.transcript(), "down@10s up@30s"; got != want {
			t.Errorf("events %q, want %q", got, want)
		}
		rec.mu.Lock()
		if len(rec.evs) == 2 && (rec.evs[0].Checker != KindHTTP || rec.evs[0].Result.OK || rec.evs[0].Target != testTarget) {
			t.Errorf("first event %+v", rec.evs[0])
		}
		rec.mu.Unlock()
		if !st.Up || len(st.Checkers) != 2 {
			t.Fatalf("status %+v", st)
		}
		hb := st.Checkers[1]
		if hb.Kind != KindHTTP || hb.Checks != 4 || hb.Failures != 2 || hb.ConsecutiveFailures != 0 || !hb.Up ||
			hb.LastChange.Sub(start) != 30*time.Second || hb.NextCheck.Sub(start) != 40*time.Second || hb.Weight != NoWeight {
			t.Errorf("checker status %+v", hb)
		}
		if st.Weight != NoWeight {
			t.Errorf("weight %d without dynamic checkers", st.Weight)
		}
	})
}

// TestMonitorWeights: misc_dynamic's absolute weight becomes an
// adjustment of the configured weight; FILE_CHECK's value x weight adds.
func TestMonitorWeights(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "w")
	if err := os.WriteFile(path, []byte("2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		var step atomic.Int32
		misc := ProberFunc(func(context.Context) Result {
			switch step.Add(1) {
			case 1:
				return Result{OK: true, ExitStatus: 12, DynWeight: 10, DynWeightSet: true}
			case 2:
				return Result{OK: true, ExitStatus: 0} // weight unchanged
			default:
				return Result{OK: true, ExitStatus: 22, DynWeight: 20, DynWeightSet: true}
			}
		})
		rec := &recorder{start: start}
		m := newTestMonitor(t, Config{
			Weight: 3,
			Checkers: []Spec{
				{Kind: KindMisc, MiscPath: "unused", MiscDynamic: true, DelayLoop: 10 * time.Second},
				{Kind: KindFile, FilePath: path, FileWeight: 5},
			},
			Probers: []Prober{misc, nil},
			OnEvent: rec.on,
		})
		// The file is read at NewMonitor: 2 x 5.
		if w := m.Weight(); w != 10 || !m.Up() {
			t.Fatalf("initial weight %d up %v, want 10 true", w, m.Up())
		}
		m.Start()
		time.Sleep(5 * time.Second)
		synctest.Wait()
		if err := os.WriteFile(path, []byte("-1\n"), 0o644); err != nil {
			t.Error(err)
		}
		time.Sleep(20 * time.Second)
		synctest.Wait()
		m.Stop()
		// 0s: misc 10-3=7, plus file 10: 17. 10s: exit 0, no change.
		// 5-6s: file -5: 2. 20s: misc 20-3=17, plus -5: 12.
		if got, want := rec.transcript(), "up@0s,w=17 up@6s,w=2 up@20s,w=12"; got != want {
			t.Errorf("events %q, want %q", got, want)
		}
	})
}

// TestMonitorFileFault: a FILE_CHECK whose file says fault starts down
// and goes up with the file, without retries.
func TestMonitorFileFault(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state")
	if err := os.WriteFile(path, []byte("1"), 0o644); err != nil {
		t.Fatal(err)
	}
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		rec := &recorder{start: start}
		m := newTestMonitor(t, Config{Checkers: []Spec{{Kind: KindFile, FilePath: path, Retry: 5, Alpha: true}}, OnEvent: rec.on})
		if m.Up() {
			t.Fatal("up with a fault in the file")
		}
		m.Start()
		time.Sleep(2500 * time.Millisecond)
		synctest.Wait()
		os.WriteFile(path, []byte("0"), 0o644)
		time.Sleep(2 * time.Second)
		synctest.Wait()
		os.WriteFile(path, []byte("1"), 0o644)
		time.Sleep(2 * time.Second)
		synctest.Wait()
		m.Stop()
		if got, want := rec.transcript(), "up@3s down@5s"; got != want {
			t.Errorf("events %q, want %q", got, want)
		}
	})
}

// TestMonitorHangingChecker: a checker whose probe hangs delays neither
// the other checkers of its server nor other servers, and Stop ends it.
func TestMonitorHangingChecker(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		hang := ProberFunc(func(ctx context.Context) Result {
			<-ctx.Done()
			return Result{Err: ctx.Err()}
		})
		fast := &scripted{start: start, results: "+"}
		other := &scripted{start: start, results: "+"}
		spec := Spec{Kind: KindTCP, DelayLoop: time.Second}
		m1 := newTestMonitor(t, Config{Checkers: []Spec{spec, spec}, Probers: []Prober{hang, fast}})
		m2 := newTestMonitor(t, Config{Checkers: []Spec{spec}, Probers: []Prober{other}})
		m1.Start()
		m2.Start()
		time.Sleep(10*time.Second + time.Millisecond)
		synctest.Wait()
		stopped := time.Now()
		m1.Stop()
		m2.Stop()
		if d := time.Since(stopped); d != 0 {
			t.Errorf("Stop took %v of fake time", d)
		}
		if n1, n2 := len(fast.times()), len(other.times()); n1 != 11 || n2 != 11 {
			t.Errorf("probes: %d and %d, want 11 each", n1, n2)
		}
	})
}

// TestMonitorCallbacks: OnEvent may call Status and Up; nothing arrives
// after Stop; Stop is idempotent, and so is Start; a stopped Monitor does
// not start.
func TestMonitorCallbacks(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var m *Monitor
		var mu sync.Mutex
		var calls int
		m = newTestMonitor(t, Config{
			Checkers: []Spec{{Kind: KindTCP, DelayLoop: time.Second}, {Kind: KindTCP, DelayLoop: time.Second}},
			Probers: []Prober{
				ProberFunc(func(context.Context) Result { return Result{Err: errors.New("x")} }),
				&scripted{start: time.Now(), results: "+-+-+-+-+-"},
			},
			OnEvent: func(ev Event) {
				_ = m.Status()
				if m.Up() != ev.Up {
					t.Errorf("Up() %v during event %v", m.Up(), ev.Up)
				}
				mu.Lock()
				calls++
				mu.Unlock()
			},
		})
		m.Start()
		m.Start()
		time.Sleep(5 * time.Second)
		synctest.Wait()
		m.Stop()
		mu.Lock()
		n := calls
		mu.Unlock()
		time.Sleep(5 * time.Second)
		synctest.Wait()
		m.Stop()
		mu.Lock()
		if calls != n || n != 1 {
			t.Errorf("%d events, then %d after Stop; want 1 and none", n, calls-n)
		}
		mu.Unlock()

		m2 := newTestMonitor(t, Config{Checkers: []Spec{{Kind: KindTCP}}, Probers: []Prober{ProberFunc(func(context.Context) Result {
			t.Error("a stopped Monitor probed")
			return Result{}
		})}})
		m2.Stop()
		m2.Start()
		time.Sleep(time.Minute)
		synctest.Wait()
	})
}

func TestNewMonitorErrors(t *testing.T) {
	if _, err := NewMonitor(Config{Target: testTarget, Checkers: []Spec{{Kind: KindTCP}}, Probers: []Prober{nil, nil}}); err == nil {
		t.Error("mismatched Probers accepted")
	}
	if _, err := NewMonitor(Config{Target: testTarget, Checkers: []Spec{{Kind: KindDNS, DNSType: "BOGUS"}}}); err == nil {
		t.Error("bad Spec accepted")
	}
	m, err := NewMonitor(Config{Target: testTarget})
	if err != nil || !m.Up() || m.Weight() != NoWeight {
		t.Errorf("no checkers: %v up %v", err, m.Up())
	}
}

// TestMonitorRealProbesNoLeak runs monitors with real TCP and HTTP
// probes, one of them against a server that never answers, and checks
// that Stop returns at once and leaves no goroutine behind.
func TestMonitorRealProbesNoLeak(t *testing.T) {
	l := listenTCP(t, lo4)
	serve(t, l, func(c net.Conn) {
		c.Read(make([]byte, 512))
		c.Write([]byte("HTTP/1.0 200 OK\r\n\r\nok"))
	})
	tg := targetOf(t, l.Addr())
	silent := listenTCP(t, lo4)
	// Reads and never answers, until the checker closes.
	serve(t, silent, func(c net.Conn) { io.Copy(io.Discard, c) })
	before := runtime.NumGoroutine()

	var ups atomic.Int32
	var ms []*Monitor
	for i := range 20 {
		target, kind := tg, KindTCP
		if i%2 == 1 {
			kind = KindHTTP
		}
		if i == 7 {
			target = targetOf(t, silent.Addr())
		}
		m, err := NewMonitor(Config{Target: target, Checkers: []Spec{{Kind: kind, DelayLoop: 20 * time.Millisecond,
			ConnectTimeout: time.Minute, Alpha: true, URLs: []URL{{Path: "/"}}}},
			OnEvent: func(ev Event) {
				if ev.Up {
					ups.Add(1)
				}
			}})
		if err != nil {
			t.Fatal(err)
		}
		m.Start()
		ms = append(ms, m)
	}
	deadline := time.Now().Add(5 * time.Second)
	for ups.Load() < 19 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := ups.Load(); n != 19 {
		t.Errorf("%d servers came up, want 19", n)
	}
	start := time.Now()
	for _, m := range ms {
		m.Stop()
	}
	if el := time.Since(start); el > time.Second {
		t.Errorf("Stop took %v", el)
	}
	for deadline := time.Now().Add(5 * time.Second); runtime.NumGoroutine() > before && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		buf := make([]byte, 1<<16)
		t.Errorf("%d goroutines, %d before:\n%s", n, before, buf[:runtime.Stack(buf, true)])
	}
}
