package nslab

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Bounds of the lab's waits for its processes.
const (
	startTimeout = 15 * time.Second // lvsd or a server up and ready (lvsd's first start reads netlink and nftables)
	stopTimeout  = 5 * time.Second  // a process gone after SIGTERM, before SIGKILL
	tailSize     = 64 << 10         // the output kept in memory per process, for error messages
)

// proc is a process the lab started: its output goes to its log file (if
// any), a bounded tail kept in memory, and a line callback.
type proc struct {
	name string // what the user reads: "director1's lvsd"
	cmd  *exec.Cmd
	out  *outTail
	done chan struct{} // closed when the process has exited
	err  error         // its exit, read after done
}

// outTail is a process's output sink.
type outTail struct {
	mu     sync.Mutex
	buf    []byte // the last tailSize bytes
	line   []byte // the current incomplete line
	file   io.Writer
	onLine func(string)
}

func (t *outTail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.file != nil {
		t.file.Write(p) // a log file that fails to write loses lines, not the process
	}
	t.buf = append(t.buf, p...)
	if len(t.buf) > tailSize {
		t.buf = append(t.buf[:0], t.buf[len(t.buf)-tailSize:]...)
	}
	if t.onLine != nil {
		t.line = append(t.line, p...)
		for {
			i := bytes.IndexByte(t.line, '\n')
			if i < 0 {
				break
			}
			t.onLine(string(t.line[:i]))
			t.line = t.line[i+1:]
		}
		if len(t.line) > tailSize {
			t.line = t.line[:0]
		}
	}
	return len(p), nil
}

func (t *outTail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.buf)
}

// procOpts are startProc's options.
type procOpts struct {
	logFile string       // append the output here ("" = none)
	onLine  func(string) // called for every output line (under a lock: keep it short)
	ready   string       // wait for this in the output ("" = do not wait)
}

// startProc starts argv in its own process group (a Ctrl-C at the
// terminal reaches the lab, which stops its processes in order) with
// SIGKILL as its parent-death signal (a lab killed with SIGKILL takes its
// processes with it), and waits until its output shows opts.ready.
func startProc(name string, argv []string, opts procOpts) (*proc, error) {
	p := &proc{name: name, out: &outTail{onLine: opts.onLine}, done: make(chan struct{})}
	var logf *os.File
	if opts.logFile != "" {
		f, err := os.OpenFile(opts.logFile, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
		if err != nil {
			return nil, err
		}
		logf, p.out.file = f, f
	}
	p.cmd = exec.Command(argv[0], argv[1:]...)
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := p.cmd.Start(); err != nil {
		if logf != nil {
			logf.Close()
		}
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		if logf != nil {
			logf.Close()
		}
		close(p.done)
	}()
	if opts.ready == "" {
		return p, nil
	}
	deadline := time.NewTimer(startTimeout)
	defer deadline.Stop()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for !strings.Contains(p.out.String(), opts.ready) {
		select {
		case <-p.done:
			return nil, fmt.Errorf("%s exited before it was ready (%v):\n%s", name, p.err, indent(p.out.String()))
		case <-deadline.C:
			p.stop()
			return nil, fmt.Errorf("%s not ready after %v:\n%s", name, startTimeout, indent(p.out.String()))
		case <-tick.C:
		}
	}
	return p, nil
}

// pid is the process's ID.
func (p *proc) pid() int { return p.cmd.Process.Pid }

// running reports whether the process has not exited.
func (p *proc) running() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// kill sends SIGKILL and waits for the exit.
func (p *proc) kill() {
	if p.running() {
		p.cmd.Process.Signal(syscall.SIGKILL)
		<-p.done
	}
}

// stop sends SIGTERM, then SIGKILL after stopTimeout, and waits for the
// exit.
func (p *proc) stop() {
	if !p.running() {
		return
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	t := time.NewTimer(stopTimeout)
	defer t.Stop()
	select {
	case <-p.done:
	case <-t.C:
		p.kill()
	}
}

// exitError says how the process ended, for messages.
func (p *proc) exitError() string {
	if p.err == nil {
		return "exit status 0"
	}
	var ee *exec.ExitError
	if errors.As(p.err, &ee) {
		return ee.String()
	}
	return p.err.Error()
}

func indent(s string) string {
	s = strings.TrimRight(s, "\n")
	if s == "" {
		return "    (no output)"
	}
	return "    " + strings.ReplaceAll(s, "\n", "\n    ")
}
