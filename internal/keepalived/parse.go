package keepalived

import (
	"io/fs"
	"math"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"
)

// Options control how a configuration is read.
type Options struct {
	// ConfigID is keepalived's -i/--config-id: lines starting @ID are kept
	// only when ID equals it, lines starting @^ID only when it does not.
	// "" means no configuration id (keepalived would use the host name).
	ConfigID string
	// FS, when set, is where the configuration and its includes are read
	// from; names are slash-separated and a leading "/" is ignored. When
	// nil the OS file system is used.
	FS fs.FS
	// RandomSeed seeds ${_RANDOM} (keepalived's random_seed).
	RandomSeed uint64
	// Hostname is the default SMTP_CHECK helo_name when neither the
	// checker nor global_defs smtp_helo_name gives one. Parse fills it
	// from os.Hostname when empty; ParseBytes leaves it as given.
	Hostname string
	// MaxIncludeDepth bounds nested includes (default 32).
	MaxIncludeDepth int
}

// Parse reads the configuration file at path with its includes.
// It returns the configuration and every diagnostic; err is an *Error
// listing the error diagnostics when there is any (the Config is then
// incomplete and must not be used).
func Parse(path string, opts Options) (*Config, []Diagnostic, error) {
	if opts.Hostname == "" {
		opts.Hostname, _ = os.Hostname()
	}
	return parse(path, nil, false, opts)
}

// ParseBytes parses data as the configuration file name. Includes are
// resolved relative to name's directory through opts.FS (the OS when nil).
func ParseBytes(name string, data []byte, opts Options) (*Config, []Diagnostic, error) {
	return parse(name, data, true, opts)
}

func parse(name string, data []byte, haveData bool, opts Options) (*Config, []Diagnostic, error) {
	var src source = osSource{}
	if opts.FS != nil {
		src = fsSource{opts.FS}
	}
	d := &diags{}
	r := newReader(src, &opts, d)
	r.readTop(name, data, haveData)
	nodes := buildTree(r.out, d)
	p := &parser{d: d, opts: &opts, cfg: &Config{Files: r.files}}
	p.cfg.Global = defaultGlobal()
	p.top(nodes)
	p.finish()
	if d.hasErrors() {
		return p.cfg, d.list, &Error{Errors: d.errors()}
	}
	return p.cfg, d.list, nil
}

// parser turns the node tree into a Config.
type parser struct {
	d    *diags
	opts *Options
	cfg  *Config

	// Raw per-object state kept until finish() resolves cross references.
	vss       []*vsState
	instances []*instState
	groups    []*sgState
	sync      *syncState
}

// Diagnostics helpers.

func (p *parser) errorf(n *node, format string, args ...any) {
	p.d.add(n.pos, n.kw(), false, format, args...)
}

func (p *parser) warnf(n *node, format string, args ...any) {
	p.d.add(n.pos, n.kw(), true, format, args...)
}

// ignore warns (once per keyword and file) that n is read but GoLVS does
// not act on it.
func (p *parser) ignore(n *node) {
	p.d.onceWarn(n.pos, n.kw(), "not acted on by GoLVS (parsed and ignored)")
}

// unknown reports a keyword that is not valid here, as keepalived's
// "Unknown keyword" (which keepalived also only logs).
func (p *parser) unknown(n *node) {
	p.warnf(n, "unknown keyword, ignored")
}

// deprecated warns about a deprecated alias.
func (p *parser) deprecated(n *node, use string) {
	p.d.onceWarn(n.pos, n.kw(), "deprecated, use %s", use)
}

// noBlock reports a block after a keyword that takes none and says
// whether there was one.
func (p *parser) noBlock(n *node) bool {
	if n.block {
		p.errorf(n, "unexpected block after this keyword")
		return true
	}
	return false
}

// needBlock reports a missing block.
func (p *parser) needBlock(n *node) bool {
	if !n.block {
		p.errorf(n, "missing '{': this keyword opens a block")
		return false
	}
	return true
}

