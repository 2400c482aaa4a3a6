package ipvsadm

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"golvs/internal/estimator"
	"golvs/internal/service"
	"golvs/internal/stats"
)

// This file holds a small model of the kernel's table for the golden
// tests: it applies the configuration commands of an oracle transcript
// (-A -E -D -C -a -e -d -Z --set -R, in their spellings there) to a State,
// as the kernel applied them, so that each listing of the transcript can
// be compared with List or Save of the model's State. It is a test
// fixture, not the argv grammar (which lives elsewhere in this package):
// it understands the options the transcripts use and fails on anything
// else.

// modelCmd is one parsed command line.
type modelCmd struct {
	cmd string // "A" "E" "D" "C" "a" "e" "d" "Z" "set" "R" "L" "S"

	key    service.Key
	hasKey bool
	port   bool // the service address had a port

	cfg         service.Config
	sched       string
	schedFlags  string
	netmask     string
	destAddr    netip.Addr
	destPort    uint16
	destHasPort bool
	dest        service.DestConfig
	set         [3]uint32
	list        ListOptions
}

// parseModelAddr parses host[:port] as ipvsadm's parse_service does for
// the literal addresses of the transcripts.
func parseModelAddr(s string) (netip.Addr, uint16, bool, error) {
	var host, port string
	hasPort := false
	if strings.HasPrefix(s, "[") {
		h, rest, ok := strings.Cut(s[1:], "]")
		if !ok || !strings.HasPrefix(rest, ":") {
			return netip.Addr{}, 0, false, fmt.Errorf("bad address %q", s)
		}
		host, port, hasPort = h, rest[1:], true
	} else if a, err := netip.ParseAddr(s); err == nil && a.Is6() {
		return a, 0, false, nil
	} else {
		host, port, hasPort = strings.Cut(s, ":")
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}, 0, false, err
	}
	var p uint64
	if hasPort {
		if p, err = strconv.ParseUint(port, 10, 16); err != nil {
			return netip.Addr{}, 0, false, err
		}
	}
	return a, uint16(p), hasPort, nil
}

// splitModelArgs splits a command line into words and expands combined
// short options ("-Ln" is "-L -n").
func splitModelArgs(line string) []string {
	var out []string
	for _, w := range strings.Fields(line) {
		if len(w) > 2 && w[0] == '-' && w[1] != '-' && strings.Trim(w[1:], "LlnSc") == "" {
			for _, c := range w[1:] {
				out = append(out, "-"+string(c))
			}
			continue
		}
		out = append(out, w)
	}
	return out
}

