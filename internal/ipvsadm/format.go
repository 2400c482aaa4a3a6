package ipvsadm

import (
	"fmt"
	"io"
	"net/netip"
	"strconv"
	"sync"

	"golvs/internal/control"
	"golvs/internal/service"
)

// This file is ipvsadm.c's listing code (list_all, list_service,
// print_title, print_service_entry, print_largenum, print_sched_flags,
// addrport_to_anyname, list_timeout, list_daemon) and libipvs' sort
// (ipvs_cmp_services, ipvs_cmp_dests), reproduced byte for byte. The C
// format strings are quoted next to the code that reproduces them.

// Resolver names addresses and ports for listings without -n, as ipvsadm
// does with gethostbyaddr and getservbyport.
type Resolver interface {
	// Host returns the name of addr (the h_name of a reverse lookup), or
	// false to print the address.
	Host(addr netip.Addr) (string, bool)
	// Port returns the name of port for proto (service.ProtoTCP, ProtoUDP
	// or ProtoSCTP; ipvsadm asks for no other protocol), or false to
	// print the number.
	Port(proto uint8, port uint16) (string, bool)
}

// Formatter formats listings (List) and saves (Save). The zero value
// resolves with DefaultPorts.
type Formatter struct {
	// Resolver names addresses and ports when the listing is not numeric.
	// nil means DefaultPorts(): ports named from the built-in table,
	// addresses left numeric (what ipvsadm prints on a host without
	// reverse DNS, as the oracle VM was).
	Resolver Resolver
}

// List writes the listing that `ipvsadm -L` with opt prints for s, byte
// for byte: the connection table with opt.Connections, else the service
// svc when svc is not nil, else the timeouts with opt.Timeout, else the
// sync daemons with opt.Daemon, else every service (ipvsadm's order of
// precedence). A svc that s does not hold is an error wrapping
// control.ErrNoService, and nothing is written; ipvsadm then prints "No
// such service" and exits with status 1.
//
// Names are resolved with DefaultPorts; Formatter.List takes a Resolver.
func List(w io.Writer, s *State, opt ListOptions, svc *service.Key) error {
	return Formatter{}.List(w, s, opt, svc)
}

// List is the package function List with f's resolver.
func (f Formatter) List(w io.Writer, s *State, opt ListOptions, svc *service.Key) error {
	p := f.printer(w, listFlags(opt))
	switch {
	case opt.Connections:
		p.conns(s)
	case svc != nil:
		e := s.findService(*svc)
		if e == nil {
			return fmt.Errorf("list %v: %w", *svc, control.ErrNoService)
		}
		p.title()
		p.service(e)
	case opt.Timeout:
		p.timeout(s)
	case opt.Daemon:
		p.daemons(s)
	default:
		p.all(s)
	}
	return p.flush()
}

// fmtFlags are ipvsadm's FMT_* printing flags.
type fmtFlags uint16

const (
	fmtNumeric fmtFlags = 1 << iota
	fmtRule
	fmtStats
	fmtRate
	fmtThresholds
	fmtPersistentConn
	fmtNoSort
	fmtExact
	fmtTunInfo
)

func listFlags(opt ListOptions) fmtFlags {
	var fl fmtFlags
	set := func(b bool, f fmtFlags) {
		if b {
			fl |= f
		}
	}
	set(opt.Numeric, fmtNumeric)
	set(opt.Stats, fmtStats)
	set(opt.Rate, fmtRate)
	set(opt.Thresholds, fmtThresholds)
	set(opt.PersistentConn, fmtPersistentConn)
	set(opt.NoSort, fmtNoSort)
	set(opt.Exact, fmtExact)
	set(opt.TunInfo, fmtTunInfo)
	return fl
}

// flushAt bounds the output buffered before a write: large enough that a
// typical listing is one write, small enough that a listing of thousands
// of services does not sit in memory whole.
const flushAt = 64 << 10

// printer accumulates output in buf and writes it to w in chunks; the
// first write error sticks and ends the output.
type printer struct {
	w       io.Writer
	buf     []byte
	err     error
	fl      fmtFlags
	r       Resolver
	svcOrd  []int // the order of services
	destOrd []int // the order of one service's destinations
	tmp     []int // merge scratch of the sort (sorts never nest)
}

func (f Formatter) printer(w io.Writer, fl fmtFlags) *printer {
	r := f.Resolver
	if r == nil {
		r = DefaultPorts()
	}
	// The buffer grows up to a chunk and one line for large listings;
	// most listings fit the initial size.
	return &printer{w: w, fl: fl, r: r, buf: make([]byte, 0, 4096)}
}

func (p *printer) flush() error {
	if p.err == nil && len(p.buf) > 0 {
		_, p.err = p.w.Write(p.buf)
	}
	p.buf = p.buf[:0]
	return p.err
}