// arg returns word i of n, reporting an error when it is missing.
func (p *parser) arg(n *node, i int) (string, bool) {
	if i >= len(n.words) {
		p.errorf(n, "missing parameter")
		return "", false
	}
	return n.words[i], true
}

// args checks the number of parameters.
func (p *parser) nargs(n *node, min, max int) bool {
	k := len(n.words) - 1
	if k < min {
		p.errorf(n, "missing parameter")
		return false
	}
	if max >= 0 && k > max {
		p.errorf(n, "unexpected parameter %q", n.words[max+1])
		return false
	}
	return true
}

// str returns the single string parameter of n.
func (p *parser) str(n *node) (string, bool) {
	if !p.nargs(n, 1, -1) {
		return "", false
	}
	if len(n.words) > 2 {
		p.warnf(n, "extra parameters after %q ignored", n.words[1])
	}
	return n.words[1], true
}

func parseUint(s string, min, max uint64) (uint64, bool) {
	s = strings.TrimLeft(s, " \t")
	if strings.HasPrefix(s, "-") {
		return 0, false
	}
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil || v < min || v > max {
		return 0, false
	}
	return v, true
}

// uintArg parses word i as an unsigned integer in [min, max].
func (p *parser) uintArg(n *node, i int, min, max uint64) (uint64, bool) {
	s, ok := p.arg(n, i)
	if !ok {
		return 0, false
	}
	v, ok := parseUint(s, min, max)
	if !ok {
		p.errorf(n, "invalid number %q: must be an integer in [%d, %d]", s, min, max)
	}
	return v, ok
}

// intArg parses word i as a signed integer in [min, max].
func (p *parser) intArg(n *node, i int, min, max int64) (int64, bool) {
	s, ok := p.arg(n, i)
	if !ok {
		return 0, false
	}
	v, err := strconv.ParseInt(strings.TrimLeft(s, " \t"), 10, 64)
	if err != nil || v < min || v > max {
		p.errorf(n, "invalid number %q: must be an integer in [%d, %d]", s, min, max)
		return 0, false
	}
	return v, true
}

// parseTimer parses a <TIMER>: seconds with a fraction, microsecond
// resolution (keepalived read_timer).
func parseTimer(s string) (time.Duration, bool) {
	f, err := strconv.ParseFloat(s, 64)
	// 1e9 s (31 years) is beyond any timer and keeps the product in range.
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) || f < 0 || f > 1e9 {
		return 0, false
	}
	return time.Duration(f*1e6) * time.Microsecond, true
}

// timerArg parses word i as a <TIMER> in [min, max] (max 0: no limit).
func (p *parser) timerArg(n *node, i int, min, max time.Duration) (time.Duration, bool) {
	s, ok := p.arg(n, i)
	if !ok {
		return 0, false
	}
	v, ok := parseTimer(s)
	if !ok || v < min || (max > 0 && v > max) {
		if max > 0 {
			p.errorf(n, "invalid time %q: must be seconds in [%g, %g]", s, min.Seconds(), max.Seconds())
		} else {
			p.errorf(n, "invalid time %q: must be at least %g seconds", s, min.Seconds())
		}
		return 0, false
	}
	return v, true
}

// boolWord parses keepalived's <BOOL>.
func boolWord(s string) (bool, bool) {
	switch s {
	case "on", "true", "yes":
		return true, true
	case "off", "false", "no":
		return false, true
	}
	return false, false
}

// optBool parses an optional <BOOL> parameter: absent means true.
func (p *parser) optBool(n *node) (bool, bool) {
	if len(n.words) < 2 {
		return true, true
	}
	v, ok := boolWord(n.words[1])
	if !ok {
		p.errorf(n, "invalid boolean %q: use on|off|true|false|yes|no", n.words[1])
	}
	return v, ok
}

