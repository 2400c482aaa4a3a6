package ipvsadm

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"golvs/internal/service"
)

// Limits of ipvsadm.c and the kernel's headers.
const (
	// maxTimeout is MAX_TIMEOUT (86400*31, 31 days), the upper bound of
	// -p and of the --set values.
	maxTimeout = 86400 * 31
	// defaultPersistTimeout is IPVS_SVC_PERSISTENT_TIMEOUT (6*60 in
	// libipvs.h), the timeout of -p without a value. The man page says
	// 300; the code says 360.
	defaultPersistTimeout = 6 * 60
	// schedNameMax is IP_VS_SCHEDNAME_MAXLEN-1: -s keeps 15 bytes.
	schedNameMax = 16 - 1
	// peNameMax is IP_VS_PENAME_MAXLEN: --pe keeps 16 bytes (ipvsadm's
	// strncpy leaves no terminator; the kernel then rejects the name).
	peNameMax = 16
	// ifNameMax is IP_VS_IFNAME_MAXLEN-1: --mcast-interface keeps 15.
	ifNameMax = 16 - 1
	// schedFlagsMax is sizeof(sched_flags_arg)-1: -b keeps 127 bytes.
	schedFlagsMax = 128 - 1
	// syncMaxLenMax is 65535-20-8: a UDP payload in an IPv4 datagram.
	syncMaxLenMax = 65535 - 20 - 8
	// intMax is C's INT_MAX, the bound of -w, -x and -y (Debian's 1.31
	// accepts weights up to 2147483647, see the oracle's b-errors).
	intMax = math.MaxInt32
	// defaultMcastIfn is DEF_MCAST_IFN, --start-daemon's interface when
	// none is given.
	defaultMcastIfn = "eth0"
	// defaultSched is DEF_SCHED, the scheduler of -A/-E without -s (and
	// the one -b's checks assume).
	defaultSched = "wlc"
)

// tunTypeNames are ipvsadm's tunnames, indexed by service.TunType.
var tunTypeNames = [...]string{service.TunIPIP: "ipip", service.TunGUE: "gue", service.TunGRE: "gre"}

// NameResolver looks up host names as ipvsadm's host_to_addr does with
// gethostbyname: the first IPv4 address of the name.
type NameResolver interface {
	LookupHost4(name string) (netip.Addr, bool)
}

// ResolverFunc adapts a function to a NameResolver.
type ResolverFunc func(name string) (netip.Addr, bool)

// LookupHost4 calls f.
func (f ResolverFunc) LookupHost4(name string) (netip.Addr, bool) { return f(name) }

// resolveTimeout bounds one host lookup of SystemResolver. glibc's
// resolver would wait 5 s per server and try twice; a command line that
// names an unresolvable host should fail sooner than that.
const resolveTimeout = 3 * time.Second

// SystemResolver resolves with the host's resolver (/etc/hosts, DNS)
// through net.DefaultResolver, each lookup bounded by resolveTimeout.
// Like gethostbyname for AF_INET it never goes to DNS for strings that
// are numeric addresses (digits and dots, or anything with a colon).
var SystemResolver NameResolver = ResolverFunc(systemLookupHost4)

func systemLookupHost4(name string) (netip.Addr, bool) {
	if name == "" || strings.ContainsRune(name, ':') || strings.Trim(name, "0123456789.") == "" {
		return netip.Addr{}, false
	}
	ctx, cancel := context.WithTimeout(context.Background(), resolveTimeout)
	defer cancel()
	addrs, err := net.DefaultResolver.LookupNetIP(ctx, "ip4", name)
	if err != nil || len(addrs) == 0 {
		return netip.Addr{}, false
	}
	return addrs[0].Unmap(), true
}

// Parser parses ipvsadm command lines. The zero value resolves names with
// SystemResolver and SystemServiceNames and calls itself "ipvsadm".
type Parser struct {
	// Program is argv[0] as the "Try `%s -h'" message shows it.
	Program string
	// Resolver resolves host names of addresses and netmasks that are not
	// numeric; nil means SystemResolver.
	Resolver NameResolver
	// Services resolves service names of ports; nil means
	// SystemServiceNames().
	Services *ServiceNames
	// PosixlyCorrect makes the first non-option argument end option
	// processing, as popt does when POSIXLY_CORRECT or POSIX_ME_HARDER is
	// in the environment.
	PosixlyCorrect bool
}

// Parse parses argv (without the program name) as ipvsadm 1.31 does, with
// the zero Parser: host and service names are resolved by the system.
func Parse(argv []string) (Command, error) {
	var p Parser
	return p.Parse(argv)
}

func (p *Parser) program() string {
	if p.Program == "" {
		return "ipvsadm"
	}
	return p.Program
}

// Parse parses argv (without the program name) as ipvsadm 1.31's
// parse_options and the checks of process_options do, up to the point
// where ipvsadm calls the kernel. No arguments is a listing of all
// services. An error is a *UsageError with ipvsadm's exact message and
// exit status. -h and -v end parsing at once, as they end ipvsadm.
func (p *Parser) Parse(argv []string) (Command, error) {
	if len(argv) == 0 {
		return Command{Kind: CmdList}, nil
	}
	s := parseState{p: p}
	s.init()
	if err := s.parseOptions(argv); err != nil {
		return Command{}, err
	}
	if s.cmd == CmdHelp || s.cmd == CmdVersion {
		return Command{Kind: s.cmd}, nil
	}
	if err := s.check(); err != nil {
		return Command{}, err
	}
	return s.command(), nil
}

// parseState mirrors ipvsadm's struct ipvs_command_entry and the option
// bits while parse_options and process_options fill them.
type parseState struct {
	p       *Parser
	cmd     Kind
	options Option

	// svc is ipvs_service_t.
	svc struct {
		af       service.Family // 0 until a service or -f sets it
		proto    uint8
		addr     netip.Addr
		port     uint16
		fwmark   uint32
		sched    string
		flags    service.Flags
		timeout  uint32
		netmask  uint32 // IPv4: big-endian mask; IPv6: prefix length
		pe       string
		schedArg string // sched_flags_arg
	}
	// dest is ipvs_dest_t.
	dest struct {
		af   service.Family
		addr netip.Addr
		port uint16
		cfg  service.DestConfig
	}
	timeouts TimeoutConfig
	daemon   DaemonConfig
}

// init sets process_options' defaults: weight 1, direct routing, tunnel
// type ipip, netmask /32.
func (s *parseState) init() {
	s.dest.cfg.Weight = 1
	s.dest.cfg.Fwd = service.Route
	s.dest.cfg.TunType = service.TunIPIP
	s.svc.netmask = 0xffffffff
}

// setOption is set_option: each option may be given once.
func (s *parseState) setOption(o Option) error {
	if s.options&o != 0 {
		return usageErr(fmt.Sprintf("multiple '%s' options specified", o))
	}
	s.options |= o
	return nil
}

