package main

// Namespace tests of connection sync: two directors running the real lvsd
// binary on one LAN, configured by the real ipvsadm binary; the master
// forwards live client connections to real servers by NAT and its sync
// daemon sends them to the backup's, whose ipvsadm -L -n -c must list
// them with their states. They need root, ip(8), nft(8), curl and the go
// command, and skip otherwise.
//
// The topology, in golvs-* namespaces:
//
//	client cl c0 198.18.0.1 ─┐
//	                         │ bridge brf (namespace sw): the front LAN
//	director A a0 198.18.0.2, VIP 198.18.0.10 ─┤
//	director B b0 198.18.0.3 ──────────────────┘
//	director A a1 198.18.1.1 ─┐
//	director B b1 198.18.1.2 ─┤ bridge brb (namespace sw): the servers' LAN,
//	rs1, rs2 eth0 198.18.1.11-12 ┘ where the sync daemons talk
//
// The servers route the client's network through A (198.18.1.1).

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"golvs/internal/realserver/nstest"
)

const (
	syncVIP       = "198.18.0.10"
	syncEchoPort  = "7000"
	syncConns     = 8               // client connections held open
	syncWait      = 5 * time.Second // a connection on the master listed on the backup: FlushTime (2 s) and slack
	syncIfaceA    = "a1"
	syncIfaceB    = "b1"
	syncBackLANA  = "198.18.1.1"
	syncBackLANB  = "198.18.1.2"
	syncClientNet = "198.18.0.0/24"
)

func syncRS(i int) string { return fmt.Sprintf("198.18.1.%d", 11+i) }

// syncTopo is the test's network, binaries and the two lvsd.
type syncTopo struct {
	t          *testing.T
	cl, sw     *nstest.NS
	dir        [2]*nstest.NS // A (master), B (backup)
	rs         [2]*nstest.NS
	lvsdBin    string
	helper     string
	ipvsadmBin string
	work       [2]string // each lvsd's socket and state
	lvsd       [2]*dpProc
}

func newSyncTopo(t *testing.T) *syncTopo {
	dpTools(t)
	x := &syncTopo{t: t}
	bins := t.TempDir()
	var flags []string
	if raceEnabled {
		flags = append(flags, "-race")
	}
	x.lvsdBin = goBuild(t, bins, "lvsd", ".", flags...)
	x.helper = goBuild(t, bins, "nshelper", "./testdata/nshelper")
	x.ipvsadmBin = goBuild(t, bins, "ipvsadm", "../ipvsadm")
	if out, _ := exec.Command(x.lvsdBin, "run", "--help").Output(); !strings.Contains(string(out), "--sync-peers") {
		t.Fatal("lvsd run has no sync flags: cmd/lvsd/director.go does not call sync.go's startSync yet")
	}

	x.cl, x.sw = nstest.New(t, "cl"), nstest.New(t, "sw")
	x.dir = [2]*nstest.NS{nstest.New(t, "dira"), nstest.New(t, "dirb")}
	for i := range x.rs {
		x.rs[i] = nstest.New(t, fmt.Sprintf("rs%d", i+1))
	}
	for _, br := range []string{"brf", "brb"} {
		// No IGMP snooping: the bridge floods the sync group as a
		// switch without it would.
		x.sw.IP(t, "link", "add", br, "type", "bridge", "mcast_snooping", "0")
		x.sw.IP(t, "link", "set", br, "up")
	}
	port := func(name, br string) { x.sw.IP(t, "link", "set", name, "master", br) }
	nstest.Veth(t, x.cl, "c0", "198.18.0.1/24", x.sw, "pc0", "")
	port("pc0", "brf")
	for i, d := range x.dir {
		n := string(rune('a' + i))
		nstest.Veth(t, d, n+"0", fmt.Sprintf("198.18.0.%d/24", 2+i), x.sw, "p"+n+"0", "")
		port("p"+n+"0", "brf")
		nstest.Veth(t, d, n+"1", fmt.Sprintf("198.18.1.%d/24", 1+i), x.sw, "p"+n+"1", "")
		port("p"+n+"1", "brb")
		x.work[i] = t.TempDir()
	}
	x.dir[0].IP(t, "addr", "add", syncVIP+"/32", "dev", "a0")
	for i, rs := range x.rs {
		nstest.Veth(t, rs, "eth0", syncRS(i)+"/24", x.sw, fmt.Sprintf("pr%d", i+1), "")
		port(fmt.Sprintf("pr%d", i+1), "brb")
		rs.IP(t, "route", "replace", syncClientNet, "via", syncBackLANA)
		startProc(t, t, rs.Command(x.helper, "serve", "-name", fmt.Sprintf("rs%d", i+1), "-tcp", "80", "-echo", syncEchoPort), "ready")
	}
	return x
}

