package keepalived

import (
	"fmt"
	"strings"
)

// Pos is where a configuration line comes from. For lines produced by a
// multi-line $DEFINITION or a ~SEQ, it is the line that used them.
type Pos struct {
	File string
	Line int
}

func (p Pos) String() string { return fmt.Sprintf("%s:%d", p.File, p.Line) }

// Diagnostic is one problem found in the configuration.
type Diagnostic struct {
	File    string
	Line    int
	Keyword string // the keyword of the line ("" for file-level problems)
	Msg     string
	Warning bool // false: an error, the configuration is refused
}

// String formats d as "FILE:LINE: KEYWORD: message", with "warning: "
// before the message of a warning.
func (d Diagnostic) String() string {
	var b strings.Builder
	b.WriteString(d.File)
	b.WriteByte(':')
	fmt.Fprint(&b, d.Line)
	b.WriteString(": ")
	if d.Keyword != "" {
		b.WriteString(d.Keyword)
		b.WriteString(": ")
	}
	if d.Warning {
		b.WriteString("warning: ")
	}
	b.WriteString(d.Msg)
	return b.String()
}

// Error is returned by Parse when the configuration has errors. It lists
// every error diagnostic (warnings are only in the returned slice).
type Error struct {
	Errors []Diagnostic
}

func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "keepalived configuration: %d error(s)", len(e.Errors))
	for _, d := range e.Errors {
		b.WriteString("\n")
		b.WriteString(d.String())
	}
	return b.String()
}

// diags collects diagnostics; the zero value is ready.
type diags struct {
	list []Diagnostic
	// once remembers the (file, keyword) pairs already warned about as
	// "not acted on", so each is reported once per file.
	once map[[2]string]bool
	// nerr and nwarn count the errors and warnings added.
	nerr, nwarn int
}

// maxDiagnostics bounds the diagnostics of each kind kept for one
// configuration; a generated configuration could otherwise produce one
// per line.
const maxDiagnostics = 10000

func (d *diags) add(pos Pos, kw string, warning bool, format string, args ...any) {
	k := &d.nerr
	if warning {
		k = &d.nwarn
	}
	if *k++; *k > maxDiagnostics {
		if *k == maxDiagnostics+1 {
			d.list = append(d.list, Diagnostic{File: pos.File, Line: pos.Line, Warning: warning, Msg: "too many diagnostics, the rest are not shown"})
		}
		return
	}
	d.list = append(d.list, Diagnostic{File: pos.File, Line: pos.Line, Keyword: kw, Msg: fmt.Sprintf(format, args...), Warning: warning})
}

// onceWarn adds a warning unless one was already given for kw in pos.File.
func (d *diags) onceWarn(pos Pos, kw, format string, args ...any) {
	if d.once == nil {
		d.once = map[[2]string]bool{}
	}
	k := [2]string{pos.File, kw}
	if d.once[k] {
		return
	}
	d.once[k] = true
	d.add(pos, kw, true, format, args...)
}

func (d *diags) hasErrors() bool {
	for _, x := range d.list {
		if !x.Warning {
			return true
		}
	}
	return false
}

func (d *diags) errors() []Diagnostic {
	var out []Diagnostic
	for _, x := range d.list {
		if !x.Warning {
			out = append(out, x)
		}
	}
	return out
}
