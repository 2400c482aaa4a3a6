package check

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// runMachine feeds results ("+" success, "-" failure) to a machine and
// returns its transcript: per step "U" or "D" (the state after it), "!"
// when it changed, then "/" and the delay to the next check.
func runMachine(s Spec, results string) string {
	m := newMachine(&s)
	var out []string
	for _, r := range results {
		changed, next := m.step(r == '+')
		st := "D"
		if m.up {
			st = "U"
		}
		if changed {
			st += "!"
		}
		out = append(out, fmt.Sprintf("%s/%v", st, next))
	}
	return strings.Join(out, " ")
}

func TestMachineTranscripts(t *testing.T) {
	base := Spec{DelayLoop: 10 * time.Second, DelayBeforeRetry: time.Second, Retry: 1}
	with := func(f func(*Spec)) Spec { s := base; f(&s); return s }
	tests := []struct {
		name    string
		spec    Spec
		results string
		want    string
	}{
		{
			name: "retry 1: an up server goes down at the second consecutive failure",
			spec: base, results: "+--",
			want: "U/10s U/1s D!/10s",
		},
		{
			name: "first check failing at start is enough (keepalived sets retry_it = retry)",
			spec: base, results: "-",
			want: "D!/10s",
		},
		{
			name: "success at start keeps the server up without a change",
			spec: base, results: "+",
			want: "U/10s",
		},
		{
			name: "a success between failures resets the retries",
			spec: base, results: "+-+-+--",
			want: "U/10s U/1s U/10s U/1s U/10s U/1s D!/10s",
		},
		{
			name: "retry 0: down at the first failure",
			spec: with(func(s *Spec) { s.Retry = 0 }), results: "+-",
			want: "U/10s D!/10s",
		},
		{
			name: "retry 3: down at the fourth failure",
			spec: with(func(s *Spec) { s.Retry = 3 }), results: "+----",
			want: "U/10s U/1s U/1s U/1s D!/10s",
		},
		{
			name: "a down checker is checked every delay_loop and comes back at the first success",
			spec: base, results: "+-----+",
			want: "U/10s U/1s D!/10s D/10s D/10s D/10s U!/10s",
		},
		{
			name: "after recovery the retries count again",
			spec: base, results: "+--+--",
			want: "U/10s U/1s D!/10s U!/10s U/1s D!/10s",
		},
		{
			name: "alpha starts down, failures change nothing, the first success is up",
			spec: with(func(s *Spec) { s.Alpha = true }), results: "--+",
			want: "D/10s D/10s U!/10s",
		},
		{
			name: "alpha, then up, then retries as usual",
			spec: with(func(s *Spec) { s.Alpha = true }), results: "+--",
			want: "U!/10s U/1s D!/10s",
		},
		{
			name: "delay_before_retry 0 re-checks at once",
			spec: with(func(s *Spec) { s.DelayBeforeRetry = 0; s.Retry = 2 }), results: "+---",
			want: "U/10s U/0s U/0s D!/10s",
		},
		{
			name: "delay_loop 0 is keepalived's default 60 s, negative retry is 0",
			spec: Spec{Retry: -4}, results: "+-",
			want: "U/1m0s D!/1m0s",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := runMachine(tt.spec, tt.results); got != tt.want {
				t.Errorf("%q:\n got %s\nwant %s", tt.results, got, tt.want)
			}
		})
	}
}

// refMachine is a slow reference written from the spec's words (§7.6)
// plus keepalived's start rule: it replays the whole history for each
// question. up: the state after all results.
func refUp(alpha bool, retry int, results []bool) bool {
	up := !alpha
	hadRun := false
	fails := 0 // consecutive failures of an up checker
	for _, ok := range results {
		switch {
		case ok:
			up, fails = true, 0
		case !up:
		case !hadRun:
			// "one failure is enough initially"
			up = false
		default:
			fails++
			if fails > retry {
				up, fails = false, 0
			}
		}
		hadRun = true
	}
	return up
}

// TestMachineExhaustive compares the machine with the reference on every
// sequence of up to 10 results, retry 0..3, alpha or not, and checks the
// delays: delay_before_retry exactly when a failure left the checker up.
func TestMachineExhaustive(t *testing.T) {
	const maxLen = 10
	for retry := 0; retry <= 3; retry++ {
		for _, alpha := range []bool{false, true} {
			s := Spec{Alpha: alpha, Retry: retry, DelayLoop: 7 * time.Second, DelayBeforeRetry: 2 * time.Second}
			for n := 1; n <= maxLen; n++ {
				for bits := 0; bits < 1<<n; bits++ {
					m := newMachine(&s)
					var hist []bool
					for i := range n {
						ok := bits&(1<<i) != 0
						prev := m.up
						changed, next := m.step(ok)
						hist = append(hist, ok)
						want := refUp(alpha, retry, hist)
						if m.up != want || changed != (prev != m.up) {
							t.Fatalf("retry %d alpha %v history %v: up %v changed %v, want up %v", retry, alpha, hist, m.up, changed, want)
						}
						wantNext := s.DelayLoop
						if !ok && m.up {
							wantNext = s.DelayBeforeRetry
						}
						if next != wantNext {
							t.Fatalf("retry %d alpha %v history %v: next %v, want %v", retry, alpha, hist, next, wantNext)
						}
					}
				}
			}
		}
	}
}

func TestWarmupDelay(t *testing.T) {
	w := 10 * time.Second
	for _, u := range []float64{0, 1e-12, 0.25, 0.5, 0.9999999999999999} {
		d := warmupDelay(w, u)
		if d < 0 || d >= w {
			t.Errorf("warmupDelay(%v, %v) = %v, want within [0, %v)", w, u, d, w)
		}
	}
	if d := warmupDelay(w, 0.5); d != 5*time.Second {
		t.Errorf("warmupDelay(10s, 0.5) = %v, want 5s", d)
	}
	if d := warmupDelay(0, 0.7); d != 0 {
		t.Errorf("warmup 0: %v, want 0", d)
	}
}
