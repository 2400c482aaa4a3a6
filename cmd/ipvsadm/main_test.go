package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golvs/internal/api"
	"golvs/internal/apiclient"
	"golvs/internal/control"
	"golvs/internal/engine"
	"golvs/internal/ipvsadm"
)

// serveAPI runs the control API in this process on a Unix socket and
// returns the socket.
func serveAPI(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "golvs-ipvsadm-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	socket := filepath.Join(dir, "lvsd.sock")
	ctl := control.New(control.Config{})
	eng, err := engine.New(engine.Config{Control: ctl, MaxConns: 1024})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("unix", socket)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: api.New(api.Config{Control: ctl, Engine: eng})}
	done := make(chan struct{})
	go func() {
		defer close(done)
		srv.Serve(ln)
	}()
	t.Cleanup(func() {
		srv.Close()
		<-done
	})
	return socket
}

// runIn runs the ipvsadm of this package with argv against socket.
func runIn(socket, stdin string, argv ...string) result {
	var out, errOut bytes.Buffer
	code := run(append([]string{"ipvsadm"}, argv...), env{
		socket: socket, stdin: strings.NewReader(stdin), stdout: &out, stderr: &errOut,
		resolver: ipvsadm.DefaultPorts(),
	})
	return result{out.String(), errOut.String(), code}
}

// refRestore is ipvsadm -R as ipvsadm does it: every line applied on its
// own, in order, through the API (no batching).
func refRestore(socket, stdin string) result {
	var out, errOut bytes.Buffer
	cl := apiclient.New(socket)
	defer cl.Close()
	r := &runner{program: "ipvsadm", cl: cl, env: env{socket: socket, stdout: &out, stderr: &errOut, resolver: ipvsadm.DefaultPorts()}}
	p := &ipvsadm.Parser{Program: "ipvsadm"}
	ctx := context.Background()
	err := p.ReadRestore(strings.NewReader(stdin), func(c ipvsadm.Command) error {
		switch c.Kind {
		case ipvsadm.CmdHelp:
			fmt.Fprint(&out, ipvsadm.HelpText("ipvsadm"))
			return nil
		case ipvsadm.CmdVersion:
			fmt.Fprint(&out, ipvsadm.VersionText)
			return nil
		case ipvsadm.CmdList, ipvsadm.CmdSave:
			return r.list(ctx, c, &out)
		}
		return cl.Do(ctx, c)
	}, &errOut)
	code := 0
	var ee *ipvsadm.ExitError
	if errors.As(err, &ee) {
		code = ee.Code
	} else if err != nil {
		code = -1
	}
	return result{out.String(), errOut.String(), code}
}

