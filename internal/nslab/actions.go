package nslab

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"time"

	"golvs/internal/apiclient"
)

// ipvsadmTimeout bounds one ipvsadm run (one API request).
const ipvsadmTimeout = 5 * time.Second

// StopRS stops real server n's (from 1) HTTP and UDP servers; its
// health checks fail and lvsd takes it out of every service.
func (l *Lab) StopRS(n int) (string, error) {
	l.act.Lock()
	defer l.act.Unlock()
	l.mu.Lock()
	rs := l.rss[n-1]
	p := rs.serve
	l.mu.Unlock()
	if p == nil || !p.running() {
		return "", fmt.Errorf("%s's servers are not running (start-rs %d starts them)", rsRole(n), n)
	}
	l.mu.Lock()
	rs.stopped = true
	l.mu.Unlock()
	p.stop()
	msg := fmt.Sprintf("stopped %s's HTTP and UDP servers (pid %d). Its checkers fail within %d s "+
		"(delay_loop %d × (retry %d + 1) + connect_timeout %d) and lvsd takes it out of every service; "+
		"until then the client sees errors from it.\n",
		rsRole(n), p.pid(), checkDelayLoop*(checkRetry+1)+checkTimeout, checkDelayLoop, checkRetry, checkTimeout)
	l.announce("stop-rs", msg)
	return msg, nil
}

// StartRS starts real server n's servers again.
func (l *Lab) StartRS(n int) (string, error) {
	l.act.Lock()
	defer l.act.Unlock()
	l.mu.Lock()
	p := l.rss[n-1].serve
	l.mu.Unlock()
	if p != nil && p.running() {
		return "", fmt.Errorf("%s's servers are running", rsRole(n))
	}
	if err := l.startServe(n); err != nil {
		return "", err
	}
	l.mu.Lock()
	pid := l.rss[n-1].serve.pid()
	l.mu.Unlock()
	msg := fmt.Sprintf("started %s's servers (pid %d): its checkers succeed at their next round (delay_loop %d s) and lvsd puts it back.\n",
		rsRole(n), pid, checkDelayLoop)
	l.announce("start-rs", msg)
	return msg, nil
}

// KillMaster kills (SIGKILL) the lvsd of the director holding the VIPs:
// the backup takes over.
func (l *Lab) KillMaster(ctx context.Context) (string, error) {
	l.act.Lock()
	defer l.act.Unlock()
	a := l.active(ctx)
	if a == 0 {
		return "", errors.New("no director's lvsd is running (restart-master starts them)")
	}
	l.mu.Lock()
	d := l.dirs[a-1]
	p := d.proc
	d.killed = true
	labVIPs := l.labVIPs
	l.mu.Unlock()
	p.kill()
	msg := fmt.Sprintf("killed %s's lvsd (pid %d, SIGKILL), as a crash would.", directorRole(a), p.pid())
	other := 0
	l.mu.Lock()
	for _, x := range l.dirs {
		if x.i != a && x.proc != nil && x.proc.running() {
			other = x.i
		}
	}
	l.mu.Unlock()
	switch {
	case other == 0:
		msg += " No other director's lvsd runs: the services are down until restart-master."
	case labVIPs:
		if err := l.holdVIPs(ctx, other); err != nil {
			return "", err
		}
		msg += fmt.Sprintf(" lvsd has no VRRP yet, so the lab moved the VIPs to %s itself (what the backup's VRRP does on "+
			"missing adverts) and flushed the client's and servers' ARP entries (what its gratuitous ARPs do).", directorRole(other))
	default:
		msg += fmt.Sprintf(" %s's VRRP misses the adverts and takes the VIPs within 3 × advert_int + skew (about %d s), "+
			"announcing them with gratuitous ARPs; connections synced to it continue. (%s keeps the addresses its lvsd had "+
			"added: a SIGKILLed process removes nothing, as with keepalived.)", directorRole(other), 3*vrrpAdvert+1, directorRole(a))
	}
	msg += "\n"
	l.announce("kill-master", msg)
	return msg, nil
}

