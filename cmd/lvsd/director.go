package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"golvs/internal/api"
	"golvs/internal/control"
	"golvs/internal/engine"
	"golvs/internal/estimator"
	"golvs/internal/hostnet"
	"golvs/internal/keepalived"
	"golvs/internal/service"
	"golvs/internal/statefile"
	"golvs/internal/web"
)

const directorHelp = `NAME
    lvsd run - run the director: the IPVS control plane and its data plane

SYNOPSIS
    lvsd -t -f FILE
    lvsd run [-f FILE] [--socket PATH] [--state PATH] [--interfaces LIST|all|none]
             [--queues N] [--fwmark-rules FILE] [--fwmark-from-host=false]
             [--deny-set FAMILY/TABLE/SET,...] [--http ADDR [--http-token T]]
             [--log-format text|json]

DESCRIPTION
    Runs the load balancer: the virtual services and real servers that
    ipvsadm configures, the connection table and its timers, and the packet
    path on the given interfaces.

    The configuration is changed through the control API, an HTTP/JSON API
    on a Unix socket (docs/api.md), which GoLVS's ipvsadm talks to. Every
    change is saved in the state file, which is read back at start: a
    restart (even after kill -9) finds the services, real servers, timeouts
    and settings as they were. Counters and connections are not kept.

    SIGTERM or SIGINT stops the director cleanly and removes the socket.

OPTIONS
    --socket PATH
        The control API's Unix socket (mode 0600; its directory is created
        if missing). A socket left behind by a killed lvsd is replaced; one
        that another lvsd still answers on is an error.
        Default: /run/lvsd/lvsd.sock. ipvsadm finds it through the
        LVSD_SOCKET environment variable.

    --state PATH
        The state file. Default: /var/lib/lvsd/state.

    --interfaces LIST
        The interfaces the director forwards packets on, comma-separated;
        "all" for every Ethernet interface that is up (not loopback, not
        a bridge or bond port), followed as interfaces come and go (the
        data plane moves to the new set without losing its connections);
        or "none" for no data plane (the control plane alone).
        Default: all.

    --queues N
        The number of data-path workers, each with its own receive rings
        on every interface. Default: 0, the number of CPUs up to 2.

    --fwmark-rules FILE
        MARK rules for firewall-mark services (ipvsadm -f), in iptables
        syntax: iptables-save's mangle table, or lines such as
          -A PREROUTING -d 198.18.0.10 -p tcp -m multiport --dports 80,443 -j MARK --set-mark 1
        GoLVS takes packets before netfilter runs, so it evaluates the
        rules that mark them itself: those of this file and (unless
        --fwmark-from-host=false) the MARK rules of the host's
        nftables ruleset on the prerouting hook, where iptables-nft
        keeps iptables rules too. Both are followed as they change;
        rules GoLVS cannot evaluate are logged. A file with errors
        stops lvsd from starting (a running lvsd keeps its previous
        rules). Default: none.

    --fwmark-from-host=BOOL
        Read MARK rules from the host's ruleset. Default: true.

    --deny-set FAMILY/TABLE/SET[,...]
        nftables sets of client addresses (ipv4_addr or ipv6_addr,
        plain or with flags interval) whose packets to the director's
        addresses the data plane drops. GoLVS takes service traffic
        before netfilter, so the director's INPUT filter does not see
        it (see PACKET FILTERING); a set the filter already uses (for
        example fail2ban's) keeps denying those clients the services.
        The sets are followed as they change. Default: none.

` + syncHelp + `
    --log-format text|json
        The format of the log on stderr. Default: text.

    -f, --config FILE
        A keepalived.conf (keepalived's own format: global_defs,
        virtual_server, virtual_server_group, real_server and every
        health checker, include, vrrp_instance, vrrp_sync_group,
        vrrp_script and lvs_sync_daemon). VRRP moves the VIPs between
        directors (gratuitous ARP and unsolicited NA on takeover) and,
        with lvs_sync_daemon, the connection-sync daemon runs as master
        while its instance is MASTER. Its virtual servers are added at start and follow
        their real servers' health: a failed server leaves (or gets
        weight 0 with inhibit_on_failure), a recovered one returns,
        a lost quorum brings in the sorry server. SIGHUP (or
        POST /v1/reload) reads the file again and applies only the
        difference; a bad file changes nothing and the error is
        logged. Services added with ipvsadm live beside the file's;
        the file's are not saved in the state file (the file is
        their source). A file that does not parse stops lvsd from
        starting.

    -t, --config-test
        With -f: check the file, print its errors and warnings, and
        exit 0 when it is good, 1 when not (keepalived -t).

    --http ADDR
        Serve the status page (/), Prometheus metrics (/metrics, names
        in docs/metrics.md), /api/status and /healthz on ADDR, for
        example 127.0.0.1:9100. A non-loopback address needs a token.
        Default: off.

    --http-token TOKEN
        Require TOKEN on /metrics and /api/status ("Authorization:
        Bearer TOKEN" or ?token=TOKEN; open the page as /?token=TOKEN).
        Default: $LVSD_HTTP_TOKEN.

    -h, --help
        This manual.

PACKET FILTERING
    In the kernel, IPVS runs after the director's INPUT filter, so
    firewall rules there apply to service traffic. GoLVS takes the
    services' packets (and NAT replies) off the interfaces before
    netfilter runs: rules of the input, forward and prerouting hooks
    (iptables INPUT, FORWARD, mangle PREROUTING) do not see them.
    Everything else reaches the host's stack and its filter as usual.
    What still applies to service traffic: MARK rules (evaluated by
    GoLVS itself for firewall-mark services, see --fwmark-rules) and
    the deny sets of --deny-set. Any other filtering of service
    traffic (rate limits, connection tracking rules, port knocking)
    must happen upstream of the director.

EXIT STATUS
    0   stopped by SIGTERM or SIGINT
    1   runtime error (socket in use, unreadable state file, ...)
    2   usage error

FILES
    /run/lvsd/lvsd.sock, /var/lib/lvsd/state

SEE ALSO
    ipvsadm(8), docs/api.md
`

