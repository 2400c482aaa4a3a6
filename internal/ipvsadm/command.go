package ipvsadm

import (
	"net/netip"
	"strconv"
	"strings"

	"golvs/internal/service"
)

// Kind is the command of an ipvsadm invocation. The first fourteen are
// ipvsadm.c's CMD_* in its order (cmdnames); Help and Version are the
// -h and -v that ipvsadm handles on the spot.
type Kind uint8

// Commands.
const (
	CmdNone          Kind = iota // no command: never the Kind of a parsed Command
	CmdAddService                // -A, --add-service
	CmdEditService               // -E, --edit-service
	CmdDeleteService             // -D, --delete-service
	CmdFlush                     // -C, --clear
	CmdList                      // -L, -l, --list (and no arguments at all)
	CmdAddServer                 // -a, --add-server
	CmdDeleteServer              // -d, --delete-server
	CmdEditServer                // -e, --edit-server
	CmdSetTimeouts               // --set tcp tcpfin udp
	CmdStartDaemon               // --start-daemon master|backup
	CmdStopDaemon                // --stop-daemon master|backup
	CmdRestore                   // -R, --restore
	CmdSave                      // -S, --save
	CmdZero                      // -Z, --zero
	CmdHelp                      // -h, --help
	CmdVersion                   // -v, --version
)

// cmdNames are ipvsadm.c's cmdnames, the names its messages use.
var cmdNames = [...]string{
	CmdNone:          "none",
	CmdAddService:    "add-service",
	CmdEditService:   "edit-service",
	CmdDeleteService: "delete-service",
	CmdFlush:         "flush",
	CmdList:          "list",
	CmdAddServer:     "add-server",
	CmdDeleteServer:  "delete-server",
	CmdEditServer:    "edit-server",
	CmdSetTimeouts:   "set",
	CmdStartDaemon:   "start-daemon",
	CmdStopDaemon:    "stop-daemon",
	CmdRestore:       "restore",
	CmdSave:          "save",
	CmdZero:          "zero",
	CmdHelp:          "help",
	CmdVersion:       "version",
}

// String returns the command's name as ipvsadm's messages spell it
// ("add-service", "list", "set", ...).
func (k Kind) String() string {
	if int(k) < len(cmdNames) {
		return cmdNames[k]
	}
	return "Kind(" + strconv.Itoa(int(k)) + ")"
}

// Option is a set of ipvsadm's options as its command/option legality
// table knows them: bit i is ipvsadm.c's OPT_* with OPTC_* = i, so a
// Command says which options were given, telling a given value from a
// default. -6, --sort, -h and -v are no such options.
type Option uint64

// Options, in ipvsadm.c's order (optnames).
const (
	OptNumeric        Option = 1 << iota // -n
	OptConnection                        // -c
	OptService                           // -t, -u, --sctp-service, -f
	OptScheduler                         // -s
	OptPersistent                        // -p
	OptNetmask                           // -M
	OptServer                            // -r
	OptForward                           // -g, -i, -m
	OptWeight                            // -w
	OptUThreshold                        // -x
	OptLThreshold                        // -y
	OptMcastInterface                    // --mcast-interface
	OptTimeout                           // --timeout
	OptDaemon                            // --daemon
	OptStats                             // --stats
	OptRate                              // --rate
	OptThresholds                        // --thresholds
	OptPersistentConn                    // --persistent-conn
	OptNoSort                            // --nosort
	OptSyncID                            // --syncid
	OptExact                             // -X, --exact
	OptOnePacket                         // -o, --ops
	OptPE                                // --pe
	OptSchedFlags                        // -b, --sched-flags
	OptMcastGroup                        // --mcast-group
	OptMcastPort                         // --mcast-port
	OptMcastTTL                          // --mcast-ttl
	OptSyncMaxLen                        // --sync-maxlen
	OptTunInfo                           // --tun-info
	OptTunType                           // --tun-type
	OptTunPort                           // --tun-port
	OptTunNoCsum                         // --tun-nocsum
	OptTunCsum                           // --tun-csum
	OptTunRemCsum                        // --tun-remcsum

	numOptions = iota // NUMBER_OF_OPT
)

// optNames are ipvsadm.c's optnames, the names its messages use.
var optNames = [numOptions]string{
	"numeric", "connection", "service-address", "scheduler", "persistent",
	"netmask", "real-server", "forwarding-method", "weight", "u-threshold",
	"l-threshold", "mcast-interface", "timeout", "daemon", "stats", "rate",
	"thresholds", "persistent-conn", "nosort", "syncid", "exact", "ops", "pe",
	"sched-flags", "mcast-group", "mcast-port", "mcast-ttl", "sync-maxlen",
	"tun-info", "tun-type", "tun-port", "tun-nocsum", "tun-csum", "tun-remcsum",
}