// RestartMaster starts the lvsd of every director whose lvsd is not
// running; director1 (priority 150) takes the VIPs back.
func (l *Lab) RestartMaster(ctx context.Context) (string, error) {
	l.act.Lock()
	defer l.act.Unlock()
	var started []string
	for i := 1; i <= numDirectors; i++ {
		l.mu.Lock()
		p := l.dirs[i-1].proc
		l.mu.Unlock()
		if p != nil && p.running() {
			continue
		}
		if err := l.startDirector(i); err != nil {
			return "", err
		}
		started = append(started, directorRole(i))
	}
	if len(started) == 0 {
		return "", errors.New("every director's lvsd is running (kill-master kills the active one)")
	}
	msg := "started lvsd on " + strings.Join(started, " and ") + "."
	l.mu.Lock()
	labVIPs, holder := l.labVIPs, l.holder
	l.mu.Unlock()
	if labVIPs {
		// What VRRP would elect: the highest priority, director1.
		if holder != 1 {
			if err := l.holdVIPs(ctx, 1); err != nil {
				return "", err
			}
			msg += " lvsd has no VRRP yet: the lab moved the VIPs back to director1 (what its higher priority does by preemption)."
		}
	} else if slices.Contains(started, directorRole(1)) {
		msg += " director1 (priority 150) preempts: it takes the VIPs back within a few adverts."
	} else {
		msg += " It runs as the backup (priority 100)."
	}
	msg += "\n"
	l.announce("restart-master", msg)
	return msg, nil
}

// SetWeight sets real server rs's weight in the service named svc on
// every running director, with ipvsadm -e.
func (l *Lab) SetWeight(ctx context.Context, svcName string, rs, weight int) (string, error) {
	l.act.Lock()
	defer l.act.Unlock()
	svc, ok := serviceByName(svcName)
	if !ok {
		return "", fmt.Errorf("no service %q", svcName)
	}
	var b strings.Builder
	args := []string{"-e", svc.ipvsadmProto(), svc.VAddr().String(), "-r",
		fmt.Sprintf("%v:%d", RSAddr(rs), svc.RSPort), svc.Flag, "-w", fmt.Sprint(weight)}
	ran := 0
	for _, d := range l.runningDirectors() {
		ran++
		fmt.Fprintf(&b, "%s: $ ipvsadm %s\n", directorRole(d.i), strings.Join(args, " "))
		if out, err := l.runIpvsadm(ctx, d.sock, args...); err != nil {
			fmt.Fprintf(&b, "%s%v\n", out, err)
		}
	}
	if ran == 0 {
		return "", errors.New("no director's lvsd is running")
	}
	if a := l.active(ctx); a > 0 {
		l.mu.Lock()
		sock := l.dirs[a-1].sock
		l.mu.Unlock()
		fmt.Fprintf(&b, "%s: $ ipvsadm -L -n %s %v\n", directorRole(a), svc.ipvsadmProto(), svc.VAddr())
		out, _ := l.runIpvsadm(ctx, sock, "-L", "-n", svc.ipvsadmProto(), svc.VAddr().String())
		b.WriteString(out)
	}
	b.WriteString("(keepalived.conf's weight comes back when lvsd re-adds the server after a failure, or on a reload)\n")
	l.announce("weight", b.String())
	return b.String(), nil
}

func (l *Lab) runningDirectors() []*director {
	l.mu.Lock()
	defer l.mu.Unlock()
	var ds []*director
	for _, d := range l.dirs {
		if d != nil && d.proc != nil && d.proc.running() {
			ds = append(ds, d)
		}
	}
	return ds
}

// runIpvsadm runs the lab's ipvsadm against the lvsd of socket sock.
func (l *Lab) runIpvsadm(ctx context.Context, sock string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, ipvsadmTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, l.ipvsadm, args...)
	cmd.Env = append(os.Environ(), "LVSD_SOCKET="+sock)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// announce shows an action in the live display.
