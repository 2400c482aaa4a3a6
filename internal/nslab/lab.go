package nslab

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Config configures a lab. The zero value is the default lab.
type Config struct {
	// RunDir holds the state file, control socket, configuration files,
	// logs, and lvsd's sockets and state. Its base name must start with
	// "golvs-lab" (it is removed whole). Default: DefaultRunDir.
	RunDir string
	// Prefix of the namespace names (PREFIX-client, ...). Default:
	// DefaultPrefix.
	Prefix string
	// BinDir holds prebuilt lvsd and ipvsadm binaries. Default: none,
	// the lab builds them from SourceDir into a temporary directory.
	BinDir string
	// SourceDir is the GoLVS module. Default: found from the working
	// directory upwards.
	SourceDir string
	// Serve is the command line that runs a real server's servers (the
	// lab appends --name, --tcp and --udp): a program that calls Serve.
	// Default: this executable with the argument "serve".
	Serve []string
	// HTTPPort is the host's 127.0.0.1 port of the status page (the
	// active director); director1's and director2's are the next two.
	// 0: any free ports. A busy port falls back to a free one.
	HTTPPort int
	// Out receives the lab's progress and live display. Default:
	// io.Discard.
	Out io.Writer
	// Interval is the live display's period. Default: 2 s (the rate
	// estimator's period, so that the rates change at each display).
	Interval time.Duration
	// Command is how the user runs lvslab, for the hints the lab
	// prints. Default: "lvslab".
	Command string
}

// ErrNotRoot is Up's error when it does not run as root.
var ErrNotRoot = errors.New("lvslab must run as root to build its network: it creates network namespaces, " +
	"veth pairs and bridges (ip netns add, ip link add), which need CAP_SYS_ADMIN and CAP_NET_ADMIN")

// buildTimeout bounds go build of lvsd and ipvsadm (a cold cache on a
// small machine takes a minute or two).
const buildTimeout = 10 * time.Minute

// vrrpWait is how long the lab waits for lvsd's VRRP to put the VIPs
// on a director before holding them itself: a BACKUP-started instance
// becomes master after 3 × advert_int + skew (keepalived: 3.6 s at
// priority 150), plus slack for a loaded machine.
const vrrpWait = 3*vrrpAdvert*time.Second + 5*time.Second

// rotationWait bounds the wait for the real servers to enter every
// service before the client starts (keepalived starts them up: it
// takes one round of the API).
const rotationWait = 10 * time.Second

// Lab is a running lab. Its methods are safe for concurrent use; Close
// stops and removes everything.
type Lab struct {
	cfg       Config
	out       *lockedWriter
	st        State
	lvsdBin   string
	ipvsadm   string
	useHTTP   bool // lvsd accepts --http
	started   time.Time
	proxies   []*proxy
	statusURL string
	dirURLs   []string
	client    *client
	stopCli   context.CancelFunc
	ctl       *http.Server
	ctlDone   chan struct{}
	down      chan struct{}
	downOnce  sync.Once
	closeOnce sync.Once
	wg        sync.WaitGroup // the client's goroutine

	act sync.Mutex // one action (stop-rs, kill-master...) at a time

	mu      sync.Mutex // guards the fields below
	dirs    [numDirectors]*director
	rss     [numRS]*realServer
	labVIPs bool // the lab, not lvsd's VRRP, holds the VIPs
	holder  int  // with labVIPs: the director holding them (0: none)
	notes   []string

	evMu   sync.Mutex
	events []string // lvsd log lines for the next display
}

type director struct {
	i                      int
	ns                     string
	dir, conf, sock, state string
	log                    string
	proc                   *proc
	reported               bool // an unexpected exit was shown
	killed                 bool // by kill-master
}

type realServer struct {
	i        int
	ns       string
	serve    *proc
	rsd      *proc // lvsd realserver --tun
	stateDir string
	log      string
	stopped  bool // by stop-rs
	reported bool
}

// lockedWriter serializes the lab's output.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (w *lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.w.Write(p)
}

func (w *lockedWriter) printf(format string, args ...any) { fmt.Fprintf(w, format, args...) }