func parseModelCmd(line string) (*modelCmd, error) {
	args := splitModelArgs(line)
	if len(args) > 0 && args[0] == "ipvsadm" {
		args = args[1:]
	}
	c := &modelCmd{dest: service.DestConfig{Fwd: service.Route, Weight: 1}}
	next := func(i *int) (string, error) {
		if *i+1 >= len(args) {
			return "", fmt.Errorf("%s needs a value", args[*i])
		}
		*i++
		return args[*i], nil
	}
	for i := 0; i < len(args); i++ {
		a := args[i]
		var v string
		var err error
		switch a {
		case "-A", "--add-service":
			c.cmd = "A"
		case "-E", "--edit-service":
			c.cmd = "E"
		case "-D", "--delete-service":
			c.cmd = "D"
		case "-C", "--clear":
			c.cmd = "C"
		case "-a", "--add-server":
			c.cmd = "a"
		case "-e", "--edit-server":
			c.cmd = "e"
		case "-d", "--delete-server":
			c.cmd = "d"
		case "-Z", "--zero":
			c.cmd = "Z"
		case "-R", "--restore":
			c.cmd = "R"
		case "-L", "-l", "--list":
			c.cmd = "L"
		case "-S", "--save":
			c.cmd = "S"
		case "--set":
			c.cmd = "set"
			for j := range c.set {
				if v, err = next(&i); err != nil {
					return nil, err
				}
				n, err := strconv.ParseUint(v, 10, 32)
				if err != nil {
					return nil, err
				}
				c.set[j] = uint32(n)
			}
		case "-t", "--tcp-service", "-u", "--udp-service", "--sctp-service":
			if v, err = next(&i); err != nil {
				return nil, err
			}
			addr, port, hasPort, err := parseModelAddr(v)
			if err != nil {
				return nil, err
			}
			proto := map[string]uint8{"-t": 6, "--tcp-service": 6, "-u": 17, "--udp-service": 17, "--sctp-service": 132}[a]
			c.key = service.Key{Family: service.FamilyOf(addr), Proto: proto, Addr: addr, Port: port}
			c.hasKey, c.port = true, hasPort
		case "-f", "--fwmark-service":
			if v, err = next(&i); err != nil {
				return nil, err
			}
			m, err := strconv.ParseUint(v, 10, 32)
			if err != nil {
				return nil, err
			}
			c.key = service.Key{Family: service.IPv4, FWMark: uint32(m)}
			c.hasKey = true
		case "-6", "--ipv6":
			c.key.Family = service.IPv6
		case "-s", "--scheduler":
			if c.sched, err = next(&i); err != nil {
				return nil, err
			}
		case "-p", "--persistent":
			c.cfg.Flags |= service.FlagPersistent
			c.cfg.Timeout = 360 // IPVS_SVC_PERSISTENT_TIMEOUT
			if i+1 < len(args) && !strings.HasPrefix(args[i+1], "-") {
				i++
				n, err := strconv.ParseUint(args[i], 10, 32)
				if err != nil {
					return nil, err
				}
				c.cfg.Timeout = uint32(n)
			}
		case "-M", "--netmask":
			if c.netmask, err = next(&i); err != nil {
				return nil, err
			}
		case "-b", "--sched-flags":
			if c.schedFlags, err = next(&i); err != nil {
				return nil, err
			}
		case "-o", "--ops":
			c.cfg.Flags |= service.FlagOnePacket
		case "--pe":
			if c.cfg.PE, err = next(&i); err != nil {
				return nil, err
			}
		case "-r", "--real-server":
			if v, err = next(&i); err != nil {
				return nil, err
			}
			if c.destAddr, c.destPort, c.destHasPort, err = parseModelAddr(v); err != nil {
				return nil, err
			}
		case "-m", "--masquerading":
			c.dest.Fwd = service.Masq
		case "-g", "--gatewaying":
			c.dest.Fwd = service.Route
		case "-i", "--ipip":
			c.dest.Fwd = service.Tunnel
		case "-w", "--weight", "-x", "--u-threshold", "-y", "--l-threshold", "--tun-port":
			if v, err = next(&i); err != nil {
				return nil, err
			}
			n, err := strconv.ParseUint(v, 10, 32)
			if err != nil {
				return nil, err
			}
			switch a {
			case "-w", "--weight":
				c.dest.Weight = int32(n)
			case "-x", "--u-threshold":
				c.dest.UThreshold = uint32(n)
			case "-y", "--l-threshold":
				c.dest.LThreshold = uint32(n)
			default:
				c.dest.TunPort = uint16(n)
			}
		case "--tun-type":
			if v, err = next(&i); err != nil {
				return nil, err
			}
			t := slices.Index(tunNames[:], v)
			if t < 0 {
				return nil, fmt.Errorf("tunnel type %q", v)
			}
			c.dest.TunType = service.TunType(t)
		case "--tun-nocsum":
			c.dest.TunFlags = service.TunNoCsum
		case "--tun-csum":
			c.dest.TunFlags = service.TunCsum
		case "--tun-remcsum":
			c.dest.TunFlags = service.TunRemCsum
		case "-n", "--numeric":
			c.list.Numeric = true
		case "-c", "--connection":
			c.list.Connections = true
		case "--timeout":
			c.list.Timeout = true
		case "--daemon":
			c.list.Daemon = true
		case "--stats":
			c.list.Stats = true
		case "--rate":
			c.list.Rate = true
		case "--thresholds":
			c.list.Thresholds = true
		case "--persistent-conn":
			c.list.PersistentConn = true
		case "--tun-info":
			c.list.TunInfo = true
		case "--nosort":
			c.list.NoSort = true
		case "--sort":
		case "-X", "--exact":
			c.list.Exact = true
		default:
			return nil, fmt.Errorf("option %q not understood by the test model", a)
		}
	}
	if c.cmd == "" {
		c.cmd = "L" // ipvsadm with no command lists
	}
	// Defaults and port rules of process_options.
	switch c.cmd {
	case "A", "E":
		if c.sched == "" {
			c.sched = "wlc"
		}
		c.cfg.Sched = c.sched
		c.cfg.Netmask = 0xffffffff
		if c.key.Family == service.IPv6 {
			c.cfg.Netmask = 128
		}
		if c.netmask != "" {
			if c.key.Family == service.IPv6 {
				n, err := strconv.Atoi(c.netmask)
				if err != nil {
					return nil, err
				}
				c.cfg.Netmask = uint32(n)
			} else {
				m, err := netip.ParseAddr(c.netmask)
				if err != nil {
					return nil, err
				}
				b := m.As4()
				c.cfg.Netmask = uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
			}
		}
		for _, f := range strings.Split(c.schedFlags, ",") {
			switch f {
			case "":
			case "sh-fallback", "mh-fallback", "flag-1":
				c.cfg.Flags |= service.FlagSched1
			case "sh-port", "mh-port", "flag-2":
				c.cfg.Flags |= service.FlagSched2
			case "flag-3":
				c.cfg.Flags |= service.FlagSched3
			default:
				return nil, fmt.Errorf("scheduler flag %q", f)
			}
		}
	case "a", "e", "d":
		if !c.destHasPort {
			c.destPort = c.key.Port
		}
		if c.key.FWMark == 0 && (c.dest.Fwd == service.Tunnel || c.dest.Fwd == service.Route) {
			c.destPort = c.key.Port
		}
	}
	return c, nil
}

