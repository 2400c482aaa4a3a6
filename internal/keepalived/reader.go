package keepalived

import (
	"errors"
	"io/fs"
	"math/rand/v2"
	"strconv"
	"strings"
)

// Limits that keep the reader finite on any input (fuzzing included).
const (
	// defaultMaxIncludeDepth: keepalived has no limit but recurses without
	// end on a self-include; 32 nested files is far beyond real use.
	defaultMaxIncludeDepth = 32
	// maxLineLen is keepalived's MAXBUF (1024 bytes) times 64: parameter
	// substitution beyond it is refused, as keepalived refuses lines that
	// "would exceed maximum line length".
	maxLineLen = 64 << 10
	// maxSubstitutions per line bounds recursive $NAME replacement
	// ($A=$A x would otherwise never end).
	maxSubstitutions = 10000
	// maxExpandDepth bounds nested multi-line definitions and ~SEQ.
	maxExpandDepth = 64
	// maxLines bounds the logical lines one configuration may produce
	// (~SEQ loops and definitions multiply lines), so that reading stays
	// under a second: 10000 real servers of 20 lines fit. (keepalived's
	// own example of 65024 generated vrrp instances does not.)
	maxLines = 1 << 18
	// maxRecheck bounds the re-examination of a line whose substitution
	// produced a new @conditional or $reference.
	maxRecheck = 1000
)

// line is one logical configuration line: its words as keepalived's
// alloc_strvec splits them (double quotes group, and are removed), and
// its raw text, from which script lines are re-split with the
// quote-and-escape rules of alloc_strvec_quoted_escaped.
type line struct {
	pos   Pos
	words []string
	raw   string
}

// definition is a $NAME=value parameter.
type definition struct {
	lines     []string // one element unless multiline
	multiline bool
	fn        func(params string) string // built-in definitions
	maxParams int
}

type reader struct {
	src      source
	opts     *Options
	d        *diags
	defs     map[string]*definition
	rng      *rand.Rand
	stack    []string // files being read, outermost first
	out      []line
	files    []string
	tooMany  bool
	maxDepth int

	// collecting is the multi-line definition being read, if any.
	collecting *definition
	curFile    string
}

func newReader(src source, opts *Options, d *diags) *reader {
	r := &reader{src: src, opts: opts, d: d, defs: map[string]*definition{}}
	// The seed is fixed unless given, so ${_RANDOM} is reproducible
	// (keepalived seeds from the time unless random_seed is set).
	r.rng = rand.New(rand.NewPCG(opts.RandomSeed, opts.RandomSeed^0x9e3779b97f4a7c15))
	r.maxDepth = opts.MaxIncludeDepth
	if r.maxDepth <= 0 {
		r.maxDepth = defaultMaxIncludeDepth
	}
	r.defs["_PWD"] = &definition{fn: func(string) string { return r.src.dir(r.curFile) }}
	r.defs["_INSTANCE"] = &definition{fn: func(string) string { return r.opts.ConfigID }}
	r.defs["_HASH"] = &definition{lines: []string{"#"}}
	r.defs["_BANG"] = &definition{lines: []string{"!"}}
	r.defs["_RANDOM"] = &definition{maxParams: 2, fn: r.random}
	return r
}

// random implements ${_RANDOM [MIN [MAX]]}: an integer in [MIN, MAX],
// defaults 0 and 32767.
func (r *reader) random(params string) string {
	lo, hi := uint64(0), uint64(32767)
	f := strings.Fields(params)
	if len(f) > 0 {
		lo, _ = strconv.ParseUint(f[0], 10, 32)
	}
	if len(f) > 1 {
		hi, _ = strconv.ParseUint(f[1], 10, 32)
	}
	if hi < lo {
		lo, hi = hi, lo
	}
	return strconv.FormatUint(lo+r.rng.Uint64N(hi-lo+1), 10)
}

// readTop reads the main configuration file.
func (r *reader) readTop(name string, data []byte, haveData bool) {
	if !haveData {
		var skip bool
		var err error
		data, skip, err = r.src.readFile(name)
		if err != nil {
			r.d.add(Pos{File: name}, "", false, "cannot read configuration file: %v", err)
			return
		}
		if skip {
			r.d.add(Pos{File: name}, "", false, "not a regular non-executable file")
			return
		}
	}
	r.readData(name, data)
}

