package vrrpd

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"

	"golvs/internal/keepalived"
	"golvs/internal/vrrp"
)

// Addresses of the fake LAN (RFC 2544's 198.18.0.0/15).
const (
	addrA = "198.18.0.1"
	addrB = "198.18.0.2"
	vip1  = "198.18.0.100"
)

// parseConf parses a keepalived.conf text.
func parseConf(t *testing.T, text string) *keepalived.Config {
	t.Helper()
	cfg, diags, err := keepalived.ParseBytes("keepalived.conf", []byte(text), keepalived.Options{Hostname: "test"})
	if err != nil {
		t.Fatalf("parse: %v %v\n%s", err, diags, text)
	}
	return cfg
}

// instance is a vrrp_instance block on eth0 with VIP vip1.
func instance(name string, vrid, prio int, extra string) string {
	return fmt.Sprintf(`vrrp_instance %s {
    interface eth0
    virtual_router_id %d
    priority %d
    advert_int 1
    virtual_ipaddress {
        %s/32
    }
%s
}
`, name, vrid, prio, vip1, extra)
}

// testLogger writes the daemon's log to the test's.
func testLogger(t *testing.T, name string) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug})).With("host", name)
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimSuffix(string(b), "\n"))
	return len(b), nil
}

// transitions records OnState calls with their (synctest) time.
type transitions struct {
	mu  sync.Mutex
	log []transition
}

type transition struct {
	at       time.Time
	instance string
	state    vrrp.State
}

func (tr *transitions) on(inst string, s vrrp.State) {
	tr.mu.Lock()
	tr.log = append(tr.log, transition{time.Now(), inst, s})
	tr.mu.Unlock()
}

// last returns when instance last entered state (zero if never).
func (tr *transitions) last(inst string, s vrrp.State) time.Time {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	for i := len(tr.log) - 1; i >= 0; i-- {
		if tr.log[i].instance == inst && tr.log[i].state == s {
			return tr.log[i].at
		}
	}
	return time.Time{}
}

func (tr *transitions) states(inst string) []string {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	var out []string
	for _, x := range tr.log {
		if x.instance == inst {
			out = append(out, x.state.String())
		}
	}
	return out
}

// scripts fakes the script runner: it records every run and answers with
// result (nil: success).
type scripts struct {
	mu     sync.Mutex
	runs   [][]string
	result func(args []string) error
}

func (s *scripts) run(_ context.Context, args []string, _ *keepalived.Script) error {
	s.mu.Lock()
	s.runs = append(s.runs, slices.Clone(args))
	f := s.result
	s.mu.Unlock()
	if f != nil {
		return f(args)
	}
	return nil
}

func (s *scripts) lines() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, r := range s.runs {
		out = append(out, strings.Join(r, " "))
	}
	return out
}

// director is one daemon on a fake host.
type director struct {
	h  *fakeHost
	d  *Daemon
	tr *transitions
	sc *scripts
}

func startDirector(t *testing.T, h *fakeHost, conf string) *director {
	t.Helper()
	x := &director{h: h, tr: &transitions{}, sc: &scripts{}}
	d, err := newDaemon(Options{OnState: x.tr.on}, testLogger(t, h.name), h.sys())
	if err != nil {
		t.Fatal(err)
	}
	d.runScript = x.sc.run
	x.d = d
	if err := d.Apply(parseConf(t, conf)); err != nil {
		t.Fatal(err)
	}
	return x
}

func (x *director) close(t *testing.T) {
	t.Helper()
	if err := x.d.Close(context.Background()); err != nil {
		t.Error(err)
	}
}

func (x *director) status(t *testing.T, inst string) Status {
	t.Helper()
	for _, s := range x.d.Status() {
		if s.Instance == inst {
			return s
		}
	}
	t.Fatalf("%s: no instance %s", x.h.name, inst)
	return Status{}
}

