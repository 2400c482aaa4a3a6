package vsmgr

import (
	"math"
	"strconv"
	"strings"
	"testing"

	"golvs/internal/service"
)

// step is one event of a health table and what must follow it: the
// destinations of the service (sorted), the quorum state, and the
// scripts that ran (sorted).
type step struct {
	ev      string // see fixture.event; "init" for the first Apply
	ipvs    string
	quorum  bool
	scripts string
}

// The tables are written from keepalived 2.2.7's ipwrapper.c
// (update_quorum_state, perform_svr_state, update_svr_checker_state,
// init_service_vs) and §7.6 of the spec.
func TestHealthAndQuorum(t *testing.T) {
	withQuorum := func(vs VirtualServer, q, h int) VirtualServer {
		vs.Quorum, vs.Hysteresis = q, h
		return vs
	}
	withSorry := func(vs VirtualServer, inhibit bool) VirtualServer {
		vs.Sorry, vs.SorryInhibit = sorry(), inhibit
		return vs
	}
	tests := []struct {
		name  string
		vs    VirtualServer
		opts  Options
		steps []step
	}{
		{
			name: "sorry server takes over below the quorum",
			vs:   withSorry(withQuorum(mkVS(mkRS("a", 1), mkRS("b", 1), mkRS("c", 1)), 2, 0), false),
			steps: []step{
				// The quorum is met at startup: quorum_up runs then.
				{"init", "a=1 b=1 c=1", true, "qup"},
				{"a-", "b=1 c=1", true, "down a"},
				{"b-", "s=1", false, "down b qdown"},
				// While the sorry server serves, servers come and
				// go without touching IPVS.
				{"c-", "s=1", false, "down c"},
				{"a+", "s=1", false, "up a"},
				{"b+", "a=1 b=1", true, "qup up b"},
			},
		},
		{
			name: "hysteresis: gained at quorum+hysteresis, lost below quorum-hysteresis",
			vs:   withSorry(withQuorum(mkVS(mkRS("a", 1), mkRS("b", 1), mkRS("c", 1), mkRS("d", 1), mkRS("e", 1)), 3, 1), false),
			steps: []step{
				{"init", "a=1 b=1 c=1 d=1 e=1", true, "qup"},
				{"a-", "b=1 c=1 d=1 e=1", true, "down a"},
				{"b-", "c=1 d=1 e=1", true, "down b"},
				{"c-", "d=1 e=1", true, "down c"}, // 2 is not below 3-1
				{"d-", "s=1", false, "down d qdown"},
				{"d+", "s=1", false, "up d"}, // 2 < 3+1
				{"c+", "s=1", false, "up c"},
				{"b+", "b=1 c=1 d=1 e=1", true, "qup up b"},
			},
		},
		{
			name: "sorry_server_inhibit keeps the sorry server at weight 0",
			vs:   withSorry(withQuorum(mkVS(mkRS("a", 1), mkRS("b", 1)), 2, 0), true),
			steps: []step{
				{"init", "a=1 b=1 s=0", true, "qup"},
				{"a-", "s=1", false, "down a qdown"},
				{"a+", "a=1 b=1 s=0", true, "qup up a"},
			},
		},
		{
			// keepalived's s_svr_duplicates_rs: one destination,
			// configured by the role that serves.
			name: "a sorry server that is also a real server",
			vs: func() VirtualServer {
				vs := withQuorum(mkVS(mkRS("a", 3), mkRS("b", 1)), 4, 0)
				vs.Sorry = sorry()
				vs.Sorry.Addr = rsAddr("a")
				return vs
			}(),
			steps: []step{
				{"init", "a=3 b=1", true, "qup"},
				{"b-", "a=1", false, "down b qdown"},
				{"a-", "a=1", false, "down a"},
				{"a+", "a=1", false, "up a"},
				{"b+", "a=3 b=1", true, "qup up b"},
			},
		},
		{
			name: "inhibit_on_failure quiesces instead of removing",
			vs:   mkVS(inhibit(mkRS("a", 1)), inhibit(mkRS("b", 1))),
			steps: []step{
				{"init", "a=1 b=1", true, "qup"},
				{"a-", "a=0 b=1", true, "down a"},
				{"b-", "a=0 b=0", false, "down b qdown"}, // weight sum 0
				{"a+", "a=1 b=0", true, "qup up a"},
			},
		},
		{
			name: "inhibited alive servers go to weight 0 while the sorry server serves",
			vs:   withSorry(withQuorum(mkVS(inhibit(mkRS("a", 1)), mkRS("b", 1)), 2, 0), false),
			steps: []step{
				{"init", "a=1 b=1", true, "qup"},
				{"b-", "a=0 s=1", false, "down b qdown"},
				{"a-", "a=0 s=1", false, "down a"},
				{"a+", "a=0 s=1", false, "up a"},
				{"b+", "a=1 b=1", true, "qup up b"},
			},
		},
		{
			name: "without a sorry server the alive servers stay when the quorum is lost",
			vs:   withQuorum(mkVS(mkRS("a", 1), mkRS("b", 1)), 2, 0),
			steps: []step{
				{"init", "a=1 b=1", true, "qup"},
				{"b-", "a=1", false, "down b qdown"},
				{"a-", "", false, "down a"},
				{"a+", "a=1", false, "up a"},
				{"b+", "a=1 b=1", true, "qup up b"},
			},
		},
		{
			name: "alpha servers start down: the sorry server is added at startup",
			vs:   withSorry(mkVS(alpha(mkRS("a", 1)), alpha(mkRS("b", 1))), false),
			steps: []step{
				{"init", "s=1", false, "qdown"}, // "Starting with quorum down"
				// The first result of an alpha checker confirms the
				// down state and runs notify_down, once.
				{"a-", "s=1", false, "down a"},
				{"a-", "s=1", false, ""},
				{"a+", "a=1", true, "qup up a"},
				{"b+", "a=1 b=1", true, "up b"},
			},
		},
		{
			name: "alpha servers without a sorry server: no script at startup",
			vs:   mkVS(alpha(mkRS("a", 1))),
			steps: []step{
				{"init", "", false, ""},
				{"a+", "a=1", true, "qup up a"},
			},
		},
		{
			name: "rs_init_notifies runs notify_up at startup",
			vs:   mkVS(mkRS("a", 1), alpha(mkRS("b", 1))),
			opts: Options{RSInitNotifies: true},
			steps: []step{
				{"init", "a=1", true, "qup up a"},
			},
		},
		{
			name: "a first successful check of a server that starts up runs nothing",
			vs:   mkVS(mkRS("a", 1)),
			steps: []step{
				{"init", "a=1", true, "qup"},
				{"a+", "a=1", true, ""},
				{"a-", "", false, "down a qdown"},
			},
		},
		{
			name: "a server without checkers is up and ignores reports",
			vs: func() VirtualServer {
				r := mkRS("a", 1)
				r.Checkers = nil
				return mkVS(r)
			}(),
			steps: []step{
				{"init", "a=1", true, "qup"},
				{"a-", "a=1", true, ""},
			},
		},
		{
			name: "a server is up only while all its checkers are",
			vs: func() VirtualServer {
				r := mkRS("a", 1)
				r.Checkers = []Checker{{ID: "tcp"}, {ID: "http"}}
				return mkVS(r, mkRS("b", 1))
			}(),
			steps: []step{
				{"init", "a=1 b=1", true, "qup"},
				{"a0-", "b=1", true, "down a"},
				{"a1-", "b=1", true, ""},
				{"a0+", "b=1", true, ""},
				{"a1+", "a=1 b=1", true, "up a"},
			},
		},
		{
			name: "dynamic weights move the quorum and are clamped to IPVS's range",
			vs:   withQuorum(mkVS(mkRS("a", 1), mkRS("b", 1)), 3, 0),
			steps: []step{
				{"init", "a=1 b=1", false, ""},
				{"a+=5", "a=5 b=1", true, "qup"},      // misc_dynamic exit 7
				{"a+~-10", "a=0 b=1", false, "qdown"}, // 1-10 < 0
				{"a-", "b=1", false, "down a"},        // the adjustment goes
				{"a+", "a=1 b=1", false, "up a"},      // configured weight again
				{"a+=99999999999", "a=2147483647 b=1", true, "qup"},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, tt.opts)
			for i, st := range tt.steps {
				if i == 0 {
					f.apply(t, tt.vs)
				} else {
					f.event(t, tt.vs.Name, st.ev)
				}
				got := dests(f.ctl, web)
				q := f.status(t, tt.vs.Name).QuorumUp
				scripts := f.rec.take(f.m)
				if got != st.ipvs || q != st.quorum || scripts != st.scripts {
					t.Fatalf("after %q: ipvs %q quorum %v scripts %q; want %q %v %q",
						st.ev, got, q, scripts, st.ipvs, st.quorum, st.scripts)
				}
			}
		})
	}
}

