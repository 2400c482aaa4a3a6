package main

// Namespace tests of the director with its data plane: the real lvsd
// binary, configured by the real ipvsadm binary over the control API,
// forwards real clients' traffic (curl, the kernel's TCP and UDP) to real
// servers by NAT, DR and TUN. They need root, ip(8), nft(8), curl and the
// go command, and skip otherwise.
//
// The topology (one per test), in golvs-* namespaces:
//
//	client cl ── c0 198.18.0.1, 2001:db8::1
//	   │            │ veth
//	   │         d0 198.18.0.2, 2001:db8::2, VIPs 198.18.0.10/32, 2001:db8::10/128
//	   │      director dir (lvsd run --interfaces d0,d1)
//	   │         d1 198.18.1.1, 2001:db8:1::1
//	   │            │ bridge brb (namespace sw): the servers' LAN
//	   │      rs1..rs3 eth0 198.18.1.11-13, 2001:db8:1::11-13
//	   │      rs1..rs3 eth1 198.18.2.11-13
//	   │            │ bridge brr (namespace sw): the return LAN
//	   └── c1 198.18.2.1
//
// For NAT the servers route the client's network through the director
// (198.18.1.1); for DR and TUN through the return LAN (198.18.2.1), so
// that their answers reach the client without crossing the director.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golvs/internal/realserver/nstest"
)

// Addresses of the topology (198.18.0.0/15 and 2001:db8::/32 only).
const (
	dpVIP4      = "198.18.0.10"
	dpVIP6      = "2001:db8::10"
	dpClient4   = "198.18.0.1"
	dpDirBack4  = "198.18.1.1"
	dpDirBack6  = "2001:db8:1::1"
	dpClientRet = "198.18.2.1"
)

func dpRS4(i int) string    { return fmt.Sprintf("198.18.1.%d", 11+i) }
func dpRS6(i int) string    { return fmt.Sprintf("2001:db8:1::%d", 11+i) }
func dpRSRet4(i int) string { return fmt.Sprintf("198.18.2.%d", 11+i) }
func dpRSName(i int) string { return fmt.Sprintf("rs%d", i+1) }

// Bounds of the test's waits and commands.
const (
	dpStartTimeout = 15 * time.Second // lvsd or a helper up and ready
	dpRulesTimeout = 5 * time.Second  // a configuration reaching the data plane
	dpStopTimeout  = 10 * time.Second // lvsd gone after a signal
	dpCmdTimeout   = 30 * time.Second // one curl run, one ipvsadm run
	dpBigTimeout   = 60 * time.Second // one 100 MB transfer
	dpBig          = 100 << 20        // the size of the transfers that must arrive intact
)

// dpTopo is the test's network, binaries and lvsd.
type dpTopo struct {
	t           *testing.T // the test that made it
	cl, dir, sw *nstest.NS
	rs          [3]*nstest.NS
	lvsdBin     string
	helper      string
	ipvsadm     string
	work        string // lvsd's socket and state, the servers' state dirs
	lvsd        *dpProc
}

// dpTools skips the test without what it runs.
func dpTools(t *testing.T) {
	t.Helper()
	nstest.Require(t)
	for _, c := range []string{"nft", "curl", "go"} {
		if _, err := exec.LookPath(c); err != nil {
			t.Skipf("skipped: needs %s (scripts/test installs it)", c)
		}
	}
}

// goBuild builds package pkg (relative to this directory) into dir.
func goBuild(t *testing.T, dir, name, pkg string, flags ...string) string {
	t.Helper()
	bin := filepath.Join(dir, name)
	args := append(append([]string{"build"}, flags...), "-o", bin, pkg)
	if out, err := exec.Command("go", args...).CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v: %s", pkg, err, out)
	}
	return bin
}

func newDPTopo(t *testing.T) *dpTopo {
	dpTools(t)
	x := &dpTopo{t: t, work: t.TempDir()}
	bins := t.TempDir()
	// Under the race detector the tests run lvsd with it too (slower:
	// about 5 s per 100 MB transfer instead of under 1 s, measured
	// 2026-11-22).
	if raceEnabled {
		x.lvsdBin = goBuild(t, bins, "lvsd", ".", "-race")
	} else {
		x.lvsdBin = goBuild(t, bins, "lvsd", ".")
	}
	x.helper = goBuild(t, bins, "nshelper", "./testdata/nshelper")
	x.ipvsadm = goBuild(t, bins, "ipvsadm", "../ipvsadm")

	x.cl, x.dir, x.sw = nstest.New(t, "cl"), nstest.New(t, "dir"), nstest.New(t, "sw")
	for i := range x.rs {
		x.rs[i] = nstest.New(t, dpRSName(i))
	}
	for _, ns := range append([]*nstest.NS{x.cl, x.dir, x.sw}, x.rs[:]...) {
		// IPv6 addresses usable at once, link-local ones included (the
		// director's neighbour solicitations need them).
		ns.Sysctl(t, "net/ipv6/conf/default/accept_dad", "0")
		ns.Sysctl(t, "net/ipv6/conf/all/accept_dad", "0")
	}
	for _, br := range []string{"brb", "brr"} {
		x.sw.IP(t, "link", "add", br, "type", "bridge", "mcast_snooping", "0")
		x.sw.IP(t, "link", "set", br, "up")
	}
	port := func(name, br string) { x.sw.IP(t, "link", "set", name, "master", br) }

	nstest.Veth(t, x.cl, "c0", dpClient4+"/24", x.dir, "d0", "198.18.0.2/24")
	x.cl.IP(t, "addr", "add", "2001:db8::1/64", "dev", "c0", "nodad")
	x.dir.IP(t, "addr", "add", "2001:db8::2/64", "dev", "d0", "nodad")
	x.dir.IP(t, "addr", "add", dpVIP4+"/32", "dev", "d0")
	x.dir.IP(t, "addr", "add", dpVIP6+"/128", "dev", "d0", "nodad")
	nstest.Veth(t, x.dir, "d1", dpDirBack4+"/24", x.sw, "pd1", "")
	x.dir.IP(t, "addr", "add", dpDirBack6+"/64", "dev", "d1", "nodad")
	port("pd1", "brb")
	nstest.Veth(t, x.cl, "c1", dpClientRet+"/24", x.sw, "qc1", "")
	port("qc1", "brr")
	for i, rs := range x.rs {
		nstest.Veth(t, rs, "eth0", dpRS4(i)+"/24", x.sw, fmt.Sprintf("pr%d", i+1), "")
		rs.IP(t, "addr", "add", dpRS6(i)+"/64", "dev", "eth0", "nodad")
		port(fmt.Sprintf("pr%d", i+1), "brb")
		nstest.Veth(t, rs, "eth1", dpRSRet4(i)+"/24", x.sw, fmt.Sprintf("qr%d", i+1), "")
		port(fmt.Sprintf("qr%d", i+1), "brr")
		x.startHelper(t, rs, "serve", "-name", dpRSName(i), "-tcp", "80,8080,8000,443", "-udp", "53")
	}
	// Answers of DR and TUN servers come in on c1 from the VIP, which
	// the client reaches through c0.
	for _, dev := range []string{"all", "default", "c1"} {
		x.cl.Sysctl(t, "net/ipv4/conf/"+dev+"/rp_filter", "0")
	}
	x.routeReplies(t, "nat")
	return x
}

