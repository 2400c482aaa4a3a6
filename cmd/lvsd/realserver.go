package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os/signal"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"golvs/internal/realserver"
)

// exitNotConfigured is --status's answer when the host is not (fully) set
// up: the LSB's "program is not running" status code, which init scripts
// and monitoring already understand.
const exitNotConfigured = 3

const realserverHelp = `NAME
    lvsd realserver - set this host up as an LVS real server (DR or TUN)

SYNOPSIS
    lvsd realserver --vip VIP[,VIP...] [--tun] [--tun-dev NAME]
                    [--state-dir DIR]
    lvsd realserver --down [--vip VIP[,VIP...]] [--state-dir DIR]
    lvsd realserver --status [--vip VIP[,VIP...]] [--tun] [--state-dir DIR]

DESCRIPTION
    Does what the classic LVS realserver scripts do by hand, and undoes
    exactly that:

      - each VIP on lo with a /32 (IPv4) or /128 (IPv6) prefix, and for IPv4
        a host route "VIP dev lo scope link";
      - net.ipv4.conf.{lo,all}.arp_ignore = 1 and arp_announce = 2, so that
        the host never answers ARP for the VIP nor uses it as an ARP source
        (values already as strict are left alone: arp_ignore 2 or 8). IPv6
        needs nothing: Neighbour Discovery does not answer for an address
        on lo.

    Every change is recorded, with the value it replaced, in a state file
    before it is made; --down undoes what was recorded and nothing else (an
    address that was there before stays, a sysctl goes back to its previous
    value unless someone changed it since). Running it again with more VIPs
    adds to the record.

    With --tun (a TUN real server: the director sends the client's packets
    inside IP-in-IP), net.ipv4.conf.all.rp_filter is also relaxed from 1
    (strict) to 2 (loose), since decapsulated packets come in on the tunnel
    interface with the client's source address. If the kernel can
    decapsulate (the ipip module: tunl0 exists or can be created; sit0 for
    IPv6-in-IPv4, ip6tnl0 for IPv6-in-IPv6), its tunnel devices are brought
    up and IPv4 VIPs go on tunl0, as in the LVS-TUN howto. What the kernel
    cannot do (everything, on kernels without these modules) lvsd does in
    user space: raw sockets receive IPv4-in-IPv4, IPv6-in-IPv6,
    IPv6-in-IPv4 and IPv4-in-IPv6, and the inner packets addressed to a VIP
    are written into a TUN device (--tun-dev, which also carries the IPv4
    VIPs, as loose reverse-path filtering requires), from which the kernel
    delivers them; anything else is counted and dropped. Either way the
    application sees the client's address and answers it directly.

    With --tun the command stays in the foreground until SIGTERM or SIGINT,
    then removes the TUN device and undoes what it set up (for its VIPs),
    and exits 0. Without --tun it sets up and exits.

OPTIONS
    --vip VIP[,VIP...]
        The virtual addresses, IPv4 and/or IPv6, comma-separated; the option
        may be repeated. "VIP/32" and "VIP/128" are accepted. Required for
        set-up; with --down only those VIPs are undone (the host-wide
        changes go with the last one); with --status only those are shown.

    --tun
        Set up a TUN real server (see above).

    --down
        Undo what was set up. Without a state file there is nothing to undo:
        a warning, exit 0.

    --status
        Print each VIP, the sysctls and, for TUN, the decapsulation; exit 0
        if everything is in place, 3 if not. Needs no privilege.

    --tun-dev NAME
        The user-space decapsulator's TUN device. Default: lvstun0.

    --state-dir DIR
        Where the state file realserver.json and its lock live. Default:
        /run/lvsd (a tmpfs, emptied at boot like the changes it records).

    -h, --help
        This manual.

EXIT STATUS
    0   done (--status: configured)
    1   runtime error (not permitted, address on another interface, ...)
    2   usage error
    3   --status only: not (fully) configured

FILES
    /run/lvsd/realserver.json, /run/lvsd/realserver.lock

EXAMPLES
    lvsd realserver --vip 198.51.100.10
    lvsd realserver --vip 198.51.100.10,2001:db8::10 --tun
    lvsd realserver --status
    lvsd realserver --down

NOTES
    Needs CAP_NET_ADMIN (and CAP_NET_RAW with --tun): run it as root.

    The user-space decapsulator does not check who sent the tunnelled
    packet (nor does the kernel's tunl0): filter IP-in-IP from anything but
    the directors if the network is not trusted. It completes transport
    checksums that arrive partial (a director on the same host or a veth,
    GRO on this host's NIC), as the kernel's own decapsulation would trust
    them. GUE and GRE tunnels (ipvsadm --tun-type gue|gre) are not
    decapsulated.

SEE ALSO
    ipvsadm(8), ip-address(8), keepalived(8),
    Documentation/networking/ip-sysctl.rst (arp_ignore, arp_announce, rp_filter)
`