// keepalived adds the real servers in configuration order, each at the
// head of the kernel's list, so rr starts with the last one.
func TestKernelListOrder(t *testing.T) {
	f := newFixture(t, Options{})
	f.apply(t, mkVS(mkRS("a", 1), mkRS("b", 2), mkRS("c", 3)))
	if got := kernelOrder(f.ctl, web); got != "c b a" {
		t.Fatalf("kernel order %q, want c b a", got)
	}
}

// One event is one snapshot: the swap of three servers for the sorry
// server is published at once.
func TestOneSnapshotPerEvent(t *testing.T) {
	f := newFixture(t, Options{})
	vs := mkVS(mkRS("a", 1), mkRS("b", 1), mkRS("c", 1))
	vs.Quorum, vs.Sorry = 3, sorry()
	f.apply(t, vs)
	ch := f.ctl.Changed()
	before := f.ctl.Snapshot()
	f.event(t, vs.Name, "a-")
	<-ch
	if dests(f.ctl, web) != "s=1" {
		t.Fatalf("ipvs %q", dests(f.ctl, web))
	}
	// Exactly one publication: the channel taken after it is open.
	select {
	case <-f.ctl.Changed():
		t.Fatal("more than one snapshot published")
	default:
	}
	if f.ctl.Snapshot() == before {
		t.Fatal("no snapshot published")
	}
	// An event that changes nothing publishes nothing.
	ch = f.ctl.Changed()
	f.event(t, vs.Name, "a-")
	select {
	case <-ch:
		t.Fatal("a repeated report published a snapshot")
	default:
	}
}