func (c *Config) defaults() error {
	if c.RunDir == "" {
		c.RunDir = DefaultRunDir
	}
	if c.Prefix == "" {
		c.Prefix = DefaultPrefix
	}
	if c.Out == nil {
		c.Out = io.Discard
	}
	if c.Interval <= 0 {
		c.Interval = 2 * time.Second
	}
	if c.Command == "" {
		c.Command = "lvslab"
	}
	if len(c.Serve) == 0 {
		exe, err := os.Executable()
		if err != nil {
			return fmt.Errorf("the lab's own executable (it runs the real servers' servers): %w", err)
		}
		c.Serve = []string{exe, "serve"}
	}
	if !strings.HasPrefix(c.Prefix, "golvs-") {
		return fmt.Errorf("namespace prefix %q: must start with golvs-", c.Prefix)
	}
	return checkDir(c.RunDir)
}

// Up builds a lab: it removes a previous lab's leftovers (stopping a
// lab still running with the same run directory), builds lvsd and
// ipvsadm, the namespaces and their network, starts the real servers
// and both directors, makes sure the VIPs are held, the status page
// reachable, and starts the client's traffic and the control socket.
// On error everything made so far is removed.
func Up(ctx context.Context, cfg Config) (*Lab, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	if os.Geteuid() != 0 {
		return nil, ErrNotRoot
	}
	if _, err := exec.LookPath("ip"); err != nil {
		return nil, errors.New("lvslab needs ip(8) to build its network: apt-get install iproute2")
	}
	out := &lockedWriter{w: cfg.Out}
	if err := Cleanup(ctx, cfg.RunDir, cfg.Prefix, out); err != nil {
		return nil, fmt.Errorf("removing a previous lab: %w", err)
	}
	l := &Lab{cfg: cfg, out: out, down: make(chan struct{}), started: time.Now()}
	l.st = State{PID: os.Getpid(), Prefix: cfg.Prefix, RunDir: cfg.RunDir, Socket: socketPath(cfg.RunDir), Started: l.started}
	if err := l.up(ctx); err != nil {
		l.Close()
		return nil, err
	}
	return l, nil
}

func (l *Lab) up(ctx context.Context) error {
	if err := os.MkdirAll(l.cfg.RunDir, 0o755); err != nil {
		return err
	}
	if err := writeState(&l.st); err != nil {
		return err
	}
	if err := l.build(ctx); err != nil {
		return err
	}
	l.out.printf("building the network: namespaces %s-{%s}\n", l.cfg.Prefix, strings.Join(roles(), ","))
	if err := l.network(ctx); err != nil {
		return err
	}
	for i := range l.rss {
		if err := l.startRealServer(ctx, i+1); err != nil {
			return err
		}
	}
	l.useHTTP = l.lvsdHasHTTP(ctx)
	if !l.useHTTP {
		l.note("this lvsd has no --http yet: no status page (the lab runs lvsd without it)")
	}
	for i := range l.dirs {
		if err := l.startDirector(i + 1); err != nil {
			return err
		}
	}
	if err := l.vips(ctx); err != nil {
		return err
	}
	if l.useHTTP {
		if err := l.startProxies(); err != nil {
			return err
		}
	}
	l.waitRotation(ctx)
	cctx, cancel := context.WithCancel(context.Background())
	l.stopCli = cancel
	l.client = newClient(nsName(l.cfg.Prefix, roleClient))
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		l.client.run(cctx)
	}()
	return l.startControl()
}

func (l *Lab) note(s string) {
	l.mu.Lock()
	l.notes = append(l.notes, s)
	l.mu.Unlock()
}

// build builds lvsd and ipvsadm, or finds them in cfg.BinDir.
func (l *Lab) build(ctx context.Context) error {
	if l.cfg.BinDir != "" {
		l.lvsdBin, l.ipvsadm = filepath.Join(l.cfg.BinDir, "lvsd"), filepath.Join(l.cfg.BinDir, "ipvsadm")
		for _, b := range []string{l.lvsdBin, l.ipvsadm} {
			if _, err := os.Stat(b); err != nil {
				return fmt.Errorf("prebuilt binaries: %w", err)
			}
		}
		return nil
	}
	src := l.cfg.SourceDir
	if src == "" {
		var err error
		if src, err = findModule(); err != nil {
			return err
		}
	}
	goCmd, err := exec.LookPath("go")
	if err != nil {
		goCmd = "/usr/local/go/bin/go" // where scripts/test and the README expect Go
		if _, err := os.Stat(goCmd); err != nil {
			return errors.New("lvslab builds lvsd and ipvsadm with the go command, which is not on PATH (nor at /usr/local/go/bin/go)")
		}
	}
	dir, err := os.MkdirTemp("", dirPrefix+"-bin-")
	if err != nil {
		return err
	}
	l.st.BinDir = dir
	if err := writeState(&l.st); err != nil {
		return err
	}
	l.out.printf("building lvsd and ipvsadm (go build, into %s)\n", dir)
	bctx, cancel := context.WithTimeout(ctx, buildTimeout)
	defer cancel()
	cmd := exec.CommandContext(bctx, goCmd, "build", "-o", dir+string(filepath.Separator), "./cmd/lvsd", "./cmd/ipvsadm")
	cmd.Dir = src
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build of lvsd and ipvsadm in %s: %w\n%s", src, err, b)
	}
	l.lvsdBin, l.ipvsadm = filepath.Join(dir, "lvsd"), filepath.Join(dir, "ipvsadm")
	return nil
}

