package keepalived

import (
	"encoding/binary"
	"net/netip"
	"strings"
	"time"

	"golvs/internal/check"
	"golvs/internal/service"
)

// Schedulers accepted by lvs_sched: keepalived's list (check_parser.c
// lvs_schedulers) plus twos, which GoLVS implements (kernel 6.x; keepalived
// 2.2.7 does not know it).
var schedulers = map[string]bool{
	"rr": true, "wrr": true, "lc": true, "wlc": true, "lblc": true, "sh": true, "mh": true,
	"dh": true, "fo": true, "ovf": true, "lblcr": true, "sed": true, "nq": true, "twos": true,
}

// Defaults of alloc_vs (keepalived check_data.c).
const (
	defaultDelayLoop      = 60 * time.Second // KEEPALIVED_DEFAULT_DELAY
	defaultConnectTimeout = 5 * time.Second
	// persistentTimeout is IPVS_SVC_PERSISTENT_TIMEOUT: persistence_timeout
	// without a value (ipvsadm's -p default too).
	persistentTimeout = 360
	// maxLVSTimeout is keepalived's LVS_MAX_TIMEOUT (31 days).
	maxLVSTimeout = 86400 * 31
	// maxGroupKeys bounds the services one virtual server group may expand
	// to (a /16 range would be 65536 services already).
	maxGroupKeys = 65536
)

// timing is the checker timing given at one level (VS, RS or checker);
// nil fields were not given.
type timing struct {
	connectTimeout, delayLoop, delayBeforeRetry, warmup *time.Duration
	retry                                               *int
}

type vsState struct {
	n         *node
	vs        VirtualServer
	proto     uint8
	sched     string
	method    *Method
	flagNodes []*node // sh-port, sh-fallback, mh-port, mh-fallback
	family    service.Family
	ipFamily  *node
	gran      *node
	t         timing
	alpha     bool
	inhibit   bool
	smtp      Tristate
	weight    int32
	rss       []*rsState
	sorry     *SorryServer
	sorryN    *node
	sorryM    bool // sorry_server_lvs_method given
}

type rsState struct {
	n           *node
	rs          RealServer
	method      *Method
	weight      *int32
	t           timing
	alpha       Tristate
	inhibit     Tristate
	smtp        Tristate
	virtualhost *string
	checkers    []*ckState
}

// virtualServerGroup parses virtual_server_group NAME { entries }.
func (p *parser) virtualServerGroup(n *node) {
	name, ok := p.arg(n, 1)
	if !ok || !p.needBlock(n) {
		return
	}
	g := VirtualServerGroup{Pos: n.pos, Name: name}
	var have4, have6, fwNoFamily bool
	for _, k := range n.kids {
		if p.noBlock(k) {
			continue
		}
		e, ok := p.vsgEntry(k)
		if !ok {
			continue
		}
		switch {
		case e.IsFWMark && e.Family == 0:
			fwNoFamily = true
		case e.IsFWMark && e.Family == service.IPv4, !e.IsFWMark && e.Start.Is4():
			have4 = true
		default:
			have6 = true
		}
		g.Entries = append(g.Entries, e)
	}
	if len(g.Entries) == 0 {
		p.warnf(n, "virtual server group %s has no entries - removing", name)
		return
	}
	if have4 && have6 && fwNoFamily {
		p.errorf(n, "virtual server group %s cannot have IPv4, IPv6 and fwmark without family", name)
		return
	}
	for _, o := range p.cfg.VirtualServerGroups {
		if o.Name == name {
			p.errorf(n, "virtual server group %s is already defined at %s", name, o.Pos)
			return
		}
	}
	p.cfg.VirtualServerGroups = append(p.cfg.VirtualServerGroups, g)
}

// vsgEntry parses one line of a virtual_server_group (keepalived
// alloc_vsg_entry): fwmark N [inet|inet6], or ADDR[-END|/LEN] [PORT].
func (p *parser) vsgEntry(k *node) (VSGEntry, bool) {
	e := VSGEntry{Pos: k.pos}
	if k.kw() == "fwmark" {
		if !p.nargs(k, 1, 2) {
			return e, false
		}
		v, ok := p.uintArg(k, 1, 0, 1<<32-1)
		if !ok {
			return e, false
		}
		e.FWMark, e.IsFWMark = uint32(v), true
		if len(k.words) > 2 {
			switch k.words[2] {
			case "inet":
				e.Family = service.IPv4
			case "inet6":
				e.Family = service.IPv6
			default:
				p.errorf(k, "fwmark family %q unknown: expected inet or inet6", k.words[2])
				return e, false
			}
		}
		return e, true
	}
	if !p.nargs(k, 0, 1) {
		return e, false
	}
	spec := k.words[0]
	if len(k.words) > 1 {
		port, ok := portWord(k.words[1])
		if !ok {
			p.errorf(k, "invalid port %q", k.words[1])
			return e, false
		}
		e.Port = port
	}
	start, end, err := parseRange(spec)
	if err != "" {
		p.errorf(k, "%s", err)
		return e, false
	}
	e.Start, e.End = start, end
	return e, true
}