// Defaults of the director's flags.
const (
	defaultSocket = "/run/lvsd/lvsd.sock"
	defaultState  = "/var/lib/lvsd/state"
)

// tickInterval is how often the director runs the engine's housekeeping:
// estimator.Slot, the period Engine.Tick asks for (the rate estimator's
// slot; conntable expiry on an idle director rides on it).
const tickInterval = estimator.Slot

// shutdownTimeout bounds how long a stopping director waits for API
// requests in flight: they are short (one control operation or one
// listing), so a second is generous.
const shutdownTimeout = time.Second

// directorOpts are the parsed arguments of lvsd run.
type directorOpts struct {
	config     string
	socket     string
	state      string
	interfaces string
	queues     int
	markRules  string
	hostMarks  bool
	denySets   string
	configTest bool
	httpToken  string
	http       string
	logFormat  string
	sync       syncOpts
}

// parseDirector parses the arguments after "run". It returns flag.ErrHelp
// for -h/--help.
func parseDirector(args []string) (directorOpts, error) {
	var o directorOpts
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	fs.StringVar(&o.config, "f", "", "")
	fs.StringVar(&o.config, "config", "", "")
	fs.BoolVar(&o.configTest, "t", false, "")
	fs.BoolVar(&o.configTest, "config-test", false, "")
	fs.StringVar(&o.socket, "socket", defaultSocket, "")
	fs.StringVar(&o.state, "state", defaultState, "")
	fs.StringVar(&o.interfaces, "interfaces", allInterfaces, "")
	fs.StringVar(&o.markRules, "fwmark-rules", "", "")
	fs.BoolVar(&o.hostMarks, "fwmark-from-host", true, "")
	fs.StringVar(&o.denySets, "deny-set", "", "")
	fs.IntVar(&o.queues, "queues", 0, "")
	fs.StringVar(&o.http, "http", "", "")
	fs.StringVar(&o.httpToken, "http-token", os.Getenv("LVSD_HTTP_TOKEN"), "")
	fs.StringVar(&o.logFormat, "log-format", "text", "")
	o.sync.register(fs)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return o, err
		}
		return o, fmt.Errorf("%w: %w", errUsage, err)
	}
	switch {
	case fs.NArg() > 0:
		return o, fmt.Errorf("%w: unexpected argument %q", errUsage, fs.Arg(0))
	case o.configTest && o.config == "":
		return o, fmt.Errorf("%w: -t needs -f FILE", errUsage)
	case o.http != "" && web.CheckListenAddr(o.http, o.httpToken) != nil:
		return o, fmt.Errorf("%w: --http: %w", errUsage, web.CheckListenAddr(o.http, o.httpToken))
	case o.socket == "":
		return o, fmt.Errorf("%w: --socket is empty", errUsage)
	case o.state == "":
		return o, fmt.Errorf("%w: --state is empty", errUsage)
	case o.interfaces == "":
		return o, fmt.Errorf("%w: --interfaces is empty (use \"none\" for no data plane)", errUsage)
	case o.queues < 0:
		return o, fmt.Errorf("%w: --queues %d: want 0 (the default) or more", errUsage, o.queues)
	case o.denySets != "":
		if _, err := parseDenySets(o.denySets); err != nil {
			return o, fmt.Errorf("%w: --deny-set: %w", errUsage, err)
		}
	}
	switch {
	case o.logFormat != "text" && o.logFormat != "json":
		return o, fmt.Errorf("%w: --log-format %q: want text or json", errUsage, o.logFormat)
	}
	if err := o.sync.check(); err != nil {
		return o, fmt.Errorf("%w: %w", errUsage, err)
	}
	return o, nil
}