// wait lets the bubble run for d.
func wait(d time.Duration) {
	time.Sleep(d)
	synctest.Wait()
}

// TestElectionFailover: two directors elect the higher priority after
// its Master_Down_Interval; it adds the VIP and sends 5 gratuitous ARPs
// at once and 5 more garp_master_delay (5 s) later; the backup sees it as
// master. When the master dies, the backup takes over exactly
// Master_Down_Interval (3 × 1 s + (256-100)/256 s = 3.609375 s) after
// the last advert it received.
func TestElectionFailover(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		lan := newLAN()
		ha, hb := lan.host("a", 1, addrA), lan.host("b", 2, addrB)
		t0 := time.Now()
		a := startDirector(t, ha, instance("VI_1", 51, 150, ""))
		b := startDirector(t, hb, instance("VI_1", 51, 100, ""))
		wait(10 * time.Second)

		sa, sb := a.status(t, "VI_1"), b.status(t, "VI_1")
		if sa.State != vrrp.Master || sb.State != vrrp.Backup {
			t.Fatalf("states a=%v b=%v, want MASTER BACKUP", sa.State, sb.State)
		}
		// Master_Down_Interval of priority 150: 3 s + 106/256 s.
		if got, want := a.tr.last("VI_1", vrrp.Master).Sub(t0), 3414062*time.Microsecond; got != want {
			t.Errorf("a became MASTER after %v, want %v", got, want)
		}
		if got, want := ha.vips(), vip1+"/32@eth0"; got != want {
			t.Errorf("a's VIPs %q, want %q", got, want)
		}
		if got := hb.vips(); got != "" {
			t.Errorf("b's VIPs %q, want none", got)
		}
		if sb.Master != netip.MustParseAddr(addrA) {
			t.Errorf("b sees master %v, want %v", sb.Master, addrA)
		}
		var garps []time.Duration
		for _, an := range ha.announcements() {
			garps = append(garps, an.at.Sub(t0).Round(time.Millisecond))
		}
		want := slices.Repeat([]time.Duration{3414 * time.Millisecond}, 5)
		want = append(want, slices.Repeat([]time.Duration{8414 * time.Millisecond}, 5)...)
		if diff := cmp.Diff(want, garps); diff != "" {
			t.Errorf("a's gratuitous ARPs (-want +got):\n%s", diff)
		}
		if sa.AdvertsSent < 6 || sb.AdvertsReceived < 6 || sb.AdvertsSent != 0 {
			t.Errorf("adverts: a sent %d, b received %d and sent %d", sa.AdvertsSent, sb.AdvertsReceived, sb.AdvertsSent)
		}

		// SIGKILL of a: its addresses stay, it sends nothing more.
		ha.crash()
		crash := time.Now()
		wait(5 * time.Second)
		sent := lan.advertsFrom("a", t0)
		lastA := sent[len(sent)-1].at
		if got, want := b.tr.last("VI_1", vrrp.Master).Sub(lastA), 3609375*time.Microsecond; got != want {
			t.Errorf("b took over %v after a's last advert, want %v", got, want)
		}
		t.Logf("takeover %v after the crash", b.tr.last("VI_1", vrrp.Master).Sub(crash))
		if got, want := hb.vips(), vip1+"/32@eth0"; got != want {
			t.Errorf("b's VIPs %q, want %q", got, want)
		}
		if n := len(hb.announcements()); n != 5 {
			t.Errorf("b sent %d gratuitous ARPs at once, want 5", n)
		}
		a.close(t)
		b.close(t)
	})
}

