package keepalived

import (
	"regexp"
	"strings"
	"time"

	"golvs/internal/check"
	"golvs/internal/service"
)

var checkerKinds = map[string]check.Kind{
	"TCP_CHECK": check.KindTCP, "HTTP_GET": check.KindHTTP, "SSL_GET": check.KindSSL,
	"SMTP_CHECK": check.KindSMTP, "DNS_CHECK": check.KindDNS, "MISC_CHECK": check.KindMisc,
	"UDP_CHECK": check.KindUDP, "PING_CHECK": check.KindPing, "FILE_CHECK": check.KindFile,
}

// Ports the SMTP and DNS checkers use when neither connect_port nor the
// real server gives one (keepalived check_smtp.c SMTP_DEFAULT_PORT and
// check_dns.c DNS_DEFAULT_PORT, as read; not cross-checked).
const (
	smtpDefaultPort = 25
	dnsDefaultPort  = 53
)

// ckState is a checker block before inheritance.
type ckState struct {
	n           *node
	kind        check.Kind
	spec        check.Spec
	t           timing
	alpha       Tristate
	logAll      Tristate
	connectIP   bool
	connectPort bool
	virtualhost bool
	trackFile   string
	fileWeight  bool
	miscTimeout bool
	misc        bool // misc_path given
	bits        []byte
	// hosts are SMTP_CHECK's legacy host { } blocks: one probe per host,
	// each with its own connection options.
	hosts []*ckState
}

// dnsTypes are the query types DNS_CHECK accepts.
var dnsTypes = map[string]bool{
	"A": true, "NS": true, "CNAME": true, "SOA": true, "MX": true, "TXT": true, "AAAA": true,
	"RRSIG": true, "DNSKEY": true,
}

var ignoredChecker = map[string]bool{"tls_compliant": true}

// checker parses a checker block of a real server.
func (p *parser) checker(rs *rsState, n *node, kind check.Kind) {
	if len(n.words) > 1 {
		p.errorf(n, "unexpected parameter %q", n.words[1])
	}
	c := &ckState{n: n, kind: kind}
	c.spec.Kind = kind
	for _, k := range n.kids {
		if k.kw() != "url" && k.kw() != "host" && p.noBlock(k) {
			continue
		}
		if !p.checkerKeyword(c, k) {
			p.unknown(k)
		}
	}
	rs.checkers = append(rs.checkers, c)
}

