package check

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

var loadRun = flag.Bool("check.load", false, "run TestLoad1000 (1000 TCP_CHECK monitors at delay_loop 1s for 5 s)")

// loadServerEnv makes the test binary a helper that serves the load
// test's listeners, so that their CPU time is not the checkers'.
const loadServerEnv = "GOLVS_CHECK_LOAD_LISTENERS"

// TestLoad1000 measures the CPU cost of 1000 real servers checked every
// second by TCP_CHECK over loopback: go test -run TestLoad1000 ./internal/check -args -check.load
func TestLoad1000(t *testing.T) {
	if !*loadRun {
		t.Skip("a measurement: -args -check.load to run it")
	}
	const (
		n      = 1000
		window = 5 * time.Second
	)
	cmd := exec.Command(os.Args[0], "-test.run=^TestLoadServer$")
	cmd.Env = append(os.Environ(), loadServerEnv+"="+strconv.Itoa(n))
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		stdin.Close()
		cmd.Wait()
	}()
	var ports []uint16
	sc := bufio.NewScanner(stdout)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "PORTS "); ok {
			for _, f := range strings.Fields(rest) {
				p, _ := strconv.Atoi(f)
				ports = append(ports, uint16(p))
			}
			break
		}
	}
	go io.Copy(io.Discard, stdout)
	if len(ports) != n {
		t.Fatalf("helper gave %d ports", len(ports))
	}

	var mu sync.Mutex
	downs := 0
	ms := make([]*Monitor, n)
	for i := range ms {
		m, err := NewMonitor(Config{
			Target: Target{Addr: lo4, Port: ports[i]},
			Checkers: []Spec{{Kind: KindTCP, DelayLoop: time.Second, ConnectTimeout: 3 * time.Second,
				Retry: 1, DelayBeforeRetry: time.Second, Warmup: time.Second}},
			OnEvent: func(ev Event) {
				if !ev.Up {
					mu.Lock()
					downs++
					mu.Unlock()
				}
			},
		})
		if err != nil {
			t.Fatal(err)
		}
		ms[i] = m
	}
	for _, m := range ms {
		m.Start()
	}
	// Let the warmup spread the checks, then measure.
	time.Sleep(1500 * time.Millisecond)
	checks0 := totalChecks(ms)
	ru0, t0 := rusage(t), time.Now()
	time.Sleep(window)
	ru1, el := rusage(t), time.Since(t0)
	checks := totalChecks(ms) - checks0
	var mem runtime.MemStats
	runtime.ReadMemStats(&mem)
	gor := runtime.NumGoroutine()
	for _, m := range ms {
		m.Stop()
	}
	cpu := ru1 - ru0
	t.Logf("%d monitors, %d checks in %v (%.0f/s), CPU %v: %.1f ms of CPU per second (%.1f%% of a core), %.1f µs per check; %d goroutines, heap %d KiB; %d down events",
		n, checks, el.Round(time.Millisecond), float64(checks)/el.Seconds(), cpu.Round(time.Millisecond),
		float64(cpu.Milliseconds())/el.Seconds(), 100*cpu.Seconds()/el.Seconds(),
		float64(cpu.Microseconds())/float64(checks), gor, mem.HeapAlloc>>10, downs)
	if downs != 0 {
		t.Errorf("%d servers went down", downs)
	}
	if float64(checks) < 0.9*n*window.Seconds() {
		t.Errorf("%d checks, want about %d", checks, n*int(window.Seconds()))
	}
}

func totalChecks(ms []*Monitor) uint64 {
	var n uint64
	for _, m := range ms {
		for _, c := range m.Status().Checkers {
			n += c.Checks
		}
	}
	return n
}

// rusage is the process's user+system CPU time.
func rusage(t *testing.T) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		t.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// TestLoadServer is the helper process of TestLoad1000: it listens on
// $GOLVS_CHECK_LOAD_LISTENERS loopback ports, prints them, accepts and
// closes connections until its standard input closes.
func TestLoadServer(t *testing.T) {
	n, err := strconv.Atoi(os.Getenv(loadServerEnv))
	if err != nil {
		t.Skip("helper process of TestLoad1000")
	}
	var ports []string
	var wg sync.WaitGroup
	ls := make([]net.Listener, n)
	for i := range ls {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ls[i] = l
		ports = append(ports, strconv.Itoa(int(targetOf(t, l.Addr()).Port)))
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				c, err := l.Accept()
				if err != nil {
					return
				}
				c.Close()
			}
		}()
	}
	fmt.Println("PORTS " + strings.Join(ports, " "))
	io.Copy(io.Discard, os.Stdin)
	for _, l := range ls {
		l.Close()
	}
	wg.Wait()
}