// nl ends a line, writing out the buffer when it is full.
func (p *printer) nl() {
	p.buf = append(p.buf, '\n')
	if len(p.buf) >= flushAt {
		p.flush()
	}
}

func (p *printer) str(s string) { p.buf = append(p.buf, s...) }

// left appends s padded with spaces to width: printf's "%-Ns".
func (p *printer) left(s string, width int) {
	p.buf = append(p.buf, s...)
	for i := len(s); i < width; i++ {
		p.buf = append(p.buf, ' ')
	}
}

// padFrom pads what was appended since start with spaces to width: the
// "%-Ns" of a name built in place.
func (p *printer) padFrom(start, width int) {
	for i := len(p.buf) - start; i < width; i++ {
		p.buf = append(p.buf, ' ')
	}
}

// right appends s right-aligned in width: printf's "%Ns".
func (p *printer) right(s []byte, width int) {
	for i := len(s); i < width; i++ {
		p.buf = append(p.buf, ' ')
	}
	p.buf = append(p.buf, s...)
}

// u appends v right-aligned in width ("%Nllu").
func (p *printer) u(v uint64, width int) {
	var nb [20]byte
	p.right(strconv.AppendUint(nb[:0], v, 10), width)
}

// uLeft appends v left-aligned in width ("%-Nu").
func (p *printer) uLeft(v uint64, width int) {
	start := len(p.buf)
	p.buf = strconv.AppendUint(p.buf, v, 10)
	p.padFrom(start, width)
}

// dLeft appends v left-aligned in width ("%-Nd").
func (p *printer) dLeft(v int64, width int) {
	start := len(p.buf)
	p.buf = strconv.AppendInt(p.buf, v, 10)
	p.padFrom(start, width)
}

// largenum is print_largenum: a right-aligned number of 9 columns, scaled
// to K/M/G/T beyond 8 digits unless --exact, which widens the column to
// the number's length plus one instead.
func (p *printer) largenum(v uint64) {
	if p.fl&fmtExact != 0 {
		var nb [20]byte
		n := strconv.AppendUint(nb[:0], v, 10)
		w := 9 // "%*llu", len <= 8 ? 9 : len + 1
		if len(n) > 8 {
			w = len(n) + 1
		}
		p.right(n, w)
		return
	}
	// The thresholds and divisors of print_largenum: plain below 100
	// million, then thousands below 1 billion, millions below 100
	// billion, billions below 100 trillion, trillions beyond.
	switch {
	case v < 100000000:
		p.u(v, 9)
		return
	case v < 1000000000:
		p.u(v/1000, 8)
		p.buf = append(p.buf, 'K')
	case v < 100000000000:
		p.u(v/1000000, 8)
		p.buf = append(p.buf, 'M')
	case v < 100000000000000:
		p.u(v/1000000000, 8)
		p.buf = append(p.buf, 'G')
	default:
		p.u(v/1000000000000, 8)
		p.buf = append(p.buf, 'T')
	}
}

// Titles (print_title), built from ipvsadm's format strings.
var (
	titleStats = fmt.Sprintf("%-33s %8s %8s %8s %8s %8s\n  -> RemoteAddress:Port\n",
		"Prot LocalAddress:Port", "Conns", "InPkts", "OutPkts", "InBytes", "OutBytes")
	titleRate = fmt.Sprintf("%-33s %8s %8s %8s %8s %8s\n  -> RemoteAddress:Port\n",
		"Prot LocalAddress:Port", "CPS", "InPPS", "OutPPS", "InBPS", "OutBPS")
	titleThresholds = fmt.Sprintf("%-33s %-10s %-10s %-10s %-10s\n  -> RemoteAddress:Port\n",
		"Prot LocalAddress:Port", "Uthreshold", "Lthreshold", "ActiveConn", "InActConn")
	titlePersistentConn = fmt.Sprintf("%-33s %-9s %-11s %-10s %-10s\n  -> RemoteAddress:Port\n",
		"Prot LocalAddress:Port", "Weight", "PersistConn", "ActiveConn", "InActConn")
	titleTunInfo = "Prot LocalAddress:Port Scheduler Flags\n" +
		"  -> RemoteAddress:Port           Forward TunnelInfo    Weight ActiveConn InActConn\n"
	titleDefault = "Prot LocalAddress:Port Scheduler Flags\n" +
		"  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n"
)

func (p *printer) title() {
	switch fl := p.fl; {
	case fl&fmtStats != 0:
		p.str(titleStats)
	case fl&fmtRate != 0:
		p.str(titleRate)
	case fl&fmtThresholds != 0:
		p.str(titleThresholds)
	case fl&fmtPersistentConn != 0:
		p.str(titlePersistentConn)
	case fl&fmtTunInfo != 0:
		p.str(titleTunInfo)
	case fl&fmtRule == 0:
		p.str(titleDefault)
	}
}

