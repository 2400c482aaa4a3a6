package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golvs/internal/nslab"
)

// TestMain lets the test binary act as `lvslab serve`: the lab runs its
// own executable (here, this test binary) in the real servers'
// namespaces.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == "serve" {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		code := serveMain(ctx, os.Args[2:], os.Stderr)
		stop()
		os.Exit(code)
	}
	os.Exit(m.Run())
}

// Bounds of the lab test.
const (
	labUpTimeout   = 120 * time.Second // go build of lvsd and ipvsadm (a cold cache) and the start
	labWaitTimeout = 15 * time.Second  // answers from every server; a stopped server out of rotation
	labDownTimeout = 30 * time.Second  // lvslab down, up's exit included
)

// syncBuffer is the lab's output, written by its goroutines.
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

// TestLab runs the lab as a user does, through lvslab's own command
// line: up (after planting a previous lab's leftovers, which up must
// remove), requests from the client answered by all three servers in
// NAT, DR, TUN and the UDP echo, the status page reachable from the
// host, stop-rs 1 taking rs1 out of every service, and down leaving no
// namespace, process or file.
func TestLab(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("skipped: the lab needs root to create network namespaces (run the tests as root, as CI does)")
	}
	for _, c := range []string{"ip", "go"} {
		if _, err := exec.LookPath(c); err != nil {
			t.Skipf("skipped: needs %s", c)
		}
	}
	before := runtime.NumGoroutine()
	var r [3]byte
	rand.Read(r[:])
	prefix := "golvs-lab-t" + hex.EncodeToString(r[:])
	dir := filepath.Join(t.TempDir(), "golvs-lab")
	ctx, cancel := context.WithTimeout(context.Background(), labUpTimeout+3*labWaitTimeout+labDownTimeout)
	defer cancel()
	t.Cleanup(func() { nslab.Cleanup(context.Background(), dir, prefix, io.Discard) })

	// A previous lab killed without cleaning up: a namespace of it with a
	// process inside, and a state file naming a dead process.
	leftNS := prefix + "-rs2"
	if out, err := exec.Command("ip", "netns", "add", leftNS).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add: %v: %s", err, out)
	}
	left := exec.Command("ip", "netns", "exec", leftNS, "sleep", "60")
	if err := left.Start(); err != nil {
		t.Fatal(err)
	}
	leftDone := make(chan error, 1)
	go func() { leftDone <- left.Wait() }()
	t.Cleanup(func() { left.Process.Kill() })
	os.MkdirAll(filepath.Join(dir, "director1"), 0o755)
	os.WriteFile(filepath.Join(dir, "state.json"), []byte(`{"pid": 8388608, "prefix": "`+prefix+`", "run_dir": "`+dir+`"}`), 0o644)

	out := &syncBuffer{}
	upDone := make(chan int, 1)
	upCtx, stopUp := context.WithCancel(ctx)
	defer stopUp()
	start := time.Now()
	go func() {
		upDone <- run(upCtx, []string{"up", "--dir", dir, "--prefix", prefix, "--port", "0"}, out, out)
	}()
	cli := func(args ...string) string {
		t.Helper()
		var b bytes.Buffer
		if code := run(ctx, args, &b, &b); code != 0 {
			t.Fatalf("lvslab %s: exit %d: %s\nthe lab's output:\n%s", strings.Join(args, " "), code, b.String(), out.String())
		}
		return b.String()
	}

	// Up: the status answers once everything runs.
	var st *nslab.Status
	for st == nil {
		select {
		case code := <-upDone:
			t.Fatalf("lvslab up exited %d:\n%s", code, out.String())
		case <-time.After(200 * time.Millisecond):
		}
		if time.Since(start) > labUpTimeout {
			t.Fatalf("the lab is not up after %v:\n%s", labUpTimeout, out.String())
		}
		st, _ = nslab.QueryStatus(ctx, dir)
	}
	t.Logf("lab up in %v", time.Since(start).Round(time.Millisecond))
	select {
	case err := <-leftDone:
		t.Logf("the previous lab's process ended: %v", err)
	case <-time.After(labWaitTimeout):
		t.Error("up left the previous lab's process running")
	}
	stateFile, err := nslab.ReadState(dir)
	if err != nil {
		t.Fatal(err)
	}

	// The configuration files are good for the real keepalived too, in
	// the directors' namespaces (where their interfaces exist).
	if _, err := exec.LookPath("keepalived"); err == nil {
		for i, conf := range st.Configs {
			ns := prefix + "-director" + string(rune('1'+i))
			if b, err := exec.Command("ip", "netns", "exec", ns, "keepalived", "-t", "-f", conf).CombinedOutput(); err != nil {
				t.Errorf("keepalived -t -f %s in %s: %v\n%s", conf, ns, err, b)
			}
		}
	}

	// Every service answers from every server.
	waitStatus(t, ctx, dir, out, "answers from rs1, rs2 and rs3 in every service", func(st *nslab.Status) bool {
		for _, svc := range nslab.Services {
			for _, rs := range []string{"rs1", "rs2", "rs3"} {
				if st.Client[svc.Name].Answers[rs] == 0 {
					return false
				}
			}
		}
		return true
	})

	// The status page, from the host's own namespace.
	if st.StatusURL != "" {
		resp, err := (&http.Client{Timeout: 5 * time.Second}).Get(st.StatusURL)
		if err != nil {
			t.Errorf("status page %s: %v", st.StatusURL, err)
		} else {
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Errorf("status page %s: %s", st.StatusURL, resp.Status)
			}
		}
	} else {
		t.Log("lvsd has no --http: no status page to check")
	}

	// stop-rs 1: rs1 leaves every service, and the client's answers
	// come from rs2 and rs3 only.
	if got := cli("stop-rs", "1", "--dir", dir); !strings.Contains(got, "stopped rs1's HTTP and UDP servers") {
		t.Errorf("stop-rs 1 said %q", got)
	}
	stopped := time.Now()
	waitStatus(t, ctx, dir, out, "rs1 out of every service", func(st *nslab.Status) bool {
		for _, svc := range nslab.Services {
			rot := st.Rotation[svc.Name]
			if len(rot) != 2 || slices.Contains(rot, "rs1 w1") {
				return false
			}
		}
		return true
	})
	t.Logf("rs1 left rotation %v after stop-rs", time.Since(stopped).Round(time.Millisecond))
	a, err := nslab.QueryStatus(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(1500 * time.Millisecond) // 30 requests, 6 echoes
	b, err := nslab.QueryStatus(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, svc := range nslab.Services {
		d := func(rs string) int { return b.Client[svc.Name].Answers[rs] - a.Client[svc.Name].Answers[rs] }
		if d("rs1") != 0 || d("rs2")+d("rs3") == 0 {
			t.Errorf("%s after rs1 left: rs1 %d, rs2 %d, rs3 %d answers", svc.Name, d("rs1"), d("rs2"), d("rs3"))
		}
	}

	// down: up exits 0 and nothing is left.
	var pids []int
	for _, p := range b.Processes {
		pids = append(pids, p.PID)
	}
	downStart := time.Now()
	cli("down", "--dir", dir)
	select {
	case code := <-upDone:
		if code != 0 {
			t.Errorf("lvslab up exited %d after down", code)
		}
	case <-time.After(labDownTimeout):
		t.Fatalf("lvslab up still running %v after down:\n%s", labDownTimeout, out.String())
	}
	t.Logf("down in %v", time.Since(downStart).Round(time.Millisecond))
	nss, _ := exec.Command("ip", "netns", "list").CombinedOutput()
	if strings.Contains(string(nss), prefix) {
		t.Errorf("namespaces left:\n%s", nss)
	}
	for _, pid := range pids {
		if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("process %d left (%v)", pid, err)
		}
	}
	for _, d := range []string{dir, stateFile.BinDir} {
		if _, err := os.Stat(d); !os.IsNotExist(err) {
			t.Errorf("%s left (%v)", d, err)
		}
	}
	if !strings.Contains(out.String(), "lab removed") {
		t.Errorf("up's output does not end with the clean-up:\n%s", out.String())
	}
	// The lab's goroutines (client, proxies, control socket, process
	// waiters) are gone.
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		buf := make([]byte, 1<<16)
		t.Errorf("%d goroutines left, %d before:\n%s", n, before, buf[:runtime.Stack(buf, true)])
	}
	if t.Failed() {
		t.Logf("the lab's output:\n%s", out.String())
	}
}