// TestShutdownPriorityZero: SIGTERM of the master (Close) sends a
// priority-0 advert, removes the VIP and runs notify_stop and notify;
// the backup takes over after its Skew_Time ((256-100)/256 s).
func TestShutdownPriorityZero(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		lan := newLAN()
		ha, hb := lan.host("a", 1, addrA), lan.host("b", 2, addrB)
		notify := `    notify_stop "/etc/stop.sh x"
    notify_master /etc/master.sh
    notify "/etc/notify.sh y"`
		a := startDirector(t, ha, instance("VI_1", 51, 150, notify))
		b := startDirector(t, hb, instance("VI_1", 51, 100, ""))
		wait(5 * time.Second)
		stop := time.Now()
		a.close(t)
		synctest.Wait()
		sent := lan.advertsFrom("a", stop)
		if len(sent) != 1 || sent[0].prio != 0 {
			t.Errorf("a sent %v on shutdown, want one priority-0 advert", sent)
		}
		if got := ha.vips(); got != "" {
			t.Errorf("a's VIPs after shutdown %q, want none", got)
		}
		wait(2 * time.Second)
		if got, want := b.tr.last("VI_1", vrrp.Master).Sub(stop), 609375*time.Microsecond; got != want {
			t.Errorf("b took over %v after a's shutdown, want Skew_Time %v", got, want)
		}
		want := []string{
			"/etc/notify.sh y INSTANCE VI_1 BACKUP 150",
			"/etc/master.sh",
			"/etc/notify.sh y INSTANCE VI_1 MASTER 150",
			"/etc/stop.sh x",
			"/etc/notify.sh y INSTANCE VI_1 STOP 150",
		}
		if diff := cmp.Diff(want, a.sc.lines()); diff != "" {
			t.Errorf("a's notify scripts (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff([]string{"BACKUP", "MASTER", "STOP"}, a.tr.states("VI_1")); diff != "" {
			t.Errorf("a's OnState calls (-want +got):\n%s", diff)
		}
		b.close(t)
	})
}

// TestRestartPreempt: the old master, killed and restarted, removes the
// VIP it left on its interface, starts BACKUP, and with preemption takes
// the VIP back (the other releases it); with nopreempt it stays BACKUP.
func TestRestartPreempt(t *testing.T) {
	for _, nopreempt := range []bool{false, true} {
		t.Run(fmt.Sprintf("nopreempt=%v", nopreempt), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				lan := newLAN()
				ha, hb := lan.host("a", 1, addrA), lan.host("b", 2, addrB)
				extra := ""
				if nopreempt {
					extra = "    nopreempt"
				}
				a := startDirector(t, ha, instance("VI_1", 51, 150, extra))
				b := startDirector(t, hb, instance("VI_1", 51, 100, ""))
				wait(5 * time.Second)
				ha.crash()
				wait(5 * time.Second)
				if s := b.status(t, "VI_1"); s.State != vrrp.Master {
					t.Fatalf("b is %v after a's crash, want MASTER", s.State)
				}
				a.close(t) // the crashed daemon's goroutines
				// SIGKILL left the VIP on a's interface.
				ha.sys().AddAddr(vipSpec{Prefix: netip.MustParsePrefix(vip1 + "/32"), Dev: "eth0"})
				ha.revive()
				restart := time.Now()
				a = startDirector(t, ha, instance("VI_1", 51, 150, extra))
				synctest.Wait()
				if got := ha.vips(); got != "" {
					t.Errorf("a's VIPs right after restart %q, want the leftover removed", got)
				}
				wait(10 * time.Second)
				sa, sb := a.status(t, "VI_1"), b.status(t, "VI_1")
				if nopreempt {
					if sa.State != vrrp.Backup || sb.State != vrrp.Master || ha.vips() != "" {
						t.Errorf("nopreempt: a %v (VIPs %q), b %v, want a BACKUP without VIPs, b MASTER", sa.State, ha.vips(), sb.State)
					}
				} else {
					if sa.State != vrrp.Master || sb.State != vrrp.Backup || hb.vips() != "" || ha.vips() == "" {
						t.Errorf("preempt: a %v (VIPs %q), b %v (VIPs %q), want a MASTER with the VIP, b BACKUP without", sa.State, ha.vips(), sb.State, hb.vips())
					}
					// a's down timer ignores b's lower-priority adverts.
					if got, want := a.tr.last("VI_1", vrrp.Master).Sub(restart), 3414062*time.Microsecond; got != want {
						t.Errorf("a preempted after %v, want %v", got, want)
					}
				}
				// added as master, removed by Close of the crashed
				// daemon, put back (the SIGKILL), removed at restart.
				v := vip1 + "/32"
				want := []string{"add " + v, "del " + v, "add " + v, "del " + v}
				if !nopreempt {
					want = append(want, "add "+v)
				}
				if diff := cmp.Diff(want, ha.addrEvents()); diff != "" {
					t.Errorf("a's address changes (-want +got):\n%s", diff)
				}
				a.close(t)
				b.close(t)
			})
		})
	}
}