// all is list_all: the version line (not in a save), the title and every
// service, sorted unless --nosort.
func (p *printer) all(s *State) {
	if p.fl&fmtRule == 0 {
		// "IP Virtual Server version %d.%d.%d (size=%d)\n"
		p.str("IP Virtual Server version ")
		p.buf = strconv.AppendUint(p.buf, uint64(s.Version>>16&0xff), 10)
		p.buf = append(p.buf, '.')
		p.buf = strconv.AppendUint(p.buf, uint64(s.Version>>8&0xff), 10)
		p.buf = append(p.buf, '.')
		p.buf = strconv.AppendUint(p.buf, uint64(s.Version&0xff), 10)
		p.str(" (size=")
		p.buf = strconv.AppendInt(p.buf, int64(int32(s.ConnTabSize)), 10)
		p.buf = append(p.buf, ')')
		p.nl()
	}
	p.title()
	ord := identityOrder(&p.svcOrd, len(s.Services))
	if p.fl&fmtNoSort == 0 {
		p.sort(ord, func(a, b int) int { return cmpServices(&s.Services[a], &s.Services[b]) })
	}
	for _, i := range ord {
		p.service(&s.Services[i])
	}
}

// identityOrder returns 0..n-1 in the scratch slice *s.
func identityOrder(s *[]int, n int) []int {
	if cap(*s) < n {
		*s = make([]int, n)
	}
	ord := (*s)[:n]
	for i := range ord {
		ord[i] = i
	}
	return ord
}

// sort sorts ord as glibc's qsort does (msort.c, a top-down merge sort,
// which glibc up to 2.36 uses whenever the temporary buffer fits in
// memory): ipvsadm's comparisons are int subtractions that wrap, so they
// are not always transitive, and only the same algorithm gives the same
// order for such inputs.
func (p *printer) sort(ord []int, cmp func(a, b int) int) {
	if cap(p.tmp) < len(ord) {
		p.tmp = make([]int, len(ord))
	}
	msort(ord, p.tmp[:len(ord)], cmp)
}

// msort is glibc's msort_with_tmp: sort each half, then merge, taking from
// the first half while cmp(first, second) <= 0.
func msort(v, tmp []int, cmp func(a, b int) int) {
	n := len(v)
	if n <= 1 {
		return
	}
	n1 := n / 2
	msort(v[:n1], tmp, cmp)
	msort(v[n1:], tmp, cmp)
	b1, b2 := v[:n1], v[n1:]
	t := tmp[:0]
	for len(b1) > 0 && len(b2) > 0 {
		if cmp(b1[0], b2[0]) <= 0 {
			t = append(t, b1[0])
			b1 = b1[1:]
		} else {
			t = append(t, b2[0])
			b2 = b2[1:]
		}
	}
	t = append(t, b1...)
	copy(v, t) // what is left of the second half is already in place
}

// Address families as ipvsadm compares them (AF_INET, AF_INET6).
const (
	afInet  = 2
	afInet6 = 10
)

func afNum(f service.Family) int {
	if f == service.IPv6 {
		return afInet6
	}
	return afInet
}

// inetUnion is an address as the kernel's union nf_inet_addr holds it: an
// IPv4 address in the first four bytes, the rest zero.
func inetUnion(a netip.Addr) (u [16]byte) {
	if a.Is4() {
		b := a.As4()
		copy(u[:], b[:])
	} else if a.Is6() {
		u = a.As16()
	}
	return u
}

func unionWord(u *[16]byte, i int) uint32 {
	return uint32(u[4*i])<<24 | uint32(u[4*i+1])<<16 | uint32(u[4*i+2])<<8 | uint32(u[4*i+3])
}

// cmpAddr is the address part of ipvs_cmp_services and ipvs_cmp_dests:
// host-order words subtracted as unsigned and the difference taken as an
// int, so that addresses 2^31 or more apart compare the wrong way round.
// The first operand's family decides how many words count.
func cmpAddr(af int, a, b *[16]byte) int {
	if af == afInet6 {
		for i := 0; i < 4; i++ {
			if r := int32(unionWord(a, i) - unionWord(b, i)); r != 0 {
				return int(r)
			}
		}
		return 0
	}
	return int(int32(unionWord(a, 0) - unionWord(b, 0)))
}

// svcView is a service as libipvs reports it: fwmark services have no
// protocol, address or port.
func svcView(e *ServiceEntry) (proto uint8, addr [16]byte, port uint16) {
	if e.Key.FWMark != 0 {
		return 0, addr, 0
	}
	return e.Key.Proto, inetUnion(e.Key.Addr), e.Key.Port
}