// Every transition is logged once, with its virtual server, real server,
// states and reason.
func TestTransitionsLoggedOnce(t *testing.T) {
	f := newFixture(t, Options{})
	vs := mkVS(mkRS("a", 1), mkRS("b", 1))
	vs.Quorum, vs.Sorry = 2, sorry()
	f.apply(t, vs)
	f.logs.reset()
	f.event(t, vs.Name, "a-")
	f.event(t, vs.Name, "a-") // no transition
	want := []struct {
		msg  string
		rs   string
		from string
		to   string
	}{
		{"real server down", "198.19.0.1:80", "up", "down"},
		{"quorum lost", "", "up", "down"},
		{"sorry server in", "198.19.0.100:80", "out", "in"},
	}
	for _, w := range want {
		recs := f.logs.records(w.msg)
		if len(recs) != 1 {
			t.Fatalf("%q logged %d times, want once", w.msg, len(recs))
		}
		r := recs[0]
		if r["vs"] != vs.Name || r["rs"] != w.rs || r["from"] != w.from || r["to"] != w.to || r["reason"] == "" {
			t.Errorf("%q: attrs %v", w.msg, r)
		}
	}
}

func TestWeightsNeverNegative(t *testing.T) {
	for _, w := range []int64{math.MinInt64, -1, 0} {
		if g := realWeight(w); g != 0 {
			t.Errorf("realWeight(%d) = %d", w, g)
		}
	}
	if g := realWeight(math.MaxInt64); g != math.MaxInt32 {
		t.Errorf("realWeight(max) = %d", g)
	}
}