// TestTrackInterface: an unweighted track_interface going down puts the
// instance in FAULT (priority 0 advert, VIPs removed: the backup takes
// over in Skew_Time), coming back up makes it BACKUP (then MASTER again
// by preemption); a weighted one changes the advertised priority.
func TestTrackInterface(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		lan := newLAN()
		ha, hb := lan.host("a", 1, addrA), lan.host("b", 2, addrB)
		for _, h := range []*fakeHost{ha, hb} {
			h.links["eth1"] = &linkInfo{Name: "eth1", Index: 3, MAC: []byte{2, 0, 0, 0, 1, 1}, Up: true}
			h.links["eth2"] = &linkInfo{Name: "eth2", Index: 4, MAC: []byte{2, 0, 0, 0, 1, 2}, Up: true}
		}
		track := `    track_interface {
        eth1
        eth2 weight -60
    }`
		a := startDirector(t, ha, instance("VI_1", 51, 150, track))
		b := startDirector(t, hb, instance("VI_1", 51, 100, ""))
		wait(5 * time.Second)

		down := time.Now()
		ha.setLink("eth1", false)
		synctest.Wait()
		sa := a.status(t, "VI_1")
		if sa.State != vrrp.Fault || ha.vips() != "" || !slices.Equal(sa.Faults, []string{"interface eth1 down"}) {
			t.Errorf("eth1 down: a %v, VIPs %q, faults %q; want FAULT, none, [interface eth1 down]", sa.State, ha.vips(), sa.Faults)
		}
		if sent := lan.advertsFrom("a", down); len(sent) != 1 || sent[0].prio != 0 {
			t.Errorf("a sent %v entering FAULT, want one priority-0 advert", sent)
		}
		wait(time.Second)
		if got, want := b.tr.last("VI_1", vrrp.Master).Sub(down), 609375*time.Microsecond; got != want {
			t.Errorf("b took over %v after a's fault, want %v", got, want)
		}
		ha.setLink("eth1", true)
		wait(5 * time.Second)
		if s := a.status(t, "VI_1"); s.State != vrrp.Master {
			t.Errorf("eth1 up again: a is %v, want MASTER (preempting)", s.State)
		}

		// eth2 down: 150 - 60 = 90 < 100, b preempts.
		ha.setLink("eth2", false)
		wait(6 * time.Second)
		sa, sb := a.status(t, "VI_1"), b.status(t, "VI_1")
		if sa.EffectivePriority != 90 || sa.State != vrrp.Backup || sb.State != vrrp.Master {
			t.Errorf("eth2 down: a priority %d %v, b %v; want 90 BACKUP, MASTER", sa.EffectivePriority, sa.State, sb.State)
		}
		a.close(t)
		b.close(t)
	})
}