// String returns the names of the options in o, comma-separated, as
// ipvsadm's messages spell them.
func (o Option) String() string {
	var names []string
	for i := range numOptions {
		if o&(1<<i) != 0 {
			names = append(names, optNames[i])
		}
	}
	return strings.Join(names, ",")
}

// TimeoutConfig is the argument of --set: the TCP ESTABLISHED, TCP
// FIN_WAIT and UDP timeouts in seconds; 0 leaves a timeout unchanged.
type TimeoutConfig struct {
	TCP, TCPFin, UDP uint32
}

// DaemonConfig is what --start-daemon and --stop-daemon give the
// connection-sync daemon (libipvs ipvs_daemon_t). Zero numbers and an
// invalid MCastGroup leave the kernel's defaults (libipvs sends them only
// when non-zero).
type DaemonConfig struct {
	State          string     // "master" or "backup"
	MCastInterface string     // --mcast-interface; ipvsadm's default for --start-daemon is "eth0"
	SyncID         uint8      // --syncid
	SyncMaxLen     uint16     // --sync-maxlen, 1..65507
	MCastGroup     netip.Addr // --mcast-group, a multicast address
	MCastPort      uint16     // --mcast-port
	MCastTTL       uint8      // --mcast-ttl
}

// Command is one parsed ipvsadm invocation: what ipvsadm's
// process_options would send to the kernel, with the defaults it applies.
// Which fields mean something depends on Kind; the others are zero.
// Options tells which options were given. Command is comparable.
type Command struct {
	Kind    Kind
	Options Option

	// Service is the virtual service (with OptService; for -A/-E/-D/-a/
	// -e/-d always, for -L and -Z when given). For fwmark services only
	// Family and FWMark are set.
	Service service.Key
	// Config is the service's configuration for -A and -E, a full
	// re-specification with ipvsadm's defaults: scheduler "wlc",
	// persistence off (timeout 360 for -p without a value), netmask
	// 255.255.255.255 (0xffffffff) or /128.
	Config service.Config

	// Dest and DestPort are the real server of -a, -e and -d. The port is
	// the service's when -r gives none, and always the service's for
	// direct routing and tunnels of non-fwmark services.
	Dest     netip.Addr
	DestPort uint16
	// DestConfig is the real server's configuration for -a and -e, a full
	// re-specification with ipvsadm's defaults: direct routing (Route),
	// weight 1, no thresholds, tunnel type ipip.
	DestConfig service.DestConfig

	// List holds the listing options of -L (and Numeric for -S).
	List ListOptions

	Timeouts TimeoutConfig // --set
	Daemon   DaemonConfig  // --start-daemon, --stop-daemon
}

