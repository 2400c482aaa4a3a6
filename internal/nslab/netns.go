package nslab

import (
	"context"
	"fmt"
	"net"
	"os/exec"
	"runtime"
	"strings"
	"time"

	"github.com/vishvananda/netns"
)

// cmdTimeout bounds every ip(8) or sh command the lab runs: they return
// in milliseconds; a hang means a broken host, better reported than
// waited for.
const cmdTimeout = 10 * time.Second

// run runs a command and returns its combined output; the error carries
// the command line and its output.
func run(ctx context.Context, name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, cmdTimeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}

// ipIn runs ip(8) in namespace ns ("ip -n NS ...").
func ipIn(ctx context.Context, ns string, args ...string) (string, error) {
	return run(ctx, "ip", append([]string{"-n", ns}, args...)...)
}

// sysctls writes kernel parameters (paths under /proc/sys, "path=value")
// in namespace ns, with one shell: /proc/sys/net shows the namespace of
// the process that reads it, and ip netns exec puts the shell there.
func sysctls(ctx context.Context, ns string, kv ...string) error {
	var script []string
	for _, e := range kv {
		p, v, _ := strings.Cut(e, "=")
		script = append(script, fmt.Sprintf("echo %s > /proc/sys/%s", v, p))
	}
	_, err := run(ctx, "ip", "netns", "exec", ns, "sh", "-ec", strings.Join(script, "\n"))
	return err
}

// inNS runs f on an OS thread moved into the named namespace, then moves
// the thread back (the cilium testutils NetNS.Do pattern). Sockets made
// in f belong to that namespace, and keep belonging to it when used from
// any goroutine afterwards. f must not start goroutines that expect to
// be in the namespace.
func inNS(name string, f func() error) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, err := netns.Get()
	if err != nil {
		return fmt.Errorf("current network namespace: %w", err)
	}
	defer orig.Close()
	target, err := netns.GetFromName(name)
	if err != nil {
		return fmt.Errorf("network namespace %s: %w", name, err)
	}
	defer target.Close()
	if err := netns.Set(target); err != nil {
		return fmt.Errorf("enter network namespace %s: %w", name, err)
	}
	ferr := f()
	if err := netns.Set(orig); err != nil {
		// The thread is in the wrong namespace: never unlock it, so the
		// runtime ends it with the goroutine instead of reusing it.
		runtime.LockOSThread()
		return fmt.Errorf("restore network namespace: %w (after %v)", err, ferr)
	}
	return ferr
}

// dialIn opens a connection from the named namespace.
func dialIn(ctx context.Context, ns, network, addr string, timeout time.Duration) (net.Conn, error) {
	var c net.Conn
	err := inNS(ns, func() (err error) {
		c, err = (&net.Dialer{Timeout: timeout}).DialContext(ctx, network, addr)
		return err
	})
	return c, err
}

// listNetns returns the names of the namespaces ip netns knows.
func listNetns(ctx context.Context) ([]string, error) {
	out, err := run(ctx, "ip", "netns", "list")
	if err != nil {
		return nil, err
	}
	var names []string
	for _, l := range strings.Split(out, "\n") {
		// "NAME" or "NAME (id: N)".
		if f := strings.Fields(l); len(f) > 0 {
			names = append(names, f[0])
		}
	}
	return names, nil
}

// netnsPids returns the processes in the named namespace.
func netnsPids(ctx context.Context, ns string) ([]int, error) {
	out, err := run(ctx, "ip", "netns", "pids", ns)
	if err != nil {
		return nil, err
	}
	var pids []int
	for _, f := range strings.Fields(out) {
		var pid int
		if _, err := fmt.Sscan(f, &pid); err == nil && pid > 0 {
			pids = append(pids, pid)
		}
	}
	return pids, nil
}

// hasAddr reports whether an interface of namespace ns holds a.
func hasAddr(ctx context.Context, ns string, a fmt.Stringer) bool {
	out, err := ipIn(ctx, ns, "-o", "addr", "show")
	return err == nil && strings.Contains(out, " "+a.String()+"/")
}