// TestTrackScript: a vrrp_script with weight, rise and fall; and an
// unweighted one with init_fail that keeps the instance in FAULT until it
// succeeds.
func TestTrackScript(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		lan := newLAN()
		ha := lan.host("a", 1, addrA)
		conf := `vrrp_script chk_w {
    script "/bin/check w"
    interval 2
    weight 20
    rise 2
    fall 3
}
vrrp_script chk_init {
    script /bin/check_init
    interval 1
    init_fail
}
` + instance("VI_1", 51, 100, `    track_script {
        chk_w
        chk_init
    }`)
		var mu sync.Mutex
		okW, okInit := true, false
		x := &director{h: ha, tr: &transitions{}, sc: &scripts{}}
		x.sc.result = func(args []string) error {
			mu.Lock()
			defer mu.Unlock()
			if (args[0] == "/bin/check" && okW) || (args[0] == "/bin/check_init" && okInit) {
				return nil
			}
			return errors.New("exit status 1")
		}
		d, err := newDaemon(Options{OnState: x.tr.on}, testLogger(t, "a"), ha.sys())
		if err != nil {
			t.Fatal(err)
		}
		d.runScript = x.sc.run
		x.d = d
		if err := d.Apply(parseConf(t, conf)); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		s := x.status(t, "VI_1")
		if s.State != vrrp.Fault || s.EffectivePriority != 120 {
			t.Errorf("start: %v priority %d, want FAULT (init_fail) with 100+20", s.State, s.EffectivePriority)
		}
		mu.Lock()
		okInit = true
		mu.Unlock()
		wait(1500 * time.Millisecond)
		if s := x.status(t, "VI_1"); s.State != vrrp.Backup {
			t.Errorf("chk_init succeeded: %v, want BACKUP", s.State)
		}
		// fall 3: two failures keep the weight, the third removes it.
		mu.Lock()
		okW = false
		mu.Unlock()
		wait(4 * time.Second) // chk_w runs at 2 and 4 s (its last success at 0)
		if s := x.status(t, "VI_1"); s.EffectivePriority != 120 {
			t.Errorf("2 failures (fall 3): priority %d, want 120", s.EffectivePriority)
		}
		wait(2 * time.Second)
		if s := x.status(t, "VI_1"); s.EffectivePriority != 100 {
			t.Errorf("3 failures: priority %d, want 100", s.EffectivePriority)
		}
		mu.Lock()
		okW = true
		mu.Unlock()
		wait(2 * time.Second)
		if s := x.status(t, "VI_1"); s.EffectivePriority != 100 {
			t.Errorf("1 success (rise 2): priority %d, want 100", s.EffectivePriority)
		}
		wait(2 * time.Second)
		if s := x.status(t, "VI_1"); s.EffectivePriority != 120 {
			t.Errorf("2 successes: priority %d, want 120", s.EffectivePriority)
		}
		x.close(t)
	})
}

// TestRejects: adverts with a TTL other than 255, a bad checksum, another
// VRID, a wrong password are counted by reason and change nothing; our
// own adverts looped back are ignored.
func TestRejects(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		lan := newLAN()
		ha := lan.host("a", 1, addrA)
		auth := `    authentication {
        auth_type PASS
        auth_pass secret
    }`
		a := startDirector(t, ha, instance("VI_1", 51, 100, auth))
		synctest.Wait()
		src, dst := netip.MustParseAddr(addrB), vrrp.MulticastIPv4
		mk := func(vrid, prio uint8, pass string) []byte {
			var ad vrrp.Advert
			ad.Version, ad.VRID, ad.Priority, ad.Interval, ad.AuthType = 2, vrid, prio, 1, vrrp.AuthPass
			copy(ad.AuthData[:], pass)
			if err := ad.SetAddrs([]netip.Addr{netip.MustParseAddr(vip1)}); err != nil {
				t.Fatal(err)
			}
			return vrrp.Append(nil, ad, src, dst)
		}
		good := mk(51, 200, "secret")
		bad := slices.Clone(good)
		bad[6] ^= 0xff
		in := func(b []byte, ttl int, from netip.Addr) { ha.inject(b, pktInfo{Src: from, Dst: dst, TTL: ttl}) }
		in(good, 64, src)
		in(bad, 255, src)
		in(mk(52, 200, "secret"), 255, src)
		in(mk(51, 200, "wrong"), 255, src)
		in(good[:5], 255, src)
		in(good, 255, netip.MustParseAddr(addrA)) // our own
		wait(100 * time.Millisecond)
		s := a.status(t, "VI_1")
		want := map[string]uint64{"ttl": 1, "checksum": 1, "vrid": 1, "auth_failure": 1, "too_short": 1}
		if diff := cmp.Diff(want, s.Rejects); diff != "" {
			t.Errorf("rejects (-want +got):\n%s", diff)
		}
		if s.AdvertsReceived != 0 {
			t.Errorf("received %d, want 0", s.AdvertsReceived)
		}
		// A good advert from a higher priority keeps a BACKUP past its
		// down interval.
		for range 5 {
			in(good, 255, src)
			wait(time.Second)
		}
		if s := a.status(t, "VI_1"); s.State != vrrp.Backup || s.AdvertsReceived != 5 || s.Master != src {
			t.Errorf("after 5 good adverts: %v, received %d, master %v; want BACKUP, 5, %v", s.State, s.AdvertsReceived, s.Master, src)
		}
		a.close(t)
	})
}

