package fwmark

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// Parse reads mark rules in iptables syntax: the mangle table of
// iptables-save output, or lines as typed to iptables, for example
//
//	-A PREROUTING -d 198.18.0.10 -p tcp -m multiport --dports 80,443 -j MARK --set-mark 1
//	iptables -t mangle -A PREROUTING -d 198.18.0.11/32 -p udp --dport 53 -j MARK --set-mark 2
//	ip6tables -t mangle -A PREROUTING -d 2001:db8::10 -p tcp --dport 80 -j MARK --set-mark 3
//
// Only rules of the PREROUTING chain count (other chains of other tables
// are skipped, as the kernel would not mark the director's incoming
// packets with them); lines starting with '#', '*', ':' and COMMIT are
// the file's structure. A list of addresses (-d a,b) becomes one rule per
// address, as iptables makes it. name is used in messages and origins.
// Every line that cannot be translated is an error that names it; the
// rules of the good lines are returned with the errors.
func Parse(name string, data []byte) ([]Rule, error) {
	var rules []Rule
	var errs []error
	table := "mangle"
	for i, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		where := fmt.Sprintf("%s:%d", name, i+1)
		switch {
		case line == "" || line[0] == '#' || line[0] == ':' || line == "COMMIT":
			continue
		case line[0] == '*':
			table = line[1:]
			continue
		}
		rs, err := parseLine(line, table, where)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", where, err))
			continue
		}
		rules = append(rules, rs...)
	}
	return rules, errors.Join(errs...)
}

