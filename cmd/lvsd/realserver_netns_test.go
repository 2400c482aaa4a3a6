package main

// Namespace tests of the real lvsd binary: they need root, ip(8) and the
// go command (to build lvsd), and skip otherwise.

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golvs/internal/realserver/nstest"
)

// lvsdBinary builds this package into the test's temporary directory.
func lvsdBinary(t *testing.T) string {
	t.Helper()
	goCmd, err := exec.LookPath("go")
	if err != nil {
		t.Skip("skipped: no go command in PATH to build lvsd with")
	}
	bin := filepath.Join(t.TempDir(), "lvsd")
	if out, err := exec.Command(goCmd, "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v: %s", err, out)
	}
	return bin
}

// syncBuffer is a bytes.Buffer safe for the writer goroutine of exec and
// the test reading it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// The DR set-up through the binary: set up, status, down, status.
func TestNetnsRealserverCommandDR(t *testing.T) {
	nstest.Require(t)
	bin := lvsdBinary(t)
	rs := nstest.New(t, "rs")
	before := nstest.Snapshot(t, rs)
	dir := t.TempDir()

	lvsd := func(wantCode int, args ...string) string {
		t.Helper()
		out, err := rs.Exec(append([]string{bin, "realserver", "--state-dir", dir}, args...)...)
		code := 0
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		if code != wantCode {
			t.Fatalf("lvsd realserver %s: exit %d, want %d:\n%s", strings.Join(args, " "), code, wantCode, out)
		}
		return out
	}
	lvsd(exitNotConfigured, "--status", "--vip", "198.18.100.1")
	out := lvsd(exitOK, "--vip", "198.18.100.1,2001:db8:100::1")
	if !strings.Contains(out, "set up 198.18.100.1,2001:db8:100::1") {
		t.Errorf("set-up output:\n%s", out)
	}
	out = lvsd(exitOK, "--status")
	for _, want := range []string{
		"VIP 198.18.100.1: 198.18.100.1/32 on lo: ok",
		"VIP 2001:db8:100::1: 2001:db8:100::1/128 on lo: ok",
		"net.ipv4.conf.all.arp_ignore = 1 (want 1, 2 or 8): ok",
		"realserver: configured",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("status lacks %q:\n%s", want, out)
		}
	}
	lvsd(exitError, "--vip", "198.18.100.1", "--state-dir", "/proc/nope") // unwritable state dir
	lvsd(exitOK, "--down")
	if after := nstest.Snapshot(t, rs); after != before {
		t.Errorf("not as before:\n--- before\n%s\n--- after\n%s", before, after)
	}
	if out := lvsd(exitOK, "--down"); !strings.Contains(out, "nothing to undo") {
		t.Errorf("second --down:\n%s", out)
	}
	lvsd(exitNotConfigured, "--status")
}

// tunTopo is the TUN end-to-end topology:
//
//	client c0 198.18.0.1 ── d0 198.18.0.2 director (Encapsulator, VIP blackholed)
//	                                    d1 198.18.1.1 ── r0 198.18.1.2 rs (lvsd realserver --tun)
//	client c1 198.18.2.1 ──────────────────────────────── r1 198.18.2.2 rs
//
// The client reaches the VIP through the director; the real server's
// only route back to the client is the direct link, so an answer that
// arrives proves direct return.
type tunTopo struct {
	client, dir, rs *nstest.NS
	enc             *nstest.Encapsulator
}

var vip = netip.MustParseAddr("198.18.100.1")

func newTunTopo(t *testing.T) *tunTopo {
	x := &tunTopo{client: nstest.New(t, "cl"), dir: nstest.New(t, "dir"), rs: nstest.New(t, "rs")}
	nstest.Veth(t, x.client, "c0", "198.18.0.1/24", x.dir, "d0", "198.18.0.2/24")
	nstest.Veth(t, x.dir, "d1", "198.18.1.1/24", x.rs, "r0", "198.18.1.2/24")
	nstest.Veth(t, x.client, "c1", "198.18.2.1/24", x.rs, "r1", "198.18.2.2/24")
	x.client.IP(t, "route", "add", vip.String()+"/32", "via", "198.18.0.2")
	// Answers come in on c1 from an address routed through c0.
	x.client.Sysctl(t, "net/ipv4/conf/all/rp_filter", "0")
	x.client.Sysctl(t, "net/ipv4/conf/c1/rp_filter", "0")
	x.dir.IP(t, "route", "add", "blackhole", vip.String()+"/32")
	x.rs.IP(t, "route", "add", "198.18.0.0/24", "via", "198.18.2.1")
	// Strict reverse-path filtering, as many distributions set it:
	// lvsd must relax it, and put it back.
	x.rs.Sysctl(t, "net/ipv4/conf/all/rp_filter", "1")
	x.rs.Sysctl(t, "net/ipv4/conf/default/rp_filter", "1")
	x.enc = nstest.StartEncapsulator(t, x.dir, "d0", vip, netip.MustParseAddr("198.18.1.2"))
	return x
}

