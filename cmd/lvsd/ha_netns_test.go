package main

// The high-availability test: two lvsd directors, master and backup, with
// VRRP moving the VIPs and connection sync copying the connections, and a
// client holding long-lived TCP connections through a NAT service while
// the master is killed.
//
//	client cl  c0 198.18.4.1/24 ─┐
//	                             │ bridge front (namespace hsw)
//	director A  f0 198.18.4.2  ──┤  VIP 198.18.4.10 (VRRP)
//	director B  f0 198.18.4.3  ──┘
//	director A  b0 198.18.5.2  ──┐  gateway VIP 198.18.5.254 (VRRP)
//	director B  b0 198.18.5.3  ──┤ bridge back (namespace hsw)
//	rs1..rs3   eth0 198.18.5.11-13 ─┘  default route via 198.18.5.254
//
// Connection sync runs on the back LAN. Each director reads its own
// keepalived.conf: one VRRP instance on the front interface holding both
// VIPs (the gateway on the back interface), lvs_sync_daemon following it,
// and a NAT virtual server VIP:7000 over the servers' line echo.

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golvs/internal/realserver/nstest"
)

const (
	haVIP     = "198.18.4.10"
	haGateway = "198.18.5.254"
	haPort    = "7000"
)

func haRS(i int) string { return fmt.Sprintf("198.18.5.%d", 11+i) }

// haDirector is one director of the HA topology.
type haDirector struct {
	method string // lvs_method: NAT (default), DR or TUN
	name   string
	ns     *nstest.NS
	front  string // its address on the front LAN
	conf   string
	work   string
	proc   *dpProc
	prio   int
}

// haTopo is the HA test bed.
type haTopo struct {
	*dpTopo // binaries and helpers (its own namespaces unused)
	cl, sw  *nstest.NS
	dirs    [2]*haDirector
	rs      [3]*nstest.NS
}

func newHATopo(t *testing.T) *haTopo {
	dpTools(t)
	x := &haTopo{dpTopo: &dpTopo{t: t, work: t.TempDir()}}
	bins := t.TempDir()
	if raceEnabled {
		x.lvsdBin = goBuild(t, bins, "lvsd", ".", "-race")
	} else {
		x.lvsdBin = goBuild(t, bins, "lvsd", ".")
	}
	x.helper = goBuild(t, bins, "nshelper", "./testdata/nshelper")
	x.ipvsadm = goBuild(t, bins, "ipvsadm", "../ipvsadm")
	x.cl, x.sw = nstest.New(t, "hcl"), nstest.New(t, "hsw")
	for _, br := range []string{"front", "back"} {
		x.sw.IP(t, "link", "add", br, "type", "bridge", "mcast_snooping", "0")
		x.sw.IP(t, "link", "set", br, "up")
	}
	port := func(name, br string) { x.sw.IP(t, "link", "set", name, "master", br) }
	// The switch also routes between the LANs (198.18.4.254 and
	// 198.18.5.253): the way DR and TUN servers' answers reach the
	// client without a director.
	x.sw.IP(t, "addr", "add", "198.18.4.254/24", "dev", "front")
	x.sw.IP(t, "addr", "add", "198.18.5.253/24", "dev", "back")
	x.sw.Sysctl(t, "net/ipv4/ip_forward", "1")
	nstest.Veth(t, x.cl, "c0", "198.18.4.1/24", x.sw, "pc0", "")
	port("pc0", "front")
	for i, name := range []string{"A", "B"} {
		d := &haDirector{name: name, ns: nstest.New(t, "hd"+strings.ToLower(name)), front: fmt.Sprintf("198.18.4.%d", 2+i), work: t.TempDir()}
		nstest.Veth(t, d.ns, "f0", d.front+"/24", x.sw, "pf"+name, "")
		port("pf"+name, "front")
		nstest.Veth(t, d.ns, "b0", fmt.Sprintf("198.18.5.%d/24", 2+i), x.sw, "pb"+name, "")
		port("pb"+name, "back")
		// The director forwards nothing itself: its data plane does.
		x.dirs[i] = d
	}
	for i := range x.rs {
		x.rs[i] = nstest.New(t, "hrs"+fmt.Sprint(i+1))
		nstest.Veth(t, x.rs[i], "eth0", haRS(i)+"/24", x.sw, fmt.Sprintf("pr%d", i+1), "")
		port(fmt.Sprintf("pr%d", i+1), "back")
		x.rs[i].IP(t, "route", "add", "default", "via", haGateway)
		startProc(t, t, x.rs[i].Command(x.helper, "serve", "-name", dpRSName(i), "-tcp", "80", "-echo", haPort), "ready")
	}
	return x
}