// waitStatus waits (bounded) until ok holds for the lab's status.
func waitStatus(t *testing.T, ctx context.Context, dir string, out *syncBuffer, what string, ok func(*nslab.Status) bool) {
	t.Helper()
	deadline := time.Now().Add(labWaitTimeout)
	for {
		st, err := nslab.QueryStatus(ctx, dir)
		if err == nil && ok(st) {
			return
		}
		if time.Now().After(deadline) {
			var b bytes.Buffer
			if st != nil {
				nslab.FormatStatus(&b, st)
			}
			t.Fatalf("no %s after %v (%v):\n%s\nthe lab's output:\n%s", what, labWaitTimeout, err, b.String(), out.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestUpNotRoot: without root, up says why it cannot build the lab and
// exits 1.
func TestUpNotRoot(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("skipped: runs only without root (as root the lab would start)")
	}
	var b bytes.Buffer
	code := run(context.Background(), []string{"up", "--dir", filepath.Join(t.TempDir(), "golvs-lab")}, &b, &b)
	if code != 1 || !strings.Contains(b.String(), "must run as root") || !strings.Contains(b.String(), "lvslab sim") {
		t.Errorf("exit %d:\n%s", code, b.String())
	}
}

// TestUsage: usage errors exit 2 and say what is wrong.
func TestUsage(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"bogus"}, `unknown command "bogus"`},
		{[]string{"stop-rs"}, "stop-rs takes 1 argument(s), got 0"},
		{[]string{"stop-rs", "x"}, "N is a real server's number"},
		{[]string{"stop-rs", "1", "2"}, "stop-rs takes 1 argument(s), got 2"},
		{[]string{"weight", "ftp", "1", "1"}, `service "ftp"`},
		{[]string{"up", "--nope"}, "flag provided but not defined"},
	} {
		var b bytes.Buffer
		if code := run(context.Background(), tt.args, &b, &b); code != 2 || !strings.Contains(b.String(), tt.want) {
			t.Errorf("lvslab %s: exit %d, %q; want 2 and %q", strings.Join(tt.args, " "), code, b.String(), tt.want)
		}
	}
	var b bytes.Buffer
	if code := run(context.Background(), []string{"help"}, &b, &b); code != 0 || !strings.Contains(b.String(), "lvslab stop-rs N") {
		t.Errorf("lvslab help: exit %d:\n%s", code, b.String())
	}
}