// parseLine translates one rule line.
func parseLine(line, table, origin string) ([]Rule, error) {
	args, err := splitArgs(line)
	if err != nil {
		return nil, err
	}
	var family uint8 = 4
	switch {
	case len(args) > 0 && (args[0] == "iptables" || args[0] == "iptables-nft" || args[0] == "iptables-legacy"):
		args = args[1:]
	case len(args) > 0 && (args[0] == "ip6tables" || args[0] == "ip6tables-nft" || args[0] == "ip6tables-legacy"):
		family, args = 6, args[1:]
	}
	r := Rule{Family: family, Origin: origin}
	var chain string
	var srcs, dsts []netip.Prefix
	not := false
	target := ""
	for len(args) > 0 {
		a := args[0]
		args = args[1:]
		val := func() (string, error) {
			if len(args) == 0 {
				return "", fmt.Errorf("%s needs a value", a)
			}
			v := args[0]
			args = args[1:]
			return v, nil
		}
		if a == "!" {
			not = true
			continue
		}
		neg := not
		not = false
		var v string
		var err error
		switch a {
		case "-t", "--table", "-A", "--append", "-I", "--insert",
			"-s", "--source", "-d", "--destination", "-p", "--protocol",
			"-i", "--in-interface", "-m", "--match", "-j", "--jump",
			"--dport", "--destination-port", "--sport", "--source-port",
			"--dports", "--destination-ports", "--sports", "--source-ports",
			"--set-mark", "--set-xmark", "--and-mark", "--or-mark", "--xor-mark", "--comment":
			if v, err = val(); err != nil {
				return nil, err
			}
		}
		switch a {
		case "-t", "--table":
			table = v
		case "-A", "--append":
			chain = v
		case "-I", "--insert":
			chain = v
			// An optional rule number follows; order within the file
			// is the order of evaluation.
			if len(args) > 0 {
				if _, err := strconv.Atoi(args[0]); err == nil {
					args = args[1:]
				}
			}
		case "-s", "--source", "-d", "--destination":
			ps, err := parsePrefixes(v, family)
			if err != nil {
				return nil, err
			}
			if neg && len(ps) > 1 {
				return nil, fmt.Errorf("! %s with a list of addresses", a)
			}
			if a == "-s" || a == "--source" {
				srcs, r.NotSrc = ps, neg
			} else {
				dsts, r.NotDst = ps, neg
			}
			continue
		case "-p", "--protocol":
			if neg {
				return nil, fmt.Errorf("! -p is not supported")
			}
			if r.Proto, err = parseProto(v); err != nil {
				return nil, err
			}
			continue
		case "-i", "--in-interface":
			if neg {
				return nil, fmt.Errorf("! -i is not supported")
			}
			r.InIface = v
			continue
		case "-m", "--match":
			switch v {
			case "multiport", "tcp", "udp", "sctp", "comment":
			default:
				return nil, fmt.Errorf("match %q cannot be translated", v)
			}
		case "--comment":
		case "--dport", "--destination-port", "--dports", "--destination-ports",
			"--sport", "--source-port", "--sports", "--source-ports":
			if neg {
				return nil, fmt.Errorf("! %s is not supported", a)
			}
			prs, err := parsePorts(v)
			if err != nil {
				return nil, err
			}
			if strings.HasPrefix(a, "--d") {
				r.DPorts = prs
			} else {
				r.SPorts = prs
			}
		case "-j", "--jump":
			target = v
			switch v {
			case "MARK":
			case "ACCEPT", "RETURN":
				r.Stop = true
			default:
				return nil, fmt.Errorf("target %q cannot be translated (only MARK, ACCEPT and RETURN)", v)
			}
		case "--set-mark", "--set-xmark", "--and-mark", "--or-mark", "--xor-mark":
			if target != "MARK" {
				return nil, fmt.Errorf("%s without -j MARK", a)
			}
			if err := parseMarkOp(&r, a, v); err != nil {
				return nil, err
			}
		default:
			return nil, fmt.Errorf("option %q cannot be translated", a)
		}
		if neg {
			return nil, fmt.Errorf("! before %s is not supported", a)
		}
	}
	if table != "mangle" || chain != "PREROUTING" {
		return nil, nil // not a rule that marks incoming packets
	}
	if target == "" {
		return nil, fmt.Errorf("no target (-j MARK, ACCEPT or RETURN)")
	}
	if target == "MARK" && r.Mask == 0 && r.Mark == 0 {
		return nil, fmt.Errorf("-j MARK without --set-mark, --set-xmark, --and-mark, --or-mark or --xor-mark")
	}
	if (r.DPorts != nil || r.SPorts != nil) && r.Proto != 6 && r.Proto != 17 && r.Proto != 132 {
		return nil, fmt.Errorf("ports need -p tcp, udp or sctp")
	}
	// One rule per source and destination, as iptables expands lists.
	if srcs == nil {
		srcs = []netip.Prefix{{}}
	}
	if dsts == nil {
		dsts = []netip.Prefix{{}}
	}
	var out []Rule
	for _, s := range srcs {
		for _, d := range dsts {
			x := r
			x.Src, x.Dst = s, d
			out = append(out, x)
		}
	}
	return out, nil
}

// splitArgs splits a line into words, honouring double quotes (comments).
func splitArgs(line string) ([]string, error) {
	var out []string
	var cur strings.Builder
	in, quoted := false, false
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case c == '"':
			quoted = !quoted
			in = true
		case !quoted && (c == ' ' || c == '\t'):
			if in {
				out = append(out, cur.String())
				cur.Reset()
				in = false
			}
		default:
			cur.WriteByte(c)
			in = true
		}
	}
	if quoted {
		return nil, fmt.Errorf("unterminated quote")
	}
	if in {
		out = append(out, cur.String())
	}
	return out, nil
}