// checkerKeyword parses one keyword of a checker block; false: unknown.
func (p *parser) checkerKeyword(c *ckState, k *node) bool {
	s := &c.spec
	kw := k.kw()
	if c.kind == check.KindFile {
		switch kw {
		case "track_file":
			c.trackFile, _ = p.str(k)
		case "dynamic":
			s.FileDynamic = true
		case "weight":
			if v, ok := p.intArg(k, 1, -2147483647, 2147483647); ok {
				s.FileWeight, c.fileWeight = int(v), true
			}
			if len(k.words) > 2 {
				if k.words[2] == "reverse" {
					s.FileReverse = true
				} else {
					p.errorf(k, "unknown parameter %q", k.words[2])
				}
			}
		default:
			return false
		}
		return true
	}
	// Keywords of every other checker ("alpha onwards" for MISC_CHECK).
	switch kw {
	case "alpha":
		if v, ok := p.optBool(k); ok {
			c.alpha = triOf(v)
		}
		return true
	case "log_all_failures":
		if v, ok := p.optBool(k); ok {
			c.logAll = triOf(v)
		}
		return true
	}
	if p.timingKeyword(&c.t, k) {
		return true
	}
	if c.kind == check.KindMisc {
		switch kw {
		case "misc_path":
			if p.nargs(k, 1, 1) {
				s.MiscPath, c.misc = k.words[1], true
			}
		case "misc_timeout":
			if v, ok := p.uintArg(k, 1, 1, 1<<31-1); ok {
				s.MiscTimeout, c.miscTimeout = time.Duration(v)*time.Second, true
			}
		case "misc_dynamic":
			s.MiscDynamic = true
		case "user":
			if p.nargs(k, 1, 2) {
				s.User = k.words[1]
				if len(k.words) > 2 {
					s.User += ":" + k.words[2]
				}
			}
		default:
			return false
		}
		return true
	}
	// Connection options.
	switch kw {
	case "connect_ip":
		if a, ok := p.addrArg(k, 1); ok {
			s.ConnectIP, c.connectIP = a, true
		}
		return true
	case "connect_port":
		if v, ok := p.uintArg(k, 1, 1, 65535); ok {
			s.ConnectPort, c.connectPort = uint16(v), true
		}
		return true
	case "bindto":
		if a, ok := p.addrArg(k, 1); ok {
			s.BindTo = a
		}
		return true
	case "bind_port":
		if v, ok := p.uintArg(k, 1, 1, 65535); ok {
			s.BindPort = uint16(v)
		}
		return true
	case "bind_if":
		s.BindIf, _ = p.str(k)
		return true
	case "fwmark":
		if v, ok := p.uintArg(k, 1, 0, 1<<32-1); ok {
			s.FWMark = uint32(v)
		}
		return true
	}
	switch c.kind {
	case check.KindHTTP, check.KindSSL:
		return p.httpKeyword(c, k)
	case check.KindSMTP:
		switch kw {
		case "helo_name":
			s.HeloName, _ = p.str(k)
			return true
		case "host":
			p.deprecated(k, "one SMTP_CHECK per address with connect_ip")
			if !p.needBlock(k) {
				return true
			}
			h := &ckState{n: k, kind: c.kind}
			for _, l := range k.kids {
				switch l.kw() {
				case "connect_ip", "connect_port", "bindto", "bind_port", "bind_if", "fwmark", "connect_timeout":
					if !p.noBlock(l) {
						p.checkerKeyword(h, l)
					}
				default:
					p.unknown(l)
				}
			}
			c.hosts = append(c.hosts, h)
			return true
		}
	case check.KindDNS:
		switch kw {
		case "type":
			if t, ok := p.str(k); ok {
				t = strings.ToUpper(t)
				if !dnsTypes[t] {
					p.errorf(k, "unknown DNS query type %q", k.words[1])
				}
				s.DNSType = t
			}
			return true
		case "name":
			s.DNSName, _ = p.str(k)
			return true
		}
	case check.KindUDP:
		switch kw {
		case "payload":
			if len(k.words) < 2 {
				p.errorf(k, "missing payload")
				return true
			}
			b, _, err := parseHexWords(k.words[1:], false)
			if err != "" {
				p.errorf(k, "%s", err)
			}
			s.Payload = b
		case "require_reply":
			s.RequireReplySet = true
			if len(k.words) > 1 {
				b, bits, err := parseHexWords(k.words[1:], true)
				if err != "" {
					p.errorf(k, "%s", err)
				}
				s.RequireReply, c.bits = b, bits
			}
		case "min_reply_length", "max_reply_length":
			// 65515: the largest UDP payload over IPv6 jumbo-less paths
			// (keepalived's limit for these lengths).
			if v, ok := p.uintArg(k, 1, 0, 65515); ok {
				if kw == "min_reply_length" {
					s.MinReplyLength = int(v)
				} else {
					s.MaxReplyLength = int(v)
				}
			}
		default:
			return false
		}
		return true
	}
	return ignoredChecker[kw] && p.ignored(k)
}

func (p *parser) ignored(k *node) bool { p.ignore(k); return true }

// httpKeyword parses the keywords of HTTP_GET and SSL_GET.
func (p *parser) httpKeyword(c *ckState, k *node) bool {
	s := &c.spec
	switch k.kw() {
	case "http_protocol":
		if v, ok := p.str(k); ok {
			switch v {
			case "1.0", "1.1", "1.0C":
				s.HTTPProtocol = v
			case "1.0c":
				s.HTTPProtocol = "1.0C"
			default:
				p.errorf(k, "unknown http_protocol %q: expected 1.0, 1.0C or 1.1", v)
			}
		}
	case "fast_recovery":
		s.FastRecovery, _ = p.optBool(k)
	case "virtualhost":
		if v, ok := p.str(k); ok {
			s.Virtualhost, c.virtualhost = v, true
		}
	case "enable_sni":
		if c.kind != check.KindSSL {
			return false
		}
		s.EnableSNI, _ = p.optBool(k)
	case "sni_name":
		if c.kind != check.KindSSL {
			return false
		}
		s.SNIName, _ = p.str(k)
		s.EnableSNI = true
	case "url":
		if u, ok := p.url(k); ok {
			s.URLs = append(s.URLs, u)
		}
	case "tls_compliant":
		p.ignore(k)
	default:
		return false
	}
	return true
}

