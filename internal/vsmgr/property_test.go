package vsmgr

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"testing"
)

// refRS and refVS are a reference model of keepalived's health and quorum
// rules, written from the spec (§7.4, §7.6) rather than from
// ipwrapper.c's code: a server is alive while all its checkers are up;
// the quorum is gained at quorum+hysteresis and lost below
// quorum-hysteresis or at 0; the sorry server serves exactly while the
// quorum is down; IPVS holds the serving servers.
type refCk struct {
	alpha, up, hasRun bool
	w                 int64
	hasW, abs         bool
}

type refRS struct {
	name    string
	w       int64
	inhibit bool
	ck      []refCk
}

func (r *refRS) alive() bool {
	for _, c := range r.ck {
		if !c.up {
			return false
		}
	}
	return true
}

func (r *refRS) eff() int64 {
	e := r.w
	for _, c := range r.ck {
		switch {
		case !c.hasW:
		case c.abs:
			e += c.w - r.w
		default:
			e += c.w
		}
	}
	return e
}

type refVS struct {
	rs           []refRS
	q, h         int64
	sorry        bool
	sorryInhibit bool
	up           bool
	sorryIn      bool // the sorry server serves
}

func (v *refVS) sum() int64 {
	var s int64
	for i := range v.rs {
		if v.rs[i].alive() {
			s += int64(realWeight(v.rs[i].eff()))
		}
	}
	return s
}

// eval re-evaluates the quorum and returns the script it runs, if any.
// At startup or a reload (init) a quorum that is down gets its sorry
// server if it has none serving (a new one), with quorum_down.
func (v *refVS) eval(init bool) []string {
	s := v.sum()
	switch {
	case !v.up && s >= v.q+v.h:
		v.up, v.sorryIn = true, false
		return []string{"qup"}
	case v.up && (s == 0 || s < v.q-v.h), init && !v.up && v.sorry && !v.sorryIn:
		v.up, v.sorryIn = false, v.sorry
		return []string{"qdown"}
	}
	return nil
}

// expect renders what IPVS must hold, as dests() does.
func (v *refVS) expect() string {
	var out []string
	for i := range v.rs {
		r := &v.rs[i]
		switch {
		case r.alive() && (v.up || !v.sorryIn):
			out = append(out, fmt.Sprintf("%s=%d", r.name, realWeight(r.eff())))
		case r.inhibit:
			out = append(out, r.name+"=0")
		}
	}
	switch {
	case v.sorryIn:
		out = append(out, "s=1")
	case v.sorry && v.sorryInhibit:
		out = append(out, "s=0")
	}
	sort.Strings(out)
	return strings.Join(out, " ")
}

func (v *refVS) config() VirtualServer {
	var reals []RealServer
	for i := range v.rs {
		r := mkRS(v.rs[i].name, int32(v.rs[i].w))
		r.InhibitOnFailure = v.rs[i].inhibit
		r.Checkers = nil
		for j, c := range v.rs[i].ck {
			r.Checkers = append(r.Checkers, Checker{ID: fmt.Sprint(j), Alpha: c.alpha})
		}
		reals = append(reals, r)
	}
	vs := mkVS(reals...)
	vs.Quorum, vs.Hysteresis = int(v.q), int(v.h)
	if v.sorry {
		vs.Sorry = sorry()
	}
	vs.SorryInhibit = v.sorryInhibit
	return vs
}