// findModule finds the GoLVS module from the working directory upwards.
func findModule() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if b, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil && regexp.MustCompile(`(?m)^module golvs\s*$`).Match(b) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("lvslab builds lvsd and ipvsadm from the GoLVS source: run it inside a clone of the repository (or give --bin DIR with prebuilt lvsd and ipvsadm)")
		}
		dir = parent
	}
}

// network builds the namespaces, bridges, veth pairs, addresses, routes
// and sysctls.
func (l *Lab) network(ctx context.Context) error {
	ns := func(role string) string { return nsName(l.cfg.Prefix, role) }
	sw := ns(roleSwitch)
	var cmds [][]string
	for _, r := range roles() {
		cmds = append(cmds, []string{"netns", "add", ns(r)}, []string{"-n", ns(r), "link", "set", "lo", "up"})
	}
	// Multicast snooping off: VRRP adverts (224.0.0.18) and the sync
	// daemon's messages (224.0.0.81) reach every port without IGMP.
	for _, br := range []struct{ name, addr string }{
		{"front", RouterFront.String() + "/24"}, {"lan", RouterLAN.String() + "/24"},
	} {
		cmds = append(cmds,
			[]string{"-n", sw, "link", "add", br.name, "type", "bridge", "mcast_snooping", "0"},
			[]string{"-n", sw, "addr", "add", br.addr, "dev", br.name},
			[]string{"-n", sw, "link", "set", br.name, "up"})
	}
	veth := func(role, dev, addr, port, bridge string) {
		cmds = append(cmds,
			[]string{"link", "add", dev, "netns", ns(role), "type", "veth", "peer", "name", port, "netns", sw},
			[]string{"-n", ns(role), "addr", "add", addr, "dev", dev},
			[]string{"-n", ns(role), "link", "set", dev, "up"},
			[]string{"-n", sw, "link", "set", port, "master", bridge},
			[]string{"-n", sw, "link", "set", port, "up"})
	}
	veth(roleClient, "eth0", ClientAddr.String()+"/24", "client", "front")
	for i := 1; i <= numDirectors; i++ {
		veth(directorRole(i), "eth0", DirectorFront(i).String()+"/24", fmt.Sprintf("d%df", i), "front")
		veth(directorRole(i), "eth1", DirectorLAN(i).String()+"/24", fmt.Sprintf("d%dl", i), "lan")
	}
	for i := 1; i <= numRS; i++ {
		r := ns(rsRole(i))
		veth(rsRole(i), "eth0", RSAddr(i).String()+"/24", rsRole(i), "lan")
		cmds = append(cmds,
			// NAT: replies to the client through the directors' gateway VIP.
			[]string{"-n", r, "route", "add", FrontNet.String(), "via", GatewayVIP.String()},
			// DR and TUN: replies from the VIPs through the router.
			[]string{"-n", r, "route", "add", FrontNet.String(), "via", RouterLAN.String(), "table", directRepliesTable},
			[]string{"-n", r, "rule", "add", "from", VIP2.String(), "lookup", directRepliesTable},
			[]string{"-n", r, "rule", "add", "from", VIP3.String(), "lookup", directRepliesTable})
	}
	for _, c := range cmds {
		if _, err := run(ctx, "ip", c...); err != nil {
			return err
		}
	}
	// The router forwards, and accepts DR and TUN replies from the VIPs
	// on its LAN leg (strict reverse-path filtering would drop them: the
	// VIPs are on its front network). New namespaces start with
	// rp_filter 0 on most kernels; set it anyway, hosts may differ.
	if err := sysctls(ctx, sw, "net/ipv4/ip_forward=1", "net/ipv4/conf/all/rp_filter=0",
		"net/ipv4/conf/default/rp_filter=0", "net/ipv4/conf/front/rp_filter=0", "net/ipv4/conf/lan/rp_filter=0"); err != nil {
		return err
	}
	return sysctls(ctx, ns(roleClient), "net/ipv4/conf/all/rp_filter=0", "net/ipv4/conf/eth0/rp_filter=0")
}

