package main

import (
	"bytes"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The tests in this file and in integration_test.go run the real
// binaries: lvsd and ipvsadm built from this tree, and the packaging
// scripts beside them.

var (
	buildOnce sync.Once
	binDir    string // lvsd, ipvsadm, ipvsadm-save, ipvsadm-restore
	buildErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// binaries builds lvsd and ipvsadm once per test binary (without -race:
// they are the programs under test, not the test) and returns their
// directory, with the ipvsadm-save and ipvsadm-restore scripts.
func binaries(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		goTool, err := exec.LookPath("go")
		if err != nil {
			buildErr = err
			return
		}
		// A short path: it holds the sockets too (at most 107 bytes).
		binDir, err = os.MkdirTemp("", "golvs-bin-")
		if err != nil {
			buildErr = err
			return
		}
		for _, cmd := range []string{"lvsd", "ipvsadm"} {
			c := exec.Command(goTool, "build", "-o", filepath.Join(binDir, cmd), "./cmd/"+cmd)
			c.Dir = filepath.Join("..", "..")
			if out, err := c.CombinedOutput(); err != nil {
				buildErr = errors.New("go build ./cmd/" + cmd + ": " + err.Error() + "\n" + string(out))
				return
			}
		}
		for _, s := range []string{"ipvsadm-save", "ipvsadm-restore"} {
			b, err := os.ReadFile(filepath.Join("..", "..", "packaging", s))
			if err == nil {
				err = os.WriteFile(filepath.Join(binDir, s), b, 0o755)
			}
			if err != nil {
				buildErr = err
				return
			}
		}
	})
	if buildErr != nil {
		t.Fatalf("building the binaries: %v", buildErr)
	}
	return binDir
}

// director is a running lvsd started by a test.
type director struct {
	t      *testing.T
	bin    string
	dir    string // socket and state live here
	socket string
	state  string
	cmd    *exec.Cmd
	stderr *bytes.Buffer
	done   chan error
}

// newDirector prepares an lvsd in a fresh directory; start starts it.
func newDirector(t *testing.T) *director {
	bin := binaries(t)
	dir, err := os.MkdirTemp("", "golvs-d-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	d := &director{t: t, bin: bin, dir: dir, socket: filepath.Join(dir, "run", "lvsd.sock"), state: filepath.Join(dir, "lib", "state")}
	t.Cleanup(func() {
		if d.cmd != nil {
			d.cmd.Process.Kill()
			<-d.done
			d.cmd = nil
		}
	})
	return d
}

// startupTimeout bounds an lvsd's start (a restore of thousands of
// services included).
const startupTimeout = 20 * time.Second

// start runs lvsd and waits until its socket answers.
func (d *director) start() {
	d.t.Helper()
	if d.cmd != nil {
		d.t.Fatal("lvsd already running")
	}
	d.stderr = new(bytes.Buffer)
	d.cmd = exec.Command(filepath.Join(d.bin, "lvsd"), "run", "--socket", d.socket, "--state", d.state, "--interfaces", "none")
	d.cmd.Stderr = d.stderr
	if err := d.cmd.Start(); err != nil {
		d.t.Fatal(err)
	}
	d.done = make(chan error, 1)
	go func(c *exec.Cmd, done chan<- error) { done <- c.Wait() }(d.cmd, d.done)
	deadline := time.Now().Add(startupTimeout)
	for {
		select {
		case err := <-d.done:
			d.cmd = nil
			d.t.Fatalf("lvsd exited at start: %v\n%s", err, d.stderr)
		default:
		}
		if c, err := net.Dial("unix", d.socket); err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			d.t.Fatalf("lvsd not answering on %s\n%s", d.socket, d.stderr)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// stop sends sig to lvsd and waits for it; it returns its exit error.
func (d *director) stop(sig syscall.Signal) error {
	d.t.Helper()
	if err := d.cmd.Process.Signal(sig); err != nil {
		d.t.Fatal(err)
	}
	select {
	case err := <-d.done:
		d.cmd = nil
		return err
	case <-time.After(10 * time.Second):
		d.t.Fatalf("lvsd did not stop on %v\n%s", sig, d.stderr)
		return nil
	}
}

// result is what a command printed and its exit status.
type result struct {
	stdout, stderr string
	code           int
}

// sh runs a shell command line with the binaries first on the PATH and
// LVSD_SOCKET set to the director's socket.
func (d *director) sh(line, stdin string) result {
	d.t.Helper()
	c := exec.Command("sh", "-c", line)
	c.Env = append(os.Environ(), "PATH="+d.bin+":"+os.Getenv("PATH"), "LVSD_SOCKET="+d.socket)
	c.Dir = d.dir
	c.Stdin = strings.NewReader(stdin)
	var out, errOut bytes.Buffer
	c.Stdout, c.Stderr = &out, &errOut
	err := c.Run()
	code := 0
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		code = ee.ExitCode()
	case err != nil:
		d.t.Fatalf("%s: %v", line, err)
	}
	return result{out.String(), errOut.String(), code}
}

// ok runs a command that must succeed without a word on stderr, and
// returns its output.
func (d *director) ok(line string) string {
	d.t.Helper()
	r := d.sh(line, "")
	if r.code != 0 || r.stderr != "" {
		d.t.Fatalf("%s: exit %d\n%s", line, r.code, r.stderr)
	}
	return r.stdout
}