// TestRestoreBatching checks the batched -R against ipvsadm's line by
// line -R: same output, same messages in the same order, same status,
// same table.
func TestRestoreBatching(t *testing.T) {
	// Small batches, so that every script crosses batch boundaries.
	defer func(n int) { restoreBatch = n }(restoreBatch)
	restoreBatch = 3
	var long strings.Builder
	for i := range restoreBatch + 100 {
		fmt.Fprintf(&long, "-A -t 198.18.%d.%d:80 -s rr\n", i/250, i%250+1)
		if i == restoreBatch-2 || i == restoreBatch+1 {
			fmt.Fprintf(&long, "-A -t 198.18.%d.%d:80 -s rr\n", i/250, i%250+1) // exists
		}
	}
	scripts := map[string]string{
		"empty":    "",
		"blank":    "\n  \n\t\n",
		"all good": "-A -t 198.18.0.1:80 -s rr\n-a -t 198.18.0.1:80 -r 198.19.0.1 -m\nipvsadm -A -u 198.18.0.1:53\n",
		"kernel failures": "-A -t 198.18.0.1:80 -s rr\n-A -t 198.18.0.1:80 -s rr\n-a -t 198.18.0.9:80 -r 198.19.0.1\n" +
			"-a -t 198.18.0.1:80 -r 198.19.0.1\n-d -t 198.18.0.1:80 -r 198.19.0.2\n",
		"last fails":   "-A -t 198.18.0.1:80 -s rr\n-A -t 198.18.0.1:80 -s rr\n",
		"fail then ok": "-A -t 198.18.0.1:80 -s rr\n-A -t 198.18.0.1:80 -s rr\n-A -t 198.18.0.2:80 -s rr\n",
		"popt errors": "-A -t 198.18.0.1:80 -s rr\n-A -t 198.18.0.1:80 -s rr\n-a -t 198.18.0.1:80 -r 198.19.0.1 -Q\n" +
			"-a -t 198.18.0.9:80 -r 198.19.0.1\n-A -t 198.18.0.3:80 --bogus\n",
		"popt error last": "-A -t 198.18.0.1:80 -s rr\n-D -t 198.18.0.7:80\n-A -t 198.18.0.2:80 -Q\n",
		"listing between": "-A -t 198.18.0.1:80 -s rr\n-A -t 198.18.0.1:80 -s rr\n-L -n\n-a -t 198.18.0.1:80 -r 198.19.0.1 -m\n" +
			"-D -t 198.18.0.9:80\n-S -n\n-a -t 198.18.0.1:80 -r 198.19.0.1 -m\n",
		"failed listing":    "-A -t 198.18.0.1:80 -s rr\n-E -t 198.18.0.5:80\n-L -n -t 198.18.0.5:80\n-A -t 198.18.0.2:80 -s rr\n",
		"fatal parse":       "-A -t 198.18.0.1:80 -s rr\n-A -t 198.18.0.1:80 -s rr\n-A -t 198.18.0.300:80\n-A -t 198.18.0.2:80 -s rr\n",
		"try help":          "-A -t 198.18.0.1:80 -s rr\n-X bogus\n-A -t 198.18.0.4:80 -s rr\n",
		"nested -R":         "-A -t 198.18.0.1:80 -s rr\n-R\n-A -t 198.18.0.4:80 -s rr\n",
		"help":              "-A -t 198.18.0.1:80 -s rr\n-A -t 198.18.0.1:80 -s rr\n-h\n-A -t 198.18.0.4:80 -s rr\n",
		"version":           "-D -t 198.18.0.1:80\n-v\n-A -t 198.18.0.4:80 -s rr\n",
		"comment":           "# a comment\n-A -t 198.18.0.1:80 -s rr\n",
		"more than a batch": long.String(),
	}
	for name, script := range scripts {
		t.Run(name, func(t *testing.T) {
			s1, s2 := serveAPI(t), serveAPI(t)
			got := runIn(s1, script, "-R")
			want := refRestore(s2, script)
			if got != want {
				t.Errorf("batched -R:\nexit %d\nstdout:\n%s\nstderr:\n%s\nline by line:\nexit %d\nstdout:\n%s\nstderr:\n%s",
					got.code, got.stdout, got.stderr, want.code, want.stdout, want.stderr)
			}
			if a, b := runIn(s1, "", "-S", "-n"), runIn(s2, "", "-S", "-n"); a != b {
				t.Errorf("tables differ:\n%s\n%s", a.stdout, b.stdout)
			}
		})
	}
}

// TestRestoreUnreachable: -R without lvsd says so once, after what it
// printed before trying.
func TestRestoreUnreachable(t *testing.T) {
	socket := filepath.Join(t.TempDir(), "none.sock")
	r := runIn(socket, "-A -t 198.18.0.1:80 -Q\n-A -t 198.18.0.1:80 -s rr\n", "-R")
	want := "-Q: unknown option\nipvsadm: cannot reach lvsd at " + socket + ": connect: no such file or directory (is lvsd running? set LVSD_SOCKET to its socket)\n"
	if r.code != 1 || r.stderr != want {
		t.Errorf("exit %d\n%q\nwant\n%q", r.code, r.stderr, want)
	}
	r = runIn(socket, "-L -n\n-A -t 198.18.0.1:80 -s rr\n", "-R")
	if r.code != 1 || !strings.HasPrefix(r.stderr, "ipvsadm: cannot reach lvsd") || strings.Count(r.stderr, "\n") != 1 {
		t.Errorf("listing: exit %d %q", r.code, r.stderr)
	}
}