// routeReplies points the servers' routes to the client's network through
// the director (mode "nat") or the return LAN ("direct").
func (x *dpTopo) routeReplies(t *testing.T, mode string) {
	t.Helper()
	via := dpDirBack4
	if mode == "direct" {
		via = dpClientRet
	}
	for _, rs := range x.rs {
		rs.IP(t, "route", "replace", "198.18.0.0/24", "via", via)
		rs.IP(t, "-6", "route", "replace", "2001:db8::/64", "via", dpDirBack6)
	}
}

// startHelper runs nshelper in ns until the test ends and waits for it
// to be ready.
func (x *dpTopo) startHelper(t *testing.T, ns *nstest.NS, args ...string) {
	t.Helper()
	startProc(t, t, ns.Command(x.helper, args...), "ready")
}

// dpProc is a process the test started, with its output.
type dpProc struct {
	cmd    *exec.Cmd
	out    *syncBuffer // stdout and stderr
	exited chan error
	ended  bool
	err    error
}

// startProc starts cmd and waits until its output contains ready. The
// end of owner (t itself, or the test t is a subtest of) kills it (by
// PID) if it still runs.
func startProc(t, owner *testing.T, cmd *exec.Cmd, ready string) *dpProc {
	t.Helper()
	p := &dpProc{cmd: cmd, out: &syncBuffer{}, exited: make(chan error, 1)}
	cmd.Stdout, cmd.Stderr = p.out, p.out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.exited <- cmd.Wait() }()
	owner.Cleanup(func() { p.kill() })
	deadline := time.Now().Add(dpStartTimeout)
	for !strings.Contains(p.out.String(), ready) {
		if p.wait(0) {
			t.Fatalf("%s exited before it was ready: %v\n%s", cmd.Path, p.err, p.out.String())
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not ready after %v:\n%s", strings.Join(cmd.Args, " "), dpStartTimeout, p.out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	return p
}

// wait reports whether the process has exited, waiting up to d.
func (p *dpProc) wait(d time.Duration) bool {
	if p.ended {
		return true
	}
	select {
	case p.err = <-p.exited:
		p.ended = true
	case <-time.After(d):
	}
	return p.ended
}

// kill kills the process (if it still runs) and waits for it.
func (p *dpProc) kill() {
	if !p.wait(0) {
		p.cmd.Process.Kill()
		p.wait(dpStopTimeout)
	}
}

// signal sends sig and waits for the exit; it returns the exit error.
func (p *dpProc) signal(t *testing.T, sig syscall.Signal) error {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
	if !p.wait(dpStopTimeout) {
		t.Fatalf("still running %v after %v:\n%s", dpStopTimeout, sig, p.out.String())
	}
	return p.err
}

// waitLog waits until the output after offset from matches re, and
// returns the match's end offset.
func (p *dpProc) waitLog(t *testing.T, from int, re *regexp.Regexp, timeout time.Duration) int {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		s := p.out.String()
		if loc := re.FindStringIndex(s[from:]); loc != nil {
			return from + loc[1]
		}
		if p.wait(0) {
			t.Fatalf("lvsd exited (%v) while waiting for %q:\n%s", p.err, re, s)
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %q in lvsd's log after %v:\n%s", re, timeout, s[from:])
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// lvsdCaps are the only capabilities lvsd run gets (setpriv's bounding
// set): what the issue allows and lvsd needs (CAP_NET_RAW for the packet
// sockets, CAP_NET_ADMIN for nftables, rtnetlink and SO_SNDBUFFORCE; the
// classic BPF filters need no CAP_BPF). It still runs as uid 0, for its
// files.
const lvsdCaps = "-all,+net_admin,+net_raw"

// startLvsd runs lvsd run in the director's namespace with --interfaces
// all, which must find d0 and d1, and waits for its data plane. It runs
// with lvsdCaps only when setpriv(1) is there, and until stopped or the
// end of the test that made the topology.
func (x *dpTopo) startLvsd(t *testing.T, extra ...string) {
	t.Helper()
	args := []string{x.lvsdBin, "run", "--interfaces", "all", "--deny-set", "inet/golvs_filter/deny",
		"--socket", filepath.Join(x.work, "lvsd.sock"), "--state", filepath.Join(x.work, "state")}
	args = append(args, extra...)
	if _, err := exec.LookPath("setpriv"); err == nil {
		args = append([]string{"setpriv", "--bounding-set=" + lvsdCaps, "--inh-caps=-all"}, args...)
	} else {
		t.Log("no setpriv(1): lvsd runs with all of root's capabilities")
	}
	cmd := x.dir.Command(args[0], args[1:]...)
	x.lvsd = startProc(t, x.t, cmd, "director running")
	x.lvsd.waitLog(t, 0, regexp.MustCompile(`data plane running.* interfaces=d0,d1 `), dpStartTimeout)
	if args[0] == "setpriv" {
		// ip netns exec and setpriv exec lvsd in the same process.
		st, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", x.lvsd.cmd.Process.Pid))
		// CAP_NET_ADMIN is bit 12, CAP_NET_RAW bit 13.
		if err != nil || !strings.Contains(string(st), "CapEff:\t0000000000003000\n") {
			t.Fatalf("lvsd does not run with CAP_NET_ADMIN and CAP_NET_RAW alone (%v):\n%s", err, st)
		}
	}
}

// stopLvsd stops lvsd with SIGTERM and checks that it exited cleanly and
// left no nftables table.
func (x *dpTopo) stopLvsd(t *testing.T) {
	t.Helper()
	if err := x.lvsd.signal(t, syscall.SIGTERM); err != nil {
		t.Errorf("lvsd after SIGTERM: %v, want exit 0\n%s", err, x.lvsd.out.String())
	}
	if out := x.dir.MustExec(t, "nft", "list", "tables"); strings.Contains(out, "golvs") {
		t.Errorf("nftables table left after SIGTERM:\n%s", out)
	}
}

// ruleElements returns the elements the ingress table's sets hold for
// the ipvsadm lines, as nft lists them ("VIP . tcp . 80"): the services,
// and the NAT real servers (the director itself excepted).
func ruleElements(lines []string) (svcs, reps []string) {
	for _, l := range lines {
		f := strings.Fields(l)
		var proto, svc, rs string
		nat := false
		if slices.Contains(f, "-f") {
			continue // firewall-mark services: see TestNetnsDirector
		}
		for i := 0; i < len(f); i++ {
			switch f[i] {
			case "-t", "-u":
				proto = map[string]string{"-t": "tcp", "-u": "udp"}[f[i]]
				i++
				svc = f[i]
			case "-r":
				i++
				rs = f[i]
			case "-m":
				nat = true
			}
		}
		elem := func(hostport string) string {
			ap := netip.MustParseAddrPort(hostport)
			return fmt.Sprintf("%s . %s . %d", ap.Addr(), proto, ap.Port())
		}
		switch {
		case f[0] == "-A":
			svcs = append(svcs, elem(svc))
		case f[0] == "-a" && nat && !strings.HasPrefix(rs, dpDirBack4+":"):
			reps = append(reps, elem(rs))
		}
	}
	slices.Sort(svcs)
	return svcs, reps
}

// ingressElems reads the elements of the ingress table's service sets
// (svc4, svc6) and reply sets (rep4, rep6).
func (x *dpTopo) ingressElems() (svcs []string, reps map[string]bool, err error) {
	out, err := x.dir.Exec("nft", "-j", "list", "table", "netdev", "golvs")
	if err != nil {
		return nil, nil, fmt.Errorf("%v: %s", err, out)
	}
	var doc struct {
		Nftables []struct {
			Set *struct {
				Name string
				Elem []struct{ Concat []any }
			}
		}
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		return nil, nil, fmt.Errorf("nft -j: %v: %s", err, out)
	}
	reps = map[string]bool{}
	for _, o := range doc.Nftables {
		if o.Set == nil {
			continue
		}
		for _, e := range o.Set.Elem {
			var parts []string
			for _, c := range e.Concat {
				parts = append(parts, fmt.Sprint(c))
			}
			el := strings.Join(parts, " . ")
			if strings.HasPrefix(o.Set.Name, "svc") {
				svcs = append(svcs, el)
			} else {
				reps[el] = true
			}
		}
	}
	slices.Sort(svcs)
	return svcs, reps, nil
}

// waitRules waits until the ingress table holds exactly the services
// svcs, and the NAT real servers reps among its replies (others may
// remain: deleted real servers stay in the trash with their
// connections). The link's filter is changed before the table, so it
// then holds them too.
func (x *dpTopo) waitRules(t *testing.T, svcs, reps []string) {
	t.Helper()
	deadline := time.Now().Add(dpRulesTimeout)
	for {
		got, rep, err := x.ingressElems()
		why := ""
		switch {
		case err != nil:
			why = err.Error()
		case !slices.Equal(got, svcs):
			why = fmt.Sprintf("services %q, want %q", got, svcs)
		default:
			for _, r := range reps {
				if !rep[r] {
					why = fmt.Sprintf("no reply element %q", r)
				}
			}
		}
		if why == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("ingress table after %v: %s\nlvsd's log:\n%s", dpRulesTimeout, why, x.lvsd.out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// configure replaces lvsd's configuration by the ipvsadm command lines
// (without "ipvsadm"), through the real ipvsadm binary and the control
// API: ipvsadm -C, then ipvsadm -R with the lines. It waits for the data
// plane after each, so that no state of the old configuration is applied
// late.
func (x *dpTopo) configure(t *testing.T, lines ...string) {
	t.Helper()
	svcs, reps := ruleElements(lines)
	x.configureExpect(t, svcs, reps, lines...)
}

// configureExpect is configure with the ingress table's elements given.
func (x *dpTopo) configureExpect(t *testing.T, svcs, reps []string, lines ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), dpCmdTimeout)
	defer cancel()
	run := func(stdin string, args ...string) {
		t.Helper()
		cmd := exec.CommandContext(ctx, x.ipvsadm, args...)
		cmd.Env = append(os.Environ(), "LVSD_SOCKET="+filepath.Join(x.work, "lvsd.sock"))
		cmd.Stdin = strings.NewReader(stdin)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("ipvsadm %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	run("", "-C")
	x.waitRules(t, nil, nil)
	run(strings.Join(lines, "\n")+"\n", "-R")
	x.waitRules(t, svcs, reps)
}

// curl runs one curl in the client's namespace that requests url n
// times, each over a new connection, and returns the answers' lines.
func (x *dpTopo) curl(t *testing.T, url string, n int) []string {
	t.Helper()
	args := []string{"curl", "-sS", "-g", "--noproxy", "*", "--connect-timeout", "3", "--max-time", "5", "-H", "Connection: close"}
	for range n {
		args = append(args, url)
	}
	ctx, cancel := context.WithTimeout(context.Background(), dpCmdTimeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", x.cl.Name}, args...)...).CombinedOutput()
	if err != nil {
		t.Errorf("curl %s x%d: %v\n%s", url, n, err, out)
	}
	return strings.Split(strings.TrimSpace(string(out)), "\n")
}

// distribution requests url n times and checks which server answered
// how often (want: name -> count) and on which port.
func (x *dpTopo) distribution(t *testing.T, url string, n int, port string, want map[string]int) {
	t.Helper()
	got := map[string]int{}
	for _, l := range x.curl(t, url, n) {
		f := strings.Fields(l)
		if len(f) != 2 || f[1] != port {
			t.Errorf("answer %q, want \"NAME %s\"", l, port)
			continue
		}
		got[f[0]]++
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("%d requests to %s answered by %v, want %v", n, url, got, want)
	}
}

// dial opens a connection from the client's namespace.
func (x *dpTopo) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	var c net.Conn
	err := x.cl.Do(func() (err error) {
		c, err = (&net.Dialer{Timeout: 3 * time.Second}).DialContext(ctx, network, addr)
		return err
	})
	return c, err
}

// udpEcho sends a datagram to vip:53 from the client and checks that an
// echo comes back from vip:53, from one of the servers.
func (x *dpTopo) udpEcho(t *testing.T, vip string) {
	t.Helper()
	to := net.UDPAddrFromAddrPort(netip.AddrPortFrom(netip.MustParseAddr(vip), 53))
	var pc net.PacketConn
	network := "udp4"
	if to.IP.To4() == nil {
		network = "udp6"
	}
	if err := x.cl.Do(func() (err error) { pc, err = net.ListenPacket(network, ":0"); return err }); err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	buf := make([]byte, 2048)
	for i := range 5 {
		msg := fmt.Sprintf("ping %d %s", i, strings.Repeat("x", 300*i))
		// The first datagram may wait for a neighbour resolution and be
		// parked; a lost one is retried, a bounded number of times.
		var n int
		var from net.Addr
		var err error
		for try := 0; try < 3; try++ {
			if _, err = pc.WriteTo([]byte(msg), to); err != nil {
				t.Fatal(err)
			}
			pc.SetReadDeadline(time.Now().Add(time.Second))
			if n, from, err = pc.ReadFrom(buf); err == nil {
				break
			}
		}
		if err != nil {
			t.Fatalf("UDP echo through %v: %v", to, err)
		}
		name, rest, _ := strings.Cut(string(buf[:n]), " ")
		if rest != msg || !strings.HasPrefix(name, "rs") || from.(*net.UDPAddr).AddrPort() != to.AddrPort() {
			t.Errorf("UDP echo %q from %v, want \"rsN %.20s...\" from %v", buf[:n], from, msg, to)
		}
	}
}

// httpClient returns an HTTP client whose connections start in the
// client's namespace.
func (x *dpTopo) httpClient() *http.Client {
	return &http.Client{Transport: &http.Transport{DialContext: x.dial, DisableKeepAlives: true}}
}

// blob is nshelper's Blob stream (the same seed).
func blob() io.Reader { return rand.NewChaCha8([32]byte{'g', 'o', 'l', 'v', 's'}) }

// upload sends dpBig bytes to url (POST /sink) and checks the length and
// hash the server computed.
func (x *dpTopo) upload(t *testing.T, url string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), dpBigTimeout)
	defer cancel()
	h := sha256.New()
	body := io.TeeReader(io.LimitReader(blob(), dpBig), h)
	req, err := http.NewRequestWithContext(ctx, "POST", url, body)
	if err != nil {
		t.Fatal(err)
	}
	req.ContentLength = dpBig
	start := time.Now()
	resp, err := x.httpClient().Do(req)
	if err != nil {
		t.Fatalf("upload to %s: %v", url, err)
	}
	defer resp.Body.Close()
	ans, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("%d %s", dpBig, hex.EncodeToString(h.Sum(nil)))
	if got := strings.TrimSpace(string(ans)); got != want {
		t.Errorf("upload of %d bytes: the server got %q, want %q", dpBig, got, want)
	}
	t.Logf("%d MB up to %s in %v", dpBig>>20, url, time.Since(start).Round(time.Millisecond))
}

// download fetches n bytes from url (GET /blob) and checks them.
func (x *dpTopo) download(t *testing.T, url string, n int64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), dpBigTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "GET", fmt.Sprintf("%s/blob?n=%d", url, n), nil)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	resp, err := x.httpClient().Do(req)
	if err != nil {
		t.Fatalf("download from %s: %v", url, err)
	}
	defer resp.Body.Close()
	h := sha256.New()
	got, err := io.Copy(h, resp.Body)
	if err != nil {
		t.Fatalf("download from %s: %v after %d bytes", url, err, got)
	}
	w := sha256.New()
	io.CopyN(w, blob(), n)
	if got != n || !bytes.Equal(h.Sum(nil), w.Sum(nil)) {
		t.Errorf("download of %d bytes from %s: got %d bytes, hash %x, want %x", n, url, got, h.Sum(nil), w.Sum(nil))
	}
	t.Logf("%d MB down from %s in %v", n>>20, url, time.Since(start).Round(time.Millisecond))
}

// ifBytes reads an interface counter (rx_bytes, tx_bytes) in ns.
func ifBytes(t *testing.T, ns *nstest.NS, dev, counter string) int64 {
	t.Helper()
	n, err := strconv.ParseInt(strings.TrimSpace(ns.MustExec(t, "cat", "/sys/class/net/"+dev+"/statistics/"+counter)), 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// returnPath downloads 10 MB through the VIP and checks the way the
// answer took: with direct, on the return LAN (c1) and not through the
// director (whose d1 receives no more than a tenth of it: ARP, nothing
// else); without, through the director (d1) and not on the return LAN.
func (x *dpTopo) returnPath(t *testing.T, direct bool) {
	t.Helper()
	const n = 10 << 20
	d1, c1 := ifBytes(t, x.dir, "d1", "rx_bytes"), ifBytes(t, x.cl, "c1", "rx_bytes")
	x.download(t, "http://"+dpVIP4, n)
	d1 = ifBytes(t, x.dir, "d1", "rx_bytes") - d1
	c1 = ifBytes(t, x.cl, "c1", "rx_bytes") - c1
	t.Logf("during a %d MB download: director d1 received %d bytes, client c1 %d", n>>20, d1, c1)
	via, other := c1, d1
	if !direct {
		via, other = d1, c1
	}
	if via < n || other > n/10 {
		t.Errorf("director d1 received %d bytes, the client's return LAN c1 %d: want the answer (%d bytes) on %s only",
			d1, c1, n, map[bool]string{true: "c1 (direct return)", false: "d1 (through the director)"}[direct])
	}
}

// listenDirector serves TCP on port in the director's namespace (its own
// stack): each connection gets "director PORT\n" (an HTTP answer for
// HTTP ports), then is closed.
func (x *dpTopo) listenDirector(t *testing.T, port string, httpAnswer bool) {
	t.Helper()
	var ln net.Listener
	if err := x.dir.Do(func() (err error) { ln, err = net.Listen("tcp", ":"+port); return err }); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	if httpAnswer {
		srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Connection", "close")
			fmt.Fprintf(w, "director %s\n", port)
		})}
		go srv.Serve(ln)
		return
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			fmt.Fprintf(c, "director %s\n", port)
			c.Close()
		}
	}()
}