// modelApply applies a command that the kernel accepted to s.
func modelApply(s *State, c *modelCmd) error {
	find := func() (int, error) {
		for i := range s.Services {
			if s.findService(c.key) == &s.Services[i] {
				return i, nil
			}
		}
		return -1, fmt.Errorf("no service %v in the model", c.key)
	}
	findDest := func(e *ServiceEntry) int {
		for i, d := range e.Dests {
			if d.Addr == c.destAddr && d.Port == c.destPort {
				return i
			}
		}
		return -1
	}
	switch c.cmd {
	case "A":
		s.Services = append(s.Services, ServiceEntry{Key: c.key, Config: c.cfg})
	case "E":
		i, err := find()
		if err != nil {
			return err
		}
		s.Services[i].Config = c.cfg
	case "D":
		i, err := find()
		if err != nil {
			return err
		}
		s.Services = slices.Delete(s.Services, i, i+1)
	case "C":
		s.Services = nil
	case "a":
		i, err := find()
		if err != nil {
			return err
		}
		e := &s.Services[i]
		// The kernel adds a destination at the head of the list.
		e.Dests = slices.Insert(e.Dests, 0, DestEntry{Addr: c.destAddr, Port: c.destPort, Config: c.dest})
	case "e", "d":
		i, err := find()
		if err != nil {
			return err
		}
		e := &s.Services[i]
		j := findDest(e)
		if j < 0 {
			return fmt.Errorf("no destination %v:%d in the model", c.destAddr, c.destPort)
		}
		if c.cmd == "e" {
			e.Dests[j].Config = c.dest
		} else {
			e.Dests = slices.Delete(e.Dests, j, j+1)
		}
	case "Z":
		zero := func(e *ServiceEntry) {
			e.Stats, e.Rates = stats.Values{}, estimator.Rates{}
			for i := range e.Dests {
				e.Dests[i].Stats, e.Dests[i].Rates = stats.Values{}, estimator.Rates{}
			}
		}
		if !c.hasKey {
			for i := range s.Services {
				zero(&s.Services[i])
			}
			return nil
		}
		i, err := find()
		if err != nil {
			return err
		}
		zero(&s.Services[i])
	case "set":
		for j, p := range []*uint32{&s.Timeouts.TCP, &s.Timeouts.TCPFin, &s.Timeouts.UDP} {
			if c.set[j] != 0 { // 0 leaves a timeout as it is
				*p = c.set[j]
			}
		}
	default:
		return fmt.Errorf("command %q does not change the table", c.cmd)
	}
	return nil
}