// Option tags beyond the short option letters (ipvsadm.c's TAG_*).
const (
	tagSet = 128 + iota
	tagStartDaemon
	tagStopDaemon
	tagMcastInterface
	tagTimeout
	tagDaemon
	tagStats
	tagRate
	tagThresholds
	tagPersistentConn
	tagSort
	tagNoSort
	tagPE
	tagSCTPService
	tagMcastGroup
	tagMcastPort
	tagMcastTTL
	tagSyncMaxLen
	tagTunInfo
	tagTunType
	tagTunPort
	tagTunNoCsum
	tagTunCsum
	tagTunRemCsum
	tagSyncID = 'I' // --syncid has no short name; ipvsadm tags it 'I'
)

type argKind uint8

const (
	argNone     argKind = iota // POPT_ARG_NONE
	argString                  // POPT_ARG_STRING
	argOptional                // POPT_ARG_STRING|POPT_ARGFLAG_OPTIONAL
)

// poptOption is one entry of ipvsadm's popt table.
type poptOption struct {
	long  string
	short byte
	arg   argKind
	val   int
}

// poptTable is parse_options' options_table, in its order (popt takes
// the first match; --list appears twice).
var poptTable = []poptOption{
	{"add-service", 'A', argNone, 'A'},
	{"edit-service", 'E', argNone, 'E'},
	{"delete-service", 'D', argNone, 'D'},
	{"clear", 'C', argNone, 'C'},
	{"list", 'L', argNone, 'L'},
	{"list", 'l', argNone, 'l'},
	{"zero", 'Z', argNone, 'Z'},
	{"add-server", 'a', argNone, 'a'},
	{"edit-server", 'e', argNone, 'e'},
	{"delete-server", 'd', argNone, 'd'},
	{"set", 0, argNone, tagSet},
	{"help", 'h', argNone, 'h'},
	{"version", 'v', argNone, 'v'},
	{"restore", 'R', argNone, 'R'},
	{"save", 'S', argNone, 'S'},
	{"start-daemon", 0, argString, tagStartDaemon},
	{"stop-daemon", 0, argString, tagStopDaemon},
	{"tcp-service", 't', argString, 't'},
	{"udp-service", 'u', argString, 'u'},
	{"sctp-service", 0, argString, tagSCTPService},
	{"fwmark-service", 'f', argString, 'f'},
	{"scheduler", 's', argString, 's'},
	{"persistent", 'p', argOptional, 'p'},
	{"netmask", 'M', argString, 'M'},
	{"real-server", 'r', argString, 'r'},
	{"masquerading", 'm', argNone, 'm'},
	{"ipip", 'i', argNone, 'i'},
	{"gatewaying", 'g', argNone, 'g'},
	{"weight", 'w', argString, 'w'},
	{"u-threshold", 'x', argString, 'x'},
	{"l-threshold", 'y', argString, 'y'},
	{"numeric", 'n', argNone, 'n'},
	{"connection", 'c', argNone, 'c'},
	{"mcast-interface", 0, argString, tagMcastInterface},
	{"syncid", 0, argString, tagSyncID},
	{"timeout", 0, argNone, tagTimeout},
	{"daemon", 0, argNone, tagDaemon},
	{"stats", 0, argNone, tagStats},
	{"rate", 0, argNone, tagRate},
	{"thresholds", 0, argNone, tagThresholds},
	{"persistent-conn", 0, argNone, tagPersistentConn},
	{"nosort", 0, argNone, tagNoSort},
	{"sort", 0, argNone, tagSort},
	{"exact", 'X', argNone, 'X'},
	{"ipv6", '6', argNone, '6'},
	{"ops", 'o', argNone, 'o'},
	{"pe", 0, argString, tagPE},
	{"sched-flags", 'b', argString, 'b'},
	{"mcast-group", 0, argString, tagMcastGroup},
	{"mcast-port", 0, argString, tagMcastPort},
	{"mcast-ttl", 0, argString, tagMcastTTL},
	{"sync-maxlen", 0, argString, tagSyncMaxLen},
	{"tun-info", 0, argNone, tagTunInfo},
	{"tun-type", 0, argString, tagTunType},
	{"tun-port", 0, argString, tagTunPort},
	{"tun-nocsum", 0, argNone, tagTunNoCsum},
	{"tun-csum", 0, argNone, tagTunCsum},
	{"tun-remcsum", 0, argNone, tagTunRemCsum},
}

// popt's error codes (popt.h) and their poptStrerror texts.
const (
	poptDone   = -1
	poptNoArg  = -10 // POPT_ERROR_NOARG
	poptBadOpt = -11 // POPT_ERROR_BADOPT
)

func poptStrerror(code int) string {
	if code == poptNoArg {
		return "missing argument"
	}
	return "unknown option"
}

// popt is the part of libpopt's poptGetNextOpt (popt.c, 1.16 to 1.19)
// that ipvsadm's table and context use; no aliases, execs or callbacks
// are configured, and popt's "!#:+" expansion of option values (which can
// even hang ipvsadm) is not reproduced:
// long options with "--name=value" or a separate value, no abbreviations;
// single-dash words are bundles of short options, whose value is the rest
// of the word ("-w5", "-w=5") or the next word; an optional value (-p) is
// the next word only if that does not start with '-'; "--" ends options;
// other words are leftovers, in order.
type popt struct {
	argv      []string
	next      int    // index of the next word
	nextChar  string // rest of a bundle of short options
	inBundle  bool   // nextChar is pending (it may be empty: "-n=")
	rest      bool   // after "--" (or the first leftover with posix)
	posix     bool
	leftovers []string
}

// getNextOpt returns the next option's tag and value (hasVal false for
// none, or an optional value not given), poptDone at the end, or a popt
// error code.
func (pc *popt) getNextOpt() (val int, arg string, hasVal bool, code int) {
	for {
		var opt *poptOption
		var longArg string
		hasLongArg := false
		if !pc.inBundle {
			if pc.next == len(pc.argv) {
				return 0, "", false, poptDone
			}
			w := pc.argv[pc.next]
			pc.next++
			if pc.rest || w == "" || w[0] != '-' || w == "-" {
				if pc.posix {
					pc.rest = true
				}
				pc.leftovers = append(pc.leftovers, w)
				continue
			}
			if w == "--" {
				pc.rest = true
				continue
			}
			if w[1] == '-' {
				name := w[2:]
				if i := strings.IndexByte(name, '='); i >= 0 {
					name, longArg, hasLongArg = name[:i], name[i+1:], true
				}
				if opt = findLong(name); opt == nil {
					return 0, "", false, poptBadOpt
				}
			} else {
				// Single-dash long options match only ONEDASH entries,
				// which ipvsadm has none of: a bundle of short options.
				pc.nextChar, pc.inBundle = w[1:], true
			}
		}
		if pc.inBundle {
			c := pc.nextChar
			pc.inBundle = false
			if c == "" {
				return 0, "", false, poptBadOpt // "-n=": short name NUL
			}
			if opt = findShort(c[0]); opt == nil {
				return 0, "", false, poptBadOpt
			}
			if c = c[1:]; c != "" {
				if c[0] == '=' {
					c = c[1:]
				}
				pc.nextChar, pc.inBundle = c, true
			}
		}
		if opt.arg == argNone {
			return opt.val, "", false, 0
		}
		switch {
		case hasLongArg:
			return opt.val, longArg, true, 0
		case pc.inBundle:
			pc.inBundle = false
			return opt.val, pc.nextChar, true, 0
		case pc.next == len(pc.argv):
			if opt.arg != argOptional {
				return 0, "", false, poptNoArg
			}
			return opt.val, "", false, 0
		case opt.arg == argOptional && strings.HasPrefix(pc.argv[pc.next], "-"):
			return opt.val, "", false, 0
		}
		pc.next++
		return opt.val, pc.argv[pc.next-1], true, 0
	}
}