// cmpServices is ipvs_cmp_services: fwmark (u32 subtraction taken as an
// int: mark 4294967295 sorts before mark 0, so "FWM  -1" comes first),
// family, protocol, address, port.
func cmpServices(a, b *ServiceEntry) int {
	if r := int32(a.Key.FWMark - b.Key.FWMark); r != 0 {
		return int(r)
	}
	afa := afNum(a.Key.Family)
	if r := afa - afNum(b.Key.Family); r != 0 {
		return r
	}
	pa, ua, porta := svcView(a)
	pb, ub, portb := svcView(b)
	if r := int(pa) - int(pb); r != 0 {
		return r
	}
	if r := cmpAddr(afa, &ua, &ub); r != 0 {
		return r
	}
	return int(porta) - int(portb)
}

// destFamily is a destination's family: its address's, or its service's
// when the address is unset.
func destFamily(d *DestEntry, svc service.Family) service.Family {
	switch {
	case d.Addr.Is4():
		return service.IPv4
	case d.Addr.Is6():
		return service.IPv6
	}
	return svc
}

// cmpDests is ipvs_cmp_dests: address (by the first destination's family),
// then port.
func cmpDests(a, b *DestEntry, svc service.Family) int {
	ua, ub := inetUnion(a.Addr), inetUnion(b.Addr)
	if r := cmpAddr(afNum(destFamily(a, svc)), &ua, &ub); r != 0 {
		return r
	}
	return int(a.Port) - int(b.Port)
}

// protocolName is ipvsadm's protocol_name.
func protocolName(proto uint8) string {
	switch proto {
	case service.ProtoTCP:
		return "TCP"
	case service.ProtoUDP:
		return "UDP"
	case service.ProtoSCTP:
		return "SCTP"
	}
	return "?"
}

// protocolOption is ipvsadm's option_from_protocol, with the fallback of
// print_service_entry.
func protocolOption(proto uint8) string {
	switch proto {
	case service.ProtoTCP:
		return "-t"
	case service.ProtoUDP:
		return "-u"
	case service.ProtoSCTP:
		return "--sctp-service"
	}
	return "--xxx-service"
}

// fwdName is fwd_name; printf prints a NULL string as "(null)".
func fwdName(m service.FwdMethod) string {
	switch m & 7 { // IP_VS_CONN_F_FWD_MASK
	case service.Masq:
		return "Masq"
	case service.LocalNode:
		return "Local"
	case service.Tunnel:
		return "Tunnel"
	case service.Route:
		return "Route"
	}
	return "(null)"
}

// fwdSwitch is fwd_switch: the -S option of a forwarding method.
func fwdSwitch(m service.FwdMethod) string {
	switch m & 7 {
	case service.Masq:
		return "-m"
	case service.Tunnel:
		return "-i"
	case service.LocalNode, service.Route:
		return "-g"
	}
	return "(null)"
}

var (
	tunNames     = [...]string{"ipip", "gue", "gre"}
	tunFlagNames = [...]string{"-c", "+c", "r+c"}
	tunFlagOpts  = [...]string{"--tun-nocsum", "--tun-csum", "--tun-remcsum"}
)

// tunFlag indexes one of the tables above by tunnel flags the way ipvsadm
// does (tunflags[e->tun_flags]); flags it has no entry for, which ipvsadm
// would read past its table for, print "(null)".
func tunFlag(tab *[3]string, f service.TunFlags) string {
	if int(f) < len(tab) {
		return tab[f]
	}
	return "(null)"
}

// tunInfo is fwd_tun_info: "ipip", "gue:PORT:FLAGS", "gre:FLAGS", or
// "n/a" for other methods and unknown tunnel types. ipvsadm builds it in a
// 16-byte buffer, so it is cut at 15 bytes.
func tunInfo(c *service.DestConfig) string {
	if c.Fwd&7 != service.Tunnel {
		return "n/a"
	}
	var s string
	switch c.TunType {
	case service.TunIPIP:
		s = tunNames[c.TunType]
	case service.TunGUE:
		s = tunNames[c.TunType] + ":" + strconv.Itoa(int(c.TunPort)) + ":" + tunFlag(&tunFlagNames, c.TunFlags)
	case service.TunGRE:
		s = tunNames[c.TunType] + ":" + tunFlag(&tunFlagNames, c.TunFlags)
	default:
		return "n/a"
	}
	if len(s) > 15 {
		s = s[:15]
	}
	return s
}

