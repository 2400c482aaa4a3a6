package main

import (
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"golvs/internal/api"
	"golvs/internal/control"
	"golvs/internal/engine"
	"golvs/internal/ipvsadm"
	"golvs/internal/ipvssync"
	"golvs/internal/keepalived"
	"golvs/internal/syncd"
)

// Connection synchronisation in lvsd run: the daemons of ipvsadm
// --start-daemon and of keepalived's lvs_sync_daemon run in a
// syncd.Manager, which the control API starts and stops; these flags
// set the sysctls of ip_vs_sync.c and GoLVS's additions (unicast peers,
// authentication).

// The Manager is the API's hook for --start-daemon, --stop-daemon, -L
// --daemon and GET /v1/sync.
var (
	_ api.Daemons   = (*syncd.Manager)(nil)
	_ api.SyncStats = (*syncd.Manager)(nil)
)

// syncHelp is the OPTIONS part of lvsd run --help about the sync daemons.
const syncHelp = `    --sync-peers ADDR[:PORT][,...]
        Connection sync over unicast (GoLVS; the kernel has multicast
        only): a master daemon sends its messages to each of these
        addresses instead of the multicast group, and a backup daemon
        listens on the sync port (see --sync-listen) instead of joining
        the group, and takes messages from these addresses only. A peer
        without a port gets the daemon's (--mcast-port, 8848). List the
        other directors, not this one (its backup would take its own
        master's messages). The daemons themselves are started as with
        the kernel: ipvsadm --start-daemon master|backup
        --mcast-interface IF, or keepalived's lvs_sync_daemon; the
        interface then only names the daemon (the routes pick the way to
        the peers) and --mcast-ttl does not apply. Default: none
        (multicast).

    --sync-listen ADDR
        With --sync-peers: the address a backup daemon listens on.
        Default: all of the host's addresses.

    --sync-key-file FILE
        Authenticate connection sync (GoLVS): masters sign their
        messages with HMAC-SHA-256-128, and backups drop (and count)
        messages that are not signed with a known key, altered,
        replayed, or more than 30 s old (the directors' clocks must
        agree to that). FILE holds one key a line, "ID SECRET", the ID
        a number (0-65535) and the secret 16 to 64 bytes in hex (make
        one with: echo 1 $(head -c 32 /dev/urandom | xxd -p -c 64));
        # starts a comment. The first key signs, all are accepted, so a
        key is rolled over by adding the new one second everywhere,
        then moving it first, then removing the old one. The file must
        be readable by its owner only. Signed messages are not the
        kernel's format: a kernel backup drops them, and a GoLVS backup
        with a key drops a kernel master's. Default: none (the
        kernel's unauthenticated messages).

    --sync-sysctl NAME=VALUE
        A sysctl of the kernel's connection sync (ipvs-sysctl.rst),
        repeatable: sync_version=1 (0: the old format, IPv4 only),
        sync_threshold=3,50 (or "3 50": a connection is synced when its
        packet count modulo the second number is the first; 3,0: once),
        sync_refresh_period=0 (seconds; when set, a connection is synced
        again only when its timer moved by that much or by half its
        timeout), sync_retries=0 (0 to 3, with sync_refresh_period),
        sync_persist_mode=0 (1: sync only the templates of persistent
        services). Defaults: the kernel's, as shown.
`

// syncOpts are lvsd run's connection-sync flags. It is comparable (as
// directorOpts must be).
type syncOpts struct {
	peers   string
	listen  string
	keyFile string
	sysctls string // the --sync-sysctl values, NAME=VALUE, one a line
}

// register adds the flags to fs.
func (o *syncOpts) register(fs *flag.FlagSet) {
	fs.StringVar(&o.peers, "sync-peers", "", "")
	fs.StringVar(&o.listen, "sync-listen", "", "")
	fs.StringVar(&o.keyFile, "sync-key-file", "", "")
	fs.Func("sync-sysctl", "", func(s string) error {
		if strings.Contains(s, "\n") {
			return errors.New("a newline in a sysctl")
		}
		o.sysctls += s + "\n"
		return nil
	})
}

// check validates the flags (not the key file, read at start).
func (o *syncOpts) check() error {
	_, err := o.parse()
	return err
}

// parsed is what the flags say, without the keys.
type parsedSync struct {
	peers   []netip.AddrPort
	listen  netip.Addr
	sysctls ipvssync.Sysctls
}