// parseRange parses a virtual server group address: ADDR, ADDR-N (the
// last IPv4 octet, or the last IPv6 16-bit group in hexadecimal, runs
// from ADDR's up to N), ADDR-ADDR, or ADDR/LEN (the whole network, host
// bits of ADDR zero).
func parseRange(s string) (start, end netip.Addr, err string) {
	if i := strings.IndexByte(s, '/'); i >= 0 {
		pfx, e := netip.ParsePrefix(s)
		if e != nil || pfx.Bits() == 0 {
			return start, end, "invalid address or netmask " + quote(s)
		}
		if pfx.Masked() != pfx {
			return start, end, "address mask bits not empty - " + s
		}
		start = pfx.Addr()
		b := start.AsSlice()
		for i := pfx.Bits(); i < len(b)*8; i++ {
			b[i/8] |= 0x80 >> (i % 8)
		}
		end, _ = netip.AddrFromSlice(b)
		return start, end, ""
	}
	a, rest, dash := strings.Cut(s, "-")
	start, e := netip.ParseAddr(a)
	if e != nil || start.Zone() != "" {
		return start, end, "invalid address " + quote(s)
	}
	start = start.Unmap()
	if !dash {
		return start, start, ""
	}
	if (start.Is4() && strings.Contains(rest, ".")) || (start.Is6() && strings.Contains(rest, ":")) {
		end, e = netip.ParseAddr(rest)
		if e != nil || end.Is4() != start.Is4() {
			return start, end, "invalid range end " + quote(s)
		}
		if end.Less(start) {
			return start, end, "address range end is less than address range start - " + s
		}
		return start, end, ""
	}
	b := start.AsSlice()
	var v uint64
	var ok bool
	if start.Is4() {
		v, ok = parseUint(rest, 0, 255)
		if !ok {
			return start, end, "invalid range end " + quote(s) + ": expected 0-255"
		}
		if uint64(b[3]) >= v {
			return start, end, "address range end is not greater than address range start - " + s
		}
		b[3] = byte(v)
	} else {
		v, ok = parseHex16(rest)
		if !ok {
			return start, end, "invalid range end " + quote(s) + ": expected hexadecimal 0-ffff"
		}
		if uint64(b[14])<<8|uint64(b[15]) >= v {
			return start, end, "address range end is not greater than address range start - " + s
		}
		b[14], b[15] = byte(v>>8), byte(v)
	}
	end, _ = netip.AddrFromSlice(b)
	return start, end, ""
}

func parseHex16(s string) (uint64, bool) {
	if s == "" || len(s) > 4 {
		return 0, false
	}
	var v uint64
	for i := 0; i < len(s); i++ {
		if !isHex(s[i]) {
			return 0, false
		}
		v = v<<4 | uint64(hexVal(s[i]))
	}
	return v, true
}

func quote(s string) string { return "\"" + s + "\"" }

// virtualServer parses a virtual_server block.
func (p *parser) virtualServer(n *node) {
	st := &vsState{n: n, weight: 1, smtp: Unset}
	vs := &st.vs
	vs.Pos = n.pos
	if !p.nargs(n, 1, 2) || !p.needBlock(n) {
		return
	}
	switch n.words[1] {
	case "group":
		name, ok := p.arg(n, 2)
		if !ok {
			return
		}
		vs.Group = name
	case "fwmark":
		// IPVS_FWMARK_MAX is UINT32_MAX; fwmark 0 is not a fwmark service.
		v, ok := p.uintArg(n, 2, 1, 1<<32-1)
		if !ok {
			return
		}
		vs.FWMark = uint32(v)
	default:
		a, err := netip.ParseAddr(n.words[1])
		if err != nil || a.Zone() != "" {
			p.errorf(n, "invalid virtual server IP address %q", n.words[1])
			return
		}
		vs.Addr = a.Unmap()
		st.family = service.FamilyOf(vs.Addr)
		if len(n.words) > 2 {
			port, ok := portWord(n.words[2])
			if !ok {
				p.errorf(n, "invalid virtual server port %q", n.words[2])
				return
			}
			vs.Port = port
		}
	}
	for _, k := range n.kids {
		p.vsKeyword(st, k)
	}
	p.vss = append(p.vss, st)
}