// parseDenySets reads --deny-set's comma-separated set names.
func parseDenySets(s string) ([]hostnet.SetName, error) {
	var out []hostnet.SetName
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		n, err := hostnet.ParseSetName(f)
		if err != nil {
			return nil, err
		}
		out = append(out, n)
	}
	return out, nil
}

func runDirector(args []string, stdout, stderr io.Writer) int {
	o, err := parseDirector(args)
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprint(stdout, directorHelp)
		return exitOK
	}
	if err != nil {
		msg := strings.TrimPrefix(err.Error(), errUsage.Error()+": ")
		fmt.Fprintf(stderr, "lvsd run: %s\nTry 'lvsd run --help'.\n", msg)
		return exitUsage
	}
	if o.configTest {
		return configTest(o.config, stdout, stderr)
	}
	log := newLogger(stderr, o.logFormat).With("component", "lvsd")
	defer closeLogger(log)

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := direct(ctx, o, log); err != nil {
		log.Error("director failed", "err", err)
		return exitError
	}
	return exitOK
}

// direct runs the director until ctx ends.
func direct(ctx context.Context, o directorOpts, log *slog.Logger) error {
	deny, err := parseDenySets(o.denySets)
	if err != nil {
		return err
	}
	if o.config != "" {
		// A bad file stops the start before anything is touched (the
		// state file, the data plane).
		if _, _, err := loadKeepalived(o.config); err != nil {
			return fmt.Errorf("configuration %s: %w", o.config, err)
		}
	}
	dp := dataPlaneConfig{Interfaces: o.interfaces, Queues: o.queues, MarkRules: o.markRules, HostMarks: o.hostMarks, DenySets: deny}
	// Data-path worker i counts in shard i of every counter.
	ctl := control.New(control.Config{StatsShards: dataPlaneQueues(dp.Queues)})
	eng, err := engine.New(engine.Config{Control: ctl})
	if err != nil {
		return err
	}
	if err := restoreState(o.state, ctl, eng, log); err != nil {
		return err
	}
	var ka *kaRuntime
	if o.config != "" {
		if ka, err = startKeepalived(o.config, ctl, eng, log.With("component", "keepalived")); err != nil {
			return fmt.Errorf("configuration %s: %w", o.config, err)
		}
		defer func() {
			sctx, scancel := context.WithTimeout(context.Background(), kaShutdownTimeout)
			defer scancel()
			if err := ka.Shutdown(sctx); err != nil {
				log.Warn("stopping the configuration's virtual servers", "err", err)
			}
		}()
	}

	// The sync daemons' manager: the API and lvs_sync_daemon start them.
	syncMgr, err := startSync(o.sync, eng, ctl, log.With("component", "sync"))
	if err != nil {
		return fmt.Errorf("connection sync: %w", err)
	}
	defer syncMgr.Close()
	if ka != nil {
		// lvs_sync_daemon, now and after each reload; with an instance,
		// the daemon's role follows that VRRP instance.
		ka.setSync(syncMgr)
	}

	ln, err := listenSocket(o.socket)
	if err != nil {
		return err
	}
	// The listener unlinks the socket file when closed (net.UnixListener
	// does so for sockets it created).
	defer ln.Close()

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	pl, err := startDataPlane(ctx, dp, eng, ctl, log.With("component", "dataplane"))
	if err != nil {
		return fmt.Errorf("data plane: %w", err)
	}
	stopDP := pl.Stop
	if o.http != "" {
		stopHTTP, err := startHTTP(ctx, o.http, o.httpToken, ctl, eng, 0, pl.Stats, ka, syncMgr, log.With("component", "http"))
		if err != nil {
			stopDP()
			return fmt.Errorf("--http %s: %w", o.http, err)
		}
		defer stopHTTP()
	}

	var wg sync.WaitGroup
	// The housekeeping goroutine: owned by direct, stopped by cancel.
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick(ctx, eng)
	}()

	srv := &http.Server{
		Handler: api.New(api.Config{
			Control: ctl,
			Engine:  eng,
			Persist: func() error { return statefile.Write(o.state, captureState(ctl, eng, ka)) },
			Log:     log.With("component", "api"),
			Reload:  kaReload(ka),
			Health:  kaHealth(ka),
			Daemons: syncMgr,
		}),
		ReadHeaderTimeout: 10 * time.Second, // a local client sends its header at once
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	serveErr := make(chan error, 1)
	// The API goroutine: owned by direct, stopped by srv.Shutdown.
	wg.Add(1)
	go func() {
		defer wg.Done()
		serveErr <- srv.Serve(ln)
	}()
	// SIGHUP reloads the configuration file (without one, it is logged
	// and ignored rather than ending lvsd, its default action).
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				if ka == nil {
					log.Warn("SIGHUP: no configuration file to reload (lvsd runs without -f)")
					continue
				}
				log.Info("SIGHUP: reloading the configuration", "file", o.config)
				_, _ = ka.Reload()
			}
		}
	}()
	log.Info("director running", "socket", o.socket, "state", o.state, "interfaces", o.interfaces, "config", o.config)

	var runErr error
	select {
	case <-ctx.Done():
		log.Info("stopping")
	case runErr = <-serveErr:
		runErr = fmt.Errorf("API server: %w", runErr)
	}
	if ka != nil {
		// VRRP first: the backup takes the VIPs over in skew time.
		vctx, vcancel := context.WithTimeout(context.Background(), kaShutdownTimeout)
		if err := ka.StopVRRP(vctx); err != nil {
			log.Warn("stopping VRRP", "err", err)
		}
		vcancel()
	}
	sctx, scancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer scancel()
	if err := srv.Shutdown(sctx); err != nil {
		srv.Close()
	}
	cancel()
	wg.Wait()
	if err := stopDP(); err != nil && runErr == nil {
		runErr = fmt.Errorf("data plane: %w", err)
	}
	return runErr
}