// natConfig is the NAT configuration: HTTP VIP:80 and UDP VIP:53 to the
// three servers (HTTP on rport) with scheduler sched and weights.
func natConfig(vip, sched, rport string, weights ...int) []string {
	v := vip
	if strings.Contains(vip, ":") {
		v = "[" + vip + "]"
	}
	lines := []string{"-A -t " + v + ":80 -s " + sched, "-A -u " + v + ":53 -s " + sched}
	for i := range 3 {
		w := 1
		if i < len(weights) {
			w = weights[i]
		}
		r := dpRS4(i)
		if strings.Contains(vip, ":") {
			r = "[" + dpRS6(i) + "]"
		}
		lines = append(lines,
			fmt.Sprintf("-a -t %s:80 -r %s:%s -m -w %d", v, r, rport, w),
			fmt.Sprintf("-a -u %s:53 -r %s:53 -m -w %d", v, r, w))
	}
	return lines
}

// methodConfig is the DR (-g) or TUN (-i) configuration: HTTP VIP:80 and
// UDP VIP:53 to the three servers.
func methodConfig(flag, sched string, weights ...int) []string {
	lines := []string{"-A -t " + dpVIP4 + ":80 -s " + sched, "-A -u " + dpVIP4 + ":53 -s " + sched}
	for i := range 3 {
		w := 1
		if i < len(weights) {
			w = weights[i]
		}
		lines = append(lines,
			fmt.Sprintf("-a -t %s:80 -r %s %s -w %d", dpVIP4, dpRS4(i), flag, w),
			fmt.Sprintf("-a -u %s:53 -r %s %s -w %d", dpVIP4, dpRS4(i), flag, w))
	}
	return lines
}