// schedFlags is print_sched_flags: the scheduler flags by the names the
// scheduler knows them by.
func (p *printer) schedFlags(c *service.Config) {
	var names [3]string
	n := 0
	add := func(set bool, name string) {
		if set {
			names[n] = name
			n++
		}
	}
	switch c.Sched {
	case "sh":
		add(c.Flags&service.FlagSHFallback != 0, "sh-fallback")
		add(c.Flags&service.FlagSHPort != 0, "sh-port")
	case "mh":
		add(c.Flags&service.FlagMHFallback != 0, "mh-fallback")
		add(c.Flags&service.FlagMHPort != 0, "mh-port")
	default:
		add(c.Flags&service.FlagSched1 != 0, "flag-1")
		add(c.Flags&service.FlagSched2 != 0, "flag-2")
		add(c.Flags&service.FlagSched3 != 0, "flag-3")
	}
	for i := 0; i < n; i++ {
		if i > 0 {
			p.buf = append(p.buf, ',')
		}
		p.str(names[i])
	}
}

const schedFlagsMask = service.FlagSched1 | service.FlagSched2 | service.FlagSched3

// schedName is the scheduler name the kernel reports: "none" when the
// service has no scheduler (ip_vs_genl_fill_service).
func schedName(c *service.Config) string {
	if c.Sched == "" {
		return "none"
	}
	return c.Sched
}

// maxAddrPort is the size of addrport_to_anyname's buffer less its NUL:
// longer names are cut there.
const maxAddrPort = 59

// addrPort appends addrport_to_anyname: "addr:port" or "[addr]:port",
// with names unless numeric; proto selects the services table (none for
// protocols other than TCP, UDP and SCTP).
func (p *printer) addrPort(fam service.Family, u *[16]byte, port uint16, proto uint8) {
	start := len(p.buf)
	if fam == service.IPv6 {
		p.buf = append(p.buf, '[')
	}
	named := false
	if p.fl&fmtNumeric == 0 {
		var a netip.Addr
		if fam == service.IPv6 {
			a = netip.AddrFrom16(*u)
		} else {
			a = netip.AddrFrom4([4]byte{u[0], u[1], u[2], u[3]})
		}
		if name, ok := p.r.Host(a); ok {
			p.str(name)
			named = true
		}
	}
	if !named {
		p.buf = appendNtop(p.buf, fam, u)
	}
	if fam == service.IPv6 {
		p.buf = append(p.buf, ']')
	}
	p.buf = append(p.buf, ':')
	named = false
	if p.fl&fmtNumeric == 0 {
		switch proto {
		case service.ProtoTCP, service.ProtoUDP, service.ProtoSCTP:
			if name, ok := p.r.Port(proto, port); ok {
				p.str(name)
				named = true
			}
		}
	}
	if !named {
		p.buf = strconv.AppendUint(p.buf, uint64(port), 10)
	}
	if len(p.buf)-start > maxAddrPort {
		p.buf = p.buf[:start+maxAddrPort]
	}
}

// cut shortens what was appended since start to at most n bytes (ipvsadm
// writes a NUL into its name buffers: svc_name[33], dname[28]).
func (p *printer) cut(start, n int) {
	if len(p.buf)-start > n {
		p.buf = p.buf[:start+n]
	}
}

// appendNtop is inet_ntop: dotted quad for IPv4, glibc's inet_ntop6 for
// IPv6 (the longest run of two or more zero groups becomes "::", the
// first on ties; "::a.b.c.d" and "::ffff:a.b.c.d" keep the dotted tail).
func appendNtop(dst []byte, fam service.Family, u *[16]byte) []byte {
	if fam != service.IPv6 {
		return netip.AddrFrom4([4]byte{u[0], u[1], u[2], u[3]}).AppendTo(dst)
	}
	var words [8]uint16
	for i := range words {
		words[i] = uint16(u[2*i])<<8 | uint16(u[2*i+1])
	}
	bestBase, bestLen, curBase, curLen := -1, 0, -1, 0
	for i, w := range words {
		if w == 0 {
			if curBase == -1 {
				curBase, curLen = i, 1
			} else {
				curLen++
			}
		} else if curBase != -1 {
			if bestBase == -1 || curLen > bestLen {
				bestBase, bestLen = curBase, curLen
			}
			curBase = -1
		}
	}
	if curBase != -1 && (bestBase == -1 || curLen > bestLen) {
		bestBase, bestLen = curBase, curLen
	}
	if bestBase != -1 && bestLen < 2 {
		bestBase = -1
	}
	for i := 0; i < len(words); i++ {
		if bestBase != -1 && i >= bestBase && i < bestBase+bestLen {
			if i == bestBase {
				dst = append(dst, ':')
			}
			continue
		}
		if i != 0 {
			dst = append(dst, ':')
		}
		if i == 6 && bestBase == 0 && (bestLen == 6 || (bestLen == 5 && words[5] == 0xffff)) {
			return netip.AddrFrom4([4]byte{u[12], u[13], u[14], u[15]}).AppendTo(dst)
		}
		dst = strconv.AppendUint(dst, uint64(words[i]), 16)
	}
	if bestBase != -1 && bestBase+bestLen == len(words) {
		dst = append(dst, ':')
	}
	return dst
}