var ignoredVS = map[string]bool{"snmp_name": true}

func (p *parser) vsKeyword(st *vsState, k *node) {
	vs := &st.vs
	kw := k.kw()
	if kw != "real_server" && p.noBlock(k) {
		return
	}
	switch kw {
	case "real_server":
		p.realServer(st, k)
	case "lvs_sched", "lb_algo":
		if kw == "lb_algo" {
			p.deprecated(k, "lvs_sched")
		}
		if s, ok := p.str(k); ok {
			if !schedulers[s] {
				p.errorf(k, "invalid lvs_scheduler %q", s)
				return
			}
			st.sched = s
		}
	case "lvs_method", "lb_kind":
		if kw == "lb_kind" {
			p.deprecated(k, "lvs_method")
		}
		if m, ok := p.method(k); ok {
			st.method = &m
		}
	case "ops":
		vs.Flags |= service.FlagOnePacket
	case "flag-1":
		vs.Flags |= service.FlagSched1
	case "flag-2":
		vs.Flags |= service.FlagSched2
	case "flag-3":
		vs.Flags |= service.FlagSched3
	case "sh-port", "sh-fallback", "mh-port", "mh-fallback":
		st.flagNodes = append(st.flagNodes, k)
	case "hashed":
		p.warnf(k, "hashed is internal to the kernel and ignored")
	case "persistence_engine":
		if s, ok := p.str(k); ok {
			if s != "sip" {
				p.errorf(k, "unknown persistence engine %q (only sip exists)", s)
				return
			}
			vs.PersistenceEngine = s
		}
	case "persistence_timeout":
		if len(k.words) < 2 {
			vs.PersistenceTimeout = persistentTimeout
			return
		}
		if v, ok := p.uintArg(k, 1, 1, maxLVSTimeout); ok {
			vs.PersistenceTimeout = uint32(v)
		}
	case "persistence_granularity":
		if p.nargs(k, 1, 1) {
			st.gran = k
		}
	case "protocol":
		if s, ok := p.str(k); ok {
			switch strings.ToUpper(s) {
			case "TCP":
				st.proto = service.ProtoTCP
			case "UDP":
				st.proto = service.ProtoUDP
			case "SCTP":
				st.proto = service.ProtoSCTP
			default:
				p.errorf(k, "unknown protocol %q: expected TCP, UDP or SCTP", s)
			}
		}
	case "ha_suspend":
		vs.HASuspend = true
	case "smtp_alert":
		p.ignore(k)
		if v, ok := p.optBool(k); ok {
			st.smtp = triOf(v)
		}
	case "virtualhost":
		if s, ok := p.str(k); ok {
			vs.Virtualhost = s
		}
	case "alpha":
		st.alpha = true
	case "omega":
		vs.Omega = true
	case "quorum":
		if v, ok := p.uintArg(k, 1, 1, 1<<32-1); ok {
			vs.Quorum = uint32(v)
		}
	case "hysteresis":
		if v, ok := p.uintArg(k, 1, 0, 1<<32-1); ok {
			vs.Hysteresis = uint32(v)
		}
	case "quorum_up", "quorum_down":
		s, ok := p.script(k)
		if !ok {
			return
		}
		dst := &vs.QuorumUp
		if kw == "quorum_down" {
			dst = &vs.QuorumDown
		}
		if *dst != nil {
			p.warnf(k, "%s script already specified - ignoring", kw)
			return
		}
		*dst = s
	case "ip_family":
		if s, ok := p.str(k); ok {
			if s != "inet" && s != "inet6" {
				p.errorf(k, "unknown address family %q: expected inet or inet6", s)
				return
			}
			st.ipFamily = k
		}
	case "sorry_server":
		if !p.nargs(k, 1, 2) {
			return
		}
		a, ok := p.addrArg(k, 1)
		if !ok {
			return
		}
		ss := &SorryServer{Addr: a}
		if len(k.words) > 2 {
			port, ok := portWord(k.words[2])
			if !ok {
				p.errorf(k, "invalid sorry server port %q", k.words[2])
				return
			}
			ss.Port = port
		}
		st.sorry, st.sorryN = ss, k
	case "sorry_server_inhibit":
		if st.sorry == nil {
			p.errorf(k, "sorry_server_inhibit used before or without sorry_server")
			return
		}
		st.sorry.Inhibit = true
	case "sorry_server_lvs_method":
		if st.sorry == nil {
			p.errorf(k, "sorry_server_lvs_method used before or without sorry_server")
			return
		}
		if m, ok := p.method(k); ok {
			st.sorry.Method, st.sorryM = m, true
		}
	case "inhibit_on_failure":
		st.inhibit = true
	case "weight":
		// IPVS_WEIGHT_LIMIT is INT_MAX.
		if v, ok := p.uintArg(k, 1, 1, 1<<31-1); ok {
			st.weight = int32(v)
		}
	default:
		if p.timingKeyword(&st.t, k) {
			return
		}
		if ignoredVS[kw] {
			p.ignore(k)
			return
		}
		p.unknown(k)
	}
}