// realserverOpts are the parsed arguments.
type realserverOpts struct {
	vips     []netip.Addr
	tun      bool
	down     bool
	status   bool
	tunDev   string
	stateDir string
}

// errUsage marks argument errors (exit 2).
var errUsage = errors.New("usage")

// parseRealserver parses the arguments after "realserver". It returns
// flag.ErrHelp for -h/--help.
func parseRealserver(args []string) (realserverOpts, error) {
	var o realserverOpts
	fs := flag.NewFlagSet("realserver", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	fs.Func("vip", "", func(s string) error {
		vips, err := realserver.ParseVIPs(s)
		if err != nil {
			return err
		}
		for _, a := range vips {
			for _, b := range o.vips {
				if a == b {
					return fmt.Errorf("VIP %v given twice", a)
				}
			}
		}
		o.vips = append(o.vips, vips...)
		return nil
	})
	fs.BoolVar(&o.tun, "tun", false, "")
	fs.BoolVar(&o.down, "down", false, "")
	fs.BoolVar(&o.status, "status", false, "")
	fs.StringVar(&o.tunDev, "tun-dev", realserver.DefaultTunName, "")
	fs.StringVar(&o.stateDir, "state-dir", realserver.DefaultStateDir, "")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return o, err
		}
		return o, fmt.Errorf("%w: %w", errUsage, err)
	}
	switch {
	case fs.NArg() > 0:
		return o, fmt.Errorf("%w: unexpected argument %q", errUsage, fs.Arg(0))
	case o.down && o.status:
		return o, fmt.Errorf("%w: --down and --status exclude each other", errUsage)
	case !o.down && !o.status && len(o.vips) == 0:
		return o, fmt.Errorf("%w: --vip is required to set up", errUsage)
	case o.stateDir == "":
		return o, fmt.Errorf("%w: --state-dir is empty", errUsage)
	}
	if err := realserver.CheckIfName(o.tunDev); err != nil {
		return o, fmt.Errorf("%w: --tun-dev: %w", errUsage, err)
	}
	return o, nil
}

func runRealserver(args []string, stdout, stderr io.Writer) int {
	o, err := parseRealserver(args)
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprint(stdout, realserverHelp)
		return exitOK
	}
	if err != nil {
		msg := strings.TrimPrefix(err.Error(), errUsage.Error()+": ")
		fmt.Fprintf(stderr, "lvsd realserver: %s\nTry 'lvsd realserver --help'.\n", msg)
		return exitUsage
	}
	log := newLogger(stderr, "text").With("component", "realserver")
	defer closeLogger(log)
	cfg := realserver.Config{VIPs: o.vips, Tun: o.tun, StateDir: o.stateDir, TunName: o.tunDev, Logger: log}
	fail := func(err error) int {
		fmt.Fprintf(stderr, "lvsd realserver: %v\n", err)
		return exitError
	}

	if o.status {
		rep, err := realserver.Status(cfg)
		if err != nil {
			return fail(err)
		}
		if err := rep.Write(stdout); err != nil {
			return fail(err)
		}
		if !rep.Configured() {
			return exitNotConfigured
		}
		return exitOK
	}
	if err := checkPrivileges(o.tun && !o.down); err != nil {
		return fail(err)
	}
	if o.down {
		err := realserver.Teardown(cfg)
		if errors.Is(err, realserver.ErrNoState) {
			fmt.Fprintf(stderr, "lvsd realserver: nothing to undo: %v\n", err)
			return exitOK
		}
		if err != nil {
			return fail(err)
		}
		return exitOK
	}
	if !o.tun {
		if _, err := realserver.Setup(cfg); err != nil {
			return fail(err)
		}
		fmt.Fprintf(stdout, "realserver: set up %s (undo: lvsd realserver --down)\n", joinAddrs(o.vips))
		return exitOK
	}
	return runTun(cfg, stdout, stderr, log)
}