// newModelState is the table the oracle scenarios start from: empty, the
// timeouts set to 900 120 300.
func newModelState() *State {
	return &State{
		Version:     KernelVersion,
		ConnTabSize: DefaultConnTabSize,
		Timeouts:    TimeoutEntry{TCP: 900, TCPFin: 120, UDP: 300},
	}
}

// modelData applies one line of a data section (testdata/format/*.txt):
// what the configuration commands do not determine.
//
//	counts SVC -r DEST ACTIVE INACTIVE PERSISTENT
//	stats SVC [-r DEST] CONNS INPKTS OUTPKTS INBYTES OUTBYTES
//	rates SVC [-r DEST] CPS INPPS OUTPPS INBPS OUTBPS
//	conn PROTO EXPIRES STATE CLIENT VIRTUAL|- DEST [template] [fwmark N] [pe NAME DATA]
//	daemon ROLE mcast=IFN syncid=N [maxlen=N] [group=ADDR] [port=N] [ttl=N]
//	order SVC    (the next position of the kernel's service order)
//	host ADDR NAME    (a reverse DNS answer; handled by runTranscript)
//
// SVC is "-t ADDR:PORT", "-u ...", "--sctp-service ..." or "-f N [-6]";
// conn lines replace the connection table of the previous section, daemon
// lines the daemons; order lines list the services in kernel order, all
// of them.
func modelData(s *State, line string, sec *modelSection) error {
	f := strings.Fields(line)
	svcArgs := func(f []string) (*ServiceEntry, []string, error) {
		n := 2
		if f[0] == "-f" && len(f) > 2 && f[2] == "-6" {
			n = 3
		}
		c, err := parseModelCmd(strings.Join(f[:n], " "))
		if err != nil {
			return nil, nil, err
		}
		e := s.findService(c.key)
		if e == nil {
			return nil, nil, fmt.Errorf("no service %v", c.key)
		}
		return e, f[n:], nil
	}
	destArg := func(e *ServiceEntry, f []string) (*DestEntry, []string, error) {
		if len(f) < 2 || f[0] != "-r" {
			return nil, f, nil
		}
		a, p, _, err := parseModelAddr(f[1])
		if err != nil {
			return nil, nil, err
		}
		for i := range e.Dests {
			if e.Dests[i].Addr == a && e.Dests[i].Port == p {
				return &e.Dests[i], f[2:], nil
			}
		}
		return nil, nil, fmt.Errorf("no destination %s", f[1])
	}
	nums := func(f []string, n int) ([]uint64, error) {
		if len(f) != n {
			return nil, fmt.Errorf("want %d numbers, have %q", n, f)
		}
		v := make([]uint64, n)
		for i := range f {
			var err error
			if v[i], err = strconv.ParseUint(f[i], 10, 64); err != nil {
				return nil, err
			}
		}
		return v, nil
	}
	switch f[0] {
	case "counts", "stats", "rates":
		e, rest, err := svcArgs(f[1:])
		if err != nil {
			return err
		}
		d, rest, err := destArg(e, rest)
		if err != nil {
			return err
		}
		if f[0] == "counts" {
			v, err := nums(rest, 3)
			if err != nil {
				return err
			}
			if d == nil {
				return fmt.Errorf("counts of a service")
			}
			d.ActiveConns, d.InactConns, d.PersistConns = uint32(v[0]), uint32(v[1]), uint32(v[2])
			return nil
		}
		v, err := nums(rest, 5)
		if err != nil {
			return err
		}
		st := stats.Values{Conns: v[0], InPkts: v[1], OutPkts: v[2], InBytes: v[3], OutBytes: v[4]}
		rt := estimator.Rates{CPS: v[0], InPPS: v[1], OutPPS: v[2], InBPS: v[3], OutBPS: v[4]}
		switch {
		case f[0] == "stats" && d == nil:
			e.Stats = st
		case f[0] == "stats":
			d.Stats = st
		case d == nil:
			e.Rates = rt
		default:
			d.Rates = rt
		}
	case "conn":
		if len(f) < 7 {
			return fmt.Errorf("short conn line")
		}
		if !sec.conns {
			s.Conns, sec.conns = nil, true
		}
		proto := map[string]uint8{"IP": 0, "TCP": 6, "UDP": 17, "SCTP": 132}
		p, ok := proto[f[1]]
		if !ok {
			return fmt.Errorf("protocol %q", f[1])
		}
		exp, err := strconv.ParseUint(f[2], 10, 32)
		if err != nil {
			return err
		}
		c := ConnEntry{Proto: p, Expires: uint32(exp), State: f[3]}
		var errs [3]error
		c.CAddr, c.CPort, _, errs[0] = parseModelAddr(f[4])
		if f[5] != "-" { // "-": unset, as for the template of a fwmark service
			c.VAddr, c.VPort, _, errs[1] = parseModelAddr(f[5])
		}
		c.DAddr, c.DPort, _, errs[2] = parseModelAddr(f[6])
		for _, err := range errs {
			if err != nil {
				return err
			}
		}
		for rest := f[7:]; len(rest) > 0; {
			switch {
			case rest[0] == "template":
				c.Template, rest = true, rest[1:]
			case rest[0] == "fwmark" && len(rest) > 1:
				m, err := strconv.ParseUint(rest[1], 10, 32)
				if err != nil {
					return err
				}
				c.FWMark, rest = uint32(m), rest[2:]
			case rest[0] == "pe" && len(rest) > 2:
				c.PEName, c.PEData, rest = rest[1], rest[2], rest[3:]
			default:
				return fmt.Errorf("conn option %q", rest[0])
			}
		}
		s.Conns = append(s.Conns, c)
	case "daemon":
		if !sec.daemons {
			s.Daemons, sec.daemons = nil, true
		}
		if len(f) < 2 {
			return fmt.Errorf("daemon without a role")
		}
		d := DaemonEntry{State: f[1]}
		for _, kv := range f[2:] {
			k, v, _ := strings.Cut(kv, "=")
			var n uint64
			var err error
			switch k {
			case "mcast":
				d.MCastIfn = v
				continue
			case "group":
				d.MCastGroup, err = netip.ParseAddr(v)
			default:
				n, err = strconv.ParseUint(v, 10, 32)
			}
			if err != nil {
				return err
			}
			switch k {
			case "syncid":
				d.SyncID = uint32(n)
			case "maxlen":
				d.SyncMaxLen = uint16(n)
			case "port":
				d.MCastPort = uint16(n)
			case "ttl":
				d.MCastTTL = uint8(n)
			case "group":
			default:
				return fmt.Errorf("daemon field %q", k)
			}
		}
		s.Daemons = append(s.Daemons, d)
	case "order":
		e, rest, err := svcArgs(f[1:])
		if err != nil || len(rest) != 0 {
			return fmt.Errorf("order %q: %v", line, err)
		}
		i := slices.IndexFunc(s.Services, func(x ServiceEntry) bool { return x.Key == e.Key })
		if i < sec.order {
			return fmt.Errorf("order: %s listed twice", line)
		}
		// Move the service to the next position.
		moved := s.Services[i]
		copy(s.Services[sec.order+1:i+1], s.Services[sec.order:i])
		s.Services[sec.order] = moved
		sec.order++
	default:
		return fmt.Errorf("data line %q not understood", line)
	}
	return nil
}