// startRealServer sets real server i up: lvsd realserver --tun for the
// DR and TUN VIPs (a daemon: the user-space IP-in-IP decapsulation on
// kernels without the ipip module), then its servers.
func (l *Lab) startRealServer(ctx context.Context, i int) error {
	rs := &realServer{i: i, ns: nsName(l.cfg.Prefix, rsRole(i)), stateDir: filepath.Join(l.cfg.RunDir, rsRole(i))}
	rs.log = filepath.Join(l.cfg.RunDir, rsRole(i)+".log")
	l.mu.Lock()
	l.rss[i-1] = rs
	l.mu.Unlock()
	if err := os.MkdirAll(rs.stateDir, 0o755); err != nil {
		return err
	}
	p, err := startProc(rsRole(i)+"'s lvsd realserver", []string{"ip", "netns", "exec", rs.ns, l.lvsdBin, "realserver",
		"--vip", VIP2.String() + "," + VIP3.String(), "--tun", "--state-dir", rs.stateDir},
		procOpts{logFile: rs.log, ready: "running until SIGTERM"})
	if err != nil {
		return err
	}
	l.mu.Lock()
	rs.rsd = p
	l.mu.Unlock()
	return l.startServe(i)
}

// startServe starts real server i's HTTP and UDP servers.
func (l *Lab) startServe(i int) error {
	l.mu.Lock()
	rs := l.rss[i-1]
	l.mu.Unlock()
	argv := append([]string{"ip", "netns", "exec", rs.ns}, l.cfg.Serve...)
	argv = append(argv, "--name", rsRole(i), "--tcp", fmt.Sprintf("%d,%d", httpPort, natRSPort), "--udp", strconv.Itoa(udpPort))
	p, err := startProc(rsRole(i)+"'s servers", argv, procOpts{logFile: rs.log, ready: ServeReady})
	if err != nil {
		return err
	}
	l.mu.Lock()
	rs.serve, rs.stopped, rs.reported = p, false, false
	l.mu.Unlock()
	return nil
}

// lvsdHasHTTP reports whether this lvsd serves --http (its manual says
// so without "not implemented").
func (l *Lab) lvsdHasHTTP(ctx context.Context) bool {
	help, _ := exec.CommandContext(ctx, l.lvsdBin, "run", "--help").CombinedOutput()
	i := strings.Index(string(help), "--http ADDR")
	if i < 0 {
		return false
	}
	desc := string(help[i:])
	if j := strings.Index(desc[1:], "\n    --"); j >= 0 {
		desc = desc[:j+1]
	}
	return !strings.Contains(desc, "not implemented")
}

// eventRE picks the lvsd log lines the live display shows: health
// changes, VRRP and sync, warnings and errors.
var eventRE = regexp.MustCompile(`(?i)level=(warn|error)|real server (up|down)|quorum|sorry server|vrrp|\bmaster\b|\bbackup\b|sync`)

// dupEventRE matches the event lines that repeat the one before: the
// manager's "real server down" after the checker's, which says why.
var dupEventRE = regexp.MustCompile(`reason="checker \d+ (up|down)"`)

// noiseRE matches what an event line shows without: the time attribute
// slog's text handler starts a line with (the display has its own), and
// the component attributes.
var noiseRE = regexp.MustCompile(`^time=\S+ | component=\S+`)

