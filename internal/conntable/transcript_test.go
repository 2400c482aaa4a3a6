package conntable

import (
	"bufio"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Transcript tests (style §10.5): testdata/*.txt are scripts of commands on
// a table with a manual clock, each followed by "----" and the expected
// output, cases separated by blank lines. go test -rewrite regenerates the
// expected outputs (review the diff before committing it).
//
// Commands (times are offsets from an arbitrary origin; names are given to
// entries at insert):
//
//	insert NAME [template] PROTO CADDR[:PORT] VADDR:PORT DADDR:PORT [timeout=D] [control=NAME] [state=N] [flags=masq|route|tunnel,nocport,assured]
//	at D            move the clock to D, without Expire
//	expire D        move the clock to D and run Expire; prints the removals
//	lookup NAME     the lookup that finds NAME's key (in for a connection,
//	                template for a template) at the current time
//	out NAME        the out lookup of a reply to NAME's client
//	show NAME       NAME's entry (Get)
//	touch NAME | rearm NAME | timeout NAME D | state NAME N D
//	assure NAME | neutralise NAME | expire-now NAME | delete NAME

var rewrite = flag.Bool("rewrite", false, "rewrite the expected output of transcript tests")

type transcript struct {
	t     *testing.T
	tab   *Table
	rec   recorder
	now   int64
	refs  map[string]Ref
	keys  map[string]Conn // as inserted
	names map[Ref]string
}

func TestTranscripts(t *testing.T) {
	files, err := filepath.Glob("testdata/*.txt")
	if err != nil || len(files) == 0 {
		t.Fatalf("no transcripts: %v", err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) { runTranscript(t, f) })
	}
}

func runTranscript(t *testing.T, file string) {
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	tr := &transcript{t: t, now: t0, refs: map[string]Ref{}, keys: map[string]Conn{}, names: map[Ref]string{}}
	tr.tab, err = New(Config{Max: 100, Shards: 4, Seed: 1, OnRemove: tr.rec.onRemove})
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	sc := bufio.NewScanner(strings.NewReader(string(data)))
	lineNo := 0
	for sc.Scan() {
		lineNo++
		line := sc.Text()
		if strings.TrimSpace(line) == "" || strings.HasPrefix(line, "#") {
			out.WriteString(line + "\n")
			continue
		}
		cmd := line
		if !sc.Scan() || sc.Text() != "----" {
			t.Fatalf("%s:%d: command without ---- line", file, lineNo)
		}
		lineNo++
		var want []string
		for sc.Scan() {
			lineNo++
			if sc.Text() == "" {
				break
			}
			want = append(want, sc.Text())
		}
		got := tr.run(cmd)
		out.WriteString(cmd + "\n----\n" + got + "\n\n")
		if !*rewrite && got != strings.Join(want, "\n") {
			t.Errorf("%s:%d: %s\ngot:\n%s\nwant:\n%s", file, lineNo, cmd, got, strings.Join(want, "\n"))
		}
	}
	if *rewrite {
		if err := os.WriteFile(file, []byte(strings.TrimRight(out.String(), "\n")+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func (tr *transcript) run(cmd string) string {
	f := strings.Fields(cmd)
	tab := tr.tab
	ref := func(i int) Ref {
		if len(f) <= i {
			tr.t.Fatalf("%s: missing name", cmd)
		}
		r, ok := tr.refs[f[i]]
		if !ok {
			tr.t.Fatalf("%s: unknown name %s", cmd, f[i])
		}
		return r
	}
	dur := func(i int) time.Duration {
		if len(f) <= i {
			tr.t.Fatalf("%s: missing duration", cmd)
		}
		d, err := time.ParseDuration(f[i])
		if err != nil {
			tr.t.Fatalf("%s: %v", cmd, err)
		}
		return d
	}
	okStr := func(ok bool) string {
		if ok {
			return "ok"
		}
		return "refused"
	}
	switch f[0] {
	case "insert":
		return tr.insert(cmd, f[1:])
	case "at":
		tr.now = at(dur(1))
		return "ok"
	case "expire":
		tr.now = at(dur(1))
		n := tab.Expire(tr.now, 1<<30)
		return tr.removals(fmt.Sprintf("expired %d", n))
	case "lookup":
		c := tr.keys[f[1]]
		var r Ref
		var ok bool
		if c.Flags&FlagTemplate != 0 {
			r, ok = tab.LookupTemplate(c.Proto, c.CAddr, c.VAddr, c.VPort, c.FWMark, tr.now)
		} else {
			r, ok = tab.LookupIn(c.Proto, c.CAddr, c.CPort, c.VAddr, c.VPort, tr.now)
		}
		return tr.found(r, ok)
	case "out":
		c := tr.keys[f[1]]
		src, sport := c.DAddr, c.DPort
		if c.Flags&FlagFwdMask != FlagMasq {
			src, sport = c.VAddr, c.VPort
		}
		return tr.found(tab.LookupOut(c.Proto, src, sport, c.CAddr, c.CPort, tr.now))
	case "show":
		c, ok := tab.Get(ref(1))
		if !ok {
			return "gone"
		}
		ctl := "-"
		if c.Control != 0 {
			ctl = tr.names[c.Control]
		}
		return fmt.Sprintf("%v:%d %v:%d %v:%d state %d old %d timeout %v expires %v ncontrol %d control %s inpkts %d flags %#04x",
			c.CAddr, c.CPort, c.VAddr, c.VPort, c.DAddr, c.DPort,
			c.State, c.OldState, c.Timeout, time.Duration(c.Expires-t0), c.NControl, ctl, c.InPkts, uint16(c.Flags))
	case "touch":
		n, ok := tab.Touch(ref(1), tr.now)
		if !ok {
			return "refused"
		}
		return fmt.Sprintf("inpkts %d", n)
	case "rearm":
		return okStr(tab.Rearm(ref(1), tr.now))
	case "timeout":
		return okStr(tab.SetTimeout(ref(1), dur(2), tr.now))
	case "state":
		r := ref(1)
		c, _ := tab.Get(r)
		n, err := strconv.Atoi(f[2])
		if err != nil {
			tr.t.Fatalf("%s: %v", cmd, err)
		}
		return okStr(tab.SetState(r, uint8(n), c.Flags, dur(3), tr.now))
	case "assure":
		return okStr(tab.Assure(ref(1)))
	case "neutralise":
		return okStr(tab.Neutralise(ref(1)))
	case "expire-now":
		ok := tab.ExpireNow(ref(1))
		return tr.removals(okStr(ok))
	case "delete":
		ok := tab.Delete(ref(1))
		return tr.removals(okStr(ok))
	}
	tr.t.Fatalf("unknown command %q", cmd)
	return ""
}

func (tr *transcript) found(r Ref, ok bool) string {
	if !ok {
		return "not found"
	}
	return "found " + tr.names[r]
}

// removals lists what OnRemove saw since the last command.
func (tr *transcript) removals(head string) string {
	lines := []string{head}
	for _, g := range tr.rec.take() {
		how := "expired"
		if g.forced {
			how = "forced"
		}
		lines = append(lines, fmt.Sprintf("removed %s (%s)", tr.names[g.c.Ref], how))
	}
	return strings.Join(lines, "\n")
}

func (tr *transcript) insert(cmd string, f []string) string {
	if len(f) < 5 {
		tr.t.Fatalf("%s: want NAME [template] PROTO CADDR VADDR DADDR", cmd)
	}
	name := f[0]
	f = f[1:]
	var c Conn
	if f[0] == "template" {
		c.Flags |= FlagTemplate
		f = f[1:]
	}
	switch f[0] {
	case "tcp":
		c.Proto = tcp
	case "udp":
		c.Proto = udp
	case "fwmark":
		c.Proto = 0
	default:
		tr.t.Fatalf("%s: protocol %s", cmd, f[0])
	}
	ap := func(s string) (netip.Addr, uint16) {
		if strings.HasPrefix(s, "mark:") {
			n, err := strconv.Atoi(s[5:])
			if err != nil {
				tr.t.Fatalf("%s: %v", cmd, err)
			}
			c.FWMark = uint32(n)
			return netip.Addr{}, 0
		}
		if p, err := netip.ParseAddrPort(s); err == nil {
			return p.Addr(), p.Port()
		}
		a, err := netip.ParseAddr(s)
		if err != nil {
			tr.t.Fatalf("%s: %v", cmd, err)
		}
		return a, 0
	}
	c.CAddr, c.CPort = ap(f[1])
	c.VAddr, c.VPort = ap(f[2])
	c.DAddr, c.DPort = ap(f[3])
	c.Timeout = 3 * time.Second // the kernel's timeout of a new connection
	for _, kv := range f[4:] {
		k, v, _ := strings.Cut(kv, "=")
		switch k {
		case "timeout":
			d, err := time.ParseDuration(v)
			if err != nil {
				tr.t.Fatalf("%s: %v", cmd, err)
			}
			c.Timeout = d
		case "control":
			c.Control = tr.refs[v]
		case "state":
			n, _ := strconv.Atoi(v)
			c.State = uint8(n)
		case "flags":
			for _, fl := range strings.Split(v, ",") {
				switch fl {
				case "masq":
				case "route":
					c.Flags |= FlagRoute | FlagNoOutput
				case "tunnel":
					c.Flags |= FlagTunnel | FlagNoOutput
				case "nocport":
					c.Flags |= FlagNoCPort
				case "assured":
					c.State |= TemplateAssured
				default:
					tr.t.Fatalf("%s: flag %s", cmd, fl)
				}
			}
		default:
			tr.t.Fatalf("%s: option %s", cmd, k)
		}
	}
	r, err := tr.tab.Insert(&c, tr.now)
	if err != nil {
		return "error: " + err.Error()
	}
	tr.refs[name] = r
	tr.keys[name] = c
	tr.names[r] = name
	return "ok"
}