// kaShutdownTimeout bounds the configuration's shutdown: keepalived gives
// omega scripts 1 s; the rest is removing services from memory.
const kaShutdownTimeout = 3 * time.Second

// captureState is the state file's document: everything but the
// configuration file's virtual servers, whose source is the file.
func captureState(ctl *control.Control, eng *engine.Engine, ka *kaRuntime) *statefile.Document {
	d := statefile.Capture(ctl, eng)
	if ka == nil {
		return d
	}
	kept := d.Services[:0]
	for _, s := range d.Services {
		k := service.Key{Family: service.Family(s.Family), Proto: s.Protocol, Addr: s.Addr, Port: s.Port, FWMark: s.FWMark}
		if !ka.Owns(k) {
			kept = append(kept, s)
		}
	}
	d.Services = kept
	return d
}

func kaReload(ka *kaRuntime) func() ([]string, error) {
	if ka == nil {
		return nil
	}
	return ka.Reload
}

func kaHealth(ka *kaRuntime) func() []api.RealServerHealth {
	if ka == nil {
		return nil
	}
	return ka.Health
}

// configTest is lvsd -t -f FILE (keepalived -t): it checks the file and
// prints its diagnostics; exit 0 when it is good, 1 when not.
func configTest(path string, stdout, stderr io.Writer) int {
	_, diags, err := keepalived.Parse(path, keepalived.Options{})
	for _, d := range diags {
		fmt.Fprintln(stderr, d.String())
	}
	if err != nil {
		fmt.Fprintf(stderr, "lvsd: %s: configuration refused\n", path)
		return exitError
	}
	fmt.Fprintf(stdout, "lvsd: %s: configuration good\n", path)
	return exitOK
}

