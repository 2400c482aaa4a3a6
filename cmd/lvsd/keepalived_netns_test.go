package main

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"golvs/internal/apiclient"
	"golvs/internal/service"
)

// kaRSPort is the port of the real servers' HTTP daemons in the
// keepalived tests: one nshelper per server that the test stops and
// starts (the topology's own helpers serve the other ports).
const kaRSPort = "9000"

// kaConfig is a keepalived.conf: a NAT service VIP:80 over the three
// servers' kaRSPort with HTTP_GET, plus extra lines in the
// virtual_server block.
func kaConfig(extra string) string {
	var b strings.Builder
	fmt.Fprintf(&b, `global_defs {
    router_id golvs-test
}
virtual_server %s 80 {
    delay_loop 1
    lvs_sched rr
    lvs_method NAT
    protocol TCP
%s
`, dpVIP4, extra)
	for i := range 3 {
		fmt.Fprintf(&b, `    real_server %s %s {
        weight 1
        HTTP_GET {
            url {
                path /
                status_code 200
            }
            connect_timeout 1
            retry 1
            delay_before_retry 1
        }
    }
`, dpRS4(i), kaRSPort)
	}
	b.WriteString("}\n")
	return b.String()
}

// TestNetnsKeepalived is lvsd -f keepalived.conf with real clients and
// servers: HTTP_GET takes a failed server out within delay_loop x
// (retry + 1) + connect_timeout and puts it back; inhibit_on_failure
// keeps it with weight 0; losing the quorum brings in the sorry server
// (the director itself) and regaining it takes it out; a bad file on
// SIGHUP changes nothing and the log says why.
func TestNetnsKeepalived(t *testing.T) {
	x := newDPTopo(t)
	// The sorry server is the director itself, on the virtual port (a
	// local real server must listen on it: GoLVS does not map the port
	// of traffic it hands to the local stack).
	x.listenDirector(t, "80", true)
	var daemons [3]*dpProc
	startDaemon := func(i int) {
		daemons[i] = startProc(t, t, x.rs[i].Command(x.helper, "serve", "-name", dpRSName(i), "-tcp", kaRSPort), "ready")
	}
	for i := range 3 {
		startDaemon(i)
	}
	conf := filepath.Join(x.work, "keepalived.conf")
	write := func(extra string) {
		t.Helper()
		if err := os.WriteFile(conf, []byte(kaConfig(extra)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("")
	x.startLvsd(t, "-f", conf, "--http", "127.0.0.1:9100")
	c := apiclient.New(filepath.Join(x.work, "lvsd.sock"))
	defer c.Close()
	vip := service.Key{Family: service.IPv4, Proto: service.ProtoTCP, Addr: mustAddr(dpVIP4), Port: 80}
	dests := func() string {
		e, err := c.Service(context.Background(), vip)
		if err != nil {
			return err.Error()
		}
		var ds []string
		for _, d := range e.Dests {
			ds = append(ds, fmt.Sprintf("%v:%d w%d", d.Addr, d.Port, d.Config.Weight))
		}
		slices.Sort(ds)
		return strings.Join(ds, ", ")
	}
	all := func(w2 int) string {
		return fmt.Sprintf("%s:%s w1, %s:%s w%d, %s:%s w1", dpRS4(0), kaRSPort, dpRS4(1), kaRSPort, w2, dpRS4(2), kaRSPort)
	}
	without2 := fmt.Sprintf("%s:%s w1, %s:%s w1", dpRS4(0), kaRSPort, dpRS4(2), kaRSPort)
	// waitDests waits for the real servers and returns how long it took.
	waitDests := func(what, want string, limit time.Duration) time.Duration {
		t.Helper()
		start := time.Now()
		for {
			got := dests()
			if got == want {
				return time.Since(start)
			}
			if time.Since(start) > limit {
				t.Fatalf("%s: after %v real servers are %q, want %q\nlvsd's log:\n%s", what, limit, got, want, x.lvsd.out.String())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	// delay_loop 1 s x (retry 1 + 1) + connect_timeout 1 s: the bound
	// the issue sets on detection.
	const detect = 3 * time.Second
	const slack = 1500 * time.Millisecond // process and API latency on a loaded 2-core machine

	waitDests("start", all(1), 10*time.Second)
	x.distribution(t, "http://"+dpVIP4+"/", 30, kaRSPort, dpEven)

	t.Run("failure and recovery", func(t *testing.T) {
		if err := daemons[1].signal(t, syscall.SIGKILL); err == nil {
			t.Fatal("the killed daemon exited 0")
		}
		took := waitDests("rs2 failed", without2, detect+slack)
		t.Logf("rs2 left rotation %v after its daemon died (bound %v)", took, detect)
		// After detection, no client request fails.
		x.distribution(t, "http://"+dpVIP4+"/", 20, kaRSPort, map[string]int{"rs1": 10, "rs3": 10})
		startDaemon(1)
		took = waitDests("rs2 recovered", all(1), detect+slack)
		t.Logf("rs2 returned %v after its daemon restarted", took)
		x.distribution(t, "http://"+dpVIP4+"/", 30, kaRSPort, dpEven)
	})

	t.Run("bad reload", func(t *testing.T) {
		good, _ := os.ReadFile(conf)
		os.WriteFile(conf, []byte(strings.Replace(string(good), "lvs_sched rr", "lvs_sched nosuch", 1)), 0o644)
		from := len(x.lvsd.out.String())
		if err := x.lvsd.cmd.Process.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		x.lvsd.waitLog(t, from, regexp.MustCompile(`configuration reload refused.*lvs_sched`), dpRulesTimeout)
		if got := dests(); got != all(1) {
			t.Errorf("after a bad reload: %q", got)
		}
		x.distribution(t, "http://"+dpVIP4+"/", 3, kaRSPort, map[string]int{"rs1": 1, "rs2": 1, "rs3": 1})
		os.WriteFile(conf, good, 0o644)
	})

	t.Run("inhibit_on_failure", func(t *testing.T) {
		write("    inhibit_on_failure")
		from := len(x.lvsd.out.String())
		x.lvsd.cmd.Process.Signal(syscall.SIGHUP)
		x.lvsd.waitLog(t, from, regexp.MustCompile(`configuration applied`), dpRulesTimeout)
		daemons[1].signal(t, syscall.SIGKILL)
		waitDests("rs2 inhibited", all(0), detect+slack)
		x.distribution(t, "http://"+dpVIP4+"/", 20, kaRSPort, map[string]int{"rs1": 10, "rs3": 10})
		startDaemon(1)
		waitDests("rs2 restored", all(1), detect+slack)
	})

	t.Run("quorum and sorry server", func(t *testing.T) {
		write(fmt.Sprintf("    quorum 3\n    sorry_server %s 80", dpDirBack4))
		from := len(x.lvsd.out.String())
		x.lvsd.cmd.Process.Signal(syscall.SIGHUP)
		x.lvsd.waitLog(t, from, regexp.MustCompile(`configuration applied`), dpRulesTimeout)
		waitDests("quorum up", all(1), detect+slack)
		daemons[1].signal(t, syscall.SIGKILL)
		// Quorum lost: the sorry server (the director's own HTTP
		// server) alone serves.
		waitDests("quorum lost", fmt.Sprintf("%s:80 w1", dpDirBack4), detect+slack)
		x.distribution(t, "http://"+dpVIP4+"/", 3, "80", map[string]int{"director": 3})
		startDaemon(1)
		waitDests("quorum regained", all(1), detect+slack)
		x.distribution(t, "http://"+dpVIP4+"/", 30, kaRSPort, dpEven)
	})

	// The metrics of the director's own namespace: the data plane's
	// batches and the checkers' probe durations.
	metrics := x.dir.MustExec(t, "curl", "-sS", "--noproxy", "*", "http://127.0.0.1:9100/metrics")
	for _, want := range []string{"golvs_datapath_batch_size_count ", "golvs_healthcheck_latency_seconds_bucket{"} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	x.stopLvsd(t)
	if strings.Contains(x.lvsd.out.String(), "DATA RACE") {
		t.Error("the race detector found a data race in lvsd")
	}
}

func mustAddr(s string) netip.Addr { return netip.MustParseAddr(s) }