var ignoredURL = map[string]bool{
	"regex_options": true, "regex_stack": true, "regex_min_offset": true, "regex_max_offset": true,
	"tls_compliant": true,
}

// url parses url { path; digest; status_code; virtualhost; regex ... }.
func (p *parser) url(n *node) (check.URL, bool) {
	var u check.URL
	if !p.needBlock(n) {
		return u, false
	}
	for _, k := range n.kids {
		if p.noBlock(k) {
			continue
		}
		switch k.kw() {
		case "path":
			u.Path, _ = p.str(k)
		case "digest":
			d, ok := p.str(k)
			if !ok {
				continue
			}
			// An MD5 sum: 16 bytes, 32 hexadecimal digits (genhash's output).
			if len(d) != 32 || strings.IndexFunc(d, func(r rune) bool { return r > 0x7f || !isHex(byte(r)) }) >= 0 {
				p.errorf(k, "invalid digest %q: expected 32 hexadecimal digits (MD5)", d)
				continue
			}
			u.Digest = strings.ToLower(d)
		case "status_code":
			if !p.nargs(k, 1, -1) {
				continue
			}
			for _, w := range k.words[1:] {
				lo, hi, ok := parseStatusRange(w)
				if !ok {
					p.errorf(k, "invalid status code %q: expected N or N-M with 100 <= N <= M <= 999", w)
					continue
				}
				u.StatusCodes = append(u.StatusCodes, check.StatusRange{Lo: lo, Hi: hi})
			}
		case "virtualhost":
			u.Virtualhost, _ = p.str(k)
		case "regex":
			re, ok := p.str(k)
			if !ok {
				continue
			}
			if _, err := regexp.Compile(re); err != nil {
				p.errorf(k, "regex %q is not valid RE2 syntax (GoLVS uses Go regular expressions, not PCRE): %v", re, err)
				continue
			}
			u.Regex = re
		case "regex_no_match":
			u.RegexNoMatch = true
		default:
			if ignoredURL[k.kw()] {
				p.ignore(k)
				continue
			}
			p.unknown(k)
		}
	}
	if u.Path == "" {
		p.errorf(n, "url has no path")
		return u, false
	}
	if u.RegexNoMatch && u.Regex == "" {
		p.warnf(n, "regex_no_match without regex - ignoring")
		u.RegexNoMatch = false
	}
	return u, true
}

func parseStatusRange(w string) (int, int, bool) {
	a, b, rng := strings.Cut(w, "-")
	lo, ok := parseUint(a, 100, 999) // HTTP status codes are three digits
	if !ok {
		return 0, 0, false
	}
	hi := lo
	if rng {
		if hi, ok = parseUint(b, 100, 999); !ok || hi < lo {
			return 0, 0, false
		}
	}
	return int(lo), int(hi), true
}

// parseHexWords parses UDP_CHECK hex strings (keepalived check_udp.c):
// in each word, pairs of digits from the left make bytes and an odd last
// digit makes a byte of its own ("Ab12f 3" is AB 12 0F 03). With
// wildcards, X or x stands for a nibble that is not compared; bits gives
// per byte the bits that must match.
func parseHexWords(words []string, wildcards bool) (b, bits []byte, err string) {
	for _, w := range words {
		for i := 0; i < len(w); i += 2 {
			pair := w[i:min(i+2, len(w))]
			var v, m byte
			for _, c := range []byte(pair) {
				v, m = v<<4, m<<4
				switch {
				case isHex(c):
					v |= hexVal(c)
					m |= 0xf
				case wildcards && (c == 'X' || c == 'x'):
				default:
					return nil, nil, "invalid hex string " + quote(w)
				}
			}
			b, bits = append(b, v), append(bits, m)
		}
	}
	return b, bits, ""
}

