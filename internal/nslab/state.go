package nslab

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"
)

// DefaultRunDir holds a running lab's state file, control socket,
// configuration files, logs and lvsd's sockets and state (a tmpfs,
// emptied at boot like the namespaces).
const DefaultRunDir = "/run/golvs-lab"

// DefaultPrefix is the prefix of the lab's namespace names.
const DefaultPrefix = "golvs-lab"

// dirPrefix is what the base name of a directory the lab may remove
// whole must start with: a guard against removing a directory that a
// mistyped --dir names.
const dirPrefix = "golvs-lab"

// downTimeout bounds how long Cleanup waits for a running lab to stop
// after asking it to (it stops lvsd and the servers: a few seconds).
const downTimeout = 30 * time.Second

// State is the state file of a lab (RUNDIR/state.json): how other
// invocations of lvslab find the lab, and what Cleanup removes if the
// lab died without cleaning up.
type State struct {
	PID     int       `json:"pid"`     // the lab's process (lvslab up)
	Prefix  string    `json:"prefix"`  // of its namespaces' names
	RunDir  string    `json:"run_dir"` // this file's directory
	BinDir  string    `json:"bin_dir"` // the temporary directory of lvsd and ipvsadm ("" = not the lab's)
	Socket  string    `json:"socket"`  // the control socket
	Started time.Time `json:"started"`
}

func statePath(runDir string) string { return filepath.Join(runDir, "state.json") }

// ReadState reads the state file in runDir; fs.ErrNotExist if none.
func ReadState(runDir string) (*State, error) {
	b, err := os.ReadFile(statePath(runDir))
	if err != nil {
		return nil, err
	}
	st := new(State)
	if err := json.Unmarshal(b, st); err != nil {
		return nil, fmt.Errorf("%s: %w", statePath(runDir), err)
	}
	return st, nil
}

func writeState(st *State) error {
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	tmp := statePath(st.RunDir) + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, statePath(st.RunDir))
}

// checkDir refuses a directory the lab would remove whole unless its
// base name says it is a lab's.
func checkDir(dir string) error {
	if !strings.HasPrefix(filepath.Base(filepath.Clean(dir)), dirPrefix) {
		return fmt.Errorf("directory %s: the lab only uses (and removes) directories whose name starts with %q", dir, dirPrefix)
	}
	return nil
}

// alive reports whether process pid exists and has not exited (a
// zombie whose parent died waits for init to reap it, which some
// containers' init does late).
func alive(pid int) bool {
	if pid <= 0 {
		return false
	}
	err := syscall.Kill(pid, 0)
	return (err == nil || errors.Is(err, syscall.EPERM)) && !zombie(pid)
}

// Cleanup removes what a lab with this run directory and namespace
// prefix left: a lab still running there is asked to stop (through its
// control socket) and waited for; then the processes in the lab's
// namespaces are stopped, the namespaces (named exactly PREFIX-ROLE,
// never matched by pattern) deleted, and the run directory and the
// temporary binaries removed. It says what it removed on w, and is
// quiet when there was nothing.
func Cleanup(ctx context.Context, runDir, prefix string, w io.Writer) error {
	return cleanup(ctx, runDir, prefix, w, false)
}

// cleanup is Cleanup; self is set when the lab cleans up after itself
// (Close), which must not ask itself to stop.
func cleanup(ctx context.Context, runDir, prefix string, w io.Writer, self bool) error {
	if err := checkDir(runDir); err != nil {
		return err
	}
	st, err := ReadState(runDir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		st = nil
	case err != nil:
		fmt.Fprintf(w, "ignoring an unreadable state file: %v\n", err)
		st = nil
	}
	prefixes := []string{prefix}
	if st != nil && st.Prefix != "" && st.Prefix != prefix {
		prefixes = append(prefixes, st.Prefix)
	}
	if st != nil && !self {
		if err := stopRunning(ctx, st, w); err != nil {
			return err
		}
	}
	var errs []error
	existing, err := listNetns(ctx)
	if err != nil {
		return err
	}
	var removed []string
	killed := 0
	for _, pfx := range prefixes {
		for _, role := range roles() {
			name := nsName(pfx, role)
			if !slices.Contains(existing, name) {
				continue
			}
			pids, err := netnsPids(ctx, name)
			if err != nil {
				errs = append(errs, err)
			}
			killed += killPids(pids)
			if _, err := run(ctx, "ip", "netns", "del", name); err != nil {
				errs = append(errs, err)
				continue
			}
			removed = append(removed, name)
		}
	}
	var dirs []string
	if st != nil && st.BinDir != "" {
		if checkDir(st.BinDir) == nil {
			if _, err := os.Stat(st.BinDir); err == nil {
				if err := os.RemoveAll(st.BinDir); err != nil {
					errs = append(errs, err)
				}
				dirs = append(dirs, st.BinDir)
			}
		}
	}
	if _, err := os.Stat(runDir); err == nil {
		if err := os.RemoveAll(runDir); err != nil {
			errs = append(errs, err)
		}
		dirs = append(dirs, runDir)
	}
	if len(removed) > 0 || killed > 0 {
		fmt.Fprintf(w, "removed %d namespace(s) (%s), stopped %d process(es) in them\n", len(removed), strings.Join(removed, " "), killed)
	}
	if len(dirs) > 0 {
		fmt.Fprintf(w, "removed %s\n", strings.Join(dirs, " and "))
	}
	return errors.Join(errs...)
}

// stopRunning asks the lab of st to stop, if one answers on its control
// socket, and waits until it has removed its state file (or its process
// is gone).
func stopRunning(ctx context.Context, st *State, w io.Writer) error {
	if _, err := Call(ctx, st.RunDir, "down", nil); err != nil {
		if alive(st.PID) && st.PID != os.Getpid() {
			// The PID is not (or no longer) a lab's; its leftovers are
			// cleaned, the process left alone.
			fmt.Fprintf(w, "the state file names process %d, which does not answer as a lab (%v): removing what the lab left\n", st.PID, err)
		}
		return nil
	}
	fmt.Fprintf(w, "a lab was running (pid %d): stopping it\n", st.PID)
	deadline := time.Now().Add(downTimeout)
	for {
		if _, err := os.Stat(statePath(st.RunDir)); errors.Is(err, fs.ErrNotExist) || !alive(st.PID) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the lab (pid %d) is still running %v after it was asked to stop", st.PID, downTimeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// killPids stops processes: SIGTERM, and SIGKILL for those still there
// after stopTimeout. It returns how many it signalled.
func killPids(pids []int) int {
	n := 0
	for _, pid := range pids {
		if pid != os.Getpid() && syscall.Kill(pid, syscall.SIGTERM) == nil {
			n++
		}
	}
	deadline := time.Now().Add(stopTimeout)
	for _, pid := range pids {
		for alive(pid) && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		if alive(pid) && pid != os.Getpid() {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	return n
}

// zombie reports whether pid has exited and waits for its parent to
// reap it (a child of this process, reaped by its proc's goroutine).
func zombie(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true // gone
	}
	// "PID (COMM) STATE ...": COMM may hold spaces and parentheses.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i >= 0 && i+2 < len(s) && s[i+2] == 'Z'
}
