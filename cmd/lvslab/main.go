// Command lvslab shows GoLVS at work.
//
// lvslab (or lvslab up), as root, builds a lab in network namespaces: a
// client, two directors running lvsd (VRRP master and backup, from a
// keepalived.conf it writes), three real servers, NAT, DR and TUN
// services and a UDP echo; it drives a little client traffic and shows
// ipvsadm's tables live, until Ctrl-C, which removes everything. Other
// subcommands, from another terminal, break things and watch GoLVS react
// (package golvs/internal/nslab).
//
// lvslab sim needs neither root nor a network: the real director
// (engine, schedulers, connection table, packet pipeline) runs on a
// simulated network with a client, a router and three real servers, in
// each forwarding method (package golvs/internal/lvslab).
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"golvs/internal/nslab"
)

const usage = `NAME
    lvslab - GoLVS at work, in network namespaces or on a simulated network

SYNOPSIS
    lvslab [up] [--port N] [--bin DIR] [--dir DIR]
    lvslab stop-rs N | start-rs N
    lvslab kill-master | restart-master
    lvslab weight SERVICE N WEIGHT
    lvslab status [--json]
    lvslab down
    lvslab sim [--seed N] [--conns N] [--pcap DIR] [--trace]

DESCRIPTION
    lvslab up (the default) builds, as root, a lab in network namespaces
    named golvs-lab-* with addresses from 198.18.0.0/15 only: a client, a
    switch (two bridges and a router), two directors running lvsd, and
    three real servers running small HTTP servers (answering their name)
    and a UDP echo, set up with lvsd realserver. It builds lvsd and ipvsadm
    (go build, into a temporary directory), writes each director's
    keepalived.conf (a VRRP instance: director1 master with priority 150,
    director2 backup with 100; lvs_sync_daemon on the LAN; virtual servers
    NAT 198.18.0.101:80 -> :8080 with HTTP_GET, DR 198.18.0.102:80 and TUN
    198.18.0.103:80 with TCP_CHECK, a UDP echo 198.18.0.101:53 with
    UDP_CHECK) and prints their paths, sends 20 HTTP requests and 4 UDP
    echoes a second from the client, and every 2 s prints which server
    answered, lvsd's events and the active director's
    ipvsadm -L -n --stats. Each director's status page (lvsd --http, in
    its namespace) is reachable from the host on 127.0.0.1. It runs until
    Ctrl-C or lvslab down, then removes every namespace, process and file
    it made. A second lvslab up removes a previous lab first.

    From another terminal, while the lab runs:

    stop-rs N, start-rs N
        Stop or start real server N's (1-3) HTTP and UDP servers: its
        health checks fail and lvsd takes it out of every service, or
        put it back.
    kill-master
        SIGKILL the lvsd of the director holding the VIPs: the backup
        takes over.
    restart-master
        Start the lvsd that is not running: director1 takes the VIPs back.
    weight SERVICE N WEIGHT
        ipvsadm -e on every running director: SERVICE is NAT, DR, TUN or
        UDP (or its VIP:port), N the real server.
    status [--json]
        The lab's processes, the real servers in rotation, the client's
        answers, the files and URLs.
    down
        Stop the lab and remove everything it made (also what a lab
        killed without cleaning up left behind).

    lvslab sim runs the director on a simulated network: no root, no
    network (lvslab sim --help).

OPTIONS
    --port N   the host's 127.0.0.1 port of the status page (the active
               director; director1 and director2 on the next two).
               Default: 9650; a busy port falls back to a free one.
    --bin DIR  use prebuilt lvsd and ipvsadm from DIR instead of
               building them.
    --dir DIR  the lab's run directory: state file, control socket,
               configuration, logs. Its name must start with golvs-lab.
               Default: /run/golvs-lab.

EXIT STATUS
    0 done, 1 failure (not root, a lab not running...), 2 usage error.

FILES
    /run/golvs-lab/state.json, /run/golvs-lab/lab.sock,
    /run/golvs-lab/director{1,2}/keepalived.conf, /run/golvs-lab/*.log
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run runs lvslab with args and returns its exit status.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cmd := "up"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "sim":
		return simMain(args, stdout, stderr)
	case "serve":
		return serveMain(ctx, args, stderr)
	case "help":
		fmt.Fprint(stdout, usage)
		return 0
	}
	fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	dir := fs.String("dir", nslab.DefaultRunDir, "")
	port := fs.Int("port", nslab.DefaultHTTPPort, "")
	bin := fs.String("bin", "", "")
	prefix := fs.String("prefix", nslab.DefaultPrefix, "") // for tests: the namespaces' prefix
	jsonOut := fs.Bool("json", false, "")
	// Flags may come before, between or after the arguments.
	var rest []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				fmt.Fprint(stdout, usage)
				return 0
			}
			return usageError(stderr, err.Error())
		}
		if fs.NArg() == 0 {
			break
		}
		rest = append(rest, fs.Arg(0))
		args = fs.Args()[1:]
	}
	want := map[string]int{"up": 0, "stop-rs": 1, "start-rs": 1, "kill-master": 0, "restart-master": 0, "weight": 3, "status": 0, "down": 0}
	n, ok := want[cmd]
	if !ok {
		return usageError(stderr, fmt.Sprintf("unknown command %q", cmd))
	}
	if len(rest) != n {
		return usageError(stderr, fmt.Sprintf("%s takes %d argument(s), got %d", cmd, n, len(rest)))
	}
	fail := func(err error) int {
		fmt.Fprintln(stderr, "lvslab:", err)
		return 1
	}
	switch cmd {
	case "up":
		return up(ctx, nslab.Config{RunDir: *dir, Prefix: *prefix, BinDir: *bin, HTTPPort: *port, Out: stdout, Command: commandName()}, stderr)
	case "stop-rs", "start-rs":
		if _, err := strconv.Atoi(strings.TrimPrefix(rest[0], "rs")); err != nil {
			return usageError(stderr, fmt.Sprintf("%s N: N is a real server's number (1-3), not %q", cmd, rest[0]))
		}
		return callLab(ctx, stdout, stderr, *dir, cmd, url.Values{"rs": {rest[0]}})
	case "kill-master", "restart-master":
		return callLab(ctx, stdout, stderr, *dir, cmd, nil)
	case "weight":
		svc, rs, w, err := nslab.ParseWeightArgs(rest)
		if err != nil {
			return usageError(stderr, "weight: "+err.Error())
		}
		return callLab(ctx, stdout, stderr, *dir, cmd, url.Values{"service": {svc}, "rs": {strconv.Itoa(rs)}, "weight": {strconv.Itoa(w)}})
	case "status":
		st, err := nslab.QueryStatus(ctx, *dir)
		if err != nil {
			return fail(notRunning(err, *dir))
		}
		if *jsonOut {
			b, _ := jsonIndent(st)
			stdout.Write(b)
			return 0
		}
		nslab.FormatStatus(stdout, st)
		return 0
	case "down":
		return down(ctx, *dir, *prefix, stdout, stderr)
	}
	return usageError(stderr, fmt.Sprintf("unknown command %q", cmd))
}

func usageError(w io.Writer, msg string) int {
	fmt.Fprintf(w, "lvslab: %s\n(lvslab help shows the manual)\n", msg)
	return 2
}

// commandName is how the user ran lvslab, for the hints the lab prints:
// go run builds into a go-build temporary directory.
func commandName() string {
	exe, err := os.Executable()
	if err == nil && strings.Contains(exe, string(filepath.Separator)+"go-build") {
		return "go run ./cmd/lvslab"
	}
	return filepath.Base(os.Args[0])
}

func up(ctx context.Context, cfg nslab.Config, stderr io.Writer) int {
	lab, err := nslab.Up(ctx, cfg)
	if errors.Is(err, nslab.ErrNotRoot) {
		fmt.Fprintf(stderr, "lvslab: %v.\n"+
			"Run it as root (for example: sudo go run ./cmd/lvslab), or try lvslab sim, which shows the same\n"+
			"director on a simulated network without root or a network (go run ./cmd/lvslab sim).\n", err)
		return 1
	}
	if err != nil && ctx.Err() != nil {
		fmt.Fprintln(stderr, "lvslab: interrupted; what the lab had made is removed")
		return 1
	}
	if err != nil {
		fmt.Fprintln(stderr, "lvslab:", err)
		return 1
	}
	lab.Run(ctx)
	fmt.Fprintln(cfg.Out, "\nstopping the lab and removing everything it made")
	if err := lab.Close(); err != nil {
		fmt.Fprintln(stderr, "lvslab: cleaning up:", err)
		return 1
	}
	fmt.Fprintln(cfg.Out, "lab removed")
	return 0
}

func callLab(ctx context.Context, stdout, stderr io.Writer, dir, cmd string, params url.Values) int {
	out, err := nslab.Call(ctx, dir, cmd, params)
	if err != nil {
		fmt.Fprintln(stderr, "lvslab:", notRunning(err, dir))
		return 1
	}
	io.WriteString(stdout, out)
	return 0
}

// notRunning completes ErrNotRunning with what to do.
func notRunning(err error, dir string) error {
	if !errors.Is(err, nslab.ErrNotRunning) {
		return err
	}
	if _, serr := nslab.ReadState(dir); serr == nil {
		return fmt.Errorf("%w; a previous lab left its state in %s: lvslab down removes its leftovers", err, dir)
	}
	return err
}

func down(ctx context.Context, dir, prefix string, stdout, stderr io.Writer) int {
	if st, err := nslab.ReadState(dir); err == nil && st.Prefix != "" {
		prefix = st.Prefix
	}
	var said countingWriter
	said.w = stdout
	if err := nslab.Cleanup(ctx, dir, prefix, &said); err != nil {
		fmt.Fprintln(stderr, "lvslab down:", err)
		return 1
	}
	if said.n == 0 {
		fmt.Fprintf(stdout, "no lab to remove (nothing in %s, no %s-* namespace)\n", dir, prefix)
		return 0
	}
	fmt.Fprintln(stdout, "lab removed: no namespace, process or file of it is left")
	return 0
}

type countingWriter struct {
	w io.Writer
	n int
}

func (c *countingWriter) Write(p []byte) (int, error) {
	c.n += len(p)
	return c.w.Write(p)
}

// serveMain is the hidden `lvslab serve`, which the lab runs in each
// real server's namespace.
func serveMain(ctx context.Context, args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	name := fs.String("name", "", "the name every answer starts with")
	tcp := fs.String("tcp", "", "comma-separated HTTP ports")
	udp := fs.String("udp", "", "comma-separated UDP echo ports")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	tp, err1 := ports(*tcp)
	up, err2 := ports(*udp)
	if err := errors.Join(err1, err2); err != nil || *name == "" {
		fmt.Fprintln(stderr, "lvslab serve: want --name NAME and ports:", err)
		return 2
	}
	if err := nslab.Serve(ctx, *name, tp, up, os.Stdout); err != nil {
		fmt.Fprintln(stderr, "lvslab serve:", err)
		return 1
	}
	return 0
}

func ports(s string) ([]uint16, error) {
	var out []uint16
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p == "" {
			continue
		}
		n, err := strconv.ParseUint(p, 10, 16)
		if err != nil || n == 0 {
			return nil, fmt.Errorf("port %q", p)
		}
		out = append(out, uint16(n))
	}
	return out, nil
}

func jsonIndent(v any) ([]byte, error) {
	b, err := json.MarshalIndent(v, "", "  ")
	return append(b, '\n'), err
}