// startLvsd runs lvsd run on director i (0: A, 1: B) with its data plane
// on both of its interfaces, with extra flags.
func (x *syncTopo) startLvsd(t *testing.T, i int, extra ...string) {
	t.Helper()
	n := string(rune('a' + i))
	args := []string{x.lvsdBin, "run", "--interfaces", n + "0," + n + "1",
		"--socket", filepath.Join(x.work[i], "lvsd.sock"), "--state", filepath.Join(x.work[i], "state")}
	args = append(args, extra...)
	if _, err := exec.LookPath("setpriv"); err == nil {
		args = append([]string{"setpriv", "--bounding-set=" + lvsdCaps, "--inh-caps=-all"}, args...)
	}
	x.lvsd[i] = startProc(t, x.t, x.dir[i].Command(args[0], args[1:]...), "director running")
	x.lvsd[i].waitLog(t, 0, regexp.MustCompile(`data plane running`), dpStartTimeout)
}

// ipvsadm runs the ipvsadm binary against director i's lvsd.
func (x *syncTopo) ipvsadm(t *testing.T, i int, stdin string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), dpCmdTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, x.ipvsadmBin, args...)
	cmd.Env = append(os.Environ(), "LVSD_SOCKET="+filepath.Join(x.work[i], "lvsd.sock"))
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("director %c: ipvsadm %s: %v\n%s", 'A'+i, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// configure gives both directors the NAT service VIP:7000 over rs1 and
// rs2, round robin.
func (x *syncTopo) configure(t *testing.T) {
	t.Helper()
	lines := []string{"-A -t " + syncVIP + ":" + syncEchoPort + " -s rr"}
	for i := range x.rs {
		lines = append(lines, "-a -t "+syncVIP+":"+syncEchoPort+" -r "+syncRS(i)+":"+syncEchoPort+" -m")
	}
	for i := range x.dir {
		x.ipvsadm(t, i, strings.Join(lines, "\n")+"\n", "-R")
	}
}

// echoConn is a client connection through the VIP to an echo server.
type echoConn struct {
	c     net.Conn
	r     *bufio.Reader
	local string // the client's address:port
}

// dialEcho opens a connection from the client to VIP:7000 and exchanges
// a line (the 3rd packet from the client, the one that gets it synced).
// Until the master's data plane has the service (it follows the
// configuration within dpRulesTimeout), the director's own stack refuses
// the connection: it is tried again.
func (x *syncTopo) dialEcho(t *testing.T) *echoConn {
	t.Helper()
	var c net.Conn
	deadline := time.Now().Add(dpRulesTimeout)
	for {
		err := x.cl.Do(func() (err error) {
			c, err = (&net.Dialer{Timeout: 3 * time.Second}).Dial("tcp4", syncVIP+":"+syncEchoPort)
			return err
		})
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("dial the VIP: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Cleanup(func() { c.Close() })
	e := &echoConn{c: c, r: bufio.NewReader(c), local: c.LocalAddr().String()}
	e.echo(t, "hello")
	return e
}

func (e *echoConn) echo(t *testing.T, line string) {
	t.Helper()
	e.c.SetDeadline(time.Now().Add(3 * time.Second))
	if _, err := fmt.Fprintln(e.c, line); err != nil {
		t.Fatalf("%s: write: %v", e.local, err)
	}
	got, err := e.r.ReadString('\n')
	if err != nil || !strings.HasSuffix(got, " "+line+"\n") || !strings.HasPrefix(got, "rs") {
		t.Fatalf("%s: echo %q, %v", e.local, got, err)
	}
}

// syncConnRow is one line of ipvsadm -L -n -c.
type syncConnRow struct{ proto, state, src, vip, dst string }

// connections lists director i's connections (ipvsadm -L -n -c) by
// client address:port.
func (x *syncTopo) connections(t *testing.T, i int) map[string]syncConnRow {
	t.Helper()
	out := x.ipvsadm(t, i, "", "-L", "-n", "-c")
	rows := map[string]syncConnRow{}
	for _, l := range strings.Split(out, "\n") {
		f := strings.Fields(l)
		if len(f) != 6 || f[0] == "pro" {
			continue
		}
		rows[f[3]] = syncConnRow{proto: f[0], state: f[2], src: f[3], vip: f[4], dst: f[5]}
	}
	return rows
}

// waitBackup waits until the backup's listing satisfies ok for every
// client connection in conns, and returns how long it took.
func (x *syncTopo) waitBackup(t *testing.T, what string, conns []*echoConn, ok func(master, backup syncConnRow) bool) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		m, b := x.connections(t, 0), x.connections(t, 1)
		missing := ""
		for _, c := range conns {
			mr, br := m[c.local], b[c.local]
			if !ok(mr, br) {
				missing = fmt.Sprintf("%s: master %+v, backup %+v", c.local, mr, br)
				break
			}
		}
		if missing == "" {
			return time.Since(start)
		}
		if time.Since(start) > syncWait {
			t.Fatalf("%s: not after %v: %s\nmaster's log:\n%s\nbackup's log:\n%s", what, syncWait, missing,
				x.lvsd[0].out.String(), x.lvsd[1].out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// syncStats reads GET /v1/sync of director i.
func (x *syncTopo) syncStats(t *testing.T, i int) map[string]any {
	t.Helper()
	sock := filepath.Join(x.work[i], "lvsd.sock")
	c := &http.Client{Timeout: dpCmdTimeout, Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", sock)
	}}}
	resp, err := c.Get("http://lvsd/v1/sync")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var st map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /v1/sync: %d %v", resp.StatusCode, err)
	}
	return st
}

// TestNetnsSync: the kernel's way, multicast without authentication:
// ipvsadm --start-daemon master on A and backup on B; the backup lists
// A's live connections as ESTABLISHED within a couple of seconds, then
// the state of those the client closes.
func TestNetnsSync(t *testing.T) {
	x := newSyncTopo(t)
	x.startLvsd(t, 0)
	x.startLvsd(t, 1)
	x.configure(t)
	x.ipvsadm(t, 1, "", "--start-daemon", "backup", "--mcast-interface", syncIfaceB, "--syncid", "9")
	x.ipvsadm(t, 0, "", "--start-daemon", "master", "--mcast-interface", syncIfaceA, "--syncid", "9")
	for i, want := range []string{
		"master sync daemon (mcast=" + syncIfaceA + ", syncid=9, maxlen=1472, group=224.0.0.81, port=8848, ttl=1)",
		"backup sync daemon (mcast=" + syncIfaceB + ", syncid=9, maxlen=1472, group=224.0.0.81, port=8848, ttl=1)",
	} {
		if got := strings.TrimSpace(x.ipvsadm(t, i, "", "-L", "--daemon")); got != want {
			t.Errorf("director %c: ipvsadm -L --daemon:\n%s\nwant\n%s", 'A'+i, got, want)
		}
	}

	var conns []*echoConn
	for range syncConns {
		conns = append(conns, x.dialEcho(t))
	}
	took := x.waitBackup(t, "the master's connections on the backup", conns, func(m, b syncConnRow) bool {
		return m.state == "ESTABLISHED" && b == m
	})
	t.Logf("%d connections listed on the backup %v after the last one opened", len(conns), took.Round(10*time.Millisecond))
	// The backup's real servers count them as active.
	var active int
	for _, l := range strings.Split(x.ipvsadm(t, 1, "", "-L", "-n"), "\n") {
		if f := strings.Fields(l); len(f) == 6 && f[0] == "->" && f[2] == "Masq" {
			var a int
			fmt.Sscan(f[4], &a)
			active += a
		}
	}
	if active != syncConns {
		t.Errorf("backup's ActiveConn total %d, want %d:\n%s", active, syncConns, x.ipvsadm(t, 1, "", "-L", "-n"))
	}

	// Connections keep working, and those the client closes change
	// state on the backup too (a forced sync on the FIN).
	for _, c := range conns {
		c.echo(t, "again")
	}
	closed := conns[:3]
	for _, c := range closed {
		c.c.Close()
	}
	x.waitBackup(t, "the closed connections' state on the backup", closed, func(m, b syncConnRow) bool {
		return b.state != "" && b.state != "ESTABLISHED"
	})
	x.waitBackup(t, "the open ones", conns[3:], func(m, b syncConnRow) bool { return b.state == "ESTABLISHED" })

	st := x.syncStats(t, 1)
	if rej, _ := st["rejects"].(map[string]any); st["messages_accepted"].(float64) < 1 || slices.ContainsFunc(mapValues(rej), func(v any) bool { return v.(float64) != 0 }) {
		t.Errorf("backup's sync counters: %v", st)
	}
	for i := range x.lvsd {
		if err := x.lvsd[i].signal(t, syscall.SIGTERM); err != nil {
			t.Errorf("director %c: lvsd after SIGTERM: %v\n%s", 'A'+i, err, x.lvsd[i].out.String())
		}
	}
}

func mapValues(m map[string]any) []any {
	var out []any
	for _, v := range m {
		out = append(out, v)
	}
	return out
}

// TestNetnsSyncUnicastAuth: GoLVS's additions: unicast peers and a key.
// The backup takes the master's signed messages, and refuses (and
// counts) an unsigned message from the master's address and a message
// from an address that is not a peer.
func TestNetnsSyncUnicastAuth(t *testing.T) {
	x := newSyncTopo(t)
	keys := filepath.Join(t.TempDir(), "sync.keys")
	if err := os.WriteFile(keys, []byte("# test key\n1 000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	x.startLvsd(t, 0, "--sync-peers", syncBackLANB, "--sync-key-file", keys)
	x.startLvsd(t, 1, "--sync-peers", syncBackLANA, "--sync-listen", syncBackLANB, "--sync-key-file", keys)
	x.configure(t)
	x.ipvsadm(t, 1, "", "--start-daemon", "backup", "--mcast-interface", syncIfaceB)
	x.ipvsadm(t, 0, "", "--start-daemon", "master", "--mcast-interface", syncIfaceA)
	conns := []*echoConn{x.dialEcho(t), x.dialEcho(t)}
	took := x.waitBackup(t, "the master's connections on the backup", conns, func(m, b syncConnRow) bool {
		return m.state == "ESTABLISHED" && b == m
	})
	t.Logf("listed on the backup %v after the last one opened", took.Round(10*time.Millisecond))

	// A plain (kernel) message from A's address, and one from rs1's:
	// 8-byte v1 headers with no entry are enough to be refused.
	plain := []byte{0, 0, 0, 8, 0, 1, 0, 0}
	send := func(ns *nstest.NS, src string) {
		err := ns.Do(func() error {
			c, err := net.DialUDP("udp4", &net.UDPAddr{IP: net.ParseIP(src)}, &net.UDPAddr{IP: net.ParseIP(syncBackLANB), Port: 8848})
			if err != nil {
				return err
			}
			defer c.Close()
			_, err = c.Write(plain)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	send(x.dir[0], syncBackLANA)
	send(x.rs[0], syncRS(0))
	deadline := time.Now().Add(dpCmdTimeout)
	for {
		rej, _ := x.syncStats(t, 1)["rejects"].(map[string]any)
		if rej["unsigned"] == 1.0 && rej["peer"] == 1.0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("backup's rejects: %v, want unsigned 1, peer 1", rej)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if st := x.syncStats(t, 0); st["messages_sent"].(float64) < 1 || st["send_errors"].(float64) != 0 {
		t.Errorf("master's sync counters: %v", st)
	}
}