// TestSyncGroup: the members of a vrrp_sync_group go MASTER together, a
// fault of one takes the other to FAULT, and the group's notify gets
// "GROUP name STATE 0".
func TestSyncGroup(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		lan := newLAN()
		ha := lan.host("a", 1, addrA)
		ha.links["eth1"] = &linkInfo{Name: "eth1", Index: 3, MAC: []byte{2, 0, 0, 0, 1, 1}, Up: true}
		ha.addrs["eth1"] = []netip.Prefix{netip.MustParsePrefix("198.18.1.1/24")}
		conf := `vrrp_sync_group G {
    group {
        OUT
        IN
    }
    notify /bin/gnotify
}
vrrp_instance OUT {
    interface eth0
    virtual_router_id 51
    priority 100
    virtual_ipaddress {
        198.18.0.100/32
    }
}
vrrp_instance IN {
    interface eth1
    virtual_router_id 52
    priority 100
    virtual_ipaddress {
        198.18.1.100/32
    }
}
`
		a := startDirector(t, ha, conf)
		wait(5 * time.Second)
		if o, i := a.status(t, "OUT"), a.status(t, "IN"); o.State != vrrp.Master || i.State != vrrp.Master || o.Group != "G" {
			t.Fatalf("OUT %v, IN %v (group %q), want both MASTER in G", o.State, i.State, o.Group)
		}
		if got, want := ha.vips(), "198.18.0.100/32@eth0 198.18.1.100/32@eth1"; got != want {
			t.Errorf("VIPs %q, want %q", got, want)
		}
		ha.setLink("eth1", false)
		synctest.Wait()
		if o, i := a.status(t, "OUT"), a.status(t, "IN"); o.State != vrrp.Fault || i.State != vrrp.Fault || ha.vips() != "" {
			t.Errorf("eth1 down: OUT %v, IN %v, VIPs %q; want both FAULT, none", o.State, i.State, ha.vips())
		}
		a.close(t)
		want := []string{"/bin/gnotify GROUP G BACKUP 0", "/bin/gnotify GROUP G MASTER 0", "/bin/gnotify GROUP G FAULT 0", "/bin/gnotify GROUP G STOP 0"}
		if diff := cmp.Diff(want, a.sc.lines()); diff != "" {
			t.Errorf("group notify (-want +got):\n%s", diff)
		}
	})
}