func triOf(v bool) Tristate {
	if v {
		return True
	}
	return False
}

// timingKeyword parses the timing keywords shared by virtual servers,
// real servers and checkers.
func (p *parser) timingKeyword(t *timing, k *node) bool {
	switch k.kw() {
	case "connect_timeout":
		// keepalived: at least 1 µs, at most UINT_MAX µs (~71 minutes).
		if v, ok := p.timerArg(k, 1, time.Microsecond, 4294967295*time.Microsecond); ok {
			t.connectTimeout = &v
		}
	case "delay_loop":
		if v, ok := p.timerArg(k, 1, time.Microsecond, 0); ok {
			t.delayLoop = &v
		}
	case "delay_before_retry":
		if v, ok := p.timerArg(k, 1, 0, 0); ok {
			t.delayBeforeRetry = &v
		}
	case "warmup":
		if v, ok := p.timerArg(k, 1, 0, 0); ok {
			t.warmup = &v
		}
	case "retry", "nb_get_retry":
		if k.kw() == "nb_get_retry" {
			p.deprecated(k, "retry")
		}
		// keepalived: retry must be at least 1 when given.
		if v, ok := p.uintArg(k, 1, 1, 1<<32-1); ok {
			r := int(v)
			t.retry = &r
		}
	default:
		return false
	}
	return true
}

// method parses lvs_method NAT|DR|TUN [type {ipip|gue port N|gre}]
// [nocsum|csum|remcsum] (keepalived svr_forwarding_handler).
func (p *parser) method(k *node) (Method, bool) {
	var m Method
	s, ok := p.arg(k, 1)
	if !ok {
		return m, false
	}
	switch s {
	case "NAT":
		m.Fwd = service.Masq
	case "DR":
		m.Fwd = service.Route
	case "TUN":
		m.Fwd = service.Tunnel
	default:
		p.errorf(k, "unknown forwarding method %q: expected NAT, DR or TUN", s)
		return m, false
	}
	if m.Fwd != service.Tunnel {
		if len(k.words) > 2 {
			p.errorf(k, "unexpected parameter %q: only TUN takes options", k.words[2])
			return m, false
		}
		return m, true
	}
	var port uint16
	csum := service.TunNoCsum
	for i := 2; i < len(k.words); i++ {
		switch w := k.words[i]; w {
		case "type":
			if i+1 >= len(k.words) {
				p.errorf(k, "missing tunnel type")
				return m, false
			}
			i++
			switch k.words[i] {
			case "ipip":
				m.TunType = service.TunIPIP
			case "gue":
				m.TunType = service.TunGUE
			case "gre":
				m.TunType = service.TunGRE
			default:
				p.errorf(k, "unknown tunnel type %q: expected ipip, gue or gre", k.words[i])
				return m, false
			}
		case "port":
			if i+1 >= len(k.words) {
				p.errorf(k, "missing port for the gue tunnel")
				return m, false
			}
			i++
			v, ok := p.uintArg(k, i, 1, 65535)
			if !ok {
				return m, false
			}
			port = uint16(v)
		case "nocsum":
			csum = service.TunNoCsum
		case "csum":
			csum = service.TunCsum
		case "remcsum":
			csum = service.TunRemCsum
		default:
			p.errorf(k, "invalid tunnel option %q", w)
			return m, false
		}
	}
	if (m.TunType == service.TunGUE) != (port != 0) {
		p.errorf(k, "gue tunnels require a port, other tunnels cannot have one")
		return m, false
	}
	if m.TunType == service.TunIPIP && csum != service.TunNoCsum {
		p.errorf(k, "ipip tunnels do not support a checksum option")
		return m, false
	}
	if m.TunType == service.TunGRE && csum == service.TunRemCsum {
		p.errorf(k, "gre tunnels do not support the remote checksum option")
		return m, false
	}
	m.TunPort, m.TunFlags = port, csum
	return m, true
}

var ignoredRS = map[string]bool{"snmp_name": true}