// rxBytes reads an interface's received-bytes counter in ns (bytes, not
// packets: veth carries TSO segments of up to 64 KiB as one packet).
func rxBytes(t *testing.T, ns *nstest.NS, dev string) int {
	t.Helper()
	n, err := strconv.Atoi(strings.TrimSpace(ns.MustExec(t, "cat", "/sys/class/net/"+dev+"/statistics/rx_bytes")))
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// serve runs two TCP servers and a UDP echo on the VIP in the real
// server's namespace. The first TCP server answers a line with who it saw
// and a large body, so that the direct return path carries many
// full-size segments; the second reads an upload to its end and answers
// with its length and SHA-256, so that the tunnel carries the client's
// large (TSO) segments.
func (x *tunTopo) serve(t *testing.T) {
	var ln, up net.Listener
	var pc net.PacketConn
	err := x.rs.Do(func() (err error) {
		if ln, err = net.Listen("tcp4", vip.String()+":8080"); err != nil {
			return err
		}
		if up, err = net.Listen("tcp4", vip.String()+":8082"); err != nil {
			return err
		}
		pc, err = net.ListenPacket("udp4", vip.String()+":8081")
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close(); up.Close(); pc.Close() })
	go func() {
		for {
			c, err := up.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				c.SetDeadline(time.Now().Add(10 * time.Second))
				h := sha256.New()
				n, err := io.Copy(h, c)
				if err != nil {
					return
				}
				fmt.Fprintf(c, "%d %x\n", n, h.Sum(nil))
			}()
		}
	}()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				c.SetDeadline(time.Now().Add(10 * time.Second))
				line, err := bufio.NewReader(c).ReadString('\n')
				if err != nil {
					return
				}
				fmt.Fprintf(c, "rs saw %s from %s\n", strings.TrimSpace(line), c.RemoteAddr())
				c.Write(body)
			}()
		}
	}()
	go func() {
		buf := make([]byte, 2048)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			pc.WriteTo(append([]byte("echo "), buf[:n]...), from)
		}
	}()
}

// body is the TCP server's payload after its first line: 256 KiB.
var body = bytes.Repeat([]byte("0123456789abcdef"), 16<<10)

// upload is what the client sends to the second TCP server: 4 MiB, in
// segments of up to 64 KiB, since the client's veth does TSO.
var upload = func() []byte {
	b := make([]byte, 4<<20)
	for i := range b {
		b[i] = byte(i * 7)
	}
	return b
}()