// modelSection is the progress through one data section.
type modelSection struct {
	conns   bool // the section's conn lines have begun
	daemons bool // its daemon lines have begun
	order   int  // services placed by its order lines
}

func TestModelParse(t *testing.T) {
	c, err := parseModelCmd("ipvsadm -a -t 198.18.0.100:80 -r 198.19.0.13 -g -w 65535")
	if err != nil {
		t.Fatal(err)
	}
	if c.cmd != "a" || c.destPort != 80 || c.dest.Weight != 65535 || c.dest.Fwd != service.Route {
		t.Errorf("parsed %+v", c)
	}
	c, err = parseModelCmd("ipvsadm -A -t [2001:db8:c::100]:80 -s sed -p 120 -M 64")
	if err != nil {
		t.Fatal(err)
	}
	if c.cfg.Netmask != 64 || c.cfg.Timeout != 120 || !c.cfg.Persistent() || c.key.Family != service.IPv6 {
		t.Errorf("parsed %+v", c)
	}
}

// TestStateJSON checks that a State survives the control API's JSON: what
// the daemon marshals, the client unmarshals to the same value, and the
// field names are those documented.
func TestStateJSON(t *testing.T) {
	s := sampleState()
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	var back State
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(s, &back, cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); diff != "" {
		t.Errorf("JSON round trip (-want +got):\n%s", diff)
	}
	for _, name := range []string{`"version"`, `"conn_tab_size"`, `"services"`, `"dests"`, `"active_conns"`,
		`"inact_conns"`, `"persist_conns"`, `"conns"`, `"expires"`, `"caddr"`, `"timeouts"`, `"tcp_fin"`,
		`"daemons"`, `"mcast_ifn"`, `"syncid"`} {
		if !strings.Contains(string(b), name) {
			t.Errorf("JSON has no field %s: %s", name, b)
		}
	}
}