var dpEven = map[string]int{"rs1": 10, "rs2": 10, "rs3": 10}
var dpWeighted = map[string]int{"rs1": 5, "rs2": 10, "rs3": 15}

// TestNetnsDirector is the director end to end: NAT (IPv4 and IPv6), the
// director as its own real server, non-service traffic, DR and TUN with
// direct return, 100 MB transfers, restart after SIGKILL and clean
// shutdown.
func TestNetnsDirector(t *testing.T) {
	x := newDPTopo(t)
	x.startLvsd(t)
	// The director's own services: ssh-like on port 22 of the VIP, and
	// HTTP on 8000 as one of the real servers of a service.
	x.listenDirector(t, "22", false)
	x.listenDirector(t, "8000", true)

	t.Run("NAT", func(t *testing.T) {
		x.routeReplies(t, "nat")
		x.configure(t, natConfig(dpVIP4, "rr", "80")...)
		x.distribution(t, "http://"+dpVIP4+"/", 30, "80", dpEven)
		for _, l := range x.curl(t, "http://"+dpVIP4+"/who", 1) {
			if f := strings.Fields(l); len(f) != 3 || !strings.HasPrefix(f[2], dpClient4+":") {
				t.Errorf("the server saw %q, want the client's address %s", l, dpClient4)
			}
		}
		x.udpEcho(t, dpVIP4)

		x.configure(t, natConfig(dpVIP4, "wrr", "80", 1, 2, 3)...)
		x.distribution(t, "http://"+dpVIP4+"/", 30, "80", dpWeighted)

		// Port mapping: VIP:80 to the servers' 8080.
		x.configure(t, natConfig(dpVIP4, "rr", "8080")...)
		x.distribution(t, "http://"+dpVIP4+"/", 30, "8080", dpEven)
		x.upload(t, "http://"+dpVIP4+"/sink")
		x.download(t, "http://"+dpVIP4, dpBig)
		x.returnPath(t, false)
	})

	t.Run("NAT IPv6", func(t *testing.T) {
		x.routeReplies(t, "nat")
		x.configure(t, natConfig(dpVIP6, "rr", "80")...)
		x.distribution(t, "http://["+dpVIP6+"]/", 30, "80", dpEven)
		x.udpEcho(t, dpVIP6)
	})

	t.Run("director as real server", func(t *testing.T) {
		x.routeReplies(t, "nat")
		// The director's own address and rs1: the director serves its
		// share from its own stack (its listener on the virtual port).
		x.configure(t,
			"-A -t "+dpVIP4+":8000 -s rr",
			"-a -t "+dpVIP4+":8000 -r "+dpDirBack4+":8000 -m",
			"-a -t "+dpVIP4+":8000 -r "+dpRS4(0)+":8000 -m")
		x.distribution(t, "http://"+dpVIP4+":8000/", 10, "8000", map[string]int{"director": 5, "rs1": 5})
	})

	t.Run("non-service traffic", func(t *testing.T) {
		x.configure(t, natConfig(dpVIP4, "rr", "80")...)
		// Port 22 of the VIP, and the director's own address, are the
		// director's stack's.
		for _, addr := range []string{dpVIP4 + ":22", "198.18.0.2:22"} {
			c, err := x.dial(context.Background(), "tcp", addr)
			if err != nil {
				t.Fatalf("connect to %s: %v", addr, err)
			}
			c.SetDeadline(time.Now().Add(5 * time.Second))
			line, err := bufio.NewReader(c).ReadString('\n')
			c.Close()
			if line != "director 22\n" {
				t.Errorf("%s answered %q, %v; want the director's own listener", addr, line, err)
			}
		}
		// HTTP on a port of the VIP that is no service.
		x.distribution(t, "http://"+dpVIP4+":8000/", 2, "8000", map[string]int{"director": 2})
		x.distribution(t, "http://"+dpVIP4+"/", 3, "80", map[string]int{"rs1": 1, "rs2": 1, "rs3": 1})
	})

	// A firewall-mark service over two VIPs and two ports, marked by
	// exactly the iptables command LVS users run (iptables-nft: the rule
	// lives in nftables, where lvsd reads it).
	t.Run("firewall mark", func(t *testing.T) {
		if _, err := exec.LookPath("iptables"); err != nil {
			t.Skip("needs iptables (Debian package iptables)")
		}
		x.routeReplies(t, "nat")
		const vip2 = "198.18.0.11"
		x.dir.IP(t, "addr", "add", vip2+"/32", "dev", "d0")
		defer x.dir.IP(t, "addr", "del", vip2+"/32", "dev", "d0")
		for _, vip := range []string{dpVIP4, vip2} {
			x.dir.MustExec(t, "iptables", "-t", "mangle", "-A", "PREROUTING", "-d", vip, "-p", "tcp", "-m", "multiport", "--dports", "80,443", "-j", "MARK", "--set-mark", "1")
		}
		defer x.dir.MustExec(t, "iptables", "-t", "mangle", "-F", "PREROUTING")
		lines := []string{"-A -f 1 -s rr"}
		for i := range 3 {
			lines = append(lines, fmt.Sprintf("-a -f 1 -r %s:0 -m", dpRS4(i)))
		}
		var svcs []string
		for _, vip := range []string{dpVIP4, vip2} {
			svcs = append(svcs, vip+" . tcp . 80", vip+" . tcp . 443")
		}
		slices.Sort(svcs)
		x.configureExpect(t, svcs, nil, lines...)
		got := map[string]int{}
		for _, vip := range []string{dpVIP4, vip2} {
			for _, port := range []string{"80", "443"} {
				for _, l := range x.curl(t, "http://"+vip+":"+port+"/", 3) {
					f := strings.Fields(l)
					if len(f) != 2 || f[1] != port {
						t.Errorf("%s:%s answered %q, want a real server on port %s", vip, port, l, port)
						continue
					}
					got[f[0]]++
				}
			}
		}
		if want := map[string]int{"rs1": 4, "rs2": 4, "rs3": 4}; fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("12 requests over two VIPs and two ports answered by %v, want %v", got, want)
		}
		// A port the rules do not mark is the director's own.
		x.distribution(t, "http://"+vip2+":8000/", 2, "8000", map[string]int{"director": 2})
		// A rule added later is followed: port 8080 joins the service.
		x.dir.MustExec(t, "iptables", "-t", "mangle", "-A", "PREROUTING", "-d", vip2, "-p", "tcp", "--dport", "8080", "-j", "MARK", "--set-mark", "1")
		x.waitRules(t, append(slices.Clone(svcs), vip2+" . tcp . 8080"), nil)
		x.distribution(t, "http://"+vip2+":8080/", 3, "8080", map[string]int{"rs1": 1, "rs2": 1, "rs3": 1})
		// A rule lvsd cannot evaluate is reported.
		x.dir.MustExec(t, "iptables", "-t", "mangle", "-A", "PREROUTING", "-d", vip2, "-m", "conntrack", "--ctstate", "NEW", "-j", "MARK", "--set-mark", "1")
		x.lvsd.waitLog(t, 0, regexp.MustCompile(`mark rule not evaluated.*match conntrack`), dpRulesTimeout)
	})

	// --interfaces all follows the interfaces: one that comes up is
	// taken (the client reaches the VIP through it), one that goes is
	// dropped, without a restart.
	t.Run("interface added", func(t *testing.T) {
		x.routeReplies(t, "nat")
		x.configure(t, natConfig(dpVIP4, "rr", "80")...)
		from := len(x.lvsd.out.String())
		nstest.Veth(t, x.cl, "c2", "198.18.3.1/24", x.dir, "d2", "198.18.3.2/24")
		x.cl.IP(t, "route", "add", dpVIP4+"/32", "via", "198.18.3.2", "dev", "c2")
		for _, rs := range x.rs {
			rs.IP(t, "route", "replace", "198.18.3.0/24", "via", dpDirBack4)
		}
		defer func() {
			// The client's route went with d2's peer.
			for _, rs := range x.rs {
				rs.IP(t, "route", "del", "198.18.3.0/24")
			}
		}()
		x.lvsd.waitLog(t, from, regexp.MustCompile(`data plane interfaces changed.* interfaces=d0,d1,d2 `), dpRulesTimeout)
		before := ifBytes(t, x.dir, "d2", "rx_bytes")
		x.distribution(t, "http://"+dpVIP4+"/", 3, "80", map[string]int{"rs1": 1, "rs2": 1, "rs3": 1})
		if after := ifBytes(t, x.dir, "d2", "rx_bytes"); after == before {
			t.Error("the requests did not come in on d2")
		}
		from = len(x.lvsd.out.String())
		x.dir.IP(t, "link", "del", "d2")
		x.lvsd.waitLog(t, from, regexp.MustCompile(`data plane interfaces changed.* interfaces=d0,d1 `), dpRulesTimeout)
	})

	// The director's deny list: an nftables set the admin's filter would
	// use (ip saddr @deny drop), read by lvsd as it changes.
	t.Run("deny set", func(t *testing.T) {
		x.routeReplies(t, "nat")
		x.configure(t, natConfig(dpVIP4, "rr", "80")...)
		from := len(x.lvsd.out.String())
		x.dir.MustExec(t, "nft", "add table inet golvs_filter")
		defer x.dir.MustExec(t, "nft", "delete table inet golvs_filter")
		x.dir.MustExec(t, "nft", "add set inet golvs_filter deny { type ipv4_addr; flags interval; }")
		x.dir.MustExec(t, "nft", "add element inet golvs_filter deny { 198.18.0.0/28 }")
		x.lvsd.waitLog(t, from, regexp.MustCompile(`msg="deny list".* ranges=1`), dpRulesTimeout)
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if c, err := x.dial(ctx, "tcp", dpVIP4+":80"); err == nil {
			c.Close()
			t.Error("a client in the deny set connected to the service")
		}
		// Non-service traffic is the host's filter's business.
		x.distribution(t, "http://"+dpVIP4+":8000/", 1, "8000", map[string]int{"director": 1})
		from = len(x.lvsd.out.String())
		x.dir.MustExec(t, "nft", "flush set inet golvs_filter deny")
		x.lvsd.waitLog(t, from, regexp.MustCompile(`msg="deny list".* ranges=0`), dpRulesTimeout)
		x.distribution(t, "http://"+dpVIP4+"/", 3, "80", map[string]int{"rs1": 1, "rs2": 1, "rs3": 1})
	})

	t.Run("DR", func(t *testing.T) {
		x.routeReplies(t, "direct")
		for i, rs := range x.rs {
			dir := filepath.Join(x.work, "rs-dr-"+dpRSName(i))
			rs.MustExec(t, x.lvsdBin, "realserver", "--vip", dpVIP4, "--state-dir", dir)
			t.Cleanup(func() { rs.Exec(x.lvsdBin, "realserver", "--down", "--state-dir", dir) })
		}
		x.configure(t, methodConfig("-g", "rr")...)
		x.distribution(t, "http://"+dpVIP4+"/", 30, "80", dpEven)
		x.udpEcho(t, dpVIP4)
		x.returnPath(t, true)
		x.upload(t, "http://"+dpVIP4+"/sink")
		x.configure(t, methodConfig("-g", "wrr", 1, 2, 3)...)
		x.distribution(t, "http://"+dpVIP4+"/", 30, "80", dpWeighted)
		for i, rs := range x.rs {
			rs.MustExec(t, x.lvsdBin, "realserver", "--down", "--state-dir", filepath.Join(x.work, "rs-dr-"+dpRSName(i)))
		}
	})

	t.Run("TUN", func(t *testing.T) {
		x.routeReplies(t, "direct")
		for i, rs := range x.rs {
			p := startProc(t, t, rs.Command(x.lvsdBin, "realserver", "--tun", "--vip", dpVIP4,
				"--state-dir", filepath.Join(x.work, "rs-tun-"+dpRSName(i))), "running until SIGTERM")
			t.Cleanup(func() {
				if err := p.signal(t, syscall.SIGTERM); err != nil {
					t.Errorf("lvsd realserver --tun in %s: %v\n%s", dpRSName(i), err, p.out.String())
				}
			})
		}
		x.configure(t, methodConfig("-i", "rr")...)
		x.distribution(t, "http://"+dpVIP4+"/", 30, "80", dpEven)
		x.udpEcho(t, dpVIP4)
		x.returnPath(t, true)
		x.upload(t, "http://"+dpVIP4+"/sink")
		x.configure(t, methodConfig("-i", "wrr", 1, 2, 3)...)
		x.distribution(t, "http://"+dpVIP4+"/", 30, "80", dpWeighted)
	})

	// lvsd killed with SIGKILL leaves its nftables table (and the host's
	// stack blind to the services' traffic); the next lvsd removes it at
	// start.
	t.Run("restart after SIGKILL", func(t *testing.T) {
		x.routeReplies(t, "nat")
		x.configure(t, natConfig(dpVIP4, "rr", "80")...)
		killed := x.lvsd
		if err := killed.signal(t, syscall.SIGKILL); err == nil {
			t.Fatal("lvsd exited 0 after SIGKILL")
		}
		if out, err := x.dir.Exec("nft", "list", "table", "netdev", "golvs"); err != nil {
			t.Fatalf("no table left by the killed lvsd (this tests nothing): %v\n%s", err, out)
		}
		x.startLvsd(t)
		x.lvsd.waitLog(t, 0, regexp.MustCompile(`removed the ingress table a previous lvsd left`), dpStartTimeout)
		// The services come back from the state file, and the data
		// plane takes their traffic from the start.
		svcs, reps := ruleElements(natConfig(dpVIP4, "rr", "80"))
		x.waitRules(t, svcs, reps)
		x.distribution(t, "http://"+dpVIP4+"/", 3, "80", map[string]int{"rs1": 1, "rs2": 1, "rs3": 1})
		t.Logf("the killed lvsd's log:\n%s", killed.out.String())
	})

	// SIGTERM: exit 0, the table removed.
	x.stopLvsd(t)
	t.Logf("lvsd's log:\n%s", x.lvsd.out.String())
	if !regexp.MustCompile(`msg="link counters".* rx_frames=[1-9]`).MatchString(x.lvsd.out.String()) {
		t.Error("no link counters with received frames in lvsd's log")
	}
	if strings.Contains(x.lvsd.out.String(), "DATA RACE") {
		t.Error("the race detector found a data race in lvsd")
	}
}