// finishChecker applies inheritance (virtual server -> real server ->
// checker) and the checker's defaults (keepalived validate_check_config).
func (p *parser) finishChecker(st *vsState, rs *rsState, r *RealServer, c *ckState) (Checker, bool) {
	s := c.spec
	out := Checker{Pos: c.n.pos}
	g := &p.cfg.Global
	switch c.kind {
	case check.KindFile:
		tf := p.findTrackFile(c.trackFile)
		if c.trackFile == "" {
			p.errorf(c.n, "FILE_CHECK needs a track_file")
			return out, false
		}
		if tf == nil {
			p.errorf(c.n, "track_file %s is not defined", c.trackFile)
			return out, false
		}
		s.FilePath = tf.Path
		if !c.fileWeight {
			s.FileWeight, s.FileReverse = tf.Weight, tf.Reverse
		}
		out.Spec = s
		return out, true
	case check.KindMisc:
		if !c.misc {
			p.warnf(c.n, "no misc_path has been specified for MISC_CHECK - skipping")
			return out, false
		}
		if !c.miscTimeout {
			// check_misc.c: the script's timeout is the virtual server's
			// delay_loop unless misc_timeout is given.
			s.MiscTimeout = st.vs.DelayLoop
		}
		if s.User == "" && g.ScriptUser != "" {
			s.User = g.ScriptUser
			if g.ScriptGroup != "" {
				s.User += ":" + g.ScriptGroup
			}
		}
	case check.KindHTTP, check.KindSSL:
		if len(s.URLs) == 0 {
			p.warnf(c.n, "%s has no url - skipping", c.kind)
			return out, false
		}
		if s.HTTPProtocol == "" {
			s.HTTPProtocol = "1.0"
		}
		if !c.virtualhost {
			s.Virtualhost = r.Virtualhost
		}
	case check.KindSMTP:
		if s.HeloName == "" {
			s.HeloName = g.SMTPHeloName
		}
		if s.HeloName == "" {
			s.HeloName = p.opts.Hostname
		}
	case check.KindDNS:
		if s.DNSType == "" {
			s.DNSType = "SOA"
		}
		if s.DNSName == "" {
			s.DNSName = "."
		}
	case check.KindUDP:
		if s.MaxReplyLength == 0 {
			s.MaxReplyLength = 255 // keepalived's default max_reply_length
		}
		if s.MinReplyLength > s.MaxReplyLength {
			p.errorf(c.n, "min_reply_length %d exceeds max_reply_length %d", s.MinReplyLength, s.MaxReplyLength)
			return out, false
		}
		if len(c.bits) > 0 {
			s.RequireReplyMask = c.bits
			out.RequireReplyBits = c.bits
		}
	}

	// Target.
	if c.kind != check.KindMisc {
		if !c.connectIP {
			s.ConnectIP = r.Addr
		}
		if !c.connectPort {
			s.ConnectPort = r.Port
		}
		if s.ConnectPort == 0 {
			switch c.kind {
			case check.KindSMTP:
				s.ConnectPort = smtpDefaultPort
			case check.KindDNS:
				s.ConnectPort = dnsDefaultPort
			case check.KindTCP, check.KindHTTP, check.KindSSL, check.KindUDP:
				p.errorf(c.n, "%s needs a port: give connect_port (the real server %s has none)", c.kind, r.Addr)
				return out, false
			}
		}
		if s.BindTo.IsValid() && s.BindTo.Is4() != s.ConnectIP.Is4() {
			p.errorf(c.n, "bindto %s and connect address %s are of different families", s.BindTo, s.ConnectIP)
			return out, false
		}
		if s.BindTo.IsValid() && s.BindTo.Is6() && s.BindTo.IsLinkLocalUnicast() && s.BindIf == "" {
			p.errorf(c.n, "an IPv6 link-local bindto needs bind_if")
			return out, false
		}
	}

	// Timing: checker, else real server, else virtual server, else the
	// checker's defaults.
	defRetry, defDBR := checkerDefaults(c.kind)
	s.DelayLoop = durOr(inherit(c.t.delayLoop, rs.t.delayLoop, st.t.delayLoop), defaultDelayLoop)
	s.ConnectTimeout = durOr(inherit(c.t.connectTimeout, rs.t.connectTimeout, st.t.connectTimeout), defaultConnectTimeout)
	s.Retry = defRetry
	if v := inherit(c.t.retry, rs.t.retry, st.t.retry); v != nil {
		s.Retry = *v
	}
	if defDBR == 0 {
		defDBR = s.DelayLoop
	}
	s.DelayBeforeRetry = durOr(inherit(c.t.delayBeforeRetry, rs.t.delayBeforeRetry, st.t.delayBeforeRetry), defDBR)
	s.Warmup = durOr(inherit(c.t.warmup, rs.t.warmup, st.t.warmup), s.DelayLoop)
	s.Alpha = r.Alpha
	if c.alpha != Unset {
		s.Alpha = c.alpha == True
	}
	s.LogAllFailures = g.CheckerLogAllFailures
	if c.logAll != Unset {
		s.LogAllFailures = c.logAll == True
	}
	out.Spec = s
	return out, true
}

