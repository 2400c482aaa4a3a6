package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golvs/internal/api"
	"golvs/internal/apiclient"
	"golvs/internal/service"
	"golvs/internal/statefile"
)

// TestConfigTest is lvsd -t -f FILE.
func TestConfigTest(t *testing.T) {
	dir := testDir(t)
	good := filepath.Join(dir, "good.conf")
	bad := filepath.Join(dir, "bad.conf")
	os.WriteFile(good, []byte("virtual_server 198.18.0.10 80 {\n  lvs_sched rr\n  protocol TCP\n  smtp_alert\n  real_server 198.18.1.11 80 {\n    TCP_CHECK {\n    }\n  }\n}\n"), 0o644)
	os.WriteFile(bad, []byte("virtual_server 198.18.0.10 80 {\n  lvs_sched nosuch\n  protocol TCP\n}\n"), 0o644)
	var out, errOut bytes.Buffer
	if code := run([]string{"-t", "-f", good}, &out, &errOut); code != exitOK || !strings.Contains(out.String(), "configuration good") {
		t.Errorf("good file: exit %d\n%s%s", code, out.String(), errOut.String())
	}
	out.Reset()
	errOut.Reset()
	if code := run([]string{"-t", "-f", bad}, &out, &errOut); code != exitError || !strings.Contains(errOut.String(), bad+":2: lvs_sched:") {
		t.Errorf("bad file: exit %d\n%s%s", code, out.String(), errOut.String())
	}
	if code := run([]string{"run", "-t"}, &out, &errOut); code != exitUsage {
		t.Errorf("-t without -f: exit %d", code)
	}
}

// listen returns a TCP listener on a free loopback port.
func listen(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	return ln
}