// measure enables TestNetnsMeasure: go test -run NetnsMeasure -args -golvs.measure
var measure = flag.Bool("golvs.measure", false, "run the namespace measurement (a few seconds per mode)")

// TestNetnsMeasure measures requests per second (a new connection per
// request, and keep-alive), upload throughput and latency through each
// mode against plain kernel forwarding by the director's namespace, on
// the same topology. The numbers go to the log (and docs/performance.md).
func TestNetnsMeasure(t *testing.T) {
	if !*measure {
		t.Skip("skipped: a measurement; run with -args -golvs.measure")
	}
	x := newDPTopo(t)
	const dur = "3s"
	load := func(t *testing.T, url string, keep bool) string {
		args := []string{x.helper, "load", "-url", url, "-c", "8", "-d", dur}
		if keep {
			args = append(args, "-keepalive")
		}
		return strings.TrimSpace(x.cl.MustExec(t, args...))
	}
	report := func(t *testing.T, mode, base string) {
		start := time.Now()
		x.upload(t, base+"/sink")
		up := time.Since(start)
		t.Logf("MEASURE %-6s new-conn: %s", mode, load(t, base+"/", false))
		t.Logf("MEASURE %-6s keepalive: %s", mode, load(t, base+"/ka", true))
		t.Logf("MEASURE %-6s upload %d MB: %.0f MB/s", mode, dpBig>>20, float64(dpBig>>20)/up.Seconds())
	}

	t.Run("kernel", func(t *testing.T) {
		// The director's namespace as a plain router: the client talks
		// to rs1 itself.
		x.routeReplies(t, "nat")
		x.dir.Sysctl(t, "net/ipv4/ip_forward", "1")
		x.cl.IP(t, "route", "add", "198.18.1.0/24", "via", "198.18.0.2")
		defer x.cl.IP(t, "route", "del", "198.18.1.0/24", "via", "198.18.0.2")
		defer x.dir.Sysctl(t, "net/ipv4/ip_forward", "0")
		report(t, "kernel", "http://"+dpRS4(0))
	})
	x.startLvsd(t)
	t.Run("NAT", func(t *testing.T) {
		x.routeReplies(t, "nat")
		x.configure(t, natConfig(dpVIP4, "rr", "80")...)
		report(t, "NAT", "http://"+dpVIP4)
	})
	t.Run("DR", func(t *testing.T) {
		x.routeReplies(t, "direct")
		for i, rs := range x.rs {
			dir := filepath.Join(x.work, "rs-dr-"+dpRSName(i))
			rs.MustExec(t, x.lvsdBin, "realserver", "--vip", dpVIP4, "--state-dir", dir)
			defer rs.MustExec(t, x.lvsdBin, "realserver", "--down", "--state-dir", dir)
		}
		x.configure(t, methodConfig("-g", "rr")...)
		report(t, "DR", "http://"+dpVIP4)
	})
	t.Run("TUN", func(t *testing.T) {
		x.routeReplies(t, "direct")
		for i, rs := range x.rs {
			p := startProc(t, t, rs.Command(x.lvsdBin, "realserver", "--tun", "--vip", dpVIP4,
				"--state-dir", filepath.Join(x.work, "rs-tun-"+dpRSName(i))), "running until SIGTERM")
			defer p.signal(t, syscall.SIGTERM)
		}
		x.configure(t, methodConfig("-i", "rr")...)
		report(t, "TUN", "http://"+dpVIP4)
	})
	x.stopLvsd(t)
	t.Logf("lvsd's log:\n%s", x.lvsd.out.String())
}