// realServer parses real_server ADDR [PORT] { ... }.
func (p *parser) realServer(st *vsState, n *node) {
	if !p.nargs(n, 1, 2) {
		return
	}
	a, ok := p.addrArg(n, 1)
	if !ok {
		return
	}
	rs := &rsState{n: n}
	rs.rs.Pos, rs.rs.Addr = n.pos, a
	if len(n.words) > 2 {
		port, ok := portWord(n.words[2])
		if !ok {
			p.errorf(n, "invalid real server port %q", n.words[2])
			return
		}
		rs.rs.Port = port
	}
	for _, k := range n.kids {
		p.rsKeyword(st, rs, k)
	}
	st.rss = append(st.rss, rs)
}

func (p *parser) rsKeyword(st *vsState, rs *rsState, k *node) {
	kw := k.kw()
	if kind, ok := checkerKinds[kw]; ok {
		p.checker(rs, k, kind)
		return
	}
	if kw == "BFD_CHECK" {
		p.ignore(k)
		return
	}
	if p.noBlock(k) {
		return
	}
	switch kw {
	case "weight":
		// keepalived: 0..IPVS_WEIGHT_LIMIT (INT_MAX).
		if v, ok := p.uintArg(k, 1, 0, 1<<31-1); ok {
			w := int32(v)
			rs.weight = &w
		}
	case "lvs_method":
		if m, ok := p.method(k); ok {
			rs.method = &m
		}
	case "uthreshold", "lthreshold":
		if v, ok := p.uintArg(k, 1, 0, 1<<32-1); ok {
			if kw == "uthreshold" {
				rs.rs.UThreshold = uint32(v)
			} else {
				rs.rs.LThreshold = uint32(v)
			}
		}
	case "notify_up", "notify_down":
		s, ok := p.script(k)
		if !ok {
			return
		}
		dst := &rs.rs.NotifyUp
		if kw == "notify_down" {
			dst = &rs.rs.NotifyDown
		}
		if *dst != nil {
			p.warnf(k, "%s script already specified - ignoring", kw)
			return
		}
		*dst = s
	case "inhibit_on_failure":
		if v, ok := p.optBool(k); ok {
			rs.inhibit = triOf(v)
		}
	case "alpha":
		if v, ok := p.optBool(k); ok {
			rs.alpha = triOf(v)
		}
	case "smtp_alert":
		p.ignore(k)
		if v, ok := p.optBool(k); ok {
			rs.smtp = triOf(v)
		}
	case "virtualhost":
		if s, ok := p.str(k); ok {
			rs.virtualhost = &s
		}
	default:
		if p.timingKeyword(&rs.t, k) {
			return
		}
		if ignoredRS[kw] {
			p.ignore(k)
			return
		}
		p.unknown(k)
	}
}