// TestApplyReload: a reload leaves an unchanged instance alone (moving
// its block in the file too), restarts a changed one, stops a removed one
// (priority 0, VIP removed, notify_deleted with DELETED) and starts a new
// one.
func TestApplyReload(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		lan := newLAN()
		ha := lan.host("a", 1, addrA)
		keep := func(vip string) string {
			return fmt.Sprintf(`vrrp_instance KEEP {
    interface eth0
    virtual_router_id 61
    priority 150
    virtual_ipaddress {
        %s/32
    }
}
`, vip)
		}
		gone := `vrrp_instance GONE {
    interface eth0
    virtual_router_id 62
    priority 150
    virtual_ipaddress {
        198.18.0.62/32
    }
    notify_deleted /bin/deleted
    notify /bin/any
}
`
		change := func(prio int) string {
			return fmt.Sprintf(`vrrp_instance CHANGE {
    interface eth0
    virtual_router_id 63
    priority %d
    virtual_ipaddress {
        198.18.0.63/32
    }
}
`, prio)
		}
		a := startDirector(t, ha, keep("198.18.0.61")+gone+change(150))
		wait(5 * time.Second)
		for _, n := range []string{"KEEP", "GONE", "CHANGE"} {
			if s := a.status(t, n); s.State != vrrp.Master {
				t.Fatalf("%s is %v, want MASTER", n, s.State)
			}
		}
		before := a.status(t, "KEEP")
		reload := time.Now()
		// KEEP moves to the end of the file (other lines): unchanged.
		if err := a.d.Apply(parseConf(t, "\n\n"+change(120)+`vrrp_instance NEW {
    interface eth0
    virtual_router_id 64
    priority 150
    virtual_ipaddress {
        198.18.0.64/32
    }
}
`+keep("198.18.0.61"))); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		after := a.status(t, "KEEP")
		if after.Transitions != before.Transitions || after.State != vrrp.Master {
			t.Errorf("KEEP touched by the reload: %d transitions, %v; before %d", after.Transitions, after.State, before.Transitions)
		}
		var names []string
		for _, s := range a.d.Status() {
			names = append(names, s.Instance+"="+s.State.String())
		}
		if diff := cmp.Diff([]string{"CHANGE=BACKUP", "KEEP=MASTER", "NEW=BACKUP"}, names); diff != "" {
			t.Errorf("instances after reload (-want +got):\n%s", diff)
		}
		var prio0 []uint8
		for _, ad := range lan.advertsFrom("a", reload) {
			if ad.prio == 0 {
				prio0 = append(prio0, ad.vrid)
			}
		}
		slices.Sort(prio0)
		if diff := cmp.Diff([]uint8{62, 63}, prio0); diff != "" {
			t.Errorf("priority-0 adverts at reload by VRID (-want +got):\n%s", diff)
		}
		if got, want := ha.vips(), "198.18.0.61/32@eth0"; got != want {
			t.Errorf("VIPs right after reload %q, want %q", got, want)
		}
		wait(5 * time.Second)
		if got, want := ha.vips(), "198.18.0.61/32@eth0 198.18.0.63/32@eth0 198.18.0.64/32@eth0"; got != want {
			t.Errorf("VIPs after reload %q, want %q", got, want)
		}
		want := []string{"/bin/any INSTANCE GONE BACKUP 150", "/bin/any INSTANCE GONE MASTER 150", "/bin/deleted", "/bin/any INSTANCE GONE DELETED 150"}
		if diff := cmp.Diff(want, a.sc.lines()); diff != "" {
			t.Errorf("GONE's scripts (-want +got):\n%s", diff)
		}
		a.close(t)
	})
}

// TestApplyErrors: an instance whose interface is missing is reported and
// left out; the others run; Apply after Close fails.
func TestApplyErrors(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		lan := newLAN()
		ha := lan.host("a", 1, addrA)
		bad := strings.Replace(instance("BAD", 52, 100, ""), "eth0", "eth9", 1)
		x := &director{h: ha, tr: &transitions{}, sc: &scripts{}}
		d, err := newDaemon(Options{}, testLogger(t, "a"), ha.sys())
		if err != nil {
			t.Fatal(err)
		}
		x.d = d
		err = d.Apply(parseConf(t, instance("GOOD", 51, 100, "")+bad))
		if err == nil || !strings.Contains(err.Error(), "eth9") {
			t.Errorf("Apply: %v, want an error about eth9", err)
		}
		if st := d.Status(); len(st) != 1 || st[0].Instance != "GOOD" {
			t.Errorf("running %v, want GOOD alone", st)
		}
		x.close(t)
		if err := d.Apply(parseConf(t, instance("GOOD", 51, 100, ""))); !errors.Is(err, ErrClosed) {
			t.Errorf("Apply after Close: %v, want ErrClosed", err)
		}
	})
}