func TestRunWithoutDaemon(t *testing.T) {
	socket := filepath.Join(t.TempDir(), "none.sock")
	for _, c := range []struct {
		argv   []string
		code   int
		stdout string // prefix
		stderr string
	}{
		{[]string{"-v"}, 0, "ipvsadm v1.31 2019/12/24", ""},
		{[]string{"--help"}, 0, "ipvsadm v1.31 2019/12/24 (compiled with popt and IPVS v1.2.1)\nUsage:\n", ""},
		{[]string{"--bogus"}, 255, "", "Try `ipvsadm -h' or 'ipvsadm --help' for more information.\n"},
		{[]string{"-A"}, 2, "", "You need to supply the 'service-address' option for the 'add-service' command\n"},
		{[]string{"-C"}, 1, "", "ipvsadm: cannot reach lvsd at " + socket + ": connect: no such file or directory (is lvsd running? set LVSD_SOCKET to its socket)\n"},
	} {
		r := runIn(socket, "", c.argv...)
		if r.code != c.code || !strings.HasPrefix(r.stdout, c.stdout) || r.stderr != c.stderr {
			t.Errorf("%v: exit %d\nstdout %.60q\nstderr %q", c.argv, r.code, r.stdout, r.stderr)
		}
	}
}

func TestRunListings(t *testing.T) {
	socket := serveAPI(t)
	for _, l := range []string{"-A -t 198.18.0.1:80 -s rr", "-a -t 198.18.0.1:80 -r 198.19.0.1:8080 -m", "-A -u 198.18.0.1:53 -s rr"} {
		if r := runIn(socket, "", strings.Fields(l)...); r.code != 0 || r.stderr != "" {
			t.Fatalf("%s: %+v", l, r)
		}
	}
	// Without -n: names from the resolver (the built-in port table here).
	r := runIn(socket, "", "-L")
	want := "IP Virtual Server version 1.2.1 (size=4096)\n" +
		"Prot LocalAddress:Port Scheduler Flags\n" +
		"  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n" +
		"TCP  198.18.0.1:http rr\n" +
		"  -> 198.19.0.1:http-alt          Masq    1      0          0         \n" +
		"UDP  198.18.0.1:domain rr\n"
	if r.code != 0 || r.stdout != want {
		t.Errorf("-L: exit %d\n%s\nwant\n%s%s", r.code, r.stdout, want, r.stderr)
	}
	r = runIn(socket, "", "-S")
	if want := "-A -t 198.18.0.1:http -s rr\n-a -t 198.18.0.1:http -r 198.19.0.1:http-alt -m -w 1\n-A -u 198.18.0.1:domain -s rr\n"; r.stdout != want {
		t.Errorf("-S:\n%s", r.stdout)
	}
	r = runIn(socket, "", "-L", "-n", "-c")
	if r.code != 0 || r.stdout != "IPVS connection entries\npro expire state       source             virtual            destination\n" {
		t.Errorf("-Lnc: %+v", r)
	}
	if r := runIn(socket, "", "-Z", "-t", "198.18.0.9:80"); r.code != 255 || r.stderr != "No such service\n" {
		t.Errorf("-Z of no service: %+v", r)
	}
}

func TestSystemResolver(t *testing.T) {
	r := newSystemResolver()
	if name, ok := r.Port(6, 80); !ok || name != "http" {
		t.Errorf("port 80: %q %v", name, ok)
	}
	r.dead = true
	if _, ok := r.Host(netipMust("198.18.0.1")); ok {
		t.Error("a dead resolver named a host")
	}
}

func netipMust(s string) netip.Addr { return netip.MustParseAddr(s) }