func parsePrefixes(v string, family uint8) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, s := range strings.Split(v, ",") {
		var p netip.Prefix
		var err error
		if strings.Contains(s, "/") {
			if p, err = netip.ParsePrefix(s); err != nil {
				// iptables also takes a dotted mask: 198.18.0.0/255.255.0.0.
				i := strings.IndexByte(s, '/')
				a, err1 := netip.ParseAddr(s[:i])
				m, err2 := netip.ParseAddr(s[i+1:])
				if err1 != nil || err2 != nil || !m.Is4() {
					return nil, fmt.Errorf("bad address %q", s)
				}
				ones, ok := maskOnes(m.As4())
				if !ok {
					return nil, fmt.Errorf("bad netmask %q", s)
				}
				p = netip.PrefixFrom(a, ones)
			}
		} else {
			a, err := netip.ParseAddr(s)
			if err != nil {
				return nil, fmt.Errorf("bad address %q (host names are not resolved)", s)
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		if (family == 4) != p.Addr().Is4() {
			return nil, fmt.Errorf("address %q is not of the rule's family", s)
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

func maskOnes(b [4]byte) (int, bool) {
	m := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	ones := 0
	for m&0x80000000 != 0 {
		ones++
		m <<= 1
	}
	return ones, m == 0
}

func parseProto(v string) (uint8, error) {
	switch strings.ToLower(v) {
	case "tcp":
		return 6, nil
	case "udp":
		return 17, nil
	case "sctp":
		return 132, nil
	case "all", "0":
		return 0, nil
	}
	n, err := strconv.ParseUint(v, 10, 8)
	if err != nil {
		return 0, fmt.Errorf("unknown protocol %q", v)
	}
	switch n {
	case 6, 17, 132:
		return uint8(n), nil
	}
	return 0, fmt.Errorf("protocol %q: a virtual service is TCP, UDP or SCTP", v)
}

// parsePorts reads a port, a range "a:b", or a multiport list of both.
func parsePorts(v string) ([]PortRange, error) {
	var out []PortRange
	for _, s := range strings.Split(v, ",") {
		lo, hi, isRange := strings.Cut(s, ":")
		l, err := parsePort(lo, 0)
		if err != nil {
			return nil, err
		}
		h := l
		if isRange {
			if h, err = parsePort(hi, 65535); err != nil {
				return nil, err
			}
		}
		if h < l {
			return nil, fmt.Errorf("bad port range %q", s)
		}
		out = append(out, PortRange{l, h})
	}
	if len(out) > 15 {
		// XT_MULTI_PORTS: the kernel's multiport match holds 15 ports.
		return nil, fmt.Errorf("more than 15 ports in %q", v)
	}
	return out, nil
}

func parsePort(s string, empty uint16) (uint16, error) {
	if s == "" {
		return empty, nil
	}
	n, err := strconv.ParseUint(s, 10, 16)
	if err != nil {
		if p, ok := servicePorts[s]; ok {
			return p, nil
		}
		return 0, fmt.Errorf("bad port %q", s)
	}
	return uint16(n), nil
}

// servicePorts are the service names most mark rules use, so that rules
// copied from iptables -L (without -n) still read.
var servicePorts = map[string]uint16{
	"ftp": 21, "ssh": 22, "smtp": 25, "domain": 53, "http": 80, "https": 443, "imaps": 993, "pop3s": 995,
}

func parseMark(v string) (mark, mask uint32, hasMask bool, err error) {
	ms, ks, hasMask := strings.Cut(v, "/")
	m, err := strconv.ParseUint(ms, 0, 32)
	if err != nil {
		return 0, 0, false, fmt.Errorf("bad mark %q", v)
	}
	k := uint64(0xffffffff)
	if hasMask {
		if k, err = strconv.ParseUint(ks, 0, 32); err != nil {
			return 0, 0, false, fmt.Errorf("bad mask %q", v)
		}
	}
	return uint32(m), uint32(k), hasMask, nil
}

// parseMarkOp sets r's Mark and Mask as libxt_MARK (revision 2) does.
func parseMarkOp(r *Rule, op, v string) error {
	mark, mask, hasMask, err := parseMark(v)
	if err != nil {
		return err
	}
	if hasMask && op != "--set-mark" && op != "--set-xmark" {
		return fmt.Errorf("%s takes no mask", op)
	}
	switch op {
	case "--set-xmark":
		r.Mark, r.Mask = mark, mask
	case "--set-mark":
		r.Mark, r.Mask = mark, mark|mask
	case "--and-mark":
		r.Mark, r.Mask = 0, ^mark
	case "--or-mark":
		r.Mark, r.Mask = mark, mark
	case "--xor-mark":
		r.Mark, r.Mask = mark, 0
	}
	return nil
}