// readData feeds the physical lines of one file.
func (r *reader) readData(name string, data []byte) {
	r.stack = append(r.stack, name)
	r.files = append(r.files, name)
	prev := r.curFile
	r.curFile = name
	text := string(data)
	for n := 1; len(text) > 0 && !r.tooMany; n++ {
		var l string
		if i := strings.IndexByte(text, '\n'); i >= 0 {
			l, text = text[:i], text[i+1:]
		} else {
			l, text = text, ""
		}
		l = strings.TrimRight(l, "\r")
		pos := Pos{File: name, Line: n}
		r.physical(pos, l)
	}
	// A multi-line definition ends with its file.
	r.collecting = nil
	r.curFile = prev
	r.stack = r.stack[:len(r.stack)-1]
}

// physical handles one physical line: comments, then a multi-line
// definition's continuation or a logical line.
func (r *reader) physical(pos Pos, l string) {
	text, ok := decomment(l)
	if !ok {
		r.d.add(pos, firstWord(l), false, "unterminated quote")
	}
	if r.collecting != nil {
		r.continueDefinition(text)
		return
	}
	r.logical(pos, text, 0)
}

// continueDefinition adds a line to the multi-line definition being read
// (keepalived read_line: a line ending in '\' continues it; an empty line
// or one without '\' ends it).
func (r *reader) continueDefinition(text string) {
	def := r.collecting
	if text == "" {
		r.collecting = nil
		return
	}
	if strings.HasSuffix(text, `\`) {
		text = strings.TrimRight(text[:len(text)-1], " \t")
		if text != "" {
			def.lines = append(def.lines, text)
		}
		return
	}
	def.lines = append(def.lines, text)
	r.collecting = nil
}

// decomment removes a comment ('#' or '!' outside double quotes; "\#" and
// "\!" stand for the characters themselves), leading and trailing blanks.
// A trailing '\' is kept. ok is false for an unterminated quote.
func decomment(s string) (string, bool) {
	s = strings.TrimLeft(s, " \t")
	var b strings.Builder
	quote := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"':
			quote = !quote
		case c == '\\' && i+1 < len(s):
			if !quote && (s[i+1] == '#' || s[i+1] == '!') {
				b.WriteByte(s[i+1])
			} else {
				b.WriteByte(c)
				b.WriteByte(s[i+1])
			}
			i++
			continue
		case !quote && (c == '#' || c == '!'):
			return strings.TrimRight(b.String(), " \t"), true
		}
		b.WriteByte(c)
	}
	return strings.TrimRight(b.String(), " \t"), !quote
}

func firstWord(s string) string {
	f := strings.Fields(s)
	if len(f) == 0 {
		return ""
	}
	return strings.Trim(f[0], `"`)
}

// logical processes one logical line: conditional prefix, definitions,
// ~SEQ, parameter substitution, include, and finally splits it at braces
// into lines for the parser.
func (r *reader) logical(pos Pos, text string, depth int) {
	if r.tooMany {
		return
	}
	if depth > maxExpandDepth {
		r.d.add(pos, firstWord(text), false, "definitions or ~SEQ nested more than %d deep", maxExpandDepth)
		return
	}
	var more []string // further lines of a multi-line definition
	for iter := 0; ; iter++ {
		if iter > maxRecheck {
			r.d.add(pos, firstWord(text), false, "conditional and parameter substitution do not end")
			return
		}
		text = strings.TrimLeft(text, " \t")
		if text == "" {
			return
		}
		if text[0] == '@' {
			var ok bool
			if text, ok = r.conditional(text); !ok {
				return
			}
			continue
		}
		if text[0] == '$' && r.definition(pos, text) {
			return
		}
		if strings.HasPrefix(text, "~SEQ") {
			r.seq(pos, text, depth)
			return
		}
		if strings.HasPrefix(text, "~LST") {
			r.d.add(pos, "~LST", false, "~LST list blocks are not supported by GoLVS (use ~SEQ or repeat the lines)")
			return
		}
		if text[0] == '~' || !strings.Contains(text, "$") {
			break
		}
		nt, ml, changed, err := r.substitute(text)
		if err != "" {
			r.d.add(pos, firstWord(text), false, "%s", err)
			return
		}
		if ml != nil {
			more = append(ml, more...)
		}
		if !changed {
			break
		}
		text = nt
		if text == "" || (text[0] != '@' && text[0] != '$' && !strings.HasPrefix(text, "~SEQ")) {
			break
		}
	}
	r.emit(pos, text)
	for _, m := range more {
		if r.collecting != nil {
			r.continueDefinition(m)
			continue
		}
		r.logical(pos, m, depth+1)
	}
}

// conditional applies an "@id" or "@^id" prefix: the rest of the line is
// kept when id equals the configuration id (@) or does not (@^). With no
// configuration id, no @id line is kept and every @^id line is.
func (r *reader) conditional(text string) (string, bool) {
	rev := strings.HasPrefix(text, "@^")
	ofs := 1
	if rev {
		ofs = 2
	}
	sp := strings.IndexAny(text[ofs:], " \t")
	if sp < 0 {
		return "", false
	}
	id := text[ofs : ofs+sp]
	match := r.opts.ConfigID != "" && id == r.opts.ConfigID
	if match == rev {
		return "", false
	}
	return text[ofs+sp:], true
}

func isNameStart(c byte) bool {
	return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}
func isNameChar(c byte) bool { return isNameStart(c) || c >= '0' && c <= '9' }

// definition handles "$NAME=value" (keepalived check_definition); it
// reports false when text is not a definition.
func (r *reader) definition(pos Pos, text string) bool {
	if len(text) < 2 || !isNameStart(text[1]) {
		return false
	}
	i := 2
	for i < len(text) && text[i] != '=' {
		if !isNameChar(text[i]) {
			return false
		}
		i++
	}
	if i >= len(text) {
		return false
	}
	name := text[1:i]
	value := strings.TrimLeft(text[i+1:], " \t")
	def := &definition{}
	if strings.HasSuffix(value, `\`) {
		def.multiline = true
		value = strings.TrimRight(value[:len(value)-1], " \t")
		if value != "" {
			def.lines = []string{value}
		}
		r.collecting = def
	} else {
		def.lines = []string{value}
	}
	r.defs[name] = def
	return true
}

// substitute replaces $NAME and ${NAME} by their values, rescanning the
// replacement (keepalived replace_param). A multi-line definition may only
// end a line: its first line replaces it, the others are returned in more.
func (r *reader) substitute(text string) (out string, more []string, changed bool, err string) {
	n := 0
	for i := 0; i < len(text); {
		j := strings.IndexByte(text[i:], '$')
		if j < 0 || i+j+1 >= len(text) {
			break
		}
		i += j
		name, params, end, ok := parseRef(text, i)
		var def *definition
		if ok {
			def = r.defs[name]
		}
		if def == nil || (def.multiline && end != len(text)) || (params != "" && def.maxParams == 0) {
			i++
			continue
		}
		var val string
		switch {
		case def.fn != nil:
			val = def.fn(params)
		case len(def.lines) > 0:
			val = def.lines[0]
		}
		if def.multiline && len(def.lines) > 1 {
			// A multi-line value nested in the first line of another
			// comes before the other's remaining lines.
			more = append(append([]string(nil), def.lines[1:]...), more...)
		}
		text = text[:i] + val + text[end:]
		changed = true
		if n++; n > maxSubstitutions {
			return "", nil, false, "parameter substitution does not end (recursive definition?)"
		}
		if len(text) > maxLineLen {
			return "", nil, false, "parameter substitution would exceed the maximum line length"
		}
		if s := strings.TrimLeft(val, " \t"); s != "" && s[0] == '~' {
			break
		}
	}
	return text, more, changed, ""
}

// parseRef parses the reference starting with '$' at text[i]: $NAME
// (followed by a blank, ',', ')' or the end) or ${NAME} or ${NAME 1 2}.
func parseRef(text string, i int) (name, params string, end int, ok bool) {
	p := i + 1
	braces := p < len(text) && text[p] == '{'
	if braces {
		p++
	}
	if p >= len(text) || !isNameStart(text[p]) {
		return "", "", 0, false
	}
	s := p
	for p < len(text) && isNameChar(text[p]) {
		p++
	}
	name = text[s:p]
	if braces {
		ps := p
		for p < len(text) && (text[p] == ' ' || text[p] >= '0' && text[p] <= '9') {
			p++
		}
		params = strings.TrimSpace(text[ps:p])
		if params != "" && text[p-1] == ' ' {
			return "", "", 0, false
		}
		if p >= len(text) || text[p] != '}' {
			return "", "", 0, false
		}
		return name, params, p + 1, true
	}
	if p < len(text) && !strings.ContainsRune(" \t,)", rune(text[p])) {
		return "", "", 0, false
	}
	return name, "", p, true
}

// seq expands "~SEQ(var, start, step, end) rest" (and ~SEQx, with the
// variable in hexadecimal): rest is processed once per value.
func (r *reader) seq(pos Pos, text string, depth int) {
	hex := strings.HasPrefix(text, "~SEQx")
	p := text[4:]
	if hex {
		p = p[1:]
	}
	p = strings.TrimLeft(p, " \t")
	bad := func(msg string) { r.d.add(pos, "~SEQ", false, "invalid ~SEQ: %s", msg) }
	if !strings.HasPrefix(p, "(") {
		bad("missing '('")
		return
	}
	end := strings.IndexByte(p, ')')
	if end < 0 {
		bad("missing ')'")
		return
	}
	args := strings.Split(p[1:end], ",")
	rest := strings.TrimLeft(p[end+1:], " \t")
	vr := strings.TrimSpace(args[0])
	if vr == "" || !isNameStart(vr[0]) {
		bad("missing variable")
		return
	}
	for k := 0; k < len(vr); k++ {
		if !isNameChar(vr[k]) {
			bad("bad variable name " + strconv.Quote(vr))
			return
		}
	}
	var nums []int64
	for _, a := range args[1:] {
		a = strings.TrimSpace(a)
		if s, _, ch, _ := r.substitute(a); ch {
			a = strings.TrimSpace(s)
		}
		v, err := strconv.ParseInt(a, 0, 64)
		if err != nil || v > 1<<40 || v < -(1<<40) {
			bad("bad number " + strconv.Quote(a))
			return
		}
		nums = append(nums, v)
	}
	var start, step, last int64
	switch len(nums) {
	case 1:
		last = nums[0]
		start, step = 1, 1
		if last < 0 {
			start = -1
		}
		if last < 1 {
			step = -1
		}
	case 2:
		start, last = nums[0], nums[1]
		step = 1
		if start > last {
			step = -1
		}
	case 3:
		start, step, last = nums[0], nums[1], nums[2]
		if step == 0 || start < last && step < 0 || start > last && step > 0 {
			bad("step does not reach the end")
			return
		}
	default:
		bad("expected 1 to 3 numbers")
		return
	}
	if hex && (start < 0 || last < 0) {
		bad("~SEQx is only valid for positive numbers")
		return
	}
	for v := start; (step > 0 && v <= last) || (step < 0 && v >= last); v += step {
		if r.tooMany {
			return
		}
		s := strconv.FormatInt(v, 10)
		if hex {
			s = strconv.FormatInt(v, 16)
		}
		r.defs[vr] = &definition{lines: []string{s}}
		r.logical(pos, rest, depth+1)
	}
}

var includeKeywords = map[string]bool{
	"include": true, "includer": true, "includem": true, "includew": true, "includeb": true, "includea": true,
}

// emit splits a processed line at its braces, handles include, and
// appends the resulting lines.
func (r *reader) emit(pos Pos, text string) {
	// keepalived looks for include before it splits lines at braces, so
	// a pattern may hold {a,b} alternatives.
	if w := splitLineBraces(text, false); len(w) == 1 && len(w[0].words) == 2 && includeKeywords[w[0].words[0]] {
		r.include(pos, w[0].words[0], w[0].words[1])
		return
	}
	segs := splitLine(text)
	for _, s := range segs {
		if len(r.out) >= maxLines {
			r.d.add(pos, s.words[0], false, "configuration expands to more than %d lines", maxLines)
			r.tooMany = true
			return
		}
		r.out = append(r.out, line{pos: pos, words: s.words, raw: s.raw})
	}
}

type segment struct {
	words []string
	raw   string
}

// splitLine splits text into words (keepalived alloc_strvec_r: blanks
// separate, a double-quoted string is one word without its quotes) and
// into segments at each '{' or '}' outside quotes, each brace being a
// segment of its own (keepalived read_line).
func splitLine(text string) []segment { return splitLineBraces(text, true) }

// splitLineBraces is splitLine; with braces false, '{' and '}' are
// ordinary characters.
func splitLineBraces(text string, braces bool) []segment {
	var segs []segment
	var cur segment
	segStart := -1
	flush := func(end int) {
		if len(cur.words) > 0 {
			cur.raw = strings.TrimSpace(text[segStart:end])
			segs = append(segs, cur)
		}
		cur = segment{}
		segStart = -1
	}
	for i := 0; i < len(text); {
		c := text[i]
		switch {
		case c == ' ' || c == '\t' || c == '\f' || c == '\v' || c == '\r' || c == '\n':
			i++
		case braces && (c == '{' || c == '}'):
			flush(i)
			segs = append(segs, segment{words: []string{string(c)}, raw: string(c)})
			i++
		case c == '"':
			if segStart < 0 {
				segStart = i
			}
			j := strings.IndexByte(text[i+1:], '"')
			if j < 0 {
				// Unterminated: decomment reported it; take the rest.
				cur.words = append(cur.words, text[i+1:])
				i = len(text)
				continue
			}
			cur.words = append(cur.words, text[i+1:i+1+j])
			i += j + 2
		default:
			if segStart < 0 {
				segStart = i
			}
			j := i
			for j < len(text) && !strings.ContainsRune(" \t\f\v\r\n\"", rune(text[j])) && !(braces && (text[j] == '{' || text[j] == '}')) {
				j++
			}
			cur.words = append(cur.words, text[i:j])
			i = j
		}
	}
	flush(len(text))
	return segs
}

// include reads the files matching pattern, relative to the including
// file's directory (keepalived chdir()s into it). A plain include whose
// pattern matches nothing is a warning, as in keepalived ("Config files
// missing"); the checked variants (includer, includem, includew,
// includeb, includea) make it an error.
func (r *reader) include(pos Pos, kw, pattern string) {
	if len(r.stack) >= r.maxDepth {
		r.d.add(pos, kw, false, "includes nested more than %d deep", r.maxDepth)
		return
	}
	p := pattern
	if !r.src.isAbs(p) {
		p = r.src.join(r.src.dir(pos.File), p)
	}
	pats, err := expandBraces(p)
	if err != nil {
		r.d.add(pos, kw, false, "%s: %v", pattern, err)
		return
	}
	strict := kw != "include"
	var names []string
	for _, pp := range pats {
		m, err := r.src.glob(pp)
		if err != nil {
			r.d.add(pos, kw, false, "%s: bad pattern: %v", pattern, err)
			return
		}
		if len(m) == 0 && !hasGlobMeta(pp) {
			// glob(3) without GLOB_NOCHECK returns nothing for a missing
			// plain name; report it by name.
			if strict {
				r.d.add(pos, kw, false, "configuration file %s missing", pp)
			}
		}
		names = append(names, m...)
	}
	if len(names) == 0 {
		if strict {
			if kw == "includew" || kw == "includea" || !hasGlobMeta(p) {
				r.d.add(pos, kw, false, "no configuration file matches %s", pattern)
			}
			return
		}
		r.d.add(pos, kw, true, "config files missing %s", pattern)
		return
	}
	for _, n := range names {
		for _, open := range r.stack {
			if open == n {
				r.d.add(pos, kw, false, "include loop: %s is already being read", n)
				return
			}
		}
		data, skip, err := r.src.readFile(n)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			continue // a directory entry that vanished, or a dangling link
		case err != nil && !errors.Is(err, errIsDir):
			r.d.add(pos, kw, !strict, "cannot read %s: %v", n, err)
			continue
		case errors.Is(err, errIsDir):
			continue // keepalived's glob(GLOB_MARK) skips directories silently
		case skip:
			r.d.add(pos, kw, !strict, "%s is not a regular non-executable file - skipping", n)
			continue
		}
		r.readData(n, data)
		if r.tooMany {
			return
		}
	}
}