// restoreState loads the state file into ctl and eng. A missing file is a
// first start: the empty state is written at once, so that a state path
// lvsd cannot write fails now rather than at the first change. A file
// that does not load stops the director, since starting empty would
// overwrite it at the first change.
func restoreState(path string, ctl *control.Control, eng *engine.Engine, log *slog.Logger) error {
	if n, err := statefile.RemoveTemps(path); err != nil {
		return fmt.Errorf("state file: %w", err)
	} else if n > 0 {
		log.Info("removed temporary state files of an interrupted save", "count", n)
	}
	doc, err := statefile.Read(path)
	if errors.Is(err, os.ErrNotExist) {
		log.Info("no state file: starting empty", "state", path)
		if err := statefile.Write(path, statefile.Capture(ctl, eng)); err != nil {
			return fmt.Errorf("state file: %w", err)
		}
		return nil
	}
	if err != nil {
		return err
	}
	if err := statefile.Apply(doc, ctl, eng); err != nil {
		return fmt.Errorf("state file %s: %w", path, err)
	}
	log.Info("state restored", "state", path, "services", len(doc.Services))
	return nil
}

// tick runs the engine's housekeeping every tickInterval until ctx ends.
func tick(ctx context.Context, eng *engine.Engine) {
	t := time.NewTicker(tickInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			eng.Tick()
		}
	}
}

// listenSocket listens on the Unix socket path with mode 0600, creating
// its directory, and replacing a socket that nothing answers on (left by
// a killed lvsd).
func listenSocket(path string) (*net.UnixListener, error) {
	// 0755: the directory holds only the socket, whose own mode (0600)
	// is what restricts access.
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("socket directory: %w", err)
	}
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode().Type() != os.ModeSocket {
			return nil, fmt.Errorf("socket %s: exists and is not a socket", path)
		}
		c, err := net.DialTimeout("unix", path, time.Second)
		if err == nil {
			c.Close()
			return nil, fmt.Errorf("socket %s: another lvsd is listening on it", path)
		}
		if !errors.Is(err, syscall.ECONNREFUSED) {
			return nil, fmt.Errorf("socket %s: exists and cannot be probed: %w", path, err)
		}
		// Nothing listens: a stale socket.
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("stale socket: %w", err)
		}
	}
	// The umask makes the socket 0600 from its creation on (a chmod
	// afterwards would leave a window). Nothing else creates files yet.
	old := syscall.Umask(0o177)
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	syscall.Umask(old)
	if err != nil {
		return nil, err
	}
	return ln, nil
}