// Argv renders c as an ipvsadm command line (without the program name)
// that parses back to c: the command, then the given options in
// ipvsadm's order, with addresses and ports numeric.
func (c Command) Argv() []string {
	var a []string
	switch c.Kind {
	case CmdHelp:
		return []string{"-h"}
	case CmdVersion:
		return []string{"-v"}
	case CmdStartDaemon:
		a = append(a, "--start-daemon", c.Daemon.State)
	case CmdStopDaemon:
		a = append(a, "--stop-daemon", c.Daemon.State)
	case CmdSetTimeouts:
		a = append(a, "--set",
			strconv.FormatUint(uint64(c.Timeouts.TCP), 10),
			strconv.FormatUint(uint64(c.Timeouts.TCPFin), 10),
			strconv.FormatUint(uint64(c.Timeouts.UDP), 10))
	default:
		a = append(a, cmdFlags[c.Kind])
	}
	o := c.Options
	if o&OptNumeric != 0 {
		a = append(a, "-n")
	}
	if o&OptConnection != 0 {
		a = append(a, "-c")
	}
	if o&OptService != 0 {
		a = append(a, serviceArgs(c.Service)...)
	}
	if o&OptScheduler != 0 {
		a = append(a, "-s", c.Config.Sched)
	}
	if o&OptPersistent != 0 {
		a = append(a, "-p", strconv.FormatUint(uint64(c.Config.Timeout), 10))
	}
	if o&OptNetmask != 0 {
		a = append(a, "-M", netmaskString(c.Service.Family, c.Config.Netmask))
	}
	if o&OptServer != 0 {
		a = append(a, "-r", netip.AddrPortFrom(c.Dest, c.DestPort).String())
	}
	if o&OptForward != 0 {
		a = append(a, fwdFlag(c.DestConfig.Fwd))
	}
	if o&OptWeight != 0 {
		a = append(a, "-w", strconv.FormatInt(int64(c.DestConfig.Weight), 10))
	}
	if o&OptUThreshold != 0 {
		a = append(a, "-x", strconv.FormatUint(uint64(c.DestConfig.UThreshold), 10))
	}
	if o&OptLThreshold != 0 {
		a = append(a, "-y", strconv.FormatUint(uint64(c.DestConfig.LThreshold), 10))
	}
	if o&OptMcastInterface != 0 {
		a = append(a, "--mcast-interface", c.Daemon.MCastInterface)
	}
	for _, f := range []struct {
		opt  Option
		flag string
	}{
		{OptTimeout, "--timeout"},
		{OptDaemon, "--daemon"},
		{OptStats, "--stats"},
		{OptRate, "--rate"},
		{OptThresholds, "--thresholds"},
		{OptPersistentConn, "--persistent-conn"},
		{OptNoSort, "--nosort"},
	} {
		if o&f.opt != 0 {
			a = append(a, f.flag)
		}
	}
	if o&OptSyncID != 0 {
		a = append(a, "--syncid", strconv.FormatUint(uint64(c.Daemon.SyncID), 10))
	}
	if o&OptExact != 0 {
		a = append(a, "--exact")
	}
	if o&OptOnePacket != 0 {
		a = append(a, "-o")
	}
	if o&OptPE != 0 {
		a = append(a, "--pe", c.Config.PE)
	}
	if o&OptSchedFlags != 0 {
		a = append(a, "-b", schedFlagsArg(c.Config.Flags))
	}
	if o&OptMcastGroup != 0 {
		a = append(a, "--mcast-group", c.Daemon.MCastGroup.String())
	}
	if o&OptMcastPort != 0 {
		a = append(a, "--mcast-port", strconv.FormatUint(uint64(c.Daemon.MCastPort), 10))
	}
	if o&OptMcastTTL != 0 {
		a = append(a, "--mcast-ttl", strconv.FormatUint(uint64(c.Daemon.MCastTTL), 10))
	}
	if o&OptSyncMaxLen != 0 {
		a = append(a, "--sync-maxlen", strconv.FormatUint(uint64(c.Daemon.SyncMaxLen), 10))
	}
	if o&OptTunInfo != 0 {
		a = append(a, "--tun-info")
	}
	if o&OptTunType != 0 {
		a = append(a, "--tun-type", tunTypeNames[c.DestConfig.TunType])
	}
	if o&OptTunPort != 0 {
		a = append(a, "--tun-port", strconv.FormatUint(uint64(c.DestConfig.TunPort), 10))
	}
	if o&OptTunNoCsum != 0 {
		a = append(a, "--tun-nocsum")
	}
	if o&OptTunCsum != 0 {
		a = append(a, "--tun-csum")
	}
	if o&OptTunRemCsum != 0 {
		a = append(a, "--tun-remcsum")
	}
	return a
}

// cmdFlags are the short options of the commands that have one.
var cmdFlags = [...]string{
	CmdAddService:    "-A",
	CmdEditService:   "-E",
	CmdDeleteService: "-D",
	CmdFlush:         "-C",
	CmdList:          "-L",
	CmdAddServer:     "-a",
	CmdDeleteServer:  "-d",
	CmdEditServer:    "-e",
	CmdSetTimeouts:   "--set",
	CmdStartDaemon:   "--start-daemon",
	CmdStopDaemon:    "--stop-daemon",
	CmdRestore:       "-R",
	CmdSave:          "-S",
	CmdZero:          "-Z",
	CmdHelp:          "-h",
	CmdVersion:       "-v",
}

// serviceArgs renders a service specifier: -t/-u/--sctp-service with
// host:port (IPv6 bracketed), or -f with the mark (and -6).
func serviceArgs(k service.Key) []string {
	if k.IsFWMark() {
		a := []string{"-f", strconv.FormatUint(uint64(k.FWMark), 10)}
		if k.Family == service.IPv6 {
			a = append(a, "-6")
		}
		return a
	}
	opt := "--sctp-service"
	switch k.Proto {
	case service.ProtoTCP:
		opt = "-t"
	case service.ProtoUDP:
		opt = "-u"
	}
	return []string{opt, netip.AddrPortFrom(k.Addr, k.Port).String()}
}

// netmaskString renders a persistence netmask as -M takes it: a dotted
// IPv4 mask (Netmask is big-endian) or an IPv6 prefix length.
func netmaskString(f service.Family, m uint32) string {
	if f == service.IPv6 {
		return strconv.FormatUint(uint64(m), 10)
	}
	return netip.AddrFrom4([4]byte{byte(m >> 24), byte(m >> 16), byte(m >> 8), byte(m)}).String()
}

func fwdFlag(m service.FwdMethod) string {
	switch m {
	case service.Masq:
		return "-m"
	case service.Tunnel:
		return "-i"
	}
	return "-g"
}

