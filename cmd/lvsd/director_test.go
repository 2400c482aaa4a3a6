package main

import (
	"context"
	"errors"
	"flag"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"golvs/internal/apiclient"
	"golvs/internal/control"
	"golvs/internal/service"
	"golvs/internal/statefile"
)

func TestParseDirector(t *testing.T) {
	o, err := parseDirector(nil)
	if err != nil {
		t.Fatal(err)
	}
	want := directorOpts{socket: defaultSocket, state: defaultState, interfaces: "all", hostMarks: true, logFormat: "text"}
	if o != want {
		t.Errorf("defaults %+v, want %+v", o, want)
	}
	o, err = parseDirector([]string{"--socket", "/s", "--state=/st", "--interfaces", "eth0,eth1", "--queues", "4", "--log-format", "json"})
	if err != nil || o != (directorOpts{socket: "/s", state: "/st", interfaces: "eth0,eth1", queues: 4, hostMarks: true, logFormat: "json"}) {
		t.Errorf("%+v %v", o, err)
	}
	if _, err := parseDirector([]string{"-h"}); !errors.Is(err, flag.ErrHelp) {
		t.Errorf("-h: %v", err)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"-t"}, "-t needs -f FILE"},
		{[]string{"--deny-set", "inet/filter"}, "--deny-set"},
		{[]string{"--http", ":9100"}, "--http:"},
		{[]string{"--log-format", "xml"}, `--log-format "xml"`},
		{[]string{"--socket", ""}, "--socket is empty"},
		{[]string{"--state", ""}, "--state is empty"},
		{[]string{"--interfaces", ""}, "--interfaces is empty"},
		{[]string{"--queues", "-1"}, "--queues -1"},
		{[]string{"start"}, `unexpected argument "start"`},
		{[]string{"--nope"}, "flag provided but not defined"},
	} {
		_, err := parseDirector(c.args)
		if !errors.Is(err, errUsage) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: %v, want usage error %q", c.args, err, c.want)
		}
	}
}

func TestRunDirectorUsage(t *testing.T) {
	var out, errOut strings.Builder
	if code := run([]string{"run", "--help"}, &out, &errOut); code != exitOK || !strings.Contains(out.String(), "lvsd run - run the director") {
		t.Errorf("--help: %d %q", code, out.String())
	}
	out.Reset()
	if code := run([]string{"run", "--config-test"}, &out, &errOut); code != exitUsage ||
		!strings.Contains(errOut.String(), "lvsd run: -t needs -f FILE\nTry 'lvsd run --help'.") {
		t.Errorf("-t: %d %q", code, errOut.String())
	}
	out.Reset()
	if code := run([]string{"--help"}, &out, &errOut); code != exitOK || !strings.Contains(out.String(), "run          run the director") {
		t.Errorf("lvsd --help lacks run: %q", out.String())
	}
}

// testDir returns a short temporary directory (socket paths are limited
// to 107 bytes).
func testDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "golvs-lvsd-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// startDirect runs direct in a goroutine until the returned function is
// called, which returns direct's error.
func startDirect(t *testing.T, o directorOpts) (stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- direct(ctx, o, slog.New(slog.DiscardHandler)) }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		select {
		case err := <-done:
			cancel()
			t.Fatalf("direct returned at start: %v", err)
		default:
		}
		if c, err := net.Dial("unix", o.socket); err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			cancel()
			t.Fatal("director not answering")
		}
		time.Sleep(5 * time.Millisecond)
	}
	return func() error {
		cancel()
		select {
		case err := <-done:
			return err
		case <-time.After(10 * time.Second):
			t.Fatal("direct did not return")
			return nil
		}
	}
}