// TestUnicast: two directors that know each other by unicast_peer elect
// and fail over as multicast ones do; an advert from an address that is
// no peer is refused with check_unicast_src.
func TestUnicast(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		lan := newLAN()
		ha, hb := lan.host("a", 1, addrA), lan.host("b", 2, addrB)
		peer := func(self, other string) string {
			return fmt.Sprintf("    unicast_src_ip %s\n    unicast_peer {\n        %s\n    }\n    check_unicast_src", self, other)
		}
		a := startDirector(t, ha, instance("VI_1", 51, 150, peer(addrA, addrB)))
		b := startDirector(t, hb, instance("VI_1", 51, 100, peer(addrB, addrA)))
		wait(5 * time.Second)
		if sa, sb := a.status(t, "VI_1"), b.status(t, "VI_1"); sa.State != vrrp.Master || sb.State != vrrp.Backup || !sa.Unicast {
			t.Fatalf("a %v, b %v (unicast %v), want MASTER, BACKUP, unicast", sa.State, sb.State, sa.Unicast)
		}
		for _, ad := range lan.advertsFrom("a", time.Time{}) {
			if ad.dst != netip.MustParseAddr(addrB) {
				t.Fatalf("a sent an advert to %v, want %v only", ad.dst, addrB)
			}
		}
		var ad vrrp.Advert
		ad.Version, ad.VRID, ad.Priority, ad.Interval = 2, 51, 200, 1
		ad.SetAddrs([]netip.Addr{netip.MustParseAddr(vip1)})
		stranger := netip.MustParseAddr("198.18.0.66")
		hb.inject(vrrp.Append(nil, ad, stranger, netip.MustParseAddr(addrB)), pktInfo{Src: stranger, Dst: netip.MustParseAddr(addrB), TTL: 64})
		synctest.Wait()
		if got := b.status(t, "VI_1").Rejects["not_peer"]; got != 1 {
			t.Errorf("not_peer rejects %d, want 1", got)
		}
		ha.crash()
		wait(5 * time.Second)
		if s := b.status(t, "VI_1"); s.State != vrrp.Master {
			t.Errorf("b is %v after a's crash, want MASTER", s.State)
		}
		a.close(t)
		b.close(t)
	})
}

// TestStartupDelay: vrrp_startup_delay holds the instances in INIT at
// the first start (not at reloads); Close during the delay stops them
// without a transition.
func TestStartupDelay(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		lan := newLAN()
		ha := lan.host("a", 1, addrA)
		conf := "global_defs {\n    vrrp_startup_delay 2\n}\n" + instance("VI_1", 51, 100, "")
		a := startDirector(t, ha, conf)
		wait(1900 * time.Millisecond)
		if s := a.status(t, "VI_1"); s.State != vrrp.Init {
			t.Errorf("during the startup delay: %v, want INIT", s.State)
		}
		wait(200 * time.Millisecond)
		if s := a.status(t, "VI_1"); s.State != vrrp.Backup {
			t.Errorf("after the startup delay: %v, want BACKUP", s.State)
		}
		a.close(t)

		b := startDirector(t, ha, conf)
		wait(time.Second)
		b.close(t)
		if got := b.tr.states("VI_1"); len(got) != 0 {
			t.Errorf("closed during the delay: transitions %v, want none", got)
		}
	})
}