// haConfig is director d's keepalived.conf.
func haConfig(d *haDirector, advertInt string, nopreempt bool, method string) string {
	var b strings.Builder
	fmt.Fprintf(&b, `global_defs {
    router_id director-%s
    lvs_sync_daemon b0 VI_1 id 51
}
vrrp_instance VI_1 {
    state BACKUP
    interface f0
    virtual_router_id 51
    priority %d
    advert_int %s
`, d.name, d.prio, advertInt)
	if strings.Contains(advertInt, ".") {
		b.WriteString("    version 3\n")
	}
	if nopreempt {
		b.WriteString("    nopreempt\n")
	} else {
		// A restarted master waits before it preempts, until the
		// backup-turned-master's refreshes (sync_refresh_period 1 s,
		// sent within the 2 s flush time) have given it every
		// connection: what keepalived users configure for a
		// hitless return of the master.
		b.WriteString("    preempt_delay 5\n")
	}
	fmt.Fprintf(&b, `    virtual_ipaddress {
        %s/24 dev f0
        %s/24 dev b0
    }
}
virtual_server %s %s {
    delay_loop 2
    lvs_sched rr
    lvs_method %s
    protocol TCP
`, haVIP, haGateway, haVIP, haPort, method)
	for i := range 3 {
		fmt.Fprintf(&b, `    real_server %s %s {
        TCP_CHECK {
            connect_timeout 1
        }
    }
`, haRS(i), haPort)
	}
	b.WriteString("}\n")
	return b.String()
}

