package vrrp

import (
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

var rewrite = flag.Bool("rewrite", false, "rewrite testdata/*.txt with the actual output (review the diff before committing)")

// Transcript tests (style.md §10.5): each testdata/*.txt file is a script
// of blocks
//
//	# comments (kept on rewrite)
//	command args
//	----
//	expected output
//	<blank line>
//
// run in order against a fake LAN (bus_test.go) and a fake clock counting
// seconds from 0. Time only moves forward: a command at t=T first lets the
// LAN run up to T (every instance ticked at its deadlines, adverts
// delivered; those lines are prefixed "t=..."), then acts at T. Commands:
//
//	instance NAME addr=IP [key=value|flag ...]
//	                  declare an instance (keys below); prints Normalize's
//	                  warnings, or "ok"
//	group NAME MEMBER...
//	                  a vrrp_sync_group of declared instances
//	t=T NAME start|tick|shutdown
//	t=T NAME fault on|off
//	t=T NAME priority N          (Instance.PriorityChange)
//	t=T NAME tracker W:up|down[:reverse] ...
//	                  EffectivePriority of the instance's configured
//	                  priority and these trackers, fed to PriorityChange
//	                  and Fault
//	t=T NAME advert from=IP [prio=N] [int=DUR] [vrid=N] [version=N]
//	                [vips=IP,IP|none] [pass=S] [auth=none|pass|ah]
//	                  a forged advert, the instance's own (Build) with
//	                  these fields replaced, encoded and decoded with the
//	                  codec on the way
//	t=T NAME crash | link up|down
//	                  the instance vanishes silently (start makes a fresh
//	                  one, as a restarted process) / is cut off the LAN
//	t=T group NAME start|shutdown
//	run until=T [loss=P seed=N]
//	                  the LAN on its own: every instance ticked at its
//	                  deadline up to T, adverts delivered; lines carry t=
//	expect NAME key=value ...
//	                  assertions, checked even with -rewrite: state=S,
//	                  prio=N, deadline=T|none, down=D, skew=D, mai=D,
//	                  master-at=T|never, master-at<=T
//	expect masters=NAME,NAME|none
//
// A step prints its actions ("a: send prio=100"), adverts discarded by
// their receiver ("b: discard from a: ..."), an input refused ("error:
// ..."), or "(none)". Times are exact decimal seconds. Instance keys: vrid
// (default 51), prio, int, version, vips (default 198.18.1.VRID or
// 2001:db8::VRID), state=master|backup, nopreempt, preempt_delay,
// down_adverts, lower_prio_no_advert, higher_prio_send_advert,
// skip_check_adv_addr, pass (auth PASS), peers=IP,IP, check_unicast_src,
// v3_checksum_as_v2, garp_delay, garp_repeat, garp_refresh,
// garp_refresh_repeat, garp_lower_delay, garp_lower_repeat (durations in
// Go syntax, negative for none).
func TestTranscripts(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "*.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no transcripts in testdata/")
	}
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".txt"), func(t *testing.T) {
			runTranscript(t, file)
		})
	}
}

type block struct {
	comments []string // blank and comment lines before the command
	cmd      string
	want     string
	line     int
}

func parseTranscript(t *testing.T, file string) (blocks []block, trailer []string) {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	var pending []string
	for i := 0; i < len(lines); i++ {
		l := lines[i]
		if l == "" || strings.HasPrefix(l, "#") {
			pending = append(pending, l)
			continue
		}
		b := block{comments: pending, cmd: l, line: i + 1}
		pending = nil
		if i+1 >= len(lines) || lines[i+1] != "----" {
			t.Fatalf("%s:%d: command without ---- line", file, i+1)
		}
		i += 2
		var want []string
		for ; i < len(lines) && lines[i] != ""; i++ {
			want = append(want, lines[i])
		}
		b.want = strings.Join(want, "\n")
		blocks = append(blocks, b)
	}
	return blocks, pending
}

