package vsmgr

import (
	"errors"
	"slices"
	"testing"

	"golvs/internal/control"
	"golvs/internal/service"
)

func mustOK(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// A reload that leaves a virtual server as it was does not touch IPVS:
// the same snapshot, the same destinations with their connections, and
// health states as they were.
func TestReloadUnchangedUntouched(t *testing.T) {
	f := newFixture(t, Options{})
	vs := mkVS(mkRS("a", 1), mkRS("b", 1))
	f.apply(t, vs)
	f.event(t, vs.Name, "b-")
	a := findDest(f.ctl, web, "a")
	a.Bind(false, false)
	snap := f.ctl.Snapshot()

	d := f.apply(t, mkVS(mkRS("a", 1), mkRS("b", 1)))
	if !d.Empty() || !slices.Equal(d.UnchangedVS, []string{vs.Name}) {
		t.Fatalf("diff %+v", d)
	}
	if f.ctl.Snapshot() != snap {
		t.Fatal("an unchanged reload published a snapshot")
	}
	if findDest(f.ctl, web, "a") != a || a.ActiveConns() != 1 {
		t.Fatal("destination replaced or its connections lost")
	}
	if st := f.status(t, vs.Name); st.Reals[1].Up {
		t.Fatal("health of b lost across the reload")
	}
	if s := f.rec.take(f.m); s != "down b qup" {
		t.Fatalf("scripts %q", s)
	}
}

// A reload that changes a virtual server edits only what changed.
func TestReloadChanged(t *testing.T) {
	f := newFixture(t, Options{})
	f.apply(t, mkVS(mkRS("a", 1), mkRS("b", 1), mkRS("c", 1)))
	f.event(t, KeyName(web), "c-")
	a, b := findDest(f.ctl, web, "a"), findDest(f.ctl, web, "b")
	b.Bind(false, false) // a connection that outlives b's removal
	svcStats := f.ctl.Snapshot().Get(web).Stats
	f.rec.take(f.m)

	nv := mkVS(mkRS("a", 3), mkRS("c", 1), mkRS("d", 1), alpha(mkRS("e", 1)))
	nv.Config.Sched = "wrr"
	d := f.apply(t, nv)
	if !slices.Equal(d.ChangedVS, []string{nv.Name}) ||
		!slices.Equal(d.RemovedRS, []RSID{{nv.Name, rsAddr("b"), 80}}) ||
		!slices.Equal(d.AddedRS, []RSID{{nv.Name, rsAddr("d"), 80}, {nv.Name, rsAddr("e"), 80}}) ||
		!slices.Equal(d.ChangedRS, []RSID{{nv.Name, rsAddr("a"), 80}}) {
		t.Fatalf("diff %+v", d)
	}
	svc := f.ctl.Snapshot().Get(web)
	if svc.Config.Sched != "wrr" || svc.Stats != svcStats {
		t.Fatalf("service not edited in place: %+v", svc.Config)
	}
	// a edited in place, b drained to the trash with its connection,
	// c still down (its checker keeps its state), d added, e waits for
	// its first check (alpha).
	if got := dests(f.ctl, web); got != "a=3 d=1" {
		t.Fatalf("ipvs %q", got)
	}
	if findDest(f.ctl, web, "a") != a {
		t.Fatal("a replaced instead of edited")
	}
	// (c went to the trash when it failed.)
	trash := f.ctl.Trash()
	if !slices.Contains(trash, b) || b.ActiveConns() != 1 || b.Available() {
		t.Fatalf("b not in the trash with its connection: %v", trash)
	}
	// b was up and in IPVS: its notify_down runs.
	if s := f.rec.take(f.m); s != "down b" {
		t.Fatalf("scripts %q", s)
	}
	f.event(t, nv.Name, "c+")
	f.event(t, nv.Name, "e+")
	if got := dests(f.ctl, web); got != "a=3 c=1 d=1 e=1" {
		t.Fatalf("ipvs %q", got)
	}
	if s := f.rec.take(f.m); s != "up c up e" {
		t.Fatalf("scripts %q", s)
	}
}

// Thresholds and forwarding changes are edits too; a change between NAT
// and DR of a fwmark service's server moves it between its own port and 0.
func TestReloadDestConfig(t *testing.T) {
	f := newFixture(t, Options{})
	a := mkRS("a", 1)
	a.Port = 8080
	v := mkVS(a)
	v.Name, v.Keys = KeyName(mark), []service.Key{mark}
	f.apply(t, v)
	a.Dest.UThreshold, a.Dest.LThreshold = 100, 50
	v.Reals = []RealServer{a}
	f.apply(t, v)
	d := f.ctl.Snapshot().Get(mark).Dests
	if len(d) != 1 || d[0].Port != 8080 || d[0].Config().UThreshold != 100 {
		t.Fatalf("thresholds not edited: %+v", d[0].Config())
	}
	a.Dest.Fwd = service.Route
	v.Reals = []RealServer{a}
	f.apply(t, v)
	d = f.ctl.Snapshot().Get(mark).Dests
	if len(d) != 1 || d[0].Port != 0 || d[0].Fwd() != service.Route {
		t.Fatalf("dests after NAT -> DR: %v", d)
	}
}

// Services added with ipvsadm live beside the configuration's and are
// never touched, by reloads or by shutdown.
func TestIpvsadmServiceUntouched(t *testing.T) {
	f := newFixture(t, Options{})
	mustOK(t, f.ctl.AddService(web2, service.Config{Sched: "wlc"}))
	mustOK(t, f.ctl.AddDest(web2, rsAddr("z"), 443, service.DestConfig{Fwd: service.Route, Weight: 5}))
	other := f.ctl.Snapshot().Get(web2)
	f.apply(t, mkVS(mkRS("a", 1)))
	f.event(t, KeyName(web), "a-")
	f.apply(t, mkVS(mkRS("a", 2)))
	mustOK(t, f.m.Shutdown(t.Context()))
	if f.ctl.Snapshot().Get(web) != nil {
		t.Fatal("the manager's service survived shutdown")
	}
	if got := f.ctl.Snapshot().Get(web2); got != other {
		t.Fatal("the ipvsadm service was touched")
	}
}

// §7.6: a service deleted with ipvsadm is not re-added by a reload that
// does not change its virtual server; one that changes it re-creates it.
func TestDeletedBehindBack(t *testing.T) {
	f := newFixture(t, Options{})
	vs := mkVS(mkRS("a", 1), mkRS("b", 1), mkRS("c", 1))
	f.apply(t, vs)
	f.event(t, vs.Name, "c-")
	mustOK(t, f.ctl.DeleteService(web))
	f.apply(t, mkVS(mkRS("a", 1), mkRS("b", 1), mkRS("c", 1)))
	if got := dests(f.ctl, web); got != "-" {
		t.Fatalf("re-added by an unchanged reload: %q", got)
	}
	f.apply(t, mkVS(mkRS("a", 1), mkRS("b", 1), mkRS("c", 1), mkRS("d", 1)))
	if got := dests(f.ctl, web); got != "a=1 b=1 d=1" {
		t.Fatalf("after a changing reload: %q", got)
	}
	// A real server deleted with ipvsadm comes back when its health
	// changes (keepalived adds it on the way up, and an edit of a
	// missing destination adds it).
	mustOK(t, f.ctl.DeleteDest(web, rsAddr("a"), 80))
	f.apply(t, mkVS(mkRS("a", 1), mkRS("b", 1), mkRS("c", 1), mkRS("d", 1)))
	if got := dests(f.ctl, web); got != "b=1 d=1" {
		t.Fatalf("a re-added by an unchanged reload: %q", got)
	}
	f.event(t, vs.Name, "a-")
	f.event(t, vs.Name, "a+")
	if got := dests(f.ctl, web); got != "a=1 b=1 d=1" {
		t.Fatalf("a not back after down/up: %q", got)
	}
	mustOK(t, f.ctl.DeleteDest(web, rsAddr("b"), 80))
	f.event(t, vs.Name, "b+~4")
	if got := dests(f.ctl, web); got != "a=1 b=5 d=1" {
		t.Fatalf("an edit of a missing b did not add it: %q", got)
	}
}

// A service that exists when the manager creates it is adopted: edited
// to the configuration, its real servers edited or added, others left,
// and removed at shutdown like the manager's own.
func TestAdoptExistingService(t *testing.T) {
	f := newFixture(t, Options{})
	mustOK(t, f.ctl.AddService(web, service.Config{Sched: "wlc"}))
	mustOK(t, f.ctl.AddDest(web, rsAddr("a"), 80, service.DestConfig{Fwd: service.Route, Weight: 7}))
	mustOK(t, f.ctl.AddDest(web, rsAddr("z"), 80, service.DestConfig{Fwd: service.Route, Weight: 7}))
	if _, err := f.m.Apply([]VirtualServer{mkVS(mkRS("a", 1), mkRS("b", 2))}); err != nil {
		t.Fatal(err)
	}
	svc := f.ctl.Snapshot().Get(web)
	if svc.Config.Sched != "rr" {
		t.Fatalf("scheduler %q", svc.Config.Sched)
	}
	if got := dests(f.ctl, web); got != "a=1 b=2 z=7" {
		t.Fatalf("ipvs %q", got)
	}
	if findDest(f.ctl, web, "a").Fwd() != service.Masq {
		t.Fatal("a not edited to NAT")
	}
	if len(f.logs.records("adopting existing service")) != 1 {
		t.Fatal("adoption not logged")
	}
	mustOK(t, f.m.Shutdown(t.Context()))
	if f.ctl.Snapshot().Get(web) != nil {
		t.Fatal("adopted service not removed at shutdown")
	}
}

// A virtual_server_group: services added to or removed from the group at
// a reload are created with the alive servers or deleted; the others are
// not touched.
func TestReloadGroupKeys(t *testing.T) {
	f := newFixture(t, Options{})
	web3 := web2
	web3.Port = 8443
	g := mkVS(mkRS("a", 1), mkRS("b", 1))
	g.Name, g.Keys = "group web", []service.Key{web, web2}
	f.apply(t, g)
	f.event(t, g.Name, "b-")
	if dests(f.ctl, web) != "a=1" || dests(f.ctl, web2) != "a=1" {
		t.Fatalf("group services: %q %q", dests(f.ctl, web), dests(f.ctl, web2))
	}
	keep := f.ctl.Snapshot().Get(web2)
	g.Keys = []service.Key{web2, web3}
	d := f.apply(t, g)
	if !slices.Equal(d.ChangedVS, []string{g.Name}) {
		t.Fatalf("diff %+v", d)
	}
	if dests(f.ctl, web) != "-" || dests(f.ctl, web3) != "a=1" {
		t.Fatalf("after reload: web %q web3 %q", dests(f.ctl, web), dests(f.ctl, web3))
	}
	if f.ctl.Snapshot().Get(web2) != keep {
		t.Fatal("the unchanged member of the group was touched")
	}
	f.event(t, g.Name, "b+")
	if dests(f.ctl, web2) != "a=1 b=1" || dests(f.ctl, web3) != "a=1 b=1" {
		t.Fatalf("b not added to every member: %q %q", dests(f.ctl, web2), dests(f.ctl, web3))
	}
}

// Removing a serving sorry server at a reload reinstates the alive real
// servers (keepalived later than 2.2.7: reinstate_alive_rs).
func TestReloadSorryRemovedWhileServing(t *testing.T) {
	f := newFixture(t, Options{})
	vs := mkVS(mkRS("a", 1), mkRS("b", 1))
	vs.Quorum, vs.Sorry = 2, sorry()
	f.apply(t, vs)
	f.event(t, vs.Name, "b-")
	if got := dests(f.ctl, web); got != "s=1" {
		t.Fatalf("ipvs %q", got)
	}
	f.rec.take(f.m)
	vs.Sorry = nil
	f.apply(t, vs)
	if got := dests(f.ctl, web); got != "a=1" {
		t.Fatalf("ipvs %q", got)
	}
	if s := f.rec.take(f.m); s != "" {
		t.Fatalf("scripts %q", s)
	}
}

// A reload that moves the quorum re-evaluates it once, with the new
// figures.
func TestReloadQuorumChange(t *testing.T) {
	f := newFixture(t, Options{})
	vs := mkVS(mkRS("a", 1), mkRS("b", 1))
	vs.Sorry = sorry()
	f.apply(t, vs)
	f.rec.take(f.m)
	vs.Quorum = 3
	f.apply(t, vs)
	if got, s := dests(f.ctl, web), f.rec.take(f.m); got != "s=1" || s != "qdown" {
		t.Fatalf("quorum 3: ipvs %q scripts %q", got, s)
	}
	vs.Quorum = 1
	f.apply(t, vs)
	if got, s := dests(f.ctl, web), f.rec.take(f.m); got != "a=1 b=1" || s != "qup" {
		t.Fatalf("quorum 1: ipvs %q scripts %q", got, s)
	}
	// Removing a server below the quorum: quorum_down once, the sorry
	// server in (keepalived 2.2.7 runs quorum_down twice here).
	vs.Quorum = 2
	f.apply(t, vs)
	f.rec.take(f.m)
	vs.Reals = vs.Reals[:1]
	f.apply(t, vs)
	if got, s := dests(f.ctl, web), f.rec.take(f.m); got != "s=1" || s != "down b qdown" {
		t.Fatalf("b removed: ipvs %q scripts %q", got, s)
	}
}

// A virtual server removed by a reload goes with its services: notify_down
// for the servers that were up, quorum_down.
func TestReloadRemovedVS(t *testing.T) {
	f := newFixture(t, Options{})
	v1 := mkVS(mkRS("a", 1), mkRS("b", 1))
	v2 := mkVS(mkRS("c", 1))
	v2.Name, v2.Keys = KeyName(web2), []service.Key{web2}
	f.apply(t, v1, v2)
	f.event(t, v1.Name, "b-")
	a := findDest(f.ctl, web, "a")
	a.Bind(false, false)
	f.rec.take(f.m)
	d := f.apply(t, v2)
	if !slices.Equal(d.RemovedVS, []string{v1.Name}) || !slices.Equal(d.UnchangedVS, []string{v2.Name}) || len(d.RemovedRS) != 2 {
		t.Fatalf("diff %+v", d)
	}
	if f.ctl.Snapshot().Get(web) != nil || dests(f.ctl, web2) != "c=1" {
		t.Fatal("wrong services after the reload")
	}
	if !slices.Contains(f.ctl.Trash(), a) {
		t.Fatal("a's destination not kept in the trash for its connection")
	}
	if s := f.rec.take(f.m); s != "down a qdown" {
		t.Fatalf("scripts %q", s)
	}
}

// A service key that moves from one virtual server to another at a reload
// ends up with the new one's servers.
func TestReloadKeyMoves(t *testing.T) {
	f := newFixture(t, Options{})
	x := mkVS(mkRS("a", 1))
	x.Name = "x"
	f.apply(t, x)
	y := mkVS(mkRS("b", 1))
	y.Name = "y"
	d := f.apply(t, y)
	if !slices.Equal(d.RemovedVS, []string{"x"}) || !slices.Equal(d.AddedVS, []string{"y"}) {
		t.Fatalf("diff %+v", d)
	}
	if got := dests(f.ctl, web); got != "b=1" {
		t.Fatalf("ipvs %q", got)
	}
}

// Checker states migrate by ID; weight adjustments stay (an absolute
// misc_dynamic weight stays absolute when the configured weight changes).
func TestReloadCheckerMigration(t *testing.T) {
	f := newFixture(t, Options{})
	vs := mkVS(mkRS("a", 1), mkRS("b", 1), mkRS("c", 1))
	f.apply(t, vs)
	f.event(t, vs.Name, "a-")
	f.event(t, vs.Name, "b+=5")
	f.event(t, vs.Name, "c+~3")
	f.rec.take(f.m)
	// a gets a second checker: the failed one keeps it down.
	a := vs.Reals[0]
	a.Checkers = []Checker{{ID: "tcp"}, {ID: "http"}}
	vs.Reals[0] = a
	vs.Reals[1].Dest.Weight = 2
	vs.Reals[2].Dest.Weight = 2
	f.apply(t, vs)
	if got := dests(f.ctl, web); got != "b=5 c=5" {
		t.Fatalf("ipvs %q", got)
	}
	// The failed checker goes from the configuration: a is up.
	a.Checkers = []Checker{{ID: "http"}}
	vs.Reals[0] = a
	f.apply(t, vs)
	if got, s := dests(f.ctl, web), f.rec.take(f.m); got != "a=1 b=5 c=5" || s != "up a" {
		t.Fatalf("ipvs %q scripts %q", got, s)
	}
}

func TestApplyValidation(t *testing.T) {
	dupRS := mkVS(mkRS("a", 1), mkRS("a", 2))
	dupCk := mkVS(mkRS("a", 1))
	dupCk.Reals[0].Checkers = []Checker{{ID: "x"}, {ID: "x"}}
	noKeys := mkVS()
	noKeys.Keys = nil
	negW := mkVS(mkRS("a", -1))
	negQ := mkVS()
	negQ.Quorum = -1
	mark6 := mark
	mark6.Family = service.IPv6
	fwDup1, fwDup2 := mkVS(), mkVS()
	fwDup1.Name, fwDup1.Keys = "m1", []service.Key{mark}
	fwDup2.Name, fwDup2.Keys = "m2", []service.Key{{Family: service.IPv4, FWMark: 7, Port: 9}}
	tests := []struct {
		name string
		vss  []VirtualServer
	}{
		{"no name", []VirtualServer{{Keys: []service.Key{web}}}},
		{"same name twice", []VirtualServer{mkVS(), mkVS()}},
		{"no service", []VirtualServer{noKeys}},
		{"service in two virtual servers", []VirtualServer{fwDup1, fwDup2}},
		{"real server twice", []VirtualServer{dupRS}},
		{"checker ID twice", []VirtualServer{dupCk}},
		{"negative weight", []VirtualServer{negW}},
		{"negative quorum", []VirtualServer{negQ}},
	}
	for _, tt := range tests {
		f := newFixture(t, Options{})
		if _, err := f.m.Apply(tt.vss); !errors.Is(err, ErrConfig) {
			t.Errorf("%s: err %v", tt.name, err)
		}
		if f.ctl.Snapshot().Len() != 0 {
			t.Errorf("%s: an invalid configuration changed IPVS", tt.name)
		}
	}
	// The same mark in two families is two services.
	ok1, ok2 := fwDup1, fwDup1
	ok2.Name, ok2.Keys = "m6", []service.Key{mark6}
	f := newFixture(t, Options{})
	f.apply(t, ok1, ok2)
}

// Control's errors are reported, and the rest of the configuration is
// still applied.
func TestApplyControlErrors(t *testing.T) {
	f := newFixture(t, Options{})
	bad := mkVS(mkRS("a", 1))
	bad.Config.Sched = "bogus"
	good := mkVS(mkRS("b", 1))
	good.Name, good.Keys = KeyName(web2), []service.Key{web2}
	_, err := f.m.Apply([]VirtualServer{bad, good})
	if !errors.Is(err, control.ErrSchedNotFound) {
		t.Fatalf("err %v", err)
	}
	if f.ctl.Snapshot().Get(web) != nil || dests(f.ctl, web2) != "b=1" {
		t.Fatal("wrong services")
	}
	// A reload that fixes it creates it.
	bad.Config.Sched = "rr"
	f.apply(t, bad, good)
	if got := dests(f.ctl, web); got != "a=1" {
		t.Fatalf("ipvs %q", got)
	}
}
