package nslab

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
)

// Run shows the lab live until ctx ends or the lab is asked to stop
// (lvslab down): first what it built and how to break it, then every
// Interval what the client got from each service, lvsd's events, and the
// active director's ipvsadm -L -n --stats.
func (l *Lab) Run(ctx context.Context) {
	l.intro()
	tick := time.NewTicker(l.cfg.Interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-l.down:
			l.out.printf("\nlvslab down: stopping\n")
			return
		case <-tick.C:
			l.display(ctx)
		}
	}
}

func (l *Lab) intro() {
	var b strings.Builder
	p := l.cfg.Prefix
	fmt.Fprintf(&b, "\nGoLVS lab running: namespaces %s-{%s}\n\n", p, strings.Join(roles(), ","))
	fmt.Fprintf(&b, "  client     %v\n", ClientAddr)
	for _, s := range Services {
		fmt.Fprintf(&b, "  %-4s       %s %-18v -> rs1-rs3 port %d (%s, %s)\n", s.Name, s.Proto, s.VAddr(), s.RSPort, s.Method, s.Sched)
	}
	for i := 1; i <= numDirectors; i++ {
		l.mu.Lock()
		d := l.dirs[i-1]
		l.mu.Unlock()
		role := "master, VRRP priority 150"
		if i != 1 {
			role = "backup, VRRP priority 100"
		}
		fmt.Fprintf(&b, "  %s  %v / %v (%s): lvsd -f %s\n             log %s\n", directorRole(i), DirectorFront(i), DirectorLAN(i), role, d.conf, d.log)
	}
	fmt.Fprintf(&b, "  rs1-rs3    %v-%v: HTTP (answering their name) on :%d and :%d, UDP echo on :%d;\n"+
		"             lvsd realserver --tun --vip %v,%v; NAT replies via the gateway VIP %v, DR and TUN replies via the router %v\n",
		RSAddr(1), RSAddr(numRS), httpPort, natRSPort, udpPort, VIP2, VIP3, GatewayVIP, RouterLAN)
	if l.statusURL != "" {
		fmt.Fprintf(&b, "\n  status page: %s (the active director; director1 %s, director2 %s; /metrics on each)\n", l.statusURL, l.dirURLs[0], l.dirURLs[1])
	}
	l.mu.Lock()
	for _, n := range l.notes {
		fmt.Fprintf(&b, "  note: %s\n", n)
	}
	l.mu.Unlock()
	c := l.cfg.Command
	fmt.Fprintf(&b, `
From another terminal (as root):
  %[1]s stop-rs 1       stop rs1's servers: the health checks take it out of rotation
  %[1]s start-rs 1      start them again: it comes back
  %[1]s kill-master     SIGKILL the active director's lvsd: the backup takes over
  %[1]s restart-master  start it again: director1 takes the VIPs back
  %[1]s weight NAT 2 3  ipvsadm -e ... -w 3 on the directors
  %[1]s status          what runs where
  %[1]s down            remove everything (as Ctrl-C here)

Client traffic: %d HTTP requests/s over NAT, DR and TUN, %d UDP echoes/s. Every %v:
`, c, int(time.Second/httpEvery), int(time.Second/udpEvery), l.cfg.Interval)
	io.WriteString(l.out, b.String())
}

// display prints one period's report.
func (l *Lab) display(ctx context.Context) {
	var b strings.Builder
	a := l.active(ctx)
	holders := l.vipHolders(ctx)
	fmt.Fprintf(&b, "\n── %s · up %v · VIPs on %s · active director: %s", time.Now().Format("15:04:05"),
		time.Since(l.started).Round(time.Second), orNone(strings.Join(holders, " and ")), orNone(roleOrEmpty(a)))
	if l.statusURL != "" {
		fmt.Fprintf(&b, " · status page %s", l.statusURL)
	}
	b.WriteString("\n")
	win, skipped := l.client.take()
	for _, s := range Services {
		w := win[s.Name]
		fmt.Fprintf(&b, "  client -> %-4s %-18v %3d answers:", s.Name, s.VAddr(), total(w.Answers))
		for r := 1; r <= numRS; r++ {
			fmt.Fprintf(&b, " %s %-3d", rsRole(r), w.Answers[rsRole(r)])
		}
		if w.Errors > 0 {
			fmt.Fprintf(&b, "  %d failed (%s)", w.Errors, w.LastErr)
		}
		b.WriteString("\n")
	}
	if skipped > 0 {
		fmt.Fprintf(&b, "  (%d requests skipped: %d already waiting)\n", skipped, maxInFlight)
	}
	b.WriteString(l.processNotes())
	l.evMu.Lock()
	evs := l.events
	l.events = nil
	l.evMu.Unlock()
	for _, e := range evs {
		fmt.Fprintf(&b, "  %s\n", e)
	}
	if a > 0 {
		l.mu.Lock()
		sock := l.dirs[a-1].sock
		l.mu.Unlock()
		fmt.Fprintf(&b, "%s $ ipvsadm -L -n --stats\n", directorRole(a))
		out, err := l.runIpvsadm(ctx, sock, "-L", "-n", "--stats")
		b.WriteString(out)
		if err != nil {
			fmt.Fprintf(&b, "(ipvsadm: %v)\n", err)
		}
	} else {
		b.WriteString("no director's lvsd is running: " + l.cfg.Command + " restart-master starts them\n")
	}
	io.WriteString(l.out, b.String())
}