func (o *syncOpts) parse() (parsedSync, error) {
	p := parsedSync{sysctls: ipvssync.DefaultSysctls()}
	for _, f := range strings.Split(o.peers, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		ap, err := netip.ParseAddrPort(f)
		if err != nil {
			a, err2 := netip.ParseAddr(strings.Trim(f, "[]"))
			if err2 != nil {
				return p, fmt.Errorf("--sync-peers: %q: want ADDR or ADDR:PORT", f)
			}
			ap = netip.AddrPortFrom(a, 0)
		}
		if a := ap.Addr(); a.IsMulticast() || a.IsUnspecified() || a.Zone() != "" {
			return p, fmt.Errorf("--sync-peers: %v: want a unicast address", ap)
		}
		p.peers = append(p.peers, ap)
	}
	if o.listen != "" {
		a, err := netip.ParseAddr(o.listen)
		if err != nil {
			return p, fmt.Errorf("--sync-listen: %q: want an address", o.listen)
		}
		if len(p.peers) == 0 {
			return p, errors.New("--sync-listen needs --sync-peers")
		}
		p.listen = a
	}
	for _, kv := range strings.Split(strings.TrimSuffix(o.sysctls, "\n"), "\n") {
		if kv == "" {
			continue
		}
		if err := setSysctl(&p.sysctls, kv); err != nil {
			return p, fmt.Errorf("--sync-sysctl %s: %w", kv, err)
		}
	}
	if err := p.sysctls.Validate(); err != nil {
		return p, fmt.Errorf("--sync-sysctl: %w", err)
	}
	return p, nil
}

// setSysctl applies one NAME=VALUE to s.
func setSysctl(s *ipvssync.Sysctls, kv string) error {
	name, val, ok := strings.Cut(kv, "=")
	if !ok {
		return errors.New("want NAME=VALUE")
	}
	num := func(v string, lo, hi int) (int, error) {
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil || n < lo || n > hi {
			return 0, fmt.Errorf("%q: want %d to %d", v, lo, hi)
		}
		return n, nil
	}
	// Upper bounds: sysctl values are C ints.
	const maxInt = 1<<31 - 1
	var err error
	var n int
	switch strings.TrimSpace(name) {
	case "sync_version":
		n, err = num(val, 0, 1)
		s.Version = uint8(n)
	case "sync_threshold":
		f := strings.FieldsFunc(val, func(r rune) bool { return r == ' ' || r == ',' || r == '\t' })
		if len(f) != 2 {
			return fmt.Errorf("%q: want two numbers, \"THRESHOLD PERIOD\"", val)
		}
		if s.Threshold, err = num(f[0], 0, maxInt); err != nil {
			return err
		}
		s.Period, err = num(f[1], 0, maxInt)
	case "sync_refresh_period":
		// Seconds, as the sysctl (proc_dointvec_jiffies).
		n, err = num(val, 0, maxInt)
		s.RefreshPeriod = time.Duration(n) * time.Second
	case "sync_retries":
		n, err = num(val, 0, 3)
		s.Retries = n
	case "sync_persist_mode":
		n, err = num(val, 0, 1)
		s.PersistMode = n == 1
	default:
		return fmt.Errorf("unknown sysctl %q (sync_version, sync_threshold, sync_refresh_period, sync_retries, sync_persist_mode)", name)
	}
	return err
}

// startSync makes the director's sync Manager, with no daemon running:
// the control API (api.Config.Daemons) and keepalived's lvs_sync_daemon
// (kaSyncDaemon) start them. The caller closes it when the director stops.
func startSync(o syncOpts, eng *engine.Engine, ctl *control.Control, log *slog.Logger) (*syncd.Manager, error) {
	p, err := o.parse()
	if err != nil {
		return nil, err
	}
	cfg := syncd.Config{Engine: eng, Control: ctl, Log: log, Sysctls: &p.sysctls, Peers: p.peers, ListenAddr: p.listen}
	if o.keyFile != "" {
		if cfg.Keys, err = syncd.ReadKeyFile(o.keyFile); err != nil {
			return nil, fmt.Errorf("--sync-key-file: %w", err)
		}
	}
	return syncd.New(cfg)
}

// kaSyncDaemon applies keepalived's lvs_sync_daemon (global_defs) of cfg
// to m: without a VRRP instance named, the master and backup daemons run
// all the time; with one, the backup runs, and the VRRP wiring calls
// m.SetRole on the instance's transitions. A configuration without it
// stops the daemons an earlier one started. Call it at start and after
// each accepted reload.
func kaSyncDaemon(m *syncd.Manager, cfg *keepalived.Config) error {
	sd := cfg.Global.LVSSyncDaemon
	if sd == nil {
		return m.SetLVSSyncDaemon(nil, false)
	}
	c := ipvsadm.DaemonConfig{
		MCastInterface: sd.Interface,
		SyncID:         sd.SyncID,
		SyncMaxLen:     uint16(sd.MaxLen), // parsed as 1 to 65507
		MCastGroup:     sd.Group,
		MCastPort:      sd.Port,
		MCastTTL:       uint8(sd.TTL), // parsed as 1 to 255
	}
	return m.SetLVSSyncDaemon(&c, sd.Instance != "")
}
