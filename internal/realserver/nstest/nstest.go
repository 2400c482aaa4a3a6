// Package nstest builds throw-away network namespaces for the real-server
// tests (the root-only ones): namespaces named golvs-<tag>-<random>,
// deleted by t.Cleanup even when the test fails, veth pairs between them,
// commands run inside with "ip netns exec", and Go code run inside on a
// locked OS thread (the cilium testutils NetNS.Do pattern). Tests must
// use addresses from 198.18.0.0/15 and 2001:db8::/32 only.
package nstest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netns"
)

// cmdTimeout bounds every ip command: they return in milliseconds; a hang
// means a broken host, and the test should say so rather than wait for
// the global test timeout.
const cmdTimeout = 10 * time.Second

// Require skips the test unless it runs as root on a host with ip(8).
func Require(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("skipped: needs root to create network namespaces (run the tests as root, as CI does)")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("skipped: needs ip(8) from iproute2 (scripts/test installs it)")
	}
}

// NS is one namespace.
type NS struct {
	Name string
}

// New creates a namespace golvs-<tag>-<8 hex digits> with lo up, deleted
// when the test ends (with everything in it: interfaces, sockets' routes).
func New(t testing.TB, tag string) *NS {
	t.Helper()
	var r [4]byte
	rand.Read(r[:])
	n := &NS{Name: "golvs-" + tag + "-" + hex.EncodeToString(r[:])}
	IP(t, "netns", "add", n.Name)
	t.Cleanup(func() {
		if out, err := run(nil, "ip", "netns", "del", n.Name); err != nil {
			t.Errorf("delete namespace %s: %v: %s", n.Name, err, out)
		}
	})
	n.IP(t, "link", "set", "lo", "up")
	return n
}

// IP runs ip(8) on the host and fails the test on error.
func IP(t testing.TB, args ...string) string {
	t.Helper()
	out, err := run(nil, "ip", args...)
	if err != nil {
		t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
	}
	return out
}

// IP runs ip(8) in n ("ip -n NAME ...") and fails the test on error.
func (n *NS) IP(t testing.TB, args ...string) string {
	t.Helper()
	return IP(t, append([]string{"-n", n.Name}, args...)...)
}

// Exec runs a command in n and returns its combined output.
func (n *NS) Exec(args ...string) (string, error) {
	return run(nil, "ip", append([]string{"netns", "exec", n.Name}, args...)...)
}

// MustExec is Exec that fails the test on error.
func (n *NS) MustExec(t testing.TB, args ...string) string {
	t.Helper()
	out, err := n.Exec(args...)
	if err != nil {
		t.Fatalf("in %s: %s: %v: %s", n.Name, strings.Join(args, " "), err, out)
	}
	return out
}

// Command returns a command that runs in n (for long-running processes:
// the caller starts it, and stops it by its PID).
func (n *NS) Command(name string, args ...string) *exec.Cmd {
	return exec.Command("ip", append([]string{"netns", "exec", n.Name, name}, args...)...)
}

// Sysctl writes a kernel parameter (a path under /proc/sys) in n.
func (n *NS) Sysctl(t testing.TB, path, value string) {
	t.Helper()
	n.MustExec(t, "sh", "-c", fmt.Sprintf("echo %s > /proc/sys/%s", value, path))
}

// ReadSysctl reads a kernel parameter in n.
func (n *NS) ReadSysctl(t testing.TB, path string) string {
	t.Helper()
	return strings.TrimSpace(n.MustExec(t, "cat", "/proc/sys/"+path))
}

// Do runs f on an OS thread moved into n, then moves the thread back.
// Sockets, TUN devices and netlink requests made in f belong to n, and
// keep belonging to it when used later from any goroutine. f must not
// start goroutines that expect to be in n (new goroutines may run on
// other threads).
func (n *NS) Do(f func() error) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, err := netns.Get()
	if err != nil {
		return err
	}
	defer orig.Close()
	target, err := netns.GetFromName(n.Name)
	if err != nil {
		return err
	}
	defer target.Close()
	if err := netns.Set(target); err != nil {
		return err
	}
	ferr := f()
	if err := netns.Set(orig); err != nil {
		// The thread is in the wrong namespace: never unlock it, so the
		// runtime ends it with the goroutine instead of reusing it.
		runtime.LockOSThread()
		return fmt.Errorf("restore namespace: %w (after %v)", err, ferr)
	}
	return ferr
}

// Veth connects a (interface aName) and b (bName) with a veth pair, both
// ends up, with the given addresses ("198.18.0.1/24"; "" for none).
func Veth(t testing.TB, a *NS, aName, aAddr string, b *NS, bName, bAddr string) {
	t.Helper()
	IP(t, "link", "add", aName, "netns", a.Name, "type", "veth", "peer", "name", bName, "netns", b.Name)
	for _, e := range []struct {
		ns         *NS
		name, addr string
	}{{a, aName, aAddr}, {b, bName, bAddr}} {
		if e.addr != "" {
			args := []string{"addr", "add", e.addr, "dev", e.name}
			if strings.Contains(e.addr, ":") {
				args = append(args, "nodad") // usable at once, no 1 s DAD wait
			}
			e.ns.IP(t, args...)
		}
		e.ns.IP(t, "link", "set", e.name, "up")
	}
}

func run(stdin []byte, name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	out, err := cmd.CombinedOutput()
	return string(out), err
}