// runTun sets up a TUN real server, decapsulates until a signal, and
// undoes its set-up.
func runTun(cfg realserver.Config, stdout, stderr io.Writer, log *slog.Logger) int {
	// Signals are caught from here on: one that arrives during set-up
	// still leads to the teardown below.
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	res, err := realserver.Setup(cfg)
	if err != nil {
		fmt.Fprintf(stderr, "lvsd realserver: %v\n", err)
		return exitError
	}
	code := exitOK
	var d *realserver.Decap
	if res.User != 0 {
		d, err = realserver.OpenDecap(realserver.DecapConfig{Name: cfg.TunName, VIPs: cfg.VIPs, Encaps: res.User, Logger: log})
		if err != nil {
			fmt.Fprintf(stderr, "lvsd realserver: %v\n", err)
			code = exitError
		}
	}
	if code == exitOK {
		ran := make(chan error, 1)
		if d != nil {
			log.Info("decapsulating in user space", "dev", d.Name(), "encaps", d.Encaps().String(), "vips", joinAddrs(cfg.VIPs))
			go func() { ran <- d.Run() }()
		}
		if res.Kernel != 0 {
			log.Info("the kernel decapsulates", "encaps", res.Kernel.String())
		}
		fmt.Fprintf(stdout, "realserver: set up %s with TUN; running until SIGTERM\n", joinAddrs(cfg.VIPs))
		select {
		case <-ctx.Done():
			log.Info("signal received: tearing down")
		case err := <-ran:
			fmt.Fprintf(stderr, "lvsd realserver: %v\n", err)
			code = exitError
		}
	}
	if d != nil {
		d.Close()
		c := d.Counters()
		log.Info("decap counters", "received", c.Received, "injected", c.Injected, "not_vip", c.NotVIP,
			"malformed", c.Malformed, "checksum_completed", c.ChecksumCompleted, "write_errors", c.WriteErrors)
	}
	if err := realserver.Teardown(cfg); err != nil && !errors.Is(err, realserver.ErrNoState) {
		fmt.Fprintf(stderr, "lvsd realserver: teardown: %v\n", err)
		code = exitError
	}
	return code
}

// checkPrivileges returns a readable error if the effective capabilities
// lack CAP_NET_ADMIN (addresses, routes, sysctls, the TUN device), or
// CAP_NET_RAW when raw sockets are needed. If the capabilities cannot be
// read it lets the kernel decide.
func checkPrivileges(raw bool) error {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData // version 3: two 32-bit words
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return nil
	}
	has := func(c int) bool { return data[c/32].Effective&(1<<(c%32)) != 0 }
	var missing []string
	if !has(unix.CAP_NET_ADMIN) {
		missing = append(missing, "CAP_NET_ADMIN")
	}
	if raw && !has(unix.CAP_NET_RAW) {
		missing = append(missing, "CAP_NET_RAW")
	}
	if len(missing) > 0 {
		return fmt.Errorf("not permitted: needs %s (run it as root)", strings.Join(missing, " and "))
	}
	return nil
}

func joinAddrs(as []netip.Addr) string {
	s := make([]string, len(as))
	for i, a := range as {
		s[i] = a.String()
	}
	return strings.Join(s, ",")
}