// processNotes reports processes that ended without being asked to, once.
func (l *Lab) processNotes() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var b strings.Builder
	for _, d := range l.dirs {
		if d != nil && d.proc != nil && !d.proc.running() && !d.killed && !d.reported {
			d.reported = true
			fmt.Fprintf(&b, "  %s's lvsd exited (%s): see %s; %s restart-master starts it\n", directorRole(d.i), d.proc.exitError(), d.log, l.cfg.Command)
		}
	}
	for _, rs := range l.rss {
		if rs != nil && rs.serve != nil && !rs.serve.running() && !rs.stopped && !rs.reported {
			rs.reported = true
			fmt.Fprintf(&b, "  %s's servers exited (%s): see %s; %s start-rs %d starts them\n", rsRole(rs.i), rs.serve.exitError(), rs.log, l.cfg.Command, rs.i)
		}
	}
	return b.String()
}

func total(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

func roleOrEmpty(i int) string {
	if i == 0 {
		return ""
	}
	return directorRole(i)
}

// FormatStatus writes st for a user.
func FormatStatus(w io.Writer, st *Status) {
	fmt.Fprintf(w, "lab pid %d, up %v, run directory %s\n", st.PID, time.Since(st.Started).Round(time.Second), st.RunDir)
	fmt.Fprintf(w, "namespaces: %s\n", strings.Join(st.Namespaces, " "))
	vips := "lvsd's VRRP"
	if st.VIPsBy == "lab" {
		vips = "the lab (lvsd runs no VRRP yet)"
	}
	fmt.Fprintf(w, "VIPs held by %s, on: %s; active director: %s\n", vips, orNone(strings.Join(st.VIPHolders, " and ")), orNone(st.Active))
	if st.StatusURL != "" {
		fmt.Fprintf(w, "status page: %s (director1 %s, director2 %s)\n", st.StatusURL, st.DirectorURLs[0], st.DirectorURLs[1])
	} else {
		fmt.Fprintln(w, "status page: none (this lvsd has no --http)")
	}
	fmt.Fprintf(w, "configuration: %s\n", strings.Join(st.Configs, " "))
	fmt.Fprintf(w, "logs: %s\n", strings.Join(st.Logs, " "))
	fmt.Fprintln(w, "processes:")
	for _, p := range st.Processes {
		state := "running"
		if !p.Running {
			state = "exited: " + p.Exit
		}
		fmt.Fprintf(w, "  %-28s pid %-7d %s\n", p.Name, p.PID, state)
	}
	fmt.Fprintf(w, "in rotation on %s, and the client's answers since the start:\n", orNone(st.Active))
	for _, s := range Services {
		c := st.Client[s.Name]
		var answers []string
		names := make([]string, 0, len(c.Answers))
		for n := range c.Answers {
			names = append(names, n)
		}
		slices.Sort(names)
		for _, n := range names {
			answers = append(answers, fmt.Sprintf("%s %d", n, c.Answers[n]))
		}
		fmt.Fprintf(w, "  %-4s %-18v [%s]  answers: %s; failed: %d\n", s.Name, s.VAddr(),
			strings.Join(st.Rotation[s.Name], ", "), orNone(strings.Join(answers, ", ")), c.Errors)
	}
	for _, n := range st.Notes {
		fmt.Fprintf(w, "note: %s\n", n)
	}
}