// schedFlagsArg renders scheduler flags as -b takes them. The flag-N
// names are accepted whatever the scheduler.
func schedFlagsArg(f service.Flags) string {
	var names []string
	for i, n := range []string{"flag-1", "flag-2", "flag-3"} {
		if f&(service.FlagSched1<<i) != 0 {
			names = append(names, n)
		}
	}
	return strings.Join(names, ",")
}

// VersionText is what ipvsadm -v prints (with IPVS_OPTION_PROCESSING
// "popt" and the IPVS version of the headers it was compiled with).
const VersionText = "ipvsadm v1.31 2019/12/24 (compiled with popt and IPVS v1.2.1)\n"

// HelpText is what ipvsadm -h prints on stdout (usage_exit), program being
// argv[0]. The scheduler and persistence-engine lists are those of the
// Debian build (its SCHEDULERS and PE_LIST).
func HelpText(program string) string {
	var b strings.Builder
	b.WriteString(VersionText)
	b.WriteString("Usage:\n")
	for _, u := range []string{
		"-A|E virtual-service [-s scheduler] [-p [timeout]] [-M netmask] [--pe persistence_engine] [-b sched-flags]",
		"-D virtual-service",
		"-C",
		"-R",
		"-S [-n]",
		"-a|e virtual-service -r server-address [options]",
		"-d virtual-service -r server-address",
		"-L|l [virtual-service] [options]",
		"-Z [virtual-service]",
		"--set tcp tcpfin udp",
		"--start-daemon {master|backup} [daemon-options]",
		"--stop-daemon {master|backup}",
		"-h",
	} {
		b.WriteString("  " + program + " " + u + "\n")
	}
	b.WriteString(helpBody)
	return b.String()
}

const helpBody = `
Commands:
Either long or short options are allowed.
  --add-service     -A        add virtual service with options
  --edit-service    -E        edit virtual service with options
  --delete-service  -D        delete virtual service
  --clear           -C        clear the whole table
  --restore         -R        restore rules from stdin
  --save            -S        save rules to stdout
  --add-server      -a        add real server with options
  --edit-server     -e        edit real server with options
  --delete-server   -d        delete real server
  --list            -L|-l     list the table
  --zero            -Z        zero counters in a service or all services
  --set tcp tcpfin udp        set connection timeout values
  --start-daemon              start connection sync daemon
  --stop-daemon               stop connection sync daemon
  --help            -h        display this help message

virtual-service:
  --tcp-service|-t  service-address   service-address is host[:port]
  --udp-service|-u  service-address   service-address is host[:port]
  --sctp-service    service-address   service-address is host[:port]
  --fwmark-service|-f fwmark          fwmark is an integer greater than zero

Options:
  --ipv6         -6                   fwmark entry uses IPv6
  --scheduler    -s scheduler         one of rr|wrr|lc|wlc|lblc|lblcr|dh|sh|sed|nq|fo|ovf|mh,
                                      the default scheduler is wlc.
  --pe            engine              alternate persistence engine may be sip,
                                      not set by default.
  --persistent   -p [timeout]         persistent service
  --netmask      -M netmask           persistent granularity mask
  --real-server  -r server-address    server-address is host (and port)
  --gatewaying   -g                   gatewaying (direct routing) (default)
  --ipip         -i                   ipip encapsulation (tunneling)
  --masquerading -m                   masquerading (NAT)
  --tun-type      type                one of ipip|gue|gre,
                                      the default tunnel type is ipip.
  --tun-port      port                tunnel destination port
  --tun-nocsum                        tunnel encapsulation without checksum
  --tun-csum                          tunnel encapsulation with checksum
  --tun-remcsum                       tunnel encapsulation with remote checksum
  --weight       -w weight            capacity of real server
  --u-threshold  -x uthreshold        upper threshold of connections
  --l-threshold  -y lthreshold        lower threshold of connections
  --connection   -c                   output of current IPVS connections
  --timeout                           output of timeout (tcp tcpfin udp)
  --daemon                            output of daemon information
  --stats                             output of statistics information
  --rate                              output of rate information
  --exact                             expand numbers (display exact values)
  --thresholds                        output of thresholds information
  --persistent-conn                   output of persistent connection info
  --tun-info                          output of tunnel information
  --nosort                            disable sorting output of service/server entries
  --sort                              does nothing, for backwards compatibility
  --ops          -o                   one-packet scheduling
  --numeric      -n                   numeric output of addresses and ports
  --sched-flags  -b flags             scheduler flags (comma-separated)
Daemon Options:
  --syncid sid                        syncid for connection sync (default=255)
  --sync-maxlen length                Max sync message length (default=1472)
  --mcast-interface interface         multicast interface for connection sync
  --mcast-group address               IPv4/IPv6 group (default=224.0.0.81)
  --mcast-port port                   UDP port (default=8848)
  --mcast-ttl ttl                     Multicast TTL (default=1)
`