func (l *Lab) announce(what, msg string) {
	l.out.printf("\n» %s: %s", what, msg)
}

// rotation returns, by service name, the real servers the active
// director has in the service ("rs1 w1"), from lvsd's API.
func (l *Lab) rotation(ctx context.Context) map[string][]string {
	a := l.active(ctx)
	if a == 0 {
		return nil
	}
	l.mu.Lock()
	sock := l.dirs[a-1].sock
	l.mu.Unlock()
	c := apiclient.New(sock)
	defer c.Close()
	ctx, cancel := context.WithTimeout(ctx, ipvsadmTimeout)
	defer cancel()
	st, err := c.State(ctx, apiclient.StateOptions{})
	if err != nil {
		return nil
	}
	rot := map[string][]string{}
	for _, s := range st.Services {
		for _, svc := range Services {
			if s.Key.Addr != svc.VIP || s.Key.Port != svc.Port || s.Key.Proto != svc.protoNum() {
				continue
			}
			names := []string{}
			for _, d := range s.Dests {
				name := d.Addr.String()
				for r := 1; r <= numRS; r++ {
					if RSAddr(r) == d.Addr {
						name = rsRole(r)
					}
				}
				names = append(names, fmt.Sprintf("%s w%d", name, d.Config.Weight))
			}
			slices.Sort(names)
			rot[svc.Name] = names
		}
	}
	return rot
}

// Status is what `lvslab status` shows.
type Status struct {
	PID          int                 `json:"pid"`
	Started      time.Time           `json:"started"`
	RunDir       string              `json:"run_dir"`
	Namespaces   []string            `json:"namespaces"`
	Configs      []string            `json:"configs"`
	Logs         []string            `json:"logs"`
	StatusURL    string              `json:"status_url,omitempty"`
	DirectorURLs []string            `json:"director_urls,omitempty"`
	VIPsBy       string              `json:"vips_by"` // "vrrp" (lvsd) or "lab"
	VIPHolders   []string            `json:"vip_holders"`
	Active       string              `json:"active,omitempty"`
	Processes    []ProcStatus        `json:"processes"`
	Rotation     map[string][]string `json:"rotation"` // on the active director, by service
	Client       map[string]Window   `json:"client"`   // answers since the start, by service
	Notes        []string            `json:"notes,omitempty"`
}

// ProcStatus is one of the lab's processes.
type ProcStatus struct {
	Name    string `json:"name"`
	PID     int    `json:"pid"`
	Running bool   `json:"running"`
	Exit    string `json:"exit,omitempty"`
}

// Status returns the lab's status.
func (l *Lab) Status(ctx context.Context) *Status {
	st := &Status{PID: l.st.PID, Started: l.started, RunDir: l.cfg.RunDir, StatusURL: l.statusURL,
		DirectorURLs: l.dirURLs, VIPsBy: "vrrp", VIPHolders: l.vipHolders(ctx)}
	for _, r := range roles() {
		st.Namespaces = append(st.Namespaces, nsName(l.cfg.Prefix, r))
	}
	if a := l.active(ctx); a > 0 {
		st.Active = directorRole(a)
	}
	st.Rotation = l.rotation(ctx)
	if l.client != nil {
		st.Client = l.client.totals()
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.labVIPs {
		st.VIPsBy = "lab"
	}
	st.Notes = append(st.Notes, l.notes...)
	add := func(p *proc) {
		if p == nil {
			return
		}
		ps := ProcStatus{Name: p.name, PID: p.pid(), Running: p.running()}
		if !ps.Running {
			ps.Exit = p.exitError()
		}
		st.Processes = append(st.Processes, ps)
	}
	for _, d := range l.dirs {
		if d != nil {
			st.Configs = append(st.Configs, d.conf)
			st.Logs = append(st.Logs, d.log)
			add(d.proc)
		}
	}
	for _, rs := range l.rss {
		if rs != nil {
			st.Logs = append(st.Logs, rs.log)
			add(rs.rsd)
			add(rs.serve)
		}
	}
	return st
}