// svcName appends print_service_entry's svc_name: "FWM  %d[ IPv6]" or
// "%-4s %s" (cut at 33 bytes for IPv4) in a listing, "-f %d[ -6]" or
// "<option> %s" in a save. The mark is printed signed, as ipvsadm 1.31
// does: mark 4294967295 is "-1".
func (p *printer) svcName(e *ServiceEntry) {
	k := &e.Key
	fam := famOf(k.Family)
	rule := p.fl&fmtRule != 0
	if k.FWMark != 0 {
		if rule {
			p.str("-f ")
		} else {
			p.str("FWM  ")
		}
		p.buf = strconv.AppendInt(p.buf, int64(int32(k.FWMark)), 10)
		if fam == service.IPv6 {
			if rule {
				p.str(" -6")
			} else {
				p.str(" IPv6")
			}
		}
		return
	}
	start := len(p.buf)
	if rule {
		p.str(protocolOption(k.Proto))
		p.buf = append(p.buf, ' ')
	} else {
		p.left(protocolName(k.Proto), 4)
		p.buf = append(p.buf, ' ')
	}
	u := inetUnion(k.Addr)
	p.addrPort(fam, &u, k.Port, k.Proto)
	if !rule && fam != service.IPv6 {
		p.cut(start, 33)
	}
}

// famOf maps a family to the two ipvsadm knows; anything but IPv6 is
// printed as IPv4.
func famOf(f service.Family) service.Family {
	if f == service.IPv6 {
		return service.IPv6
	}
	return service.IPv4
}

// svcLine appends the part of a service line after the name in the
// default, --thresholds, --persistent-conn and --tun-info listings.
func (p *printer) svcLine(e *ServiceEntry) {
	c := &e.Config
	// "%s %s" svc_name, sched_name
	p.buf = append(p.buf, ' ')
	p.str(schedName(c))
	if c.Flags&schedFlagsMask != 0 {
		p.str(" (")
		p.schedFlags(c)
		p.buf = append(p.buf, ')')
	}
	if c.Persistent() {
		p.str(" persistent ")
		p.buf = strconv.AppendUint(p.buf, uint64(c.Timeout), 10)
		p.mask(e, " mask ")
		if c.PE != "" {
			p.str(" pe ")
			p.str(c.PE)
		}
	}
	if c.Flags&service.FlagOnePacket != 0 {
		p.str(" ops")
	}
}

// mask appends prefix and the persistence netmask when it is not the
// default: a dotted mask for IPv4 (inet_ntoa), a prefix length for IPv6.
func (p *printer) mask(e *ServiceEntry, prefix string) {
	m := e.Config.Netmask
	if famOf(e.Key.Family) == service.IPv6 {
		if m != 128 {
			p.str(prefix)
			p.buf = strconv.AppendInt(p.buf, int64(int32(m)), 10)
		}
		return
	}
	if m != 0xffffffff {
		p.str(prefix)
		p.buf = netip.AddrFrom4([4]byte{byte(m >> 24), byte(m >> 16), byte(m >> 8), byte(m)}).AppendTo(p.buf)
	}
}

// ruleLine appends the rest of a "-A" line of a save.
func (p *printer) ruleLine(e *ServiceEntry) {
	c := &e.Config
	// "-A %s -s %s"
	p.str(" -s ")
	p.str(schedName(c))
	if c.Persistent() {
		p.str(" -p ")
		p.buf = strconv.AppendUint(p.buf, uint64(c.Timeout), 10)
		p.mask(e, " -M ")
	}
	if c.PE != "" {
		p.str(" --pe ")
		p.str(c.PE)
	}
	if c.Flags&service.FlagOnePacket != 0 {
		p.str(" -o")
	}
	if c.Flags&schedFlagsMask != 0 {
		p.str(" -b ")
		p.schedFlags(c)
	}
}

