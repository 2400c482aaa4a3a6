package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"runtime/pprof"
	"strings"
	"testing"
	"time"

	"golvs/internal/control"
	"golvs/internal/engine"
	"golvs/internal/realserver/nstest"
	"golvs/internal/service"
)

// lifecycleChild marks the copy of the test binary that runs inside the
// namespace: the data plane's goroutines open sockets from any thread, so
// the whole process must be in the namespace, not one locked thread.
const lifecycleChild = "GOLVS_TEST_LIFECYCLE_CHILD"

// The data plane's lifecycle in process: start, follow configuration
// changes, stop by stop() and by the context, three times over, and every
// goroutine it started is gone afterwards (style.md §5.4), the nftables
// table too. The test re-runs itself inside a namespace.
func TestNetnsDataPlaneLifecycle(t *testing.T) {
	if os.Getenv(lifecycleChild) == "" {
		nstest.Require(t)
		if _, err := exec.LookPath("nft"); err != nil {
			t.Skip("skipped: needs nft (scripts/test installs it)")
		}
		dir, peer := nstest.New(t, "life"), nstest.New(t, "peer")
		nstest.Veth(t, dir, "d0", "198.18.0.2/24", peer, "p0", "198.18.0.1/24")
		dir.IP(t, "addr", "add", "198.18.0.10/32", "dev", "d0")
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, "ip", "netns", "exec", dir.Name, os.Args[0],
			"-test.run", "^TestNetnsDataPlaneLifecycle$", "-test.v", "-test.count=1")
		cmd.Env = append(os.Environ(), lifecycleChild+"=1")
		out, err := cmd.CombinedOutput()
		t.Logf("in namespace %s:\n%s", dir.Name, out)
		if err != nil {
			t.Fatalf("the test in the namespace: %v", err)
		}
		return
	}

	ctl := control.New(control.Config{StatsShards: 2})
	eng, err := engine.New(engine.Config{Control: ctl})
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(testWriter{t}, nil))
	nft := func() string {
		out, _ := exec.Command("nft", "list", "table", "netdev", "golvs").CombinedOutput()
		return string(out)
	}
	waitNFT := func(want string, present bool) {
		t.Helper()
		for deadline := time.Now().Add(5 * time.Second); strings.Contains(nft(), want) != present; {
			if time.Now().After(deadline) {
				t.Fatalf("nft table: %q present=%v never came:\n%s", want, !present, nft())
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	baseline := runtime.NumGoroutine()
	vip := netip.MustParseAddr("198.18.0.10")
	for round := range 3 {
		ctx, cancel := context.WithCancel(context.Background())
		pl, err := startDataPlane(ctx, dataPlaneConfig{Interfaces: "d0", Queues: 2}, eng, ctl, log)
		stop := pl.Stop
		if err != nil {
			t.Fatal(err)
		}
		k := service.Key{Family: service.IPv4, Proto: service.ProtoTCP, Addr: vip, Port: uint16(80 + round)}
		if err := ctl.AddService(k, service.Config{Sched: "rr"}); err != nil {
			t.Fatal(err)
		}
		if err := ctl.AddDest(k, netip.MustParseAddr("198.18.0.1"), 8080, service.DestConfig{Fwd: service.Masq, Weight: 1}); err != nil {
			t.Fatal(err)
		}
		waitNFT(fmt.Sprintf("198.18.0.10 . tcp . %d", k.Port), true)
		waitNFT("198.18.0.1 . tcp . 8080", true)
		ctl.Flush()
		waitNFT("198.18.0.10 . tcp", false)
		if round%2 == 1 {
			// The director's context ends first: the data plane stops
			// its workers, and stop still tears it down.
			cancel()
		}
		if err := stop(); err != nil {
			t.Fatalf("stop: %v", err)
		}
		cancel()
		if out := nft(); !strings.Contains(out, "No such file") {
			t.Fatalf("round %d: the table outlived stop:\n%s", round, out)
		}
	}
	for deadline := time.Now().Add(5 * time.Second); runtime.NumGoroutine() > baseline; {
		if time.Now().After(deadline) {
			var b strings.Builder
			pprof.Lookup("goroutine").WriteTo(&b, 1)
			t.Fatalf("%d goroutines, %d before the data plane started:\n%s", runtime.NumGoroutine(), baseline, b.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// testWriter sends a logger's lines to t.Log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}