// start runs lvsd on director d with its configuration.
func (x *haTopo) start(t *testing.T, d *haDirector, advertInt string, nopreempt bool) {
	t.Helper()
	d.conf = filepath.Join(d.work, "keepalived.conf")
	method := d.method
	if method == "" {
		method = "NAT"
	}
	if err := os.WriteFile(d.conf, []byte(haConfig(d, advertInt, nopreempt, method)), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := d.ns.Command(x.lvsdBin, "run", "-f", d.conf, "--interfaces", "all", "--sync-sysctl", "sync_refresh_period=1",
		"--socket", filepath.Join(d.work, "lvsd.sock"), "--state", filepath.Join(d.work, "state"))
	d.proc = startProc(t, t, cmd, "director running")
}

// holds reports whether director d holds the VIP.
func (d *haDirector) holds() bool {
	out, err := d.ns.Exec("ip", "-4", "-o", "addr", "show", "dev", "f0", "up")
	return err == nil && strings.Contains(out, " "+haVIP+"/")
}

// waitMaster waits until d holds the VIP and the other does not.
func (x *haTopo) waitMaster(t *testing.T, d *haDirector, limit time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	other := x.dirs[0]
	if other == d {
		other = x.dirs[1]
	}
	for !d.holds() || other.holds() {
		if time.Since(start) > limit {
			t.Fatalf("director %s is not the only master after %v (A holds %v, B holds %v)\nA:\n%s\nB:\n%s",
				d.name, limit, x.dirs[0].holds(), x.dirs[1].holds(), procOut(x.dirs[0].proc), procOut(x.dirs[1].proc))
		}
		time.Sleep(10 * time.Millisecond)
	}
	return time.Since(start)
}

func procOut(p *dpProc) string {
	if p == nil {
		return "(not started)"
	}
	return p.out.String()
}

// synced counts the ESTABLISHED connections to the VIP that director d
// lists (ipvsadm -L -n -c).
func (x *haTopo) synced(t *testing.T, d *haDirector) (int, string) {
	t.Helper()
	cmd := exec.Command(x.ipvsadm, "-L", "-n", "-c")
	cmd.Env = append(os.Environ(), "LVSD_SOCKET="+filepath.Join(d.work, "lvsd.sock"))
	out, err := cmd.CombinedOutput()
	if err != nil {
		return 0, fmt.Sprintf("%v: %s", err, out)
	}
	n := 0
	for _, l := range strings.Split(string(out), "\n") {
		if strings.Contains(l, "ESTABLISHED") && strings.Contains(l, haVIP+":"+haPort) {
			n++
		}
	}
	return n, string(out)
}

// waitSynced waits until d lists n established connections.
func (x *haTopo) waitSynced(t *testing.T, d *haDirector, n int, limit time.Duration) {
	t.Helper()
	start := time.Now()
	for {
		got, out := x.synced(t, d)
		if got >= n {
			t.Logf("director %s has the %d connections %v after asking", d.name, got, time.Since(start))
			return
		}
		if time.Since(start) > limit {
			t.Fatalf("director %s lists %d established connections after %v, want %d:\n%s", d.name, got, limit, n, out)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// holder is the client's long-lived connections: each sends a line every
// interval and expects its echo.
type holder struct {
	conns    []net.Conn
	stop     chan struct{}
	wg       sync.WaitGroup
	errs     atomic.Int64
	echoes   atomic.Int64
	mu       sync.Mutex
	lastEcho []time.Time
	firstErr error
	maxGap   time.Duration
}

func (x *haTopo) hold(t *testing.T, n int, interval time.Duration) *holder {
	t.Helper()
	h := &holder{stop: make(chan struct{}), lastEcho: make([]time.Time, n)}
	for i := range n {
		var c net.Conn
		err := x.cl.Do(func() (err error) {
			c, err = net.DialTimeout("tcp", haVIP+":"+haPort, 3*time.Second)
			return err
		})
		if err != nil {
			h.close()
			t.Fatalf("connection %d to the VIP: %v", i, err)
		}
		h.conns = append(h.conns, c)
	}
	for i, c := range h.conns {
		h.lastEcho[i] = time.Now()
		h.wg.Add(1)
		go func() {
			defer h.wg.Done()
			r := bufio.NewReader(c)
			tick := time.NewTicker(interval)
			defer tick.Stop()
			for seq := 0; ; seq++ {
				select {
				case <-h.stop:
					return
				case <-tick.C:
				}
				// A reply may take as long as a takeover; 10 s bounds
				// a connection that is gone.
				c.SetDeadline(time.Now().Add(10 * time.Second))
				msg := fmt.Sprintf("conn %d line %d\n", i, seq)
				if _, err := c.Write([]byte(msg)); err != nil {
					h.fail(err)
					return
				}
				line, err := r.ReadString('\n')
				if err != nil || !strings.HasSuffix(line, " "+msg) {
					h.fail(fmt.Errorf("conn %d: echo %q, %v", i, line, err))
					return
				}
				now := time.Now()
				h.echoes.Add(1)
				h.mu.Lock()
				if gap := now.Sub(h.lastEcho[i]); gap > h.maxGap {
					h.maxGap = gap
				}
				h.lastEcho[i] = now
				h.mu.Unlock()
			}
		}()
	}
	return h
}

func (h *holder) fail(err error) {
	h.errs.Add(1)
	h.mu.Lock()
	if h.firstErr == nil {
		h.firstErr = err
	}
	h.mu.Unlock()
}

func (h *holder) close() {
	select {
	case <-h.stop:
	default:
		close(h.stop)
	}
	for _, c := range h.conns {
		c.Close()
	}
	h.wg.Wait()
}

// waitEchoes waits until every connection has echoed after t0.
func (h *holder) waitEchoes(t *testing.T, t0 time.Time, limit time.Duration) time.Duration {
	t.Helper()
	for {
		h.mu.Lock()
		all := true
		for _, e := range h.lastEcho {
			if !e.After(t0) {
				all = false
				break
			}
		}
		h.mu.Unlock()
		if all {
			return time.Since(t0)
		}
		if h.errs.Load() > 0 {
			h.mu.Lock()
			err := h.firstErr
			h.mu.Unlock()
			t.Fatalf("%d connections failed, first: %v", h.errs.Load(), err)
		}
		if time.Since(t0) > limit {
			t.Fatalf("not every connection echoed within %v of %v", limit, t0)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestNetnsFailover kills the master director while a client holds 100
// long-lived TCP connections through a NAT service: the backup takes the
// VIPs, the client's and the servers' ARP caches follow, and every
// connection goes on (0 resets), since the backup has the connections
// from the sync daemon. The old master restarted with preemption takes
// over again without breaking them.
func TestNetnsFailover(t *testing.T) {
	for _, tc := range []struct {
		name      string
		advertInt string
		bound     time.Duration
	}{
		{"advert_int 1s", "1", 3700 * time.Millisecond},
		{"advert_int 100ms", "0.1", 400 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			x := newHATopo(t)
			a, b := x.dirs[0], x.dirs[1]
			a.prio, b.prio = 150, 100
			x.start(t, a, tc.advertInt, false)
			x.start(t, b, tc.advertInt, false)
			x.waitMaster(t, a, 15*time.Second)
			h := x.hold(t, 100, 100*time.Millisecond)
			defer h.close()
			h.waitEchoes(t, time.Now(), 10*time.Second)
			// The sync daemon carries the established connections to
			// the backup (flushed every 2 s, as the kernel's).
			x.waitSynced(t, b, 100, 10*time.Second)

			killed := time.Now()
			if err := a.proc.signal(t, syscall.SIGKILL); err == nil {
				t.Fatal("lvsd exited 0 after SIGKILL")
			}
			// The killed master's VIPs stay on its interfaces (nobody
			// removes them); take them off as its host going down
			// would, so that only the backup answers.
			a.ns.IP(t, "link", "set", "f0", "down")
			a.ns.IP(t, "link", "set", "b0", "down")
			takeover := x.waitMaster(t, b, 10*time.Second)
			resumed := h.waitEchoes(t, killed, 15*time.Second)
			t.Logf("%s: backup holds the VIP %v after the kill; every connection echoed again after %v; longest gap %v; %d echoes",
				tc.name, takeover, resumed, h.maxGap, h.echoes.Load())
			if takeover > tc.bound+500*time.Millisecond {
				t.Errorf("takeover took %v, bound %v", takeover, tc.bound)
			}
			if n := h.errs.Load(); n != 0 {
				t.Errorf("%d connections broke over the failover", n)
			}

			// The old master comes back and preempts.
			a.ns.IP(t, "link", "set", "f0", "up")
			a.ns.IP(t, "link", "set", "b0", "up")
			from := time.Now()
			x.start(t, a, tc.advertInt, false)
			x.waitMaster(t, a, 20*time.Second)
			h.waitEchoes(t, time.Now(), 15*time.Second)
			t.Logf("preempted by the restarted master %v after its start", time.Since(from))
			if n := h.errs.Load(); n != 0 {
				t.Errorf("%d connections broke when the old master took over again", n)
			}
			for _, d := range x.dirs {
				if strings.Contains(procOut(d.proc), "DATA RACE") {
					t.Errorf("data race in director %s", d.name)
				}
			}
		})
	}
}

// TestNetnsFailoverMethods is the failover of DR and TUN services: the
// servers hold the VIP (lvsd realserver) and answer the client through
// the switch's router, and the connections survive the master's death.
func TestNetnsFailoverMethods(t *testing.T) {
	for _, method := range []string{"DR", "TUN"} {
		t.Run(method, func(t *testing.T) {
			x := newHATopo(t)
			for i, rs := range x.rs {
				rs.IP(t, "route", "replace", "198.18.4.0/24", "via", "198.18.5.253")
				state := filepath.Join(x.work, fmt.Sprintf("rs%d", i))
				if method == "DR" {
					rs.MustExec(t, x.lvsdBin, "realserver", "--vip", haVIP, "--state-dir", state)
					t.Cleanup(func() { rs.Exec(x.lvsdBin, "realserver", "--down", "--state-dir", state) })
				} else {
					p := startProc(t, t, rs.Command(x.lvsdBin, "realserver", "--tun", "--vip", haVIP, "--state-dir", state), "running until SIGTERM")
					t.Cleanup(func() { p.signal(t, syscall.SIGTERM) })
				}
			}
			a, b := x.dirs[0], x.dirs[1]
			a.prio, b.prio = 150, 100
			a.method, b.method = method, method
			x.start(t, a, "1", false)
			x.start(t, b, "1", false)
			x.waitMaster(t, a, 15*time.Second)
			h := x.hold(t, 100, 100*time.Millisecond)
			defer h.close()
			h.waitEchoes(t, time.Now(), 10*time.Second)
			x.waitSynced(t, b, 100, 10*time.Second)
			killed := time.Now()
			a.proc.signal(t, syscall.SIGKILL)
			a.ns.IP(t, "link", "set", "f0", "down")
			a.ns.IP(t, "link", "set", "b0", "down")
			takeover := x.waitMaster(t, b, 10*time.Second)
			resumed := h.waitEchoes(t, killed, 15*time.Second)
			t.Logf("%s: backup holds the VIP %v after the kill; every connection echoed again after %v", method, takeover, resumed)
			if n := h.errs.Load(); n != 0 {
				t.Errorf("%d connections broke over the failover", n)
			}
		})
	}
}

// TestNetnsFailoverNopreempt: with nopreempt the restarted director stays
// backup.
func TestNetnsFailoverNopreempt(t *testing.T) {
	x := newHATopo(t)
	a, b := x.dirs[0], x.dirs[1]
	a.prio, b.prio = 150, 100
	x.start(t, a, "1", true)
	x.start(t, b, "1", true)
	x.waitMaster(t, a, 15*time.Second)
	a.proc.signal(t, syscall.SIGTERM)
	x.waitMaster(t, b, 10*time.Second)
	x.start(t, a, "1", true)
	// Three advert intervals and more: a would have preempted by now.
	time.Sleep(5 * time.Second)
	if a.holds() || !b.holds() {
		t.Errorf("with nopreempt the restarted director took the VIP (A %v, B %v)", a.holds(), b.holds())
	}
	if m := regexp.MustCompile(`(?m)^.*DATA RACE.*$`).FindString(procOut(a.proc) + procOut(b.proc)); m != "" {
		t.Error("data race in lvsd")
	}
}