// service is print_service_entry: the service line and its destinations,
// sorted unless --nosort.
func (p *printer) service(e *ServiceEntry) {
	fl := p.fl
	svcStart := len(p.buf)
	if fl&fmtRule != 0 {
		p.str("-A ")
	}
	p.svcName(e)
	// A save repeats the service's name on each "-a" line.
	var svcName string
	if fl&fmtRule != 0 {
		svcName = string(p.buf[svcStart+len("-A "):])
	}
	switch {
	case fl&fmtRule != 0:
		p.ruleLine(e)
	case fl&fmtStats != 0:
		p.padFrom(svcStart, 33) // "%-33s"
		st := &e.Stats
		p.largenum(st.Conns)
		p.largenum(st.InPkts)
		p.largenum(st.OutPkts)
		p.largenum(st.InBytes)
		p.largenum(st.OutBytes)
	case fl&fmtRate != 0:
		p.padFrom(svcStart, 33)
		r := &e.Rates
		p.largenum(r.CPS)
		p.largenum(r.InPPS)
		p.largenum(r.OutPPS)
		p.largenum(r.InBPS)
		p.largenum(r.OutBPS)
	default:
		p.svcLine(e)
	}
	p.nl()

	ord := identityOrder(&p.destOrd, len(e.Dests))
	if fl&fmtNoSort == 0 {
		fam := famOf(e.Key.Family)
		p.sort(ord, func(a, b int) int { return cmpDests(&e.Dests[a], &e.Dests[b], fam) })
	}
	proto, _, _ := svcView(e)
	for _, i := range ord {
		p.dest(e, &e.Dests[i], proto, svcName)
	}
}

// dest is one destination line of print_service_entry.
func (p *printer) dest(e *ServiceEntry, d *DestEntry, proto uint8, svcName string) {
	fl := p.fl
	fam := destFamily(d, famOf(e.Key.Family))
	u := inetUnion(d.Addr)
	c := &d.Config
	if fl&fmtRule != 0 {
		// "-a %s -r %s %s -w %d", then the tunnel options (print_tunnel_rule)
		p.str("-a ")
		p.str(svcName)
		p.str(" -r ")
		p.addrPort(fam, &u, d.Port, proto)
		p.buf = append(p.buf, ' ')
		p.str(fwdSwitch(c.Fwd))
		p.str(" -w ")
		p.buf = strconv.AppendInt(p.buf, int64(c.Weight), 10)
		if c.Fwd&7 == service.Tunnel {
			switch c.TunType {
			case service.TunGRE:
				p.str(" --tun-type gre ")
				p.str(tunFlag(&tunFlagOpts, c.TunFlags))
			case service.TunGUE:
				p.str(" --tun-type gue --tun-port ")
				p.buf = strconv.AppendUint(p.buf, uint64(c.TunPort), 10)
				p.buf = append(p.buf, ' ')
				p.str(tunFlag(&tunFlagOpts, c.TunFlags))
			case service.TunIPIP:
				p.str(" --tun-type ipip")
			}
		}
		p.nl()
		return
	}
	// "  -> %-28s": the name is cut at 28 bytes unless IPv6.
	p.str("  -> ")
	start := len(p.buf)
	p.addrPort(fam, &u, d.Port, proto)
	if fam != service.IPv6 {
		p.cut(start, 28)
	}
	p.padFrom(start, 28)
	switch {
	case fl&fmtStats != 0:
		st := &d.Stats
		p.largenum(st.Conns)
		p.largenum(st.InPkts)
		p.largenum(st.OutPkts)
		p.largenum(st.InBytes)
		p.largenum(st.OutBytes)
	case fl&fmtRate != 0:
		// " %8llu %8llu %8llu": the per-second counts are not scaled.
		r := &d.Rates
		p.buf = append(p.buf, ' ')
		p.u(r.CPS, 8)
		p.buf = append(p.buf, ' ')
		p.u(r.InPPS, 8)
		p.buf = append(p.buf, ' ')
		p.u(r.OutPPS, 8)
		p.largenum(r.InBPS)
		p.largenum(r.OutBPS)
	case fl&fmtThresholds != 0:
		// " %-10u %-10u %-10u %-10u"
		p.buf = append(p.buf, ' ')
		p.uLeft(uint64(c.UThreshold), 10)
		p.buf = append(p.buf, ' ')
		p.uLeft(uint64(c.LThreshold), 10)
		p.buf = append(p.buf, ' ')
		p.uLeft(uint64(d.ActiveConns), 10)
		p.buf = append(p.buf, ' ')
		p.uLeft(uint64(d.InactConns), 10)
	case fl&fmtPersistentConn != 0:
		// " %-9u %-11u %-10u %-10u": the weight unsigned
		p.buf = append(p.buf, ' ')
		p.uLeft(uint64(uint32(c.Weight)), 9)
		p.buf = append(p.buf, ' ')
		p.uLeft(uint64(d.PersistConns), 11)
		p.buf = append(p.buf, ' ')
		p.uLeft(uint64(d.ActiveConns), 10)
		p.buf = append(p.buf, ' ')
		p.uLeft(uint64(d.InactConns), 10)
	case fl&fmtTunInfo != 0:
		// " %-7s %-13s %-6d %-10u %-10u"
		p.buf = append(p.buf, ' ')
		p.left(fwdName(c.Fwd), 7)
		p.buf = append(p.buf, ' ')
		p.left(tunInfo(c), 13)
		p.buf = append(p.buf, ' ')
		p.dLeft(int64(c.Weight), 6)
		p.buf = append(p.buf, ' ')
		p.uLeft(uint64(d.ActiveConns), 10)
		p.buf = append(p.buf, ' ')
		p.uLeft(uint64(d.InactConns), 10)
	default:
		// " %-7s %-6d %-10u %-10u"
		p.buf = append(p.buf, ' ')
		p.left(fwdName(c.Fwd), 7)
		p.buf = append(p.buf, ' ')
		p.dLeft(int64(c.Weight), 6)
		p.buf = append(p.buf, ' ')
		p.uLeft(uint64(d.ActiveConns), 10)
		p.buf = append(p.buf, ' ')
		p.uLeft(uint64(d.InactConns), 10)
	}
	p.nl()
}