func runTranscript(t *testing.T, file string) {
	blocks, trailer := parseTranscript(t, file)
	r := &runner{t: t, bus: newBus(1)}
	var out strings.Builder
	failed := false
	for _, b := range blocks {
		got := r.exec(fmt.Sprintf("%s:%d", file, b.line), b.cmd)
		if got != b.want && !*rewrite {
			t.Errorf("%s:%d: %s\n--- want\n%s\n--- got\n%s", file, b.line, b.cmd, b.want, got)
			failed = true
		}
		for _, c := range b.comments {
			out.WriteString(c + "\n")
		}
		fmt.Fprintf(&out, "%s\n----\n%s\n\n", b.cmd, got)
		if len(got) == 0 {
			t.Fatalf("%s:%d: empty output", file, b.line)
		}
	}
	for _, c := range trailer {
		out.WriteString(c + "\n")
	}
	if *rewrite && !failed {
		if err := os.WriteFile(file, []byte(strings.TrimRight(out.String(), "\n")+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// runner executes transcript commands.
type runner struct {
	t     *testing.T
	bus   *bus
	lines []string
	pre   bool // prefix lines with t= (run)
}

func (r *runner) exec(pos, cmd string) string {
	r.lines = r.lines[:0]
	r.pre = false
	r.bus.log = func(now time.Time, line string) {
		if r.pre {
			line = "t=" + fmtT(now) + " " + line
		}
		r.lines = append(r.lines, line)
	}
	f := strings.Fields(cmd)
	fail := func(format string, args ...any) string {
		r.t.Fatalf("%s: %s: %s", pos, cmd, fmt.Sprintf(format, args...))
		return ""
	}
	switch {
	case f[0] == "instance":
		return r.instance(f[1:], fail)
	case f[0] == "group":
		var members []*Instance
		for _, name := range f[2:] {
			n := r.bus.node(name)
			if n == nil {
				return fail("no instance %s", name)
			}
			members = append(members, n.in)
		}
		g, err := NewGroup(f[1], members...)
		if err != nil {
			return "error: " + err.Error()
		}
		r.bus.groups[f[1]] = g
		return "ok"
	case strings.HasPrefix(f[0], "t="):
		d, err := time.ParseDuration(strings.TrimPrefix(f[0], "t=") + "s")
		if err != nil || len(f) < 3 {
			return fail("bad command")
		}
		now := epoch.Add(d)
		if now.Before(r.bus.now) {
			return fail("time goes backwards (now %s)", fmtT(r.bus.now))
		}
		// The LAN runs on its own up to now (lines with t=), then the
		// command acts at now.
		r.pre = true
		r.bus.run(now)
		r.pre = false
		if f[1] == "group" {
			return r.groupCmd(f[2:], fail)
		}
		return r.step(f[1:], fail)
	case f[0] == "run":
		kv := keyvals(f[1:], fail)
		if _, ok := kv["until"]; !ok {
			return fail("run needs until=T")
		}
		until, err := time.ParseDuration(kv["until"] + "s")
		if err != nil {
			return fail("bad until")
		}
		if p, ok := kv["loss"]; ok {
			r.bus.loss, _ = strconv.ParseFloat(p, 64)
		}
		r.pre = true
		r.bus.run(epoch.Add(until))
		r.bus.loss = 0
	case f[0] == "expect":
		return r.expect(f[1:], fail)
	default:
		return fail("unknown command")
	}
	return r.output()
}

func (r *runner) output() string {
	if len(r.lines) == 0 {
		return "(none)"
	}
	return strings.Join(r.lines, "\n")
}

func keyvals(f []string, fail func(string, ...any) string) map[string]string {
	kv := map[string]string{}
	for _, s := range f {
		k, v, _ := strings.Cut(s, "=")
		if _, dup := kv[k]; dup {
			fail("duplicate key %s", k)
		}
		kv[k] = v
	}
	return kv
}

func addrs(s string, fail func(string, ...any) string) []netip.Addr {
	if s == "none" {
		return []netip.Addr{}
	}
	var out []netip.Addr
	for _, a := range strings.Split(s, ",") {
		addr, err := netip.ParseAddr(a)
		if err != nil {
			fail("bad address %q", a)
		}
		out = append(out, addr)
	}
	return out
}

func (r *runner) instance(f []string, fail func(string, ...any) string) string {
	if len(f) < 1 {
		return fail("instance without a name")
	}
	cfg := Config{Name: f[0], VRID: 51}
	kv := keyvals(f[1:], fail)
	num := func(k string) int {
		n, err := strconv.Atoi(kv[k])
		if err != nil {
			fail("bad %s", k)
		}
		return n
	}
	dur := func(k string) time.Duration {
		d, err := time.ParseDuration(kv[k])
		if err != nil {
			fail("bad %s", k)
		}
		return d
	}
	for k := range kv {
		switch k {
		case "addr":
			cfg.LocalAddr = addrs(kv[k], fail)[0]
		case "vrid":
			cfg.VRID = uint8(num(k))
		case "prio":
			cfg.Priority = uint8(num(k))
		case "int":
			cfg.AdvertInt = dur(k)
		case "version":
			cfg.Version = uint8(num(k))
		case "vips":
			cfg.VIPs = addrs(kv[k], fail)
		case "state":
			cfg.InitialState = map[string]State{"master": Master, "backup": Backup}[kv[k]]
		case "nopreempt":
			cfg.NoPreempt = true
		case "preempt_delay":
			cfg.PreemptDelay = dur(k)
		case "down_adverts":
			cfg.DownTimerAdverts = num(k)
		case "lower_prio_no_advert":
			cfg.LowerPrioNoAdvert = true
		case "higher_prio_send_advert":
			cfg.HigherPrioSendAdvert = true
		case "skip_check_adv_addr":
			cfg.SkipCheckAdvAddr = true
		case "pass":
			cfg.Auth, cfg.AuthPass = AuthPass, kv[k]
		case "peers":
			cfg.UnicastPeers = addrs(kv[k], fail)
		case "check_unicast_src":
			cfg.CheckUnicastSrc = true
		case "v3_checksum_as_v2":
			cfg.V3ChecksumAsV2 = true
		case "garp_delay":
			cfg.GARP.MasterDelay = dur(k)
		case "garp_repeat":
			cfg.GARP.MasterRepeat = num(k)
		case "garp_refresh":
			cfg.GARP.Refresh = dur(k)
		case "garp_refresh_repeat":
			cfg.GARP.RefreshRepeat = num(k)
		case "garp_lower_delay":
			cfg.GARP.LowerPrioDelay = dur(k)
		case "garp_lower_repeat":
			cfg.GARP.LowerPrioRepeat = num(k)
		default:
			return fail("unknown key %s", k)
		}
	}
	if _, ok := kv["vips"]; !ok {
		if cfg.LocalAddr.Is6() {
			cfg.VIPs = []netip.Addr{netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 15: cfg.VRID})}
		} else {
			cfg.VIPs = []netip.Addr{netip.AddrFrom4([4]byte{198, 18, 1, cfg.VRID})}
		}
	}
	_, warn, err := cfg.Normalize()
	if err != nil {
		return "error: " + err.Error()
	}
	in, err := NewInstance(cfg)
	if err != nil {
		return fail("NewInstance: %v", err)
	}
	if r.bus.node(cfg.Name) != nil {
		return fail("instance %s declared twice", cfg.Name)
	}
	r.bus.nodes = append(r.bus.nodes, &node{name: cfg.Name, cfg: cfg, in: in})
	if len(warn) == 0 {
		return "ok"
	}
	return strings.Join(warn, "\n")
}

func (r *runner) step(f []string, fail func(string, ...any) string) string {
	n := r.bus.node(f[0])
	if n == nil {
		return fail("no instance %s", f[0])
	}
	now := r.bus.now
	var acts []Action
	switch f[1] {
	case "start":
		if n.crashed {
			in, err := NewInstance(n.cfg)
			if err != nil {
				return fail("%v", err)
			}
			n.in, n.crashed = in, false
		}
		acts = n.in.Start(now)
	case "tick":
		acts = n.in.Tick(now)
	case "shutdown":
		acts = n.in.Shutdown(now)
	case "crash":
		n.crashed = true
		return "ok"
	case "link":
		n.linkDown = f[2] == "down"
		return "ok"
	case "fault":
		acts = n.in.Fault(now, f[2] == "on")
	case "priority":
		p, err := strconv.Atoi(f[2])
		if err != nil {
			return fail("bad priority")
		}
		acts = n.in.PriorityChange(now, uint8(p))
	case "tracker":
		var trackers []Tracker
		for _, s := range f[2:] {
			parts := strings.Split(s, ":")
			w, err := strconv.Atoi(parts[0])
			if err != nil || len(parts) < 2 {
				return fail("bad tracker %q", s)
			}
			trackers = append(trackers, Tracker{Weight: w, Up: parts[1] == "up", Reverse: len(parts) > 2 && parts[2] == "reverse"})
		}
		prio, fault := EffectivePriority(n.in.Config().Priority, trackers)
		r.lines = append(r.lines, fmt.Sprintf("effective priority %d fault=%v", prio, fault))
		acts = append(n.in.PriorityChange(now, prio), n.in.Fault(now, fault)...)
	case "advert":
		return r.advert(n, f[2:], fail)
	default:
		return fail("unknown step %s", f[1])
	}
	r.bus.apply(acts)
	return r.output()
}

func (r *runner) groupCmd(f []string, fail func(string, ...any) string) string {
	g := r.bus.groups[f[0]]
	if g == nil || len(f) < 2 {
		return fail("no group %s", f[0])
	}
	switch f[1] {
	case "start":
		r.bus.apply(g.Start(r.bus.now))
	case "shutdown":
		r.bus.apply(g.Shutdown(r.bus.now))
	default:
		return fail("unknown group step %s", f[1])
	}
	return r.output()
}

func (r *runner) advert(n *node, f []string, fail func(string, ...any) string) string {
	kv := keyvals(f, fail)
	from, err := netip.ParseAddr(kv["from"])
	if err != nil {
		return fail("advert needs from=IP")
	}
	a := n.in.Build(n.in.Priority())
	num := func(k string) int {
		v, err := strconv.Atoi(kv[k])
		if err != nil {
			fail("bad %s", k)
		}
		return v
	}
	for k, v := range kv {
		switch k {
		case "from":
		case "prio":
			a.Priority = uint8(num(k))
		case "vrid":
			a.VRID = uint8(num(k))
		case "version":
			a.Version = uint8(num(k))
		case "int":
			d, err := time.ParseDuration(v)
			if err != nil {
				return fail("bad int")
			}
			if a.Version == 3 {
				a.Interval = uint16(d / (10 * time.Millisecond))
			} else {
				a.Interval = uint16(d / time.Second)
			}
		case "vips":
			if err := a.SetAddrs(addrs(v, fail)); err != nil {
				return fail("vips: %v", err)
			}
		case "pass":
			a.AuthType, a.AuthData = AuthPass, [8]byte{}
			copy(a.AuthData[:], v)
		case "auth":
			a.AuthType = map[string]AuthType{"none": AuthNone, "pass": AuthPass, "ah": AuthAH}[v]
		default:
			return fail("unknown advert key %s", k)
		}
	}
	dst := MulticastIPv4
	if a.Family == IPv6 {
		dst = MulticastIPv6
	}
	adv := a
	if FamilyOf(from) == a.Family { // else Append would panic: a test of Advert's ErrFamily
		codec := n.in.Codec()
		adv, err = codec.Decode(codec.Append(nil, a, from, dst), a.Family, from, dst)
		if err != nil {
			return fail("codec round trip: %v", err)
		}
	}
	acts, err := n.in.Advert(r.bus.now, from, adv)
	if err != nil {
		return "error: " + err.Error()
	}
	r.bus.apply(acts)
	return r.output()
}

func (r *runner) expect(f []string, fail func(string, ...any) string) string {
	if len(f) == 1 && strings.HasPrefix(f[0], "masters=") {
		got := strings.Join(r.bus.masters(), ",")
		if got == "" {
			got = "none"
		}
		if want := strings.TrimPrefix(f[0], "masters="); got != want {
			return fail("masters=%s, want %s", got, want)
		}
		return "ok"
	}
	n := r.bus.node(f[0])
	if n == nil {
		return fail("no instance %s", f[0])
	}
	in := n.in
	for _, kv := range f[1:] {
		if k, v, ok := strings.Cut(kv, "<="); ok && k == "master-at" {
			limit, err := time.ParseDuration(v + "s")
			if err != nil {
				return fail("bad %s", kv)
			}
			if n.masterAt.IsZero() || n.masterAt.After(epoch.Add(limit)) {
				return fail("master-at=%s, want <= %s", fmtT(n.masterAt), v)
			}
			continue
		}
		k, v, _ := strings.Cut(kv, "=")
		var got string
		switch k {
		case "state":
			got = in.State().String()
			v = strings.ToUpper(v)
		case "prio":
			got = strconv.Itoa(int(in.Priority()))
		case "deadline":
			got = fmtT(in.NextDeadline())
		case "down":
			got = fmtD(in.MasterDownInterval())
		case "skew":
			got = fmtD(in.SkewTime())
		case "mai":
			got = fmtD(in.MasterAdverInterval())
		case "master-at":
			got = fmtT(n.masterAt)
			if got == "none" {
				got = "never"
			}
		default:
			return fail("unknown expectation %s", k)
		}
		if got != v {
			return fail("%s: %s=%s, want %s", n.name, k, got, v)
		}
	}
	return "ok"
}