// startDirector starts lvsd on director i with its keepalived.conf.
func (l *Lab) startDirector(i int) error {
	l.mu.Lock()
	d := l.dirs[i-1]
	if d == nil {
		base := filepath.Join(l.cfg.RunDir, directorRole(i))
		d = &director{i: i, ns: nsName(l.cfg.Prefix, directorRole(i)), dir: base,
			conf: filepath.Join(base, "keepalived.conf"), sock: filepath.Join(base, "lvsd.sock"),
			state: filepath.Join(base, "state"), log: filepath.Join(base, "lvsd.log")}
		l.dirs[i-1] = d
	}
	l.mu.Unlock()
	if err := os.MkdirAll(d.dir, 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(d.conf, []byte(KeepalivedConf(i)), 0o644); err != nil {
		return err
	}
	name := directorRole(i)
	onLine := func(s string) {
		if eventRE.MatchString(s) && !dupEventRE.MatchString(s) {
			l.evMu.Lock()
			l.events = append(l.events, name+": "+noiseRE.ReplaceAllString(s, ""))
			if len(l.events) > 50 { // a flood of lines shows its end
				l.events = l.events[len(l.events)-50:]
			}
			l.evMu.Unlock()
		}
	}
	argv := []string{"ip", "netns", "exec", d.ns, l.lvsdBin, "run", "-f", d.conf, "--socket", d.sock,
		"--state", d.state, "--interfaces", "all"}
	if l.useHTTP {
		argv = append(argv, "--http", "127.0.0.1:"+strconv.Itoa(statusPort))
	}
	p, err := startProc(name+"'s lvsd", argv, procOpts{logFile: d.log, onLine: onLine, ready: "director running"})
	if err != nil && l.useHTTP && strings.Contains(err.Error(), "--http") {
		l.useHTTP = false
		l.note("lvsd refused --http: no status page (the lab runs lvsd without it)")
		return l.startDirector(i)
	}
	if err != nil {
		return err
	}
	l.mu.Lock()
	d.proc, d.reported, d.killed = p, false, false
	l.mu.Unlock()
	return nil
}

// vips makes sure a director holds the VIPs: lvsd's VRRP if it runs
// (director1, the higher priority, wins), else the lab itself.
func (l *Lab) vips(ctx context.Context) error {
	l.mu.Lock()
	d1 := l.dirs[0]
	l.mu.Unlock()
	if strings.Contains(d1.proc.out.String(), "not acted on yet: vrrp_instance") {
		l.note("lvsd does not run VRRP yet (its log: \"not acted on yet: vrrp_instance\"): the lab holds the VIPs on the master itself, and kill-master moves them")
		return l.holdVIPs(ctx, 1)
	}
	l.out.printf("waiting up to %v for lvsd's VRRP to put the VIPs on a director\n", vrrpWait)
	deadline := time.Now().Add(vrrpWait)
	for time.Now().Before(deadline) {
		for i := 1; i <= numDirectors; i++ {
			if hasAddr(ctx, nsName(l.cfg.Prefix, directorRole(i)), VIP1) {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	l.note(fmt.Sprintf("lvsd's VRRP put no VIP on a director within %v: the lab holds the VIPs on the master itself, and kill-master moves them", vrrpWait))
	return l.holdVIPs(ctx, 1)
}

// holdVIPs puts the VRRP addresses on director to (removing them from
// the others) and flushes the neighbours' ARP entries of them, which a
// VRRP master's gratuitous ARP would update.
func (l *Lab) holdVIPs(ctx context.Context, to int) error {
	l.mu.Lock()
	l.labVIPs, l.holder = true, to
	l.mu.Unlock()
	for i := 1; i <= numDirectors; i++ {
		ns := nsName(l.cfg.Prefix, directorRole(i))
		for _, a := range vrrpAddrs {
			has := hasAddr(ctx, ns, a.Addr)
			switch {
			case i == to && !has:
				if _, err := ipIn(ctx, ns, "addr", "add", a.Addr.String()+"/32", "dev", a.Dev); err != nil {
					return err
				}
			case i != to && has:
				if _, err := ipIn(ctx, ns, "addr", "del", a.Addr.String()+"/32", "dev", a.Dev); err != nil {
					return err
				}
			}
		}
	}
	for _, a := range vrrpAddrs {
		if FrontNet.Contains(a.Addr) {
			ipIn(ctx, nsName(l.cfg.Prefix, roleClient), "neigh", "flush", "to", a.Addr.String())
			continue
		}
		for r := 1; r <= numRS; r++ {
			ipIn(ctx, nsName(l.cfg.Prefix, rsRole(r)), "neigh", "flush", "to", a.Addr.String())
		}
	}
	return nil
}

// startProxies makes the status pages reachable on the host.
func (l *Lab) startProxies() error {
	port := func(off int) int {
		if l.cfg.HTTPPort == 0 {
			return 0
		}
		return l.cfg.HTTPPort + off
	}
	p, err := listenProxy(port(0), func() string {
		if a := l.active(context.Background()); a > 0 {
			return nsName(l.cfg.Prefix, directorRole(a))
		}
		return ""
	}, statusPort)
	if err != nil {
		return fmt.Errorf("status page proxy: %w", err)
	}
	l.proxies = append(l.proxies, p)
	l.statusURL = "http://" + p.addr() + "/"
	for i := 1; i <= numDirectors; i++ {
		ns := nsName(l.cfg.Prefix, directorRole(i))
		p, err := listenProxy(port(i), func() string { return ns }, statusPort)
		if err != nil {
			return fmt.Errorf("status page proxy: %w", err)
		}
		l.proxies = append(l.proxies, p)
		l.dirURLs = append(l.dirURLs, "http://"+p.addr()+"/")
	}
	if l.cfg.HTTPPort != 0 && l.statusURL != fmt.Sprintf("http://127.0.0.1:%d/", l.cfg.HTTPPort) {
		l.note(fmt.Sprintf("127.0.0.1:%d is busy: the status page is on %s", l.cfg.HTTPPort, l.statusURL))
	}
	return nil
}

// active returns the director whose lvsd runs and which holds the VIPs
// (else the first whose lvsd runs; 0 if none runs).
func (l *Lab) active(ctx context.Context) int {
	l.mu.Lock()
	var running []int
	for _, d := range l.dirs {
		if d != nil && d.proc != nil && d.proc.running() {
			running = append(running, d.i)
		}
	}
	l.mu.Unlock()
	for _, i := range running {
		if hasAddr(ctx, nsName(l.cfg.Prefix, directorRole(i)), VIP1) {
			return i
		}
	}
	if len(running) > 0 {
		return running[0]
	}
	return 0
}

// vipHolders lists the directors holding VIP1.
func (l *Lab) vipHolders(ctx context.Context) []string {
	var h []string
	for i := 1; i <= numDirectors; i++ {
		if hasAddr(ctx, nsName(l.cfg.Prefix, directorRole(i)), VIP1) {
			h = append(h, directorRole(i))
		}
	}
	return h
}

// waitRotation waits (bounded) until every service has its three real
// servers on the active director, so that the client's first requests
// find them.
func (l *Lab) waitRotation(ctx context.Context) {
	deadline := time.Now().Add(rotationWait)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		rot := l.rotation(ctx)
		full := len(rot) == len(Services)
		for _, rs := range rot {
			full = full && len(rs) == numRS
		}
		if full {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// startControl serves the control socket.
func (l *Lab) startControl() error {
	sock := socketPath(l.cfg.RunDir)
	os.Remove(sock)
	ln, err := net.Listen("unix", sock)
	if err != nil {
		return fmt.Errorf("control socket: %w", err)
	}
	if err := os.Chmod(sock, 0o600); err != nil {
		ln.Close()
		return err
	}
	l.ctl = &http.Server{Handler: l.controlHandler(), ReadHeaderTimeout: 5 * time.Second}
	l.ctlDone = make(chan struct{})
	go func() {
		defer close(l.ctlDone)
		l.ctl.Serve(ln)
	}()
	return nil
}

// Down is closed when the lab was asked to stop (lvslab down).
func (l *Lab) Down() <-chan struct{} { return l.down }

func (l *Lab) requestDown() { l.downOnce.Do(func() { close(l.down) }) }

// Close stops the client, the proxies and the control socket, stops
// lvsd (SIGTERM: it removes its nftables table) and the real servers,
// then deletes the namespaces and removes the run directory and the
// temporary binaries. It returns what could not be removed.
func (l *Lab) Close() error {
	var err error
	l.closeOnce.Do(func() {
		l.requestDown()
		if l.ctl != nil {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			l.ctl.Shutdown(ctx)
			cancel()
			<-l.ctlDone
		}
		if l.stopCli != nil {
			l.stopCli()
		}
		l.wg.Wait()
		for _, p := range l.proxies {
			p.close()
		}
		l.mu.Lock()
		var procs []*proc
		for _, d := range l.dirs {
			if d != nil && d.proc != nil {
				procs = append(procs, d.proc)
			}
		}
		for _, rs := range l.rss {
			if rs != nil {
				for _, p := range []*proc{rs.serve, rs.rsd} {
					if p != nil {
						procs = append(procs, p)
					}
				}
			}
		}
		l.mu.Unlock()
		var wg sync.WaitGroup
		for _, p := range procs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				p.stop()
			}()
		}
		wg.Wait()
		err = cleanup(context.Background(), l.cfg.RunDir, l.cfg.Prefix, l.out, true)
	})
	return err
}
