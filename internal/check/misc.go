package check

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// miscProber is MISC_CHECK (keepalived/check/check_misc.c): run misc_path
// with /bin/sh -c in a process group of its own, and judge its exit
// status: 0 succeeds, 1 fails; with misc_dynamic 2..255 succeed and ask
// for the weight status-2 (Result.DynWeight); without it any status but 0
// fails, as does death by a signal. A script still running after
// misc_timeout (delay_loop when 0, as keepalived) fails with ErrTimeout:
// its process group gets SIGTERM, then SIGKILL termGrace later (keepalived
// misc_check_child_thread's two steps). When the probe's context is
// cancelled (Monitor.Stop) the group gets SIGKILL at once.
type miscProber struct {
	path    string
	timeout time.Duration
	grace   time.Duration // termGrace; shorter in tests
	dynamic bool
	cred    *syscall.Credential
}

// termGrace is the time between SIGTERM and SIGKILL of a script that
// overran misc_timeout (keepalived waits 2 s: misc_check_child_thread).
const termGrace = 2 * time.Second

// shell runs misc_path, as keepalived's system_call_script does for a
// command line with arguments.
const shell = "/bin/sh"

func newMiscProber(s *Spec) (*miscProber, error) {
	if s.MiscPath == "" {
		return nil, errors.New("check: MISC_CHECK without misc_path")
	}
	p := &miscProber{path: s.MiscPath, timeout: s.MiscTimeout, grace: termGrace, dynamic: s.MiscDynamic}
	if p.timeout <= 0 {
		p.timeout = s.DelayLoop
	}
	if p.timeout <= 0 {
		p.timeout = defaultDelayLoop
	}
	if s.User != "" {
		cred, err := lookupCredential(s.User)
		if err != nil {
			return nil, fmt.Errorf("check: MISC_CHECK %q: %w", s.MiscPath, err)
		}
		if uint32(os.Geteuid()) != cred.Uid {
			if os.Geteuid() != 0 {
				return nil, fmt.Errorf("check: MISC_CHECK %q: running as user %q needs root", s.MiscPath, s.User)
			}
			p.cred = cred
		}
	}
	return p, nil
}

// lookupCredential resolves "user" or "user:group" (the parser's form of
// keepalived's "user USERNAME [GROUPNAME]"); without a group, the user's
// primary group, as keepalived's set_script_uid_gid.
func lookupCredential(spec string) (*syscall.Credential, error) {
	name, group, hasGroup := strings.Cut(spec, ":")
	u, err := user.Lookup(name)
	if err != nil {
		return nil, err
	}
	uid, err := strconv.ParseUint(u.Uid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("user %s: uid %q: %w", name, u.Uid, err)
	}
	gidStr := u.Gid
	if hasGroup {
		g, err := user.LookupGroup(group)
		if err != nil {
			return nil, err
		}
		gidStr = g.Gid
	}
	gid, err := strconv.ParseUint(gidStr, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("group of %s: gid %q: %w", spec, gidStr, err)
	}
	// No supplementary groups: the script runs with exactly uid:gid.
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), Groups: []uint32{}}, nil
}

// Probe implements Prober.
func (p *miscProber) Probe(ctx context.Context) Result {
	start := time.Now()
	r := p.run(ctx)
	r.Start, r.Duration = start, time.Since(start)
	return r
}

func (p *miscProber) run(ctx context.Context) Result {
	r := Result{ExitStatus: -1}
	if err := ctx.Err(); err != nil {
		r.Err = fmt.Errorf("%w: %q: %w", ErrExit, p.path, err)
		return r
	}
	cmd := exec.Command(shell, "-c", p.path)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Credential: p.cred}
	// Standard input, output and error are /dev/null (exec's default for
	// nil): no pipe whose copying could outlive the script.
	if err := cmd.Start(); err != nil {
		r.Err = fmt.Errorf("%w: start %q: %w", ErrExit, p.path, err)
		return r
	}
	pgid := cmd.Process.Pid
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()

	timer := time.NewTimer(p.timeout)
	defer timer.Stop()
	var timedOut bool
	select {
	case <-done:
	case <-ctx.Done():
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		<-done
		r.Err = fmt.Errorf("%w: %q: %w", ErrExit, p.path, ctx.Err())
		return r
	case <-timer.C:
		timedOut = true
		_ = syscall.Kill(-pgid, syscall.SIGTERM)
		grace := time.NewTimer(p.grace)
		select {
		case <-done:
		case <-grace.C:
			_ = syscall.Kill(-pgid, syscall.SIGKILL)
			<-done
		case <-ctx.Done():
			_ = syscall.Kill(-pgid, syscall.SIGKILL)
			<-done
		}
		grace.Stop()
	}
	// Children the script left in its group go with it (keepalived sends
	// the group SIGKILL after a SIGTERM'd script).
	if timedOut {
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		r.Err = fmt.Errorf("%w: %q still running after misc_timeout %v", ErrTimeout, p.path, p.timeout)
		return r
	}
	r.ExitStatus = cmd.ProcessState.ExitCode()
	return p.judge(r)
}

// judge turns the exit status in r into the verdict.
func (p *miscProber) judge(r Result) Result {
	switch st := r.ExitStatus; {
	case st == 0:
		r.OK = true
	case p.dynamic && st >= 2 && st <= 255:
		r.OK = true
		r.DynWeight, r.DynWeightSet = st-2, true
	case st < 0:
		r.Err = fmt.Errorf("%w: %q killed by a signal", ErrExit, p.path)
	default:
		r.Err = fmt.Errorf("%w: %q exited with status %d", ErrExit, p.path, st)
	}
	return r
}