// addrArg parses word i as an IP address.
func (p *parser) addrArg(n *node, i int) (netip.Addr, bool) {
	s, ok := p.arg(n, i)
	if !ok {
		return netip.Addr{}, false
	}
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" && a.Is4() {
		p.errorf(n, "invalid IP address %q", s)
		return netip.Addr{}, false
	}
	return a.Unmap(), true
}

// portWord parses a port: 0..65535 (0 = none, as keepalived accepts).
func portWord(s string) (uint16, bool) {
	v, ok := parseUint(s, 0, 65535)
	return uint16(v), ok
}

// script parses a script line: KEYWORD SCRIPT [USER [GROUP]], with the
// script split as keepalived does (notify_script_init).
func (p *parser) script(n *node) (*Script, bool) {
	w := splitQuotedEscaped(n.raw)
	if len(w) < 2 || w[1] == "" {
		p.errorf(n, "missing script")
		return nil, false
	}
	s := &Script{Cmd: w[1], Args: splitQuotedEscaped(w[1])}
	if len(w) > 2 {
		s.User = w[2]
	}
	if len(w) > 3 {
		s.Group = w[3]
	}
	if len(w) > 4 {
		p.warnf(n, "extra parameters after the group ignored")
	}
	if len(s.Args) == 0 {
		p.errorf(n, "empty script")
		return nil, false
	}
	return s, true
}

// splitQuotedEscaped splits s as keepalived's alloc_strvec_quoted_escaped:
// blanks separate words; '...' and "..." group (quotes removed); backslash
// escapes (\a \b \E \f \n \r \t \v \nnn \xXX \cC, else the character).
func splitQuotedEscaped(s string) []string {
	var out []string
	var b strings.Builder
	in, quote := false, byte(0)
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case quote == 0 && (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'):
			if in {
				out = append(out, b.String())
				b.Reset()
				in = false
			}
		case c == '\\' && i+1 < len(s):
			in = true
			i++
			c = s[i]
			switch {
			case c == 'x' && i+1 < len(s) && isHex(s[i+1]):
				var v byte
				for i+1 < len(s) && isHex(s[i+1]) {
					i++
					v = v<<4 | hexVal(s[i])
				}
				b.WriteByte(v)
			case c == 'c' && i+1 < len(s):
				i++
				b.WriteByte(s[i] & 0x1f)
			case c >= '0' && c <= '7':
				v := c - '0'
				for k := 0; k < 2 && i+1 < len(s) && s[i+1] >= '0' && s[i+1] <= '7'; k++ {
					i++
					v = v<<3 + s[i] - '0'
				}
				b.WriteByte(v)
			default:
				b.WriteByte(unescape(c))
			}
		case quote != 0 && c == quote:
			quote = 0
		case quote == 0 && (c == '"' || c == '\''):
			quote = c
			in = true
		default:
			in = true
			b.WriteByte(c)
		}
	}
	if in {
		out = append(out, b.String())
	}
	return out
}

// unescape returns the character a backslash followed by c stands for.
func unescape(c byte) byte {
	switch c {
	case 'a':
		return '\a'
	case 'b':
		return '\b'
	case 'E':
		return 0x1b
	case 'f':
		return '\f'
	case 'n':
		return '\n'
	case 'r':
		return '\r'
	case 't':
		return '\t'
	case 'v':
		return '\v'
	}
	return c
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

func hexVal(c byte) byte {
	switch {
	case c >= '0' && c <= '9':
		return c - '0'
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10
	}
	return c - 'A' + 10
}

// valueLines returns the lines of a value block (virtual_ipaddress { }):
// every line is data, none may open a block.
func (p *parser) valueLines(n *node) []*node {
	if !p.needBlock(n) {
		return nil
	}
	if len(n.words) > 1 {
		p.errorf(n, "unexpected parameter %q before the block", n.words[1])
	}
	var out []*node
	for _, k := range n.kids {
		if k.block {
			p.errorf(k, "unexpected block inside a list")
			continue
		}
		out = append(out, k)
	}
	return out
}