// sampleState has one of everything: services of each kind, destinations
// of each method, connections, timeouts and both daemons.
func sampleState() *State {
	a := netip.MustParseAddr
	return &State{
		Version:     KernelVersion,
		ConnTabSize: DefaultConnTabSize,
		Services: []ServiceEntry{
			{
				Key:    service.Key{Family: service.IPv4, Proto: service.ProtoTCP, Addr: a("192.0.2.1"), Port: 80},
				Config: service.Config{Sched: "wlc", Flags: service.FlagPersistent, Timeout: 300, Netmask: 0xffffff00},
				Stats:  stats.Values{Conns: 1234, InPkts: 98765, OutPkts: 87654, InBytes: 7654321, OutBytes: 123456789012},
				Rates:  estimator.Rates{CPS: 12, InPPS: 340, OutPPS: 310, InBPS: 25600, OutBPS: 412000},
				Dests: []DestEntry{
					{Addr: a("198.51.100.12"), Port: 80, Config: service.DestConfig{Fwd: service.Masq, Weight: 2, UThreshold: 100, LThreshold: 50},
						ActiveConns: 5, InactConns: 7, PersistConns: 1, Stats: stats.Values{Conns: 617}},
					{Addr: a("198.51.100.11"), Port: 80, Config: service.DestConfig{Fwd: service.Tunnel, Weight: 1, TunType: service.TunGUE, TunPort: 6080, TunFlags: service.TunCsum}},
				},
			},
			{
				Key:    service.Key{Family: service.IPv6, FWMark: 7},
				Config: service.Config{Sched: "sh", Flags: service.FlagSHFallback | service.FlagSHPort, Netmask: 128},
			},
		},
		Conns: []ConnEntry{
			{Proto: service.ProtoTCP, Expires: 899, State: "ESTABLISHED", CAddr: a("203.0.113.5"), CPort: 51234,
				VAddr: a("192.0.2.1"), VPort: 80, DAddr: a("198.51.100.11"), DPort: 80},
			{Proto: 0, Expires: 299, State: "ASSURED", CAddr: a("203.0.113.5"), DAddr: a("198.51.100.11"), Template: true, FWMark: 1},
		},
		Timeouts: TimeoutEntry{TCP: 900, TCPFin: 120, UDP: 300},
		Daemons: []DaemonEntry{
			{State: DaemonMaster, MCastIfn: "eth0", SyncMaxLen: 1472, MCastGroup: a("224.0.0.81"), MCastPort: 8848, MCastTTL: 1},
			{State: DaemonBackup, MCastIfn: "eth1", SyncID: 3},
		},
	}
}