// timeout is list_timeout: "Timeout (tcp tcpfin udp): %d %d %d\n".
func (p *printer) timeout(s *State) {
	t := &s.Timeouts
	p.str("Timeout (tcp tcpfin udp): ")
	p.buf = strconv.AppendInt(p.buf, int64(int32(t.TCP)), 10)
	p.buf = append(p.buf, ' ')
	p.buf = strconv.AppendInt(p.buf, int64(int32(t.TCPFin)), 10)
	p.buf = append(p.buf, ' ')
	p.buf = strconv.AppendInt(p.buf, int64(int32(t.UDP)), 10)
	p.nl()
}

// daemons is list_daemon: the master's line, then the backup's (the
// kernel reports them in that order); nothing when none runs.
//
//	"%s sync daemon (mcast=%s, syncid=%d" [", maxlen=%u"] [", group=%s"]
//	[", port=%u"] [", ttl=%u"] ")\n"
func (p *printer) daemons(s *State) {
	for _, role := range [...]string{DaemonMaster, DaemonBackup} {
		for i := range s.Daemons {
			d := &s.Daemons[i]
			if d.State != role {
				continue
			}
			p.str(role)
			p.str(" sync daemon (mcast=")
			p.str(d.MCastIfn)
			p.str(", syncid=")
			p.buf = strconv.AppendInt(p.buf, int64(int32(d.SyncID)), 10)
			if d.SyncMaxLen != 0 {
				p.str(", maxlen=")
				p.buf = strconv.AppendUint(p.buf, uint64(d.SyncMaxLen), 10)
			}
			if d.MCastGroup.IsValid() {
				fam := service.IPv4
				if d.MCastGroup.Is6() {
					fam = service.IPv6
				}
				u := inetUnion(d.MCastGroup)
				p.str(", group=")
				p.buf = appendNtop(p.buf, fam, &u)
			}
			if d.MCastPort != 0 {
				p.str(", port=")
				p.buf = strconv.AppendUint(p.buf, uint64(d.MCastPort), 10)
			}
			if d.MCastTTL != 0 {
				p.str(", ttl=")
				p.buf = strconv.AppendUint(p.buf, uint64(d.MCastTTL), 10)
			}
			p.buf = append(p.buf, ')')
			p.nl()
		}
	}
}

// PortTable names ports per protocol as getservbyport reads /etc/services:
// the first entry for a port and protocol wins. It is a Resolver that
// names no hosts, over the same services database the parser reads names
// with (ServiceNames). A PortTable is immutable and safe for concurrent
// use.
type PortTable struct {
	s *ServiceNames
}

// ParsePorts reads a services table in /etc/services format ("name
// port/protocol aliases... # comment"); entries for protocols other than
// tcp, udp and sctp, and malformed lines, are skipped as glibc skips them.
func ParsePorts(r io.Reader) (*PortTable, error) {
	s, err := ParseServiceNames(r)
	if err != nil {
		return nil, err
	}
	return &PortTable{s: s}, nil
}

// Port implements Resolver.
func (t *PortTable) Port(proto uint8, port uint16) (string, bool) { return t.s.Name(port, proto) }

// Host implements Resolver: a PortTable names no addresses.
func (t *PortTable) Host(netip.Addr) (string, bool) { return "", false }

// DefaultPorts returns the built-in table: Debian netbase 6.4's
// /etc/services (as on the oracle VM and Debian bookworm), the table the
// parser's BuiltinServiceNames holds. To name ports as the host does, read
// the host's table with ParsePorts.
func DefaultPorts() *PortTable { return defaultPorts() }

var defaultPorts = sync.OnceValue(func() *PortTable { return &PortTable{s: BuiltinServiceNames()} })