// Random health reports and reloads on random virtual servers: after every
// event IPVS, the health and quorum states and the scripts that ran match
// the reference, and the invariants hold (only alive servers carry
// traffic while the quorum is up; exactly the sorry server while it is
// down; weights never negative; the quorum state within its band).
func TestPropertyRandomEvents(t *testing.T) {
	seeds := 400
	if testing.Short() {
		seeds = 150
	}
	for seed := range uint64(seeds) {
		rng := rand.New(rand.NewPCG(seed, 0x76736d6772)) // "vsmgr"
		ref := &refVS{}
		var total int64
		next := 'a'
		newRef := func() refRS {
			r := refRS{name: string(next), w: int64(rng.IntN(4)), inhibit: rng.IntN(3) == 0}
			next++
			for range rng.IntN(3) {
				a := rng.IntN(3) == 0
				r.ck = append(r.ck, refCk{alpha: a, up: !a})
			}
			return r
		}
		for range 1 + rng.IntN(5) {
			r := newRef()
			total += r.w
			ref.rs = append(ref.rs, r)
		}
		ref.q = 1 + int64(rng.IntN(int(total)+2))
		ref.h = int64(rng.IntN(int(ref.q)))
		ref.sorry, ref.sorryInhibit = rng.IntN(2) == 0, rng.IntN(2) == 0

		f := newFixture(t, Options{})
		vs := ref.config()
		f.apply(t, vs)
		want := ref.eval(true)
		trace := []string{fmt.Sprintf("seed %d: %+v", seed, *ref)}
		check := func(what string, wantScripts []string) {
			t.Helper()
			trace = append(trace, what)
			sort.Strings(wantScripts)
			got, exp := dests(f.ctl, web), ref.expect()
			st := f.status(t, vs.Name)
			scripts := f.rec.take(f.m)
			fail := func(format string, a ...any) {
				t.Helper()
				t.Fatalf("%s\n%s", strings.Join(trace, "\n"), fmt.Sprintf(format, a...))
			}
			if got != exp {
				fail("ipvs %q, want %q", got, exp)
			}
			if st.QuorumUp != ref.up {
				fail("quorum %v, want %v", st.QuorumUp, ref.up)
			}
			if len(st.Reals) != len(ref.rs) {
				fail("%d real servers", len(st.Reals))
			}
			for i := range ref.rs {
				if st.Reals[i].Up != ref.rs[i].alive() {
					fail("rs %s up %v", ref.rs[i].name, st.Reals[i].Up)
				}
			}
			if ref.sorryIn != (ref.sorry && !ref.up) || st.SorryActive != ref.sorryIn {
				fail("sorry server serving %v (status %v) with quorum %v", ref.sorryIn, st.SorryActive, ref.up)
			}
			if w := strings.Join(wantScripts, " "); scripts != w {
				fail("scripts %q, want %q", scripts, w)
			}
			// Invariants, on IPVS as the data path sees it.
			sum := ref.sum()
			for _, d := range f.ctl.Snapshot().Get(web).Dests {
				if d.Weight() < 0 {
					fail("negative weight")
				}
				isSorry := d.Addr == rsAddr("s")
				if ref.sorry && !ref.up && !isSorry && d.Weight() != 0 {
					fail("real server serving beside the sorry server")
				}
				if ref.up && isSorry && d.Weight() != 0 {
					fail("sorry server serving with the quorum up")
				}
			}
			if ref.up && (sum == 0 || sum < ref.q-ref.h) || !ref.up && sum >= ref.q+ref.h {
				fail("quorum %v with weight %d outside its band", ref.up, sum)
			}
		}
		check("init", want)

		for step := range 60 {
			if rng.IntN(8) == 0 {
				// Reload: servers removed and added, new weights,
				// quorum, hysteresis, inhibit flags, sorry server.
				// A removal is judged on the old configuration.
				var scripts []string
				if rng.IntN(4) == 0 && len(ref.rs) > 1 {
					// A removed server that was up and in IPVS
					// (at weight 0 too, inhibited) runs
					// notify_down.
					i := rng.IntN(len(ref.rs))
					r := ref.rs[i]
					if r.alive() && (ref.up || !ref.sorryIn || r.inhibit) {
						scripts = append(scripts, "down "+r.name)
					}
					ref.rs = slices.Delete(ref.rs, i, i+1)
				}
				for i := range ref.rs {
					if rng.IntN(2) == 0 {
						ref.rs[i].w = int64(rng.IntN(4))
					}
					if rng.IntN(4) == 0 {
						ref.rs[i].inhibit = !ref.rs[i].inhibit
					}
				}
				if rng.IntN(2) == 0 {
					ref.q = 1 + int64(rng.IntN(6))
					ref.h = int64(rng.IntN(int(ref.q)))
				}
				if rng.IntN(4) == 0 {
					ref.sorryInhibit = !ref.sorryInhibit
				}
				if rng.IntN(4) == 0 && next <= 'h' {
					ref.rs = append(ref.rs, newRef())
				}
				if rng.IntN(5) == 0 {
					ref.sorry = !ref.sorry
					ref.sorryIn = false
				}
				vs = ref.config()
				f.apply(t, vs)
				scripts = append(scripts, ref.eval(true)...)
				check(fmt.Sprintf("%d reload %+v sorry %v", step, ref.rs, ref.sorry), scripts)
				continue
			}
			i := rng.IntN(len(ref.rs))
			r := &ref.rs[i]
			if len(r.ck) == 0 {
				continue
			}
			j := rng.IntN(len(r.ck))
			rep := Report{Checker: j, Up: rng.IntN(2) == 0}
			if rng.IntN(3) == 0 {
				rep.Weight, rep.HasWeight, rep.Absolute = int64(rng.IntN(12)-3), true, rng.IntN(2) == 0
			}
			f.m.SetHealth(RSID{vs.Name, rsAddr(r.name), 80}, rep)

			var scripts []string
			c := &r.ck[j]
			wasAlive := r.alive()
			if rep.Up && rep.HasWeight {
				c.w, c.hasW, c.abs = rep.Weight, true, rep.Absolute
				scripts = append(scripts, ref.eval(false)...)
			}
			if !rep.Up {
				c.w, c.hasW, c.abs = 0, false, false
			}
			notify := func() {
				if r.alive() {
					scripts = append(scripts, "up "+r.name)
				} else {
					scripts = append(scripts, "down "+r.name)
				}
			}
			if c.up == rep.Up {
				if !c.hasRun && (c.alpha || !rep.Up) {
					notify()
				}
				c.hasRun = true
			} else {
				c.up, c.hasRun = rep.Up, true
				if r.alive() != wasAlive {
					notify()
				}
			}
			scripts = append(scripts, ref.eval(false)...)
			check(fmt.Sprintf("%d rs %s checker %d %+v", step, r.name, j, rep), scripts)
		}
		mustOK(t, f.m.Shutdown(t.Context()))
	}
}