// badOption is poptBadOption: the last word popt consumed.
func (pc *popt) badOption() string { return pc.argv[pc.next-1] }

// getArg is poptGetArg: the next leftover.
func (pc *popt) getArg() (string, bool) {
	if len(pc.leftovers) == 0 {
		return "", false
	}
	a := pc.leftovers[0]
	pc.leftovers = pc.leftovers[1:]
	return a, true
}

func findLong(name string) *poptOption {
	for i := range poptTable {
		if poptTable[i].long == name {
			return &poptTable[i]
		}
	}
	return nil
}

func findShort(c byte) *poptOption {
	for i := range poptTable {
		if c != 0 && poptTable[i].short == c {
			return &poptTable[i]
		}
	}
	return nil
}

// cString is what C sees of a Go string: up to the first NUL.
func cString(s string) string {
	if i := strings.IndexByte(s, 0); i >= 0 {
		return s[:i]
	}
	return s
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// parseOptions is ipvsadm's parse_options.
func (s *parseState) parseOptions(argv []string) error {
	words := make([]string, len(argv))
	for i, a := range argv {
		words[i] = cString(a)
	}
	pc := &popt{argv: words, posix: s.p.PosixlyCorrect}

	c, arg, _, code := pc.getNextOpt()
	if code < 0 {
		return tryHelp(s.p.program())
	}
	switch c {
	case 'A':
		s.cmd = CmdAddService
	case 'E':
		s.cmd = CmdEditService
	case 'D':
		s.cmd = CmdDeleteService
	case 'a':
		s.cmd = CmdAddServer
	case 'e':
		s.cmd = CmdEditServer
	case 'd':
		s.cmd = CmdDeleteServer
	case 'C':
		s.cmd = CmdFlush
	case 'L', 'l':
		s.cmd = CmdList
	case 'Z':
		s.cmd = CmdZero
	case tagSet:
		s.cmd = CmdSetTimeouts
	case 'R':
		s.cmd = CmdRestore
	case 'S':
		s.cmd = CmdSave
	case tagStartDaemon, tagStopDaemon:
		s.cmd = CmdStartDaemon
		if c == tagStopDaemon {
			s.cmd = CmdStopDaemon
		}
		if arg != "master" && arg != "backup" {
			if c == tagStopDaemon {
				return usageErr("illegal start_daemon specified") // sic
			}
			return usageErr("illegal start-daemon parameter specified")
		}
		s.daemon.State = arg
	case 'h':
		s.cmd = CmdHelp
		return nil
	case 'v':
		s.cmd = CmdVersion
		return nil
	default:
		return tryHelp(s.p.program())
	}

	for {
		c, arg, hasArg, code := pc.getNextOpt()
		if code == poptDone {
			break
		}
		if code < 0 {
			return &UsageError{
				Msg:      pc.badOption() + ": " + poptStrerror(code),
				Code:     ExitPopt,
				NonFatal: true,
			}
		}
		if err := s.option(pc, c, arg, hasArg); err != nil {
			return err
		}
	}

	if s.cmd == CmdSetTimeouts {
		var vals [3]string
		for i := range vals {
			a, ok := pc.getArg()
			if !ok {
				return usageErr("--set option requires 3 timeout values")
			}
			vals[i] = a
		}
		var t [3]uint32
		for i, v := range vals {
			n, err := parseTimeout(v, 0, maxTimeout)
			if err != nil {
				return err
			}
			t[i] = n
		}
		s.timeouts = TimeoutConfig{TCP: t[0], TCPFin: t[1], UDP: t[2]}
	}
	if a, ok := pc.getArg(); ok {
		return usageErr("unexpected argument " + a)
	}
	if s.svc.schedArg != "" {
		s.svc.flags &^= service.FlagSched1 | service.FlagSched2 | service.FlagSched3
		f, err := parseSchedFlags(s.svc.sched, s.svc.schedArg)
		if err != nil {
			return err
		}
		s.svc.flags |= f
	}
	return nil
}

// option handles one option after the command, as parse_options' loop.
func (s *parseState) option(pc *popt, c int, arg string, hasArg bool) error {
	switch c {
	case 't', 'u', tagSCTPService:
		if err := s.setOption(OptService); err != nil {
			return err
		}
		switch c {
		case 't':
			s.svc.proto = service.ProtoTCP
		case 'u':
			s.svc.proto = service.ProtoUDP
		default:
			s.svc.proto = service.ProtoSCTP
		}
		r, ok := s.parseService(arg, s.svc.proto)
		if !ok || !r.hasAddr {
			return usageErr("illegal virtual server address[:port] specified")
		}
		s.svc.af, s.svc.addr = r.af, r.addr
		if r.af == service.IPv6 {
			s.svc.netmask = 128
		}
		if r.hasPort {
			s.svc.port = r.port
		}
	case 'f':
		if err := s.setOption(OptService); err != nil {
			return err
		}
		// ipvsadm sets a sane protocol and family for fwmark services.
		s.svc.af, s.svc.proto = service.IPv4, service.ProtoTCP
		m, ok := parseFwmark(arg)
		if !ok {
			return usageErr("invalid fwmark value `" + arg + "' specified")
		}
		s.svc.fwmark = m
	case 's':
		if err := s.setOption(OptScheduler); err != nil {
			return err
		}
		s.svc.sched = truncate(arg, schedNameMax)
	case 'p':
		if err := s.setOption(OptPersistent); err != nil {
			return err
		}
		s.svc.flags |= service.FlagPersistent
		s.svc.timeout = defaultPersistTimeout
		if hasArg {
			t, err := parseTimeout(arg, 1, maxTimeout)
			if err != nil {
				return err
			}
			s.svc.timeout = t
		}
	case 'M':
		if err := s.setOption(OptNetmask); err != nil {
			return err
		}
		if s.svc.af != service.IPv6 {
			a, ok := inetAton(arg)
			if !ok {
				a, ok = s.p.resolver().LookupHost4(arg)
			}
			if !ok || !a.Is4() {
				return usageErr("illegal virtual server persistent mask specified")
			}
			b := a.As4()
			s.svc.netmask = uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
		} else {
			s.svc.netmask = uint32(atoi(arg))
			if s.svc.netmask < 1 || s.svc.netmask > 128 {
				return usageErr("illegal ipv6 netmask specified")
			}
		}
	case 'r':
		if err := s.setOption(OptServer); err != nil {
			return err
		}
		// ipvsadm parses into a copy of the service as it is now: its
		// protocol names the port, its port is the default.
		r, ok := s.parseService(arg, s.svc.proto)
		if !ok || !r.hasAddr {
			return usageErr("illegal real server address[:port] specified")
		}
		s.dest.af, s.dest.addr, s.dest.port = r.af, r.addr, s.svc.port
		if r.hasPort {
			s.dest.port = r.port
		}
	case 'i', 'g', 'm':
		if err := s.setOption(OptForward); err != nil {
			return err
		}
		switch c {
		case 'i':
			s.dest.cfg.Fwd = service.Tunnel
		case 'g':
			s.dest.cfg.Fwd = service.Route
		default:
			s.dest.cfg.Fwd = service.Masq
		}
	case 'w':
		if err := s.setOption(OptWeight); err != nil {
			return err
		}
		n, ok := stringToNumber(arg, 0, intMax)
		if !ok {
			return usageErr("illegal weight specified")
		}
		s.dest.cfg.Weight = int32(n)
	case 'x':
		if err := s.setOption(OptUThreshold); err != nil {
			return err
		}
		n, ok := stringToNumber(arg, 0, intMax)
		if !ok {
			return usageErr("illegal u_threshold specified")
		}
		s.dest.cfg.UThreshold = uint32(n)
	case 'y':
		if err := s.setOption(OptLThreshold); err != nil {
			return err
		}
		n, ok := stringToNumber(arg, 0, intMax)
		if !ok {
			return usageErr("illegal l_threshold specified")
		}
		s.dest.cfg.LThreshold = uint32(n)
	case 'c':
		return s.setOption(OptConnection)
	case 'n':
		return s.setOption(OptNumeric)
	case tagMcastInterface:
		if err := s.setOption(OptMcastInterface); err != nil {
			return err
		}
		s.daemon.MCastInterface = truncate(arg, ifNameMax)
	case tagSyncID:
		if err := s.setOption(OptSyncID); err != nil {
			return err
		}
		n, ok := stringToNumber(arg, 0, 255)
		if !ok {
			return usageErr("illegal syncid specified")
		}
		s.daemon.SyncID = uint8(n)
	case tagTimeout:
		return s.setOption(OptTimeout)
	case tagDaemon:
		return s.setOption(OptDaemon)
	case tagStats:
		return s.setOption(OptStats)
	case tagRate:
		return s.setOption(OptRate)
	case tagThresholds:
		return s.setOption(OptThresholds)
	case tagPersistentConn:
		return s.setOption(OptPersistentConn)
	case tagNoSort:
		return s.setOption(OptNoSort)
	case tagSort:
		// Sorting is the default; --sort is a no-op kept for compatibility.
	case 'X':
		return s.setOption(OptExact)
	case '6':
		if s.svc.fwmark == 0 {
			return usageErr("-6 used before -f\n") // ipvsadm's message ends in a newline of its own
		}
		s.svc.af, s.svc.netmask = service.IPv6, 128
	case 'o':
		if err := s.setOption(OptOnePacket); err != nil {
			return err
		}
		s.svc.flags |= service.FlagOnePacket
	case tagPE:
		if err := s.setOption(OptPE); err != nil {
			return err
		}
		s.svc.pe = truncate(arg, peNameMax)
	case 'b':
		if err := s.setOption(OptSchedFlags); err != nil {
			return err
		}
		s.svc.schedArg = truncate(arg, schedFlagsMax)
	case tagMcastGroup:
		if err := s.setOption(OptMcastGroup); err != nil {
			return err
		}
		if strings.ContainsRune(arg, ':') {
			a, ok := inetPton6(arg)
			if !ok || !a.IsMulticast() {
				return usageErr("invalid IPv6 mcast-group `" + arg + "'")
			}
			s.daemon.MCastGroup = a
		} else {
			a, ok := inetPton4(arg)
			if !ok || !a.IsMulticast() {
				return usageErr("invalid IPv4 mcast-group `" + arg + "'")
			}
			s.daemon.MCastGroup = a
		}
	case tagMcastPort:
		if err := s.setOption(OptMcastPort); err != nil {
			return err
		}
		n, ok := stringToNumber(arg, 1, 65535)
		if !ok {
			return usageErr("illegal mcast-port specified")
		}
		s.daemon.MCastPort = uint16(n)
	case tagMcastTTL:
		if err := s.setOption(OptMcastTTL); err != nil {
			return err
		}
		n, ok := stringToNumber(arg, 1, 255)
		if !ok {
			return usageErr("illegal mcast-ttl specified")
		}
		s.daemon.MCastTTL = uint8(n)
	case tagSyncMaxLen:
		if err := s.setOption(OptSyncMaxLen); err != nil {
			return err
		}
		n, ok := stringToNumber(arg, 1, syncMaxLenMax)
		if !ok {
			return usageErr("illegal sync-maxlen specified")
		}
		s.daemon.SyncMaxLen = uint16(n)
	case tagTunInfo:
		return s.setOption(OptTunInfo)
	case tagTunType:
		if err := s.setOption(OptTunType); err != nil {
			return err
		}
		t := -1
		for i, n := range tunTypeNames {
			if n == arg {
				t = i
			}
		}
		if t < 0 {
			return usageErr("illegal tunnel type specified")
		}
		s.dest.cfg.TunType = service.TunType(t)
	case tagTunPort:
		if err := s.setOption(OptTunPort); err != nil {
			return err
		}
		n, ok := stringToNumber(arg, 1, 65535)
		if !ok {
			return usageErr("illegal tunnel port specified")
		}
		s.dest.cfg.TunPort = uint16(n)
	case tagTunNoCsum:
		return s.setOption(OptTunNoCsum) // IP_VS_TUNNEL_ENCAP_FLAG_NOCSUM is 0
	case tagTunCsum:
		if err := s.setOption(OptTunCsum); err != nil {
			return err
		}
		s.dest.cfg.TunFlags |= service.TunCsum
	case tagTunRemCsum:
		if err := s.setOption(OptTunRemCsum); err != nil {
			return err
		}
		s.dest.cfg.TunFlags |= service.TunRemCsum
	default:
		// A second command, -h or -v after the command.
		return usageErr("invalid option `" + pc.badOption() + "'")
	}
	return nil
}

func (p *Parser) resolver() NameResolver {
	if p.Resolver == nil {
		return SystemResolver
	}
	return p.Resolver
}

func (p *Parser) services() *ServiceNames {
	if p.Services == nil {
		return SystemServiceNames()
	}
	return p.Services
}

// addrPort is the result of parse_service: SERVICE_ADDR and SERVICE_PORT
// are hasAddr and hasPort.
type addrPort struct {
	af               service.Family
	addr             netip.Addr
	port             uint16
	hasAddr, hasPort bool
}

// parseService is ipvsadm's parse_service for a service of protocol
// proto: host[:port], IPv6 in brackets, or a bare IPv6 address without
// port; a purely numeric string is no address; the host is a dotted
// address as inet_aton takes it or a name (first IPv4 address); the port a
// number 0..65535 or a service name of proto. ok is false for
// SERVICE_NONE.
func (s *parseState) parseService(buf string, proto uint8) (r addrPort, ok bool) {
	if strIsDigit(buf) {
		return r, false
	}
	var portStr string
	hasPortSep := false
	if buf[0] == '[' {
		end := strings.IndexByte(buf, ']')
		if end < 0 || end+1 >= len(buf) || buf[end+1] != ':' {
			return r, false
		}
		buf, portStr, hasPortSep = buf[1:end], buf[end+2:], true
	}
	if a, ok6 := inetPton6(buf); ok6 {
		r.af, r.addr = service.IPv6, a
	} else {
		// The port of a bracketed IPv4 address is lost: ipvsadm looks
		// for a colon again in what is left inside the brackets.
		hasPortSep = false
		if i := strings.LastIndexByte(buf, ':'); i >= 0 {
			buf, portStr, hasPortSep = buf[:i], buf[i+1:], true
		}
		a, ok4 := inetAton(buf)
		if !ok4 {
			a, ok4 = s.p.resolver().LookupHost4(buf)
		}
		if !ok4 || !a.Is4() {
			return r, false
		}
		r.af, r.addr = service.IPv4, a
	}
	r.hasAddr = true
	if hasPortSep {
		r.hasPort = true
		if n, ok := stringToNumber(portStr, 0, 65535); ok {
			r.port = uint16(n)
		} else if n, ok := s.p.services().Port(portStr, proto); ok {
			r.port = n
		} else {
			return r, false
		}
	}
	return r, true
}

// strIsDigit is ipvsadm's str_is_digit: true for "" and all-digit strings.
func strIsDigit(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func isCSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r'
}

// strtol is C's strtol(s, &end, 10) for a 64-bit long: leading white
// space, an optional sign, decimal digits. It returns the value (clamped
// on overflow, with erange set), and whether any digit was read and all
// of s was used.
func strtol(s string) (v int64, erange, whole bool) {
	i := 0
	for i < len(s) && isCSpace(s[i]) {
		i++
	}
	neg := false
	if i < len(s) && (s[i] == '+' || s[i] == '-') {
		neg = s[i] == '-'
		i++
	}
	start := i
	var u uint64
	for ; i < len(s) && s[i] >= '0' && s[i] <= '9'; i++ {
		d := uint64(s[i] - '0')
		if u > (math.MaxUint64-d)/10 {
			erange = true
			u = math.MaxUint64
		} else if !erange {
			u = u*10 + d
		}
	}
	if i == start {
		return 0, false, false // no conversion: end = s
	}
	switch {
	case !neg && (erange || u > math.MaxInt64):
		v, erange = math.MaxInt64, true
	case neg && (erange || u > 1<<63):
		v, erange = math.MinInt64, true
	case neg:
		v = -int64(u)
	default:
		v = int64(u)
	}
	return v, erange, i == len(s)
}

// stringToNumber is ipvsadm's string_to_number: a whole decimal number
// (strtol syntax) in [min, max].
func stringToNumber(s string, lo, hi int64) (int64, bool) {
	v, erange, whole := strtol(s)
	if !whole || erange || v < lo || v > hi {
		return 0, false
	}
	return v, true
}

// atoi is glibc's atoi: (int)strtol(s, NULL, 10), garbage after the
// number ignored, the long truncated to 32 bits.
func atoi(s string) int32 {
	v, _, _ := strtol(s)
	return int32(v)
}

// parseTimeout is ipvsadm's parse_timeout for a given value.
func parseTimeout(s string, lo, hi int64) (uint32, error) {
	n, ok := stringToNumber(s, lo, hi)
	if !ok {
		return 0, usageErr("invalid timeout value `" + s + "' specified")
	}
	return uint32(n), nil
}

// parseFwmark is ipvsadm's parse_fwmark: strtol into an unsigned long,
// then 1..UINT_MAX (a negative number wraps above UINT_MAX).
func parseFwmark(s string) (uint32, bool) {
	v, erange, whole := strtol(s)
	if !whole || erange || v <= 0 || v > math.MaxUint32 {
		return 0, false
	}
	return uint32(v), true
}

// parseSchedFlags is ipvsadm's parse_sched_flags: comma-separated names
// (empty fields skipped, as strtok does); the sh-/mh- names need that
// scheduler (wlc when -s is absent).
func parseSchedFlags(sched, arg string) (service.Flags, error) {
	if sched == "" {
		sched = defaultSched
	}
	var flags service.Flags
	names := strings.FieldsFunc(arg, func(r rune) bool { return r == ',' })
	if len(names) == 0 {
		// ipvsadm passes strtok's NULL to strcmp and crashes; refuse the
		// argument the way it would have been reported.
		return 0, usageErr("invalid scheduler flag `(null)'")
	}
	for _, f := range names {
		need := ""
		switch f {
		case "flag-1":
			flags |= service.FlagSched1
		case "flag-2":
			flags |= service.FlagSched2
		case "flag-3":
			flags |= service.FlagSched3
		case "sh-fallback":
			flags |= service.FlagSHFallback
			need = "sh"
		case "sh-port":
			flags |= service.FlagSHPort
			need = "sh"
		case "mh-fallback":
			flags |= service.FlagMHFallback
			need = "mh"
		case "mh-port":
			flags |= service.FlagMHPort
			need = "mh"
		default:
			return 0, usageErr("invalid scheduler flag `" + f + "'")
		}
		if need != "" && sched != need {
			return 0, usageErr("incompatible scheduler flag `" + f + "'")
		}
	}
	return flags, nil
}

// inetAton is glibc's inet_aton: one to four parts separated by dots,
// each a C integer (0x hex, 0 octal, decimal); the last part fills the
// remaining bytes; trailing white space and anything after it is ignored.
func inetAton(s string) (netip.Addr, bool) {
	// max[i] bounds the last part when i parts precede it.
	maxLast := [4]uint64{0xffffffff, 0xffffff, 0xffff, 0xff}
	var parts [4]byte
	n := 0
	i := 0
	var val uint64
	for {
		if i >= len(s) || s[i] < '0' || s[i] > '9' {
			return netip.Addr{}, false
		}
		var ok bool
		val, i, ok = strtoulC(s, i)
		if !ok {
			return netip.Addr{}, false
		}
		if i < len(s) && s[i] == '.' {
			if n > 2 || val > 0xff {
				return netip.Addr{}, false
			}
			parts[n] = byte(val)
			n++
			i++
			continue
		}
		break
	}
	if i < len(s) && !isCSpace(s[i]) {
		return netip.Addr{}, false
	}
	if val > maxLast[n] {
		return netip.Addr{}, false
	}
	w := uint32(parts[0])<<24 | uint32(parts[1])<<16 | uint32(parts[2])<<8 | uint32(val)
	return netip.AddrFrom4([4]byte{byte(w >> 24), byte(w >> 16), byte(w >> 8), byte(w)}), true
}

// strtoulC parses an unsigned C integer constant at s[i] (which is a
// digit): 0x/0X hex when a hex digit follows, 0 octal, else decimal. It
// returns the value, the index after it, and false above 0xffffffff.
func strtoulC(s string, i int) (uint64, int, bool) {
	base := uint64(10)
	if s[i] == '0' {
		base = 8
		if i+2 < len(s) && (s[i+1] == 'x' || s[i+1] == 'X') && hexDigit(s[i+2]) >= 0 {
			base = 16
			i += 2
		}
	}
	var v uint64
	for ; i < len(s); i++ {
		d := hexDigit(s[i])
		if d < 0 || uint64(d) >= base {
			break
		}
		v = v*base + uint64(d)
		if v > 0xffffffff {
			return 0, i, false
		}
	}
	return v, i, true
}

func hexDigit(c byte) int {
	switch {
	case c >= '0' && c <= '9':
		return int(c - '0')
	case c >= 'a' && c <= 'f':
		return int(c-'a') + 10
	case c >= 'A' && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
}

// inetPton6 is inet_pton(AF_INET6): no zone, no IPv4 form.
func inetPton6(s string) (netip.Addr, bool) {
	if !strings.ContainsRune(s, ':') || strings.ContainsRune(s, '%') {
		return netip.Addr{}, false
	}
	a, err := netip.ParseAddr(s)
	if err != nil || !a.Is6() {
		return netip.Addr{}, false
	}
	return a, true
}

// inetPton4 is inet_pton(AF_INET): exactly four decimal parts, no
// leading zeros.
func inetPton4(s string) (netip.Addr, bool) {
	if strings.ContainsRune(s, ':') {
		return netip.Addr{}, false
	}
	a, err := netip.ParseAddr(s)
	if err != nil || !a.Is4() {
		return netip.Addr{}, false
	}
	return a, true
}

// tunnelOpts are the columns of tunnel_types_v_options (tunopts).
var tunnelOpts = [...]Option{OptTunPort, OptTunNoCsum, OptTunCsum, OptTunRemCsum}

// tunnelLegality is ipvsadm's tunnel_types_v_options: '+' required, 'x'
// illegal, '1' at most one of the group, ' ' optional.
var tunnelLegality = [...][4]byte{
	service.TunIPIP: {'x', 'x', 'x', 'x'},
	service.TunGUE:  {'+', '1', '1', '1'},
	service.TunGRE:  {'x', '1', '1', 'x'},
}

// legality is ipvsadm's commands_v_options, one row per command (CmdNone
// excluded) and one column per option bit.
var legality = [...]string{
	//                 -n   -c   svc  -s   -p   -M   -r   fwd  -w   -x   -y   -mc  tot  dmn  -st  -rt  thr  -pc  srt  sid  -ex  ops  -pe  -b   grp  port ttl  size tinf type tprt nocs csum remc
	CmdAddService:    "xx+   xxxxxxxxxxxxxxx   xxxxxxxxxx",
	CmdEditService:   "xx+   xxxxxxxxxxxxxxx   xxxxxxxxxx",
	CmdDeleteService: "xx+xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
	CmdFlush:         "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
	CmdList:          " 11xxxxxxxxx11       xxxxxxx xxxxx",
	CmdAddServer:     "xx+xxx+    xxxxxxxxxxxxxxxxxx     ",
	CmdDeleteServer:  "xx+xxx+xxxxxxxxxxxxxxxxxxxxxxxxxxx",
	CmdEditServer:    "xx+xxx+    xxxxxxxxxxxxxxxxxx     ",
	CmdSetTimeouts:   "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
	CmdStartDaemon:   "xxxxxxxxxxx xxxxxxx xxxx    xxxxxx",
	CmdStopDaemon:    "xxxxxxxxxxxxxxxxxxx xxxxxxxxxxxxxx",
	CmdRestore:       "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
	CmdSave:          " xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
	CmdZero:          "xx xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
}

// genericOptCheck is ipvsadm's generic_opt_check.
func genericOptCheck(cmd Kind, options Option) error {
	row := legality[cmd]
	count, last := 0, 0
	for j := range numOptions {
		if options&(1<<j) == 0 {
			if row[j] == '+' {
				return usageErr(fmt.Sprintf("You need to supply the '%s' option for the '%s' command", optNames[j], cmd))
			}
			continue
		}
		switch row[j] {
		case 'x':
			return usageErr(fmt.Sprintf("Illegal '%s' option with the '%s' command", optNames[j], cmd))
		case '1':
			count++
			if count == 1 {
				last = j
				continue
			}
			return usageErr(fmt.Sprintf("The option '%s' conflicts with the '%s' option in the '%s' command", optNames[j], optNames[last], cmd))
		}
	}
	return nil
}

// tunnelOptCheck is ipvsadm's tunnel_opt_check.
func tunnelOptCheck(t service.TunType, options Option) error {
	row := tunnelLegality[t]
	name := tunTypeNames[t]
	count := 0
	var last Option
	for j, o := range tunnelOpts {
		if options&o == 0 {
			if row[j] == '+' {
				return usageErr(fmt.Sprintf("You need to supply the '%s' option for the '%s' tunnel type", o, name))
			}
			continue
		}
		switch row[j] {
		case 'x':
			return usageErr(fmt.Sprintf("Illegal '%s' option with the '%s' tunnel type", o, name))
		case '1':
			count++
			if count == 1 {
				last = o
				continue
			}
			return usageErr(fmt.Sprintf("The option '%s' conflicts with the '%s' option in the '%s' tunnel type", o, last, name))
		}
	}
	return nil
}

const tunnelOptions = OptTunType | OptTunPort | OptTunNoCsum | OptTunCsum | OptTunRemCsum

// check is process_options between parse_options and the kernel call.
func (s *parseState) check() error {
	if err := genericOptCheck(s.cmd, s.options); err != nil {
		return err
	}
	switch s.cmd {
	case CmdAddService, CmdEditService:
		if s.svc.fwmark == 0 && s.svc.port == 0 && s.svc.flags&service.FlagPersistent == 0 {
			return usageErr("Zero port specified for non-persistent service")
		}
		if s.svc.flags&service.FlagOnePacket != 0 && s.svc.fwmark == 0 && s.svc.proto != service.ProtoUDP {
			return usageErr("One-Packet Scheduling is only for UDP virtual services")
		}
		if s.svc.sched == "" {
			s.svc.sched = defaultSched
		}
	case CmdStartDaemon:
		if s.daemon.MCastInterface == "" {
			s.daemon.MCastInterface = defaultMcastIfn
		}
	case CmdAddServer, CmdEditServer:
		fwd := s.dest.cfg.Fwd
		// The destination port must be the service port for direct
		// routing and tunnels, except for fwmark services.
		if s.svc.fwmark == 0 && (fwd == service.Tunnel || fwd == service.Route) {
			s.dest.port = s.svc.port
		}
		if s.dest.af != s.svc.af && fwd != service.Tunnel {
			return usageErr("Different address family is allowed only for tunneling servers")
		}
		if s.options&tunnelOptions != 0 && fwd != service.Tunnel {
			return usageErr("Tunnel options conflict with forward method")
		}
		if err := tunnelOptCheck(s.dest.cfg.TunType, s.options); err != nil {
			return err
		}
	case CmdList:
		o := s.options
		if (o&(OptConnection|OptTimeout|OptDaemon) != 0 && o&(OptStats|OptRate|OptThresholds) != 0) ||
			(o&(OptTimeout|OptDaemon) != 0 && o&OptPersistentConn != 0) {
			return usageErr("options conflicts in the list command")
		}
	}
	return nil
}

// command builds the Command of a checked parse.
func (s *parseState) command() Command {
	c := Command{Kind: s.cmd, Options: s.options}
	if s.options&OptService != 0 {
		if s.svc.fwmark != 0 {
			c.Service = service.Key{Family: s.svc.af, FWMark: s.svc.fwmark}
		} else {
			c.Service = service.Key{Family: s.svc.af, Proto: s.svc.proto, Addr: s.svc.addr, Port: s.svc.port}
		}
	}
	switch s.cmd {
	case CmdAddService, CmdEditService:
		c.Config = service.Config{
			Sched:   s.svc.sched,
			Flags:   s.svc.flags,
			Timeout: s.svc.timeout,
			Netmask: s.svc.netmask,
			PE:      s.svc.pe,
		}
	case CmdAddServer, CmdEditServer:
		c.DestConfig = s.dest.cfg
		fallthrough
	case CmdDeleteServer:
		c.Dest, c.DestPort = s.dest.addr, s.dest.port
	case CmdList:
		o := s.options
		c.List = ListOptions{
			Numeric:        o&OptNumeric != 0,
			Connections:    o&OptConnection != 0,
			Timeout:        o&OptTimeout != 0,
			Daemon:         o&OptDaemon != 0,
			Stats:          o&OptStats != 0,
			Rate:           o&OptRate != 0,
			Thresholds:     o&OptThresholds != 0,
			PersistentConn: o&OptPersistentConn != 0,
			TunInfo:        o&OptTunInfo != 0,
			NoSort:         o&OptNoSort != 0,
			Exact:          o&OptExact != 0,
		}
	case CmdSave:
		c.List.Numeric = s.options&OptNumeric != 0
	case CmdSetTimeouts:
		c.Timeouts = s.timeouts
	case CmdStartDaemon, CmdStopDaemon:
		c.Daemon = s.daemon
	}
	return c
}

// ServiceNames is a services database in the format of /etc/services:
// the names of ports per protocol, looked up as glibc's getservbyname and
// getservbyport do (first matching line, names case-sensitive, aliases
// count as names). It is immutable and safe for concurrent use.
type ServiceNames struct {
	entries []serviceEntry
}

type serviceEntry struct {
	names []string // the official name, then the aliases
	port  uint16
	proto string // "tcp", "udp", "sctp", ...
}

// ParseServiceNames reads a services database: lines "name port/proto
// [aliases...]", '#' to the end of a line a comment; malformed lines are
// skipped, as glibc skips them.
func ParseServiceNames(r io.Reader) (*ServiceNames, error) {
	var s ServiceNames
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := sc.Text()
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		port, proto, ok := strings.Cut(f[1], "/")
		if !ok || proto == "" {
			continue
		}
		n, err := strconv.ParseUint(port, 10, 16)
		if err != nil {
			continue
		}
		s.entries = append(s.entries, serviceEntry{names: append([]string{f[0]}, f[2:]...), port: uint16(n), proto: proto})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("services database: %w", err)
	}
	return &s, nil
}

func protoKey(p uint8) string {
	switch p {
	case service.ProtoTCP:
		return "tcp"
	case service.ProtoUDP:
		return "udp"
	case service.ProtoSCTP:
		return "sctp"
	}
	return ""
}

// Port returns the port of the service name for the protocol (6, 17 or
// 132), as getservbyname(name, "tcp"|"udp"|"sctp"). Other protocols have
// no names.
func (s *ServiceNames) Port(name string, proto uint8) (uint16, bool) {
	p := protoKey(proto)
	if p == "" {
		return 0, false
	}
	for _, e := range s.entries {
		if e.proto != p {
			continue
		}
		for _, n := range e.names {
			if n == name {
				return e.port, true
			}
		}
	}
	return 0, false
}

// Name returns the official name of port for the protocol, as
// getservbyport; ipvsadm's listings without -n show it.
func (s *ServiceNames) Name(port uint16, proto uint8) (string, bool) {
	p := protoKey(proto)
	if p == "" {
		return "", false
	}
	for _, e := range s.entries {
		if e.proto == p && e.port == port {
			return e.names[0], true
		}
	}
	return "", false
}

var builtinServices = sync.OnceValue(func() *ServiceNames {
	s, err := ParseServiceNames(strings.NewReader(netbaseServices))
	if err != nil {
		panic("ipvsadm: built-in services table: " + err.Error())
	}
	return s
})

// BuiltinServiceNames returns the services database built into the
// package: the /etc/services of Debian's netbase 6.4 (bookworm, the
// oracle VM's), without comments.
func BuiltinServiceNames() *ServiceNames { return builtinServices() }

var systemServices = sync.OnceValue(func() *ServiceNames {
	f, err := os.Open("/etc/services")
	if err != nil {
		return BuiltinServiceNames()
	}
	defer f.Close()
	s, err := ParseServiceNames(f)
	if err != nil {
		return BuiltinServiceNames()
	}
	return s
})

// SystemServiceNames returns the host's services database as
// getservbyname reads it (/etc/services, read once), or
// BuiltinServiceNames when it cannot be read.
func SystemServiceNames() *ServiceNames { return systemServices() }

// netbaseServices is Debian netbase 6.4's /etc/services (IANA names, as
// of 2021-03-27 in that package), comments removed.
const netbaseServices = `tcpmux 1/tcp
echo 7/tcp
echo 7/udp
discard 9/tcp sink null
discard 9/udp sink null
systat 11/tcp users
daytime 13/tcp
daytime 13/udp
netstat 15/tcp
qotd 17/tcp quote
chargen 19/tcp ttytst source
chargen 19/udp ttytst source
ftp-data 20/tcp
ftp 21/tcp
fsp 21/udp fspd
ssh 22/tcp
telnet 23/tcp
smtp 25/tcp mail
time 37/tcp timserver
time 37/udp timserver
whois 43/tcp nicname
tacacs 49/tcp
tacacs 49/udp
domain 53/tcp
domain 53/udp
bootps 67/udp
bootpc 68/udp
tftp 69/udp
gopher 70/tcp
finger 79/tcp
http 80/tcp www
kerberos 88/tcp kerberos5 krb5 kerberos-sec
kerberos 88/udp kerberos5 krb5 kerberos-sec
iso-tsap 102/tcp tsap
acr-nema 104/tcp dicom
pop3 110/tcp pop-3
sunrpc 111/tcp portmapper
sunrpc 111/udp portmapper
auth 113/tcp authentication tap ident
nntp 119/tcp readnews untp
ntp 123/udp
epmap 135/tcp loc-srv
netbios-ns 137/udp
netbios-dgm 138/udp
netbios-ssn 139/tcp
imap2 143/tcp imap
snmp 161/tcp
snmp 161/udp
snmp-trap 162/tcp snmptrap
snmp-trap 162/udp snmptrap
cmip-man 163/tcp
cmip-man 163/udp
cmip-agent 164/tcp
cmip-agent 164/udp
mailq 174/tcp
xdmcp 177/udp
bgp 179/tcp
smux 199/tcp
qmtp 209/tcp
z3950 210/tcp wais
ipx 213/udp
ptp-event 319/udp
ptp-general 320/udp
pawserv 345/tcp
zserv 346/tcp
rpc2portmap 369/tcp
rpc2portmap 369/udp
codaauth2 370/tcp
codaauth2 370/udp
clearcase 371/udp Clearcase
ldap 389/tcp
ldap 389/udp
svrloc 427/tcp
svrloc 427/udp
https 443/tcp
https 443/udp
snpp 444/tcp
microsoft-ds 445/tcp
kpasswd 464/tcp
kpasswd 464/udp
submissions 465/tcp ssmtp smtps urd
saft 487/tcp
isakmp 500/udp
rtsp 554/tcp
rtsp 554/udp
nqs 607/tcp
asf-rmcp 623/udp
qmqp 628/tcp
ipp 631/tcp
ldp 646/tcp
ldp 646/udp
exec 512/tcp
biff 512/udp comsat
login 513/tcp
who 513/udp whod
shell 514/tcp cmd syslog
syslog 514/udp
printer 515/tcp spooler
talk 517/udp
ntalk 518/udp
route 520/udp router routed
gdomap 538/tcp
gdomap 538/udp
uucp 540/tcp uucpd
klogin 543/tcp
kshell 544/tcp krcmd
dhcpv6-client 546/udp
dhcpv6-server 547/udp
afpovertcp 548/tcp
nntps 563/tcp snntp
submission 587/tcp
ldaps 636/tcp
ldaps 636/udp
tinc 655/tcp
tinc 655/udp
silc 706/tcp
kerberos-adm 749/tcp
domain-s 853/tcp
domain-s 853/udp
rsync 873/tcp
ftps-data 989/tcp
ftps 990/tcp
telnets 992/tcp
imaps 993/tcp
pop3s 995/tcp
socks 1080/tcp
proofd 1093/tcp
rootd 1094/tcp
openvpn 1194/tcp
openvpn 1194/udp
rmiregistry 1099/tcp
lotusnote 1352/tcp lotusnotes
ms-sql-s 1433/tcp
ms-sql-m 1434/udp
ingreslock 1524/tcp
datametrics 1645/tcp old-radius
datametrics 1645/udp old-radius
sa-msg-port 1646/tcp old-radacct
sa-msg-port 1646/udp old-radacct
kermit 1649/tcp
groupwise 1677/tcp
l2f 1701/udp l2tp
radius 1812/tcp
radius 1812/udp
radius-acct 1813/tcp radacct
radius-acct 1813/udp radacct
cisco-sccp 2000/tcp
nfs 2049/tcp
nfs 2049/udp
gnunet 2086/tcp
gnunet 2086/udp
rtcm-sc104 2101/tcp
rtcm-sc104 2101/udp
gsigatekeeper 2119/tcp
gris 2135/tcp
cvspserver 2401/tcp
venus 2430/tcp
venus 2430/udp
venus-se 2431/tcp
venus-se 2431/udp
codasrv 2432/tcp
codasrv 2432/udp
codasrv-se 2433/tcp
codasrv-se 2433/udp
mon 2583/tcp
mon 2583/udp
dict 2628/tcp
f5-globalsite 2792/tcp
gsiftp 2811/tcp
gpsd 2947/tcp
gds-db 3050/tcp gds_db
icpv2 3130/udp icp
isns 3205/tcp
isns 3205/udp
iscsi-target 3260/tcp
mysql 3306/tcp
ms-wbt-server 3389/tcp
nut 3493/tcp
nut 3493/udp
distcc 3632/tcp
daap 3689/tcp
svn 3690/tcp subversion
suucp 4031/tcp
sysrqd 4094/tcp
sieve 4190/tcp
epmd 4369/tcp
remctl 4373/tcp
f5-iquery 4353/tcp
ntske 4460/tcp
ipsec-nat-t 4500/udp
iax 4569/udp
mtn 4691/tcp
radmin-port 4899/tcp
sip 5060/tcp
sip 5060/udp
sip-tls 5061/tcp
sip-tls 5061/udp
xmpp-client 5222/tcp jabber-client
xmpp-server 5269/tcp jabber-server
cfengine 5308/tcp
mdns 5353/udp
postgresql 5432/tcp postgres
freeciv 5556/tcp rptp
amqps 5671/tcp
amqp 5672/tcp
amqp 5672/sctp
x11 6000/tcp x11-0
x11-1 6001/tcp
x11-2 6002/tcp
x11-3 6003/tcp
x11-4 6004/tcp
x11-5 6005/tcp
x11-6 6006/tcp
x11-7 6007/tcp
gnutella-svc 6346/tcp
gnutella-svc 6346/udp
gnutella-rtr 6347/tcp
gnutella-rtr 6347/udp
redis 6379/tcp
sge-qmaster 6444/tcp sge_qmaster
sge-execd 6445/tcp sge_execd
mysql-proxy 6446/tcp
babel 6696/udp
ircs-u 6697/tcp
bbs 7000/tcp
afs3-fileserver 7000/udp
afs3-callback 7001/udp
afs3-prserver 7002/udp
afs3-vlserver 7003/udp
afs3-kaserver 7004/udp
afs3-volser 7005/udp
afs3-bos 7007/udp
afs3-update 7008/udp
afs3-rmtsys 7009/udp
font-service 7100/tcp xfs
http-alt 8080/tcp webcache
puppet 8140/tcp
bacula-dir 9101/tcp
bacula-fd 9102/tcp
bacula-sd 9103/tcp
xmms2 9667/tcp
nbd 10809/tcp
zabbix-agent 10050/tcp
zabbix-trapper 10051/tcp
amanda 10080/tcp
dicom 11112/tcp
hkp 11371/tcp
db-lsp 17500/tcp
dcap 22125/tcp
gsidcap 22128/tcp
wnn6 22273/tcp
rtmp 1/ddp
nbp 2/ddp
echo 4/ddp
zip 6/ddp
kerberos4 750/udp kerberos-iv kdc
kerberos4 750/tcp kerberos-iv kdc
kerberos-master 751/udp kerberos_master
kerberos-master 751/tcp
passwd-server 752/udp passwd_server
krb-prop 754/tcp krb_prop krb5_prop hprop
zephyr-srv 2102/udp
zephyr-clt 2103/udp
zephyr-hm 2104/udp
iprop 2121/tcp
supfilesrv 871/tcp
supfiledbg 1127/tcp
poppassd 106/tcp
moira-db 775/tcp moira_db
moira-update 777/tcp moira_update
moira-ureg 779/udp moira_ureg
spamd 783/tcp
skkserv 1178/tcp
predict 1210/udp
rmtcfg 1236/tcp
xtel 1313/tcp
xtelw 1314/tcp
zebrasrv 2600/tcp
zebra 2601/tcp
ripd 2602/tcp
ripngd 2603/tcp
ospfd 2604/tcp
bgpd 2605/tcp
ospf6d 2606/tcp
ospfapi 2607/tcp
isisd 2608/tcp
fax 4557/tcp
hylafax 4559/tcp
munin 4949/tcp lrrd
rplay 5555/udp
nrpe 5666/tcp
nsca 5667/tcp
canna 5680/tcp
syslog-tls 6514/tcp
sane-port 6566/tcp sane saned
ircd 6667/tcp
zope-ftp 8021/tcp
tproxy 8081/tcp
omniorb 8088/tcp
clc-build-daemon 8990/tcp
xinetd 9098/tcp
git 9418/tcp
zope 9673/tcp
webmin 10000/tcp
kamanda 10081/tcp
amandaidx 10082/tcp
amidxtape 10083/tcp
sgi-cmsd 17001/udp
sgi-crsd 17002/udp
sgi-gcd 17003/udp
sgi-cad 17004/tcp
binkp 24554/tcp
asp 27374/tcp
asp 27374/udp
csync2 30865/tcp
dircproxy 57000/tcp
tfido 60177/tcp
fido 60179/tcp
`