// finishVS applies keepalived's validate_check_config to one virtual
// server and resolves its real servers and checkers. It reports false
// when the virtual server is dropped.
func (p *parser) finishVS(st *vsState) bool {
	vs := &st.vs
	n := st.n
	var grp *VirtualServerGroup
	if vs.Group != "" {
		for i := range p.cfg.VirtualServerGroups {
			if p.cfg.VirtualServerGroups[i].Name == vs.Group {
				grp = &p.cfg.VirtualServerGroups[i]
			}
		}
		if grp == nil {
			p.errorf(n, "virtual server group %s is not defined", vs.Group)
			return false
		}
	}
	hasAddrs, hasFWM := vs.FWMark == 0 && vs.Group == "", vs.FWMark != 0
	if grp != nil {
		for _, e := range grp.Entries {
			if e.IsFWMark {
				hasFWM = true
			} else {
				hasAddrs = true
			}
		}
	}

	// Address family (keepalived vs_end_handler, rs_end_handler,
	// ip_family_handler, pgr_handler).
	fam := st.family
	if st.ipFamily != nil {
		f := service.IPv4
		if st.ipFamily.words[1] == "inet6" {
			f = service.IPv6
		}
		if fam != 0 && f != fam {
			p.errorf(st.ipFamily, "virtual server family %s conflicts with its address", st.ipFamily.words[1])
		}
		fam = f
	}
	if fam == 0 && st.gran != nil {
		fam = service.IPv6
		if strings.Contains(st.gran.words[1], ".") {
			fam = service.IPv4
		}
	}
	if fam == 0 && grp != nil {
		for _, e := range grp.Entries {
			if !e.IsFWMark {
				fam = service.FamilyOf(e.Start)
				break
			}
		}
	}
	// Default forwarding method: NAT, with keepalived's warning.
	method := Method{Fwd: service.Masq}
	if st.method != nil {
		method = *st.method
	}
	vs.Method = method
	warnedMethod := st.method != nil
	for _, rs := range st.rss {
		if rs.method == nil && !warnedMethod {
			p.warnf(n, "no forwarding method set, setting default NAT")
			warnedMethod = true
		}
	}
	if fam == 0 {
		for _, rs := range st.rss {
			if m := p.rsMethod(st, rs); m.Fwd != service.Tunnel {
				fam = service.FamilyOf(rs.rs.Addr)
				break
			}
		}
	}
	if fam == 0 && st.sorry != nil && (!st.sorryM || st.sorry.Method.Fwd != service.Tunnel) && method.Fwd != service.Tunnel {
		fam = service.FamilyOf(st.sorry.Addr)
	}
	if fam == 0 {
		// fwmark with only tunnelled servers: their family when they all
		// agree, else IPv4 (keepalived's backward compatibility).
		for _, rs := range st.rss {
			f := service.FamilyOf(rs.rs.Addr)
			if fam == 0 {
				fam = f
			} else if fam != f {
				fam = service.IPv4
				break
			}
		}
		if fam == 0 {
			fam = service.IPv4
		}
	}
	vs.Family = fam

	if grp != nil && !p.groupFamiliesOK(st, grp) {
		return false
	}

	// Persistence granularity.
	if fam == service.IPv6 {
		vs.PersistenceGranularity = 128
	} else {
		vs.PersistenceGranularity = 0xffffffff
	}
	if g := st.gran; g != nil {
		if fam == service.IPv6 {
			v, ok := p.uintArg(g, 1, 1, 128)
			if !ok {
				return false
			}
			vs.PersistenceGranularity = uint32(v)
		} else {
			a, err := netip.ParseAddr(g.words[1])
			if err != nil || !a.Is4() {
				p.errorf(g, "invalid IPv4 persistence_granularity %q", g.words[1])
				return false
			}
			b := a.As4()
			vs.PersistenceGranularity = binary.BigEndian.Uint32(b[:])
		}
		if vs.PersistenceTimeout == 0 {
			vs.PersistenceTimeout = persistentTimeout
		}
	}

	// Protocol.
	if hasAddrs {
		if st.proto == 0 {
			// keepalived 2.2.7: "If the protocol is 0, the kernel defaults
			// to UDP, so set it explicitly".
			p.warnf(n, "no protocol set - defaulting to UDP")
			st.proto = service.ProtoUDP
		}
		vs.Protocol = st.proto
		if vs.Flags&service.FlagOnePacket != 0 && vs.Protocol != service.ProtoUDP {
			p.warnf(n, "one packet scheduling requires UDP - resetting")
			vs.Flags &^= service.FlagOnePacket
		}
	} else if st.proto != 0 {
		p.warnf(n, "protocol specified for fwmark - protocol will be ignored")
	}
	if vs.HASuspend && hasFWM {
		p.warnf(n, "cannot use ha_suspend with fwmarks - clearing ha_suspend")
		vs.HASuspend = false
	}

	// A zero port needs persistence (keepalived sets it with a message;
	// GoLVS refuses, as §7.3 says the port may be omitted only if
	// persistent).
	if vs.PersistenceTimeout == 0 {
		if vs.FWMark == 0 && vs.Group == "" && vs.Port == 0 {
			p.errorf(n, "virtual server without a port must be persistent (persistence_timeout)")
			return false
		}
		if grp != nil {
			for _, e := range grp.Entries {
				if !e.IsFWMark && e.Port == 0 {
					p.errorf(n, "virtual server group %s has an address without a port (%s): the virtual server must be persistent", grp.Name, e.Pos)
					return false
				}
			}
		}
	}

	// Scheduler.
	vs.Sched = st.sched
	if vs.Sched == "" {
		p.warnf(n, "no scheduler set, setting default 'wlc'")
		vs.Sched = "wlc"
	}
	for _, k := range st.flagNodes {
		s := k.kw()[:2]
		if s != vs.Sched {
			p.warnf(k, "%s only applies to the %s scheduler - ignoring", k.kw(), s)
			continue
		}
		if strings.HasSuffix(k.kw(), "-port") {
			vs.Flags |= service.FlagSched2
		} else {
			vs.Flags |= service.FlagSched1
		}
	}

	vs.Alpha, vs.InhibitOnFailure, vs.Weight = st.alpha, st.inhibit, st.weight
	vs.Quorum = max(vs.Quorum, 1) // alloc_vs: quorum 1 unless given
	vs.DelayLoop = durOr(st.t.delayLoop, defaultDelayLoop)
	vs.ConnectTimeout = durOr(st.t.connectTimeout, defaultConnectTimeout)
	vs.SMTPAlert = resolveSMTP(st.smtp, p.cfg.Global, false)

	// Keys.
	if !p.vsKeys(st, grp) {
		return false
	}

	// Real servers.
	if len(st.rss) == 0 {
		p.warnf(n, "virtual server has no real servers - ignoring")
		return false
	}
	var weightSum uint64
	for i, rs := range st.rss {
		dup := false
		for _, o := range st.rss[:i] {
			if o.rs.Addr == rs.rs.Addr && o.rs.Port == rs.rs.Port {
				p.warnf(rs.n, "real server %s is duplicated (first at %s) - removing this one", netip.AddrPortFrom(rs.rs.Addr, rs.rs.Port), o.rs.Pos)
				dup = true
				break
			}
		}
		if dup {
			continue
		}
		r, ok := p.finishRS(st, rs, grp)
		if !ok {
			continue
		}
		weightSum += uint64(r.Weight)
		vs.RealServers = append(vs.RealServers, r)
	}
	if len(vs.RealServers) == 0 {
		return false
	}
	if uint64(vs.Quorum) > weightSum {
		p.warnf(n, "quorum %d exceeds the total weight of the real servers %d, reducing quorum to %d", vs.Quorum, weightSum, weightSum)
		vs.Quorum = uint32(weightSum)
	}
	if vs.Hysteresis >= vs.Quorum && vs.Hysteresis > 0 {
		h := uint32(0)
		if vs.Quorum > 0 {
			h = vs.Quorum - 1
		}
		p.warnf(n, "hysteresis %d >= quorum %d; setting hysteresis to %d", vs.Hysteresis, vs.Quorum, h)
		vs.Hysteresis = h
	}

	// Sorry server.
	if ss := st.sorry; ss != nil {
		if !st.sorryM {
			ss.Method = method
		}
		if ss.Method.Fwd != service.Tunnel && service.FamilyOf(ss.Addr) != fam {
			p.errorf(st.sorryN, "address family of the virtual server and sorry server %s don't match", ss.Addr)
			return false
		}
		ss.Port = p.serverPort(st, grp, st.sorryN, ss.Port, ss.Method, "sorry server")
		vs.SorryServer = ss
	}
	return true
}