// TestDirectKeepalived runs the director on a keepalived.conf whose real
// servers are loopback listeners with TCP_CHECK: a server whose listener
// is gone leaves the service, and returns when it is back; a bad reload
// changes nothing; a good one applies the difference; ipvsadm's own
// services live beside the file's and alone go to the state file.
func TestDirectKeepalived(t *testing.T) {
	dir := testDir(t)
	up := listen(t)
	down := listen(t)
	upPort := up.Addr().(*net.TCPAddr).Port
	downAddr := down.Addr().String()
	downPort := down.Addr().(*net.TCPAddr).Port
	down.Close() // the second server starts dead

	conf := filepath.Join(dir, "keepalived.conf")
	write := func(extra string) {
		t.Helper()
		c := fmt.Sprintf(`global_defs {
    router_id test
}
virtual_server 198.18.0.10 80 {
    delay_loop 1
    lvs_sched rr
    lvs_method NAT
    protocol TCP
%s
    real_server 127.0.0.1 %d {
        weight 2
        TCP_CHECK {
            connect_timeout 1
            retry 1
            delay_before_retry 1
        }
    }
    real_server 127.0.0.1 %d {
        weight 3
        TCP_CHECK {
            connect_timeout 1
            retry 1
            delay_before_retry 1
        }
    }
}
`, extra, upPort, downPort)
		if err := os.WriteFile(conf, []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("")
	// A free loopback port for --http.
	hl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	httpAddr := hl.Addr().String()
	hl.Close()
	o := directorOpts{socket: filepath.Join(dir, "lvsd.sock"), state: filepath.Join(dir, "state"), interfaces: "none", config: conf, http: httpAddr}
	stop := startDirect(t, o)
	defer func() {
		if err := stop(); err != nil {
			t.Error(err)
		}
	}()
	c := apiclient.New(o.socket)
	defer c.Close()
	ctx := context.Background()
	vip := service.Key{Family: service.IPv4, Proto: service.ProtoTCP, Addr: netip.MustParseAddr("198.18.0.10"), Port: 80}
	dests := func() string {
		e, err := c.Service(ctx, vip)
		if err != nil {
			return err.Error()
		}
		var ds []string
		for _, d := range e.Dests {
			ds = append(ds, fmt.Sprintf("%d:%d", d.Port, d.Config.Weight))
		}
		slices.Sort(ds)
		return strings.Join(ds, " ")
	}
	sorted := func(parts ...string) string {
		slices.Sort(parts)
		return strings.Join(parts, " ")
	}
	wait := func(what, want string) {
		t.Helper()
		// delay_loop 1 s, warmup up to 1 s, connect_timeout 1 s.
		deadline := time.Now().Add(8 * time.Second)
		for {
			got := dests()
			if got == want {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: real servers %q, want %q", what, got, want)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	wait("the dead server leaves", fmt.Sprintf("%d:2", upPort))

	// --http: the metrics show the checkers' verdicts and the service.
	resp, err := http.Get("http://" + httpAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		"golvs_healthcheck_latency_seconds_count{",
		fmt.Sprintf(`golvs_real_server_up{checker="TCP_CHECK",server="127.0.0.1:%d",service="TCP 198.18.0.10:80"} 0`, downPort),
		fmt.Sprintf(`golvs_real_server_up{checker="TCP_CHECK",server="127.0.0.1:%d",service="TCP 198.18.0.10:80"} 1`, upPort),
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if resp, err := http.Get("http://" + httpAddr + "/healthz"); err != nil || resp.StatusCode != 200 {
		t.Errorf("/healthz: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}

	h, err := c.Health(ctx)
	if err != nil || len(h) != 2 {
		t.Fatalf("health %+v %v", h, err)
	}
	for _, rs := range h {
		if rs.Service != "TCP 198.18.0.10:80" || len(rs.Checkers) != 1 || rs.Checkers[0].Kind != "TCP_CHECK" {
			t.Errorf("health entry %+v", rs)
		}
		if strings.HasSuffix(rs.Server, fmt.Sprint(downPort)) && (rs.Up || rs.Checkers[0].ConsecutiveFailures == 0 || rs.Checkers[0].LastResult == "") {
			t.Errorf("the dead server's health %+v", rs)
		}
	}

	// lvsd health lists both, the dead one down with its failure.
	var out, errOut bytes.Buffer
	if code := run([]string{"health", "--socket", o.socket}, &out, &errOut); code != exitOK ||
		!strings.Contains(out.String(), fmt.Sprintf("127.0.0.1:%d  down", downPort)) || !strings.Contains(out.String(), "TCP_CHECK") {
		t.Errorf("lvsd health: exit %d\n%s%s", code, out.String(), errOut.String())
	}

	// The server comes back.
	back, err := net.Listen("tcp", downAddr)
	if err != nil {
		t.Skipf("cannot listen on %s again: %v", downAddr, err)
	}
	defer back.Close()
	go func() {
		for {
			c, err := back.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	wait("the recovered server returns", sorted(fmt.Sprintf("%d:2", upPort), fmt.Sprintf("%d:3", downPort)))

	// A service of ipvsadm's own.
	other := service.Key{Family: service.IPv4, Proto: service.ProtoUDP, Addr: netip.MustParseAddr("198.18.0.11"), Port: 53}
	if err := c.AddService(ctx, other, service.Config{Sched: "wlc"}); err != nil {
		t.Fatal(err)
	}
	doc, err := statefile.Read(o.state)
	if err != nil || len(doc.Services) != 1 || doc.Services[0].Port != 53 {
		t.Fatalf("state file %+v %v: want ipvsadm's service alone", doc, err)
	}

	// A bad file changes nothing.
	good, _ := os.ReadFile(conf)
	os.WriteFile(conf, []byte("virtual_server 198.18.0.10 80 {\n  lvs_sched nosuch\n"), 0o644)
	if _, err := c.Reload(ctx); !errors.Is(err, api.ErrBadConfig) || !strings.Contains(err.Error(), "lvs_sched") {
		t.Errorf("bad reload: %v", err)
	}
	out.Reset()
	errOut.Reset()
	if code := run([]string{"reload", "--socket", o.socket}, &out, &errOut); code != exitError || !strings.Contains(errOut.String(), "lvs_sched") {
		t.Errorf("lvsd reload of a bad file: exit %d\n%s%s", code, out.String(), errOut.String())
	}
	if got := dests(); got != sorted(fmt.Sprintf("%d:2", upPort), fmt.Sprintf("%d:3", downPort)) {
		t.Errorf("after a bad reload: %q", got)
	}
	os.WriteFile(conf, good, 0o644)

	// inhibit_on_failure: the server stays with weight 0.
	write("    inhibit_on_failure")
	if _, err := c.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	back.Close()
	wait("inhibited server", sorted(fmt.Sprintf("%d:2", upPort), fmt.Sprintf("%d:0", downPort)))
	if _, err := c.Service(ctx, other); err != nil {
		t.Errorf("ipvsadm's service after reloads: %v", err)
	}
}
