package nslab

import (
	"strings"
	"sync"
	"testing"
	"time"
)

func TestStartProc(t *testing.T) {
	var mu sync.Mutex
	var lines []string
	p, err := startProc("sleeper", []string{"sh", "-c", "echo one; echo ready; exec sleep 30"},
		procOpts{ready: "ready", onLine: func(s string) { mu.Lock(); lines = append(lines, s); mu.Unlock() }})
	if err != nil {
		t.Fatal(err)
	}
	if !p.running() {
		t.Fatal("not running after ready")
	}
	start := time.Now()
	p.stop()
	if p.running() || time.Since(start) > stopTimeout {
		t.Errorf("stop: running %v after %v", p.running(), time.Since(start))
	}
	if !strings.Contains(p.exitError(), "signal: terminated") {
		t.Errorf("exit %q, want terminated by SIGTERM", p.exitError())
	}
	mu.Lock()
	if strings.Join(lines, ",") != "one,ready" {
		t.Errorf("lines %q", lines)
	}
	mu.Unlock()

	_, err = startProc("quitter", []string{"sh", "-c", "echo cannot bind; exit 3"}, procOpts{ready: "ready"})
	if err == nil || !strings.Contains(err.Error(), "quitter exited before it was ready (exit status 3)") ||
		!strings.Contains(err.Error(), "    cannot bind") {
		t.Errorf("a process that exits early: %v", err)
	}
}

// TestOutTailBounded: a chatty process's output is kept to its tail.
func TestOutTailBounded(t *testing.T) {
	var o outTail
	chunk := []byte(strings.Repeat("x", 1000) + "\n")
	for range 200 {
		o.Write(chunk)
	}
	if n := len(o.String()); n != tailSize {
		t.Errorf("tail of %d bytes, want %d", n, tailSize)
	}
}