func durOr(d *time.Duration, def time.Duration) time.Duration {
	if d != nil {
		return *d
	}
	return def
}

// resolveSMTP applies keepalived's smtp_alert defaults: the checker-wide
// or global setting, else false for virtual servers and true for real
// servers.
func resolveSMTP(t Tristate, g GlobalDefs, rs bool) bool {
	switch {
	case t != Unset:
		return t == True
	case g.SMTPAlertChecker != Unset:
		return g.SMTPAlertChecker == True
	case g.SMTPAlert != Unset:
		return g.SMTPAlert == True
	}
	return rs
}

// groupFamiliesOK checks that a group's addresses can serve the real
// servers: families may only differ when every server is tunnelled.
func (p *parser) groupFamiliesOK(st *vsState, grp *VirtualServerGroup) bool {
	fams := map[service.Family]bool{}
	for _, e := range grp.Entries {
		switch {
		case !e.IsFWMark:
			fams[service.FamilyOf(e.Start)] = true
		case e.Family != 0:
			fams[e.Family] = true
		}
	}
	if len(fams) < 2 {
		return true
	}
	for _, rs := range st.rss {
		if p.rsMethod(st, rs).Fwd != service.Tunnel {
			p.errorf(st.n, "virtual server group %s mixes IPv4 and IPv6: all real servers must then be tunnelled (%s is not)", grp.Name, rs.rs.Addr)
			return false
		}
	}
	return true
}

func (p *parser) rsMethod(st *vsState, rs *rsState) Method {
	if rs.method != nil {
		return *rs.method
	}
	if st.method != nil {
		return *st.method
	}
	return Method{Fwd: service.Masq}
}