// TestDirectLifecycle runs the director in process: it restores and saves
// the state, serves the API, stops when its context ends, removes its
// socket and leaves no goroutine behind.
func TestDirectLifecycle(t *testing.T) {
	dir := testDir(t)
	o := directorOpts{socket: filepath.Join(dir, "run", "lvsd.sock"), state: filepath.Join(dir, "lib", "state"), interfaces: "none", logFormat: "text"}
	// os/signal starts its one process-wide goroutine at the first
	// Notify (direct's SIGHUP handler); start it before counting.
	warm := make(chan os.Signal, 1)
	signal.Notify(warm, syscall.SIGHUP)
	signal.Stop(warm)
	before := runtime.NumGoroutine()
	k := service.Key{Family: service.IPv4, Proto: service.ProtoTCP, Addr: netip.MustParseAddr("198.18.0.1"), Port: 80}

	for round := range 2 {
		stop := startDirect(t, o)
		fi, err := os.Stat(o.socket)
		if err != nil || fi.Mode().Perm() != 0o600 || fi.Mode().Type() != os.ModeSocket {
			t.Fatalf("socket %v %v", fi, err)
		}
		if _, err := statefile.Read(o.state); err != nil {
			t.Fatalf("round %d: no state file at start: %v", round, err)
		}
		c := apiclient.New(o.socket)
		ctx := context.Background()
		switch round {
		case 0:
			if err := c.AddService(ctx, k, service.Config{Sched: "rr"}); err != nil {
				t.Fatal(err)
			}
			doc, err := statefile.Read(o.state)
			if err != nil || len(doc.Services) != 1 || doc.Services[0].Scheduler != "rr" {
				t.Fatalf("state after a change: %+v %v", doc, err)
			}
		case 1:
			// Restored from the state file.
			if e, err := c.Service(ctx, k); err != nil || e.Config.Sched != "rr" {
				t.Fatalf("after restart: %+v %v", e, err)
			}
			if err := c.AddService(ctx, k, service.Config{Sched: "rr"}); !errors.Is(err, control.ErrServiceExists) {
				t.Fatalf("second add: %v", err)
			}
		}
		c.Close()
		if err := stop(); err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		if _, err := os.Lstat(o.socket); !os.IsNotExist(err) {
			t.Fatalf("round %d: socket left: %v", round, err)
		}
	}
	// Goroutines wind down asynchronously (idle HTTP connections).
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		buf := make([]byte, 1<<16)
		t.Errorf("%d goroutines left, %d before:\n%s", n, before, buf[:runtime.Stack(buf, true)])
	}
}

func TestDirectSocket(t *testing.T) {
	dir := testDir(t)
	o := directorOpts{socket: filepath.Join(dir, "lvsd.sock"), state: filepath.Join(dir, "state"), interfaces: "none"}

	// A socket left by a killed lvsd (nobody listening) is replaced.
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: o.socket, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	ln.SetUnlinkOnClose(false)
	ln.Close()
	stop := startDirect(t, o)

	// A live one is not.
	err = direct(context.Background(), o, slog.New(slog.DiscardHandler))
	if err == nil || !strings.Contains(err.Error(), "another lvsd is listening on it") {
		t.Errorf("second director: %v", err)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}

	// Something else at the path is left alone.
	if err := os.WriteFile(o.socket, []byte("precious"), 0o600); err != nil {
		t.Fatal(err)
	}
	err = direct(context.Background(), o, slog.New(slog.DiscardHandler))
	if err == nil || !strings.Contains(err.Error(), "exists and is not a socket") {
		t.Errorf("file at the socket path: %v", err)
	}
	if b, _ := os.ReadFile(o.socket); string(b) != "precious" {
		t.Error("the file was touched")
	}
}

func TestDirectBadState(t *testing.T) {
	dir := testDir(t)
	o := directorOpts{socket: filepath.Join(dir, "lvsd.sock"), state: filepath.Join(dir, "state"), interfaces: "none"}
	for _, c := range []struct{ content, want string }{
		{`{"version":1,"services":[`, "state file"},
		{`{"version":9}`, "version 9"},
		{`{"version":1,"services":[{"family":4,"protocol":6,"addr":"198.18.0.1","port":80,"scheduler":"nope","netmask":4294967295}]}`, "Scheduler or persistence engine not found"},
	} {
		if err := os.WriteFile(o.state, []byte(c.content), 0o600); err != nil {
			t.Fatal(err)
		}
		err := direct(context.Background(), o, slog.New(slog.DiscardHandler))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", c.content, err, c.want)
		}
		if b, _ := os.ReadFile(o.state); string(b) != c.content {
			t.Errorf("the state file was overwritten")
		}
		if _, err := os.Lstat(o.socket); !os.IsNotExist(err) {
			t.Errorf("socket created before the state was read")
		}
	}
	// A temporary file of an interrupted save is removed.
	os.Remove(o.state)
	tmp := filepath.Join(dir, ".state.tmp-123")
	if err := os.WriteFile(tmp, []byte("half"), 0o600); err != nil {
		t.Fatal(err)
	}
	stop := startDirect(t, o)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(tmp); !os.IsNotExist(err) {
		t.Errorf("temporary file left: %v", err)
	}
	// An unwritable state path fails at start.
	o.state = "/proc/golvs-cannot-write/state"
	if err := direct(context.Background(), o, slog.New(slog.DiscardHandler)); err == nil || !strings.Contains(err.Error(), "state file") {
		t.Errorf("unwritable state: %v", err)
	}
}