// exchange runs a TCP request, a TCP upload and a UDP echo from the
// client.
func (x *tunTopo) exchange(t *testing.T, tag string) {
	t.Helper()
	var c, cu net.Conn
	var u net.PacketConn
	err := x.client.Do(func() (err error) {
		if c, err = net.DialTimeout("tcp4", vip.String()+":8080", 5*time.Second); err != nil {
			return fmt.Errorf("TCP connect to the VIP: %w", err)
		}
		if cu, err = net.DialTimeout("tcp4", vip.String()+":8082", 5*time.Second); err != nil {
			return fmt.Errorf("TCP connect to the VIP: %w", err)
		}
		u, err = net.ListenPacket("udp4", "198.18.0.1:0")
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	defer cu.Close()
	defer u.Close()

	cu.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := cu.Write(upload); err != nil {
		t.Fatalf("upload: %v", err)
	}
	cu.(*net.TCPConn).CloseWrite()
	ans, err := bufio.NewReader(cu).ReadString('\n')
	if want := fmt.Sprintf("%d %x\n", len(upload), sha256.Sum256(upload)); ans != want || err != nil {
		t.Errorf("upload answer %q, %v; want %q", ans, err, want)
	}

	c.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintf(c, "%s\n", tag)
	got, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("TCP read: %v", err)
	}
	head, rest, _ := bytes.Cut(got, []byte("\n"))
	want := fmt.Sprintf("rs saw %s from 198.18.0.1:%d", tag, c.LocalAddr().(*net.TCPAddr).Port)
	if string(head) != want {
		t.Errorf("TCP answer %q, want %q (the server must see the client's own address)", head, want)
	}
	if sha256.Sum256(rest) != sha256.Sum256(body) {
		t.Errorf("TCP body: %d bytes, not the %d sent", len(rest), len(body))
	}

	u.SetDeadline(time.Now().Add(5 * time.Second))
	to := net.UDPAddrFromAddrPort(netip.AddrPortFrom(vip, 8081))
	buf := make([]byte, 2048)
	// UDP may lose the first datagram to ARP resolution on the return
	// path; a few bounded tries.
	for try := 0; ; try++ {
		if _, err := u.WriteTo([]byte(tag), to); err != nil {
			t.Fatal(err)
		}
		u.SetReadDeadline(time.Now().Add(time.Second))
		n, from, err := u.ReadFrom(buf)
		if err == nil {
			if string(buf[:n]) != "echo "+tag || from.String() != to.String() {
				t.Errorf("UDP echo %q from %v, want %q from %v", buf[:n], from, "echo "+tag, to)
			}
			break
		}
		if try == 2 {
			t.Fatalf("UDP echo: %v", err)
		}
	}
}

// The whole TUN path with the real binary: a client talks TCP and UDP to
// the VIP through a director that tunnels to the real server, lvsd
// decapsulates in user space, the server sees the client's address and
// answers straight to the client; SIGTERM leaves the real server as it
// was.
func TestNetnsRealserverTunEndToEnd(t *testing.T) {
	nstest.Require(t)
	bin := lvsdBinary(t)
	x := newTunTopo(t)
	before := nstest.Snapshot(t, x.rs)
	stateDir := t.TempDir()

	cmd := x.rs.Command(bin, "realserver", "--tun", "--vip", vip.String(), "--state-dir", stateDir)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr syncBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stdout)
		signalled := false
		for sc.Scan() {
			if !signalled && strings.Contains(sc.Text(), "running until SIGTERM") {
				close(ready)
				signalled = true
			}
		}
		exited <- cmd.Wait()
	}()
	stopped := false
	t.Cleanup(func() {
		if !stopped { // the test failed early: stop our process, by its PID
			cmd.Process.Kill()
			<-exited
		}
	})
	select {
	case <-ready:
	case err := <-exited:
		stopped = true
		t.Fatalf("lvsd exited before it was ready: %v\n%s", err, stderr.String())
	case <-time.After(15 * time.Second):
		t.Fatalf("lvsd not ready after 15 s:\n%s", stderr.String())
	}
	x.serve(t)

	c1Before := rxBytes(t, x.client, "c1")
	t.Run("director completes checksums", func(t *testing.T) {
		x.enc.Complete.Store(true)
		x.exchange(t, "complete")
		if x.enc.Completed.Load() == 0 {
			t.Error("the client's veth sent no partial checksum: the other case tests nothing")
		}
	})
	t.Run("director forwards partial checksums", func(t *testing.T) {
		x.enc.Complete.Store(false)
		partial := x.enc.Partial.Load()
		x.exchange(t, "partial")
		if x.enc.Partial.Load() == partial {
			t.Error("no partial checksum went through the tunnel")
		}
	})
	if got := rxBytes(t, x.client, "c1") - c1Before; got < 2*len(body) {
		t.Errorf("the client received %d bytes on the direct link c1, want the two answers (over %d)", got, 2*len(body))
	}
	t.Logf("encapsulator: sent %d, partial %d, completed %d", x.enc.Sent.Load(), x.enc.Partial.Load(), x.enc.Completed.Load())

	if out, err := x.rs.Exec(bin, "realserver", "--status", "--state-dir", stateDir); err != nil ||
		!strings.Contains(out, "user-space decapsulation of ipip,ipip6: running on lvstun0: ok") {
		t.Errorf("status while running: %v\n%s", err, out)
	}

	// SIGTERM, by PID: exit 0, counters logged, nothing left behind.
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		stopped = true
		if err != nil {
			t.Errorf("lvsd after SIGTERM: %v, want exit 0\n%s", err, stderr.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("lvsd still running 10 s after SIGTERM:\n%s", stderr.String())
	}
	logs := stderr.String()
	t.Logf("lvsd stderr:\n%s", logs)
	counters := regexp.MustCompile(`decap counters.* received=(\d+) injected=(\d+) not_vip=(\d+) malformed=(\d+) checksum_completed=(\d+) write_errors=(\d+)`).FindStringSubmatch(logs)
	if counters == nil {
		t.Fatalf("no counters in the log")
	}
	n := func(i int) int { v, _ := strconv.Atoi(counters[i]); return v }
	if n(2) == 0 || n(2) != n(1) || n(4) != 0 || n(6) != 0 {
		t.Errorf("counters: received %d injected %d malformed %d write errors %d: want all received injected", n(1), n(2), n(4), n(6))
	}
	if n(5) == 0 {
		t.Error("lvsd completed no checksum, though the director forwarded partial ones")
	}
	if int64(n(1)) != x.enc.Sent.Load() {
		t.Errorf("lvsd received %d, the director sent %d", n(1), x.enc.Sent.Load())
	}
	if after := nstest.Snapshot(t, x.rs); after != before {
		t.Errorf("real server not as before:\n--- before\n%s\n--- after\n%s", before, after)
	}
	if _, err := os.Stat(filepath.Join(stateDir, "realserver.json")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("state file left: %v", err)
	}
}