// vsKeys computes the IPVS services of a virtual server.
func (p *parser) vsKeys(st *vsState, grp *VirtualServerGroup) bool {
	vs := &st.vs
	switch {
	case grp == nil && vs.FWMark != 0:
		vs.Keys = []service.Key{{Family: vs.Family, FWMark: vs.FWMark}}
	case grp == nil:
		vs.Keys = []service.Key{{Family: vs.Family, Proto: vs.Protocol, Addr: vs.Addr, Port: vs.Port}}
	default:
		for _, e := range grp.Entries {
			if e.IsFWMark {
				f := e.Family
				if f == 0 {
					f = vs.Family
				}
				vs.Keys = append(vs.Keys, service.Key{Family: f, FWMark: e.FWMark})
				continue
			}
			for a := e.Start; ; a = a.Next() {
				if len(vs.Keys) >= maxGroupKeys {
					p.errorf(st.n, "virtual server group %s expands to more than %d services", grp.Name, maxGroupKeys)
					return false
				}
				vs.Keys = append(vs.Keys, service.Key{Family: service.FamilyOf(a), Proto: vs.Protocol, Addr: a, Port: e.Port})
				if a == e.End {
					break
				}
			}
		}
	}
	seen := make(map[service.Key]bool, len(vs.Keys))
	for _, k := range vs.Keys {
		if seen[k] {
			p.errorf(st.n, "service %v appears twice in this virtual server", k)
			return false
		}
		seen[k] = true
	}
	return true
}

// serverPort applies keepalived's port rules to a real or sorry server:
// NAT keeps a given port (a missing one is the virtual server's); other
// methods use the virtual server's port, and none with fwmarks.
func (p *parser) serverPort(st *vsState, grp *VirtualServerGroup, n *node, port uint16, m Method, what string) uint16 {
	vs := &st.vs
	if grp != nil {
		if m.Fwd == service.Masq || port == 0 {
			return port
		}
		for _, e := range grp.Entries {
			if e.IsFWMark {
				p.warnf(n, "fwmark virtual server, %s has a port - the port will be ignored", what)
				return port
			}
			if e.Port != port {
				p.warnf(n, "virtual server group entry %s port %d and %s port %d don't match", e.Pos, e.Port, what, port)
			}
		}
		return port
	}
	if m.Fwd == service.Masq {
		if vs.FWMark == 0 && port == 0 {
			return vs.Port
		}
		return port
	}
	if vs.FWMark != 0 {
		if port != 0 {
			p.warnf(n, "fwmark virtual server, %s has a port specified - clearing", what)
		}
		return 0
	}
	if port != 0 && port != vs.Port {
		p.warnf(n, "virtual server port %d and %s port %d don't match - resetting", vs.Port, what, port)
	}
	return vs.Port
}

// finishRS resolves one real server and its checkers.
func (p *parser) finishRS(st *vsState, rs *rsState, grp *VirtualServerGroup) (RealServer, bool) {
	r := rs.rs
	r.Method = p.rsMethod(st, rs)
	if r.Method.Fwd != service.Tunnel && service.FamilyOf(r.Addr) != st.vs.Family {
		p.errorf(rs.n, "address family of the virtual server (%v) and real server %s don't match", st.vs.Family, r.Addr)
		return r, false
	}
	r.Port = p.serverPort(st, grp, rs.n, r.Port, r.Method, "real server")
	r.Weight = st.weight
	if rs.weight != nil {
		r.Weight = *rs.weight
	}
	r.Alpha = st.alpha
	if rs.alpha != Unset {
		r.Alpha = rs.alpha == True
	}
	r.InhibitOnFailure = st.inhibit
	if rs.inhibit != Unset {
		r.InhibitOnFailure = rs.inhibit == True
	}
	r.SMTPAlert = resolveSMTP(rs.smtp, p.cfg.Global, true)
	r.Virtualhost = st.vs.Virtualhost
	if rs.virtualhost != nil {
		r.Virtualhost = *rs.virtualhost
	}
	if ss := st.sorry; ss != nil && ss.Addr == r.Addr && ss.Port == r.Port && ss.Inhibit != r.InhibitOnFailure {
		p.warnf(rs.n, "real server matches the sorry server, but inhibit setting differs; using the real server's")
		ss.Inhibit = r.InhibitOnFailure
	}
	for _, c := range rs.checkers {
		r.Checkers = append(r.Checkers, p.finishCheckers(st, rs, &r, c)...)
	}
	return r, true
}

// inherit resolves one timing value: checker, else real server, else
// virtual server.
func inherit[T any](levels ...*T) *T {
	for _, l := range levels {
		if l != nil {
			return l
		}
	}
	return nil
}

// checkerDefaults are the per-checker defaults of retry and
// delay_before_retry (0: the checker's delay_loop).
func checkerDefaults(k check.Kind) (retry int, dbr time.Duration) {
	switch k {
	case check.KindHTTP, check.KindSSL:
		return 1, 3 * time.Second
	case check.KindDNS:
		return 3, 0
	case check.KindMisc:
		return 0, time.Second
	}
	return 1, time.Second
}