func (p *parser) findTrackFile(name string) *TrackFile {
	for i := range p.cfg.TrackFiles {
		if p.cfg.TrackFiles[i].Name == name {
			return &p.cfg.TrackFiles[i]
		}
	}
	return nil
}

// ServiceConfig returns the IPVS configuration of the virtual server's
// services (what ipvsadm -A sets).
func (vs *VirtualServer) ServiceConfig() service.Config {
	c := service.Config{Sched: vs.Sched, Flags: vs.Flags, Netmask: vs.PersistenceGranularity, PE: vs.PersistenceEngine}
	if vs.PersistenceTimeout > 0 {
		c.Flags |= service.FlagPersistent
		c.Timeout = vs.PersistenceTimeout
	}
	return c
}

// DestConfig returns the IPVS configuration of the real server (what
// ipvsadm -a sets), with its configured weight.
func (rs *RealServer) DestConfig() service.DestConfig {
	return destConfig(rs.Method, rs.Weight, rs.UThreshold, rs.LThreshold)
}

// PortFor returns the destination port of the real server in service k:
// its own port, or, when it has none (NAT servers of a virtual server
// group), the service's.
func (rs *RealServer) PortFor(k service.Key) uint16 {
	if rs.Port == 0 && !k.IsFWMark() && rs.Method.Fwd == service.Masq {
		return k.Port
	}
	return rs.Port
}

// DestConfig returns the IPVS configuration of the sorry server: weight 1
// (keepalived alloc_ssvr), or 0 while inhibited.
func (ss *SorryServer) DestConfig() service.DestConfig {
	return destConfig(ss.Method, 1, 0, 0)
}

func destConfig(m Method, w int32, u, l uint32) service.DestConfig {
	return service.DestConfig{Fwd: m.Fwd, Weight: w, UThreshold: u, LThreshold: l,
		TunType: m.TunType, TunPort: m.TunPort, TunFlags: m.TunFlags}
}

// finishCheckers resolves a checker block into its probes: one, or one
// per legacy SMTP host { } block.
func (p *parser) finishCheckers(st *vsState, rs *rsState, r *RealServer, c *ckState) []Checker {
	if len(c.hosts) == 0 {
		if ck, ok := p.finishChecker(st, rs, r, c); ok {
			return []Checker{ck}
		}
		return nil
	}
	var out []Checker
	for _, h := range c.hosts {
		hc := *c
		hc.n, hc.hosts = h.n, nil
		hs := &hc.spec
		if h.connectIP {
			hs.ConnectIP, hc.connectIP = h.spec.ConnectIP, true
		}
		if h.connectPort {
			hs.ConnectPort, hc.connectPort = h.spec.ConnectPort, true
		}
		if h.spec.BindTo.IsValid() {
			hs.BindTo = h.spec.BindTo
		}
		if h.spec.BindPort != 0 {
			hs.BindPort = h.spec.BindPort
		}
		if h.spec.BindIf != "" {
			hs.BindIf = h.spec.BindIf
		}
		if h.spec.FWMark != 0 {
			hs.FWMark = h.spec.FWMark
		}
		if h.t.connectTimeout != nil {
			hc.t.connectTimeout = h.t.connectTimeout
		}
		if ck, ok := p.finishChecker(st, rs, r, &hc); ok {
			out = append(out, ck)
		}
	}
	return out
}