// Reports for unknown servers or checkers (a checker of a server a reload
// removed, reporting late) change nothing.
func TestUnknownReportsIgnored(t *testing.T) {
	f := newFixture(t, Options{})
	vs := mkVS(mkRS("a", 1))
	f.apply(t, vs)
	ch := f.ctl.Changed()
	f.m.SetHealth(RSID{VS: vs.Name, Addr: rsAddr("z"), Port: 80}, Report{})
	f.m.SetHealth(RSID{VS: "nope", Addr: rsAddr("a"), Port: 80}, Report{})
	f.m.SetHealth(RSID{VS: vs.Name, Addr: rsAddr("a"), Port: 80}, Report{Checker: 3})
	f.m.SetHealth(RSID{VS: vs.Name, Addr: rsAddr("a"), Port: 80}, Report{Checker: -1})
	select {
	case <-ch:
		t.Fatal("ignored reports changed IPVS")
	default:
	}
	if !f.status(t, vs.Name).Reals[0].Up {
		t.Fatal("server went down")
	}
}

// Status shows configured and effective weights, health, and whether the
// destination is in IPVS as the data path sees it.
func TestStatus(t *testing.T) {
	f := newFixture(t, Options{})
	vs := mkVS(mkRS("a", 4), mkRS("b", 1))
	vs.Quorum, vs.Sorry = 1, sorry()
	f.apply(t, vs)
	f.event(t, vs.Name, "a+~3")
	f.event(t, vs.Name, "b-")
	st := f.status(t, vs.Name)
	if !st.QuorumUp || st.SorryActive || st.WeightSum != 7 || st.Sorry == nil || st.Sorry.InIPVS {
		t.Fatalf("status %+v", st)
	}
	a, b := st.Reals[0], st.Reals[1]
	if a.ConfiguredWeight != 4 || a.EffectiveWeight != 7 || !a.Up || !a.InIPVS || a.IPVSWeight != 7 {
		t.Errorf("a: %+v", a)
	}
	if b.Up || b.InIPVS || b.FailedCheckers != 1 || b.LastChange.IsZero() {
		t.Errorf("b: %+v", b)
	}
	// Deleted with ipvsadm: Status tells.
	if err := f.ctl.DeleteDest(web, rsAddr("a"), 80); err != nil {
		t.Fatal(err)
	}
	if a := f.status(t, vs.Name).Reals[0]; a.InIPVS {
		t.Errorf("a deleted behind the manager's back shows in IPVS: %+v", a)
	}
}

// DR and TUN servers get the virtual port (0 for fwmark services), NAT
// servers their own.
func TestDestPorts(t *testing.T) {
	f := newFixture(t, Options{})
	dr := mkRS("a", 1)
	dr.Port, dr.Dest.Fwd = 8080, service.Route
	nat := mkRS("b", 1)
	nat.Port = 8080
	v1 := mkVS(dr, nat)
	v2 := mkVS(dr, nat)
	v2.Name, v2.Keys = KeyName(mark), []service.Key{mark}
	f.apply(t, v1, v2)
	var got []string
	for _, k := range []service.Key{web, mark} {
		for _, d := range f.ctl.Snapshot().Get(k).Dests {
			got = append(got, rsName(d.Addr)+":"+strconv.Itoa(int(d.Port)))
		}
	}
	if s := strings.Join(got, " "); s != "b:8080 a:80 b:8080 a:0" {
		t.Fatalf("ports %q", s)
	}
	if st := f.status(t, KeyName(mark)); !st.Reals[0].InIPVS || !st.Reals[1].InIPVS {
		t.Fatalf("status %+v", st)
	}
}
