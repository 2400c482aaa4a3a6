package engine

import (
	"bufio"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"golvs/internal/clock"
	"golvs/internal/conntable"
	"golvs/internal/control"
	"golvs/internal/proto"
	"golvs/internal/service"
)

// The transcript tests (style.md §10.5) script a director: configuration in
// ipvsadm's words, packets in and out, time passing; after each command the
// file holds the exact expected output. Regenerate with
//
//	go test ./internal/engine -run Transcript -rewrite
//
// only when the change is understood.

var rewrite = flag.Bool("rewrite", false, "rewrite the transcript files with the actual output")

func TestTranscripts(t *testing.T) {
	files, err := filepath.Glob("testdata/*.txt")
	if err != nil || len(files) == 0 {
		t.Fatalf("no transcripts: %v", err)
	}
	for _, f := range files {
		t.Run(strings.TrimSuffix(filepath.Base(f), ".txt"), func(t *testing.T) { runTranscript(t, f) })
	}
}

type block struct {
	pre  string   // comment and blank lines before the block
	cmds []string // commands (one or more lines) before ----
	want string
}

func parseTranscript(t *testing.T, path string) (trailer string, blocks []block) {
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(strings.NewReader(string(data)))
	var cur *block
	inWant := false
	var pre strings.Builder
	for sc.Scan() {
		line := sc.Text()
		switch {
		case cur == nil && (strings.HasPrefix(line, "#") || strings.TrimSpace(line) == ""):
			pre.WriteString(line + "\n")
		case cur == nil:
			cur = &block{pre: pre.String(), cmds: []string{line}}
			pre.Reset()
		case !inWant && line == "----":
			inWant = true
		case !inWant:
			cur.cmds = append(cur.cmds, line)
		case line == "":
			blocks = append(blocks, *cur)
			cur, inWant = nil, false
		default:
			cur.want += line + "\n"
		}
	}
	if cur != nil {
		blocks = append(blocks, *cur)
	}
	return pre.String(), blocks
}

func runTranscript(t *testing.T, path string) {
	trailer, blocks := parseTranscript(t, path)
	clk := clock.NewManual(time.Hour)
	ctl := control.New(control.Config{Clock: clk})
	e, err := New(Config{Control: ctl, Clock: clk, MaxConns: 1024, TableShards: 4, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	r := &runner{t: t, clk: clk, ctl: ctl, e: e, w: e.NewWorker(0)}
	var out strings.Builder
	for _, b := range blocks {
		out.WriteString(b.pre)
		var got strings.Builder
		for _, c := range b.cmds {
			got.WriteString(r.do(c))
		}
		if !*rewrite && got.String() != b.want {
			t.Errorf("%s: after\n  %s\ngot:\n%swant:\n%s", path, strings.Join(b.cmds, "\n  "), got.String(), b.want)
		}
		out.WriteString(strings.Join(b.cmds, "\n") + "\n----\n" + got.String() + "\n")
	}
	out.WriteString(trailer)
	if *rewrite {
		if err := os.WriteFile(path, []byte(strings.TrimRight(out.String(), "\n")+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

type runner struct {
	t   *testing.T
	clk *clock.Manual
	ctl *control.Control
	e   *Engine
	w   *Worker
}

func (r *runner) do(line string) string {
	f := strings.Fields(line)
	if len(f) == 0 {
		return ""
	}
	switch f[0] {
	case "-A", "-E", "-D", "-a", "-e", "-d":
		if err := r.ipvsadm(f); err != nil {
			return "error: " + err.Error() + "\n"
		}
		return ""
	case "set":
		s := r.e.Settings()
		for _, kv := range f[1:] {
			k, v, _ := strings.Cut(kv, "=")
			n, _ := strconv.Atoi(v)
			switch k {
			case "expire_nodest_conn":
				s.ExpireNodestConn = n != 0
			case "expire_quiescent_template":
				s.ExpireQuiescentTemplate = n != 0
			case "conn_reuse_mode":
				s.ConnReuseMode = uint8(n)
			case "secure_tcp":
				s.SecureTCP = n != 0
			case "sloppy_tcp":
				s.SloppyTCP = n != 0
			default:
				r.t.Fatalf("unknown setting %s", k)
			}
		}
		r.e.SetSettings(s)
		return ""
	case "--set":
		a := make([]time.Duration, 3)
		for i := range a {
			n, _ := strconv.Atoi(f[1+i])
			a[i] = time.Duration(n) * time.Second
		}
		if err := r.e.SetTimeouts(a[0], a[1], a[2]); err != nil {
			return "error: " + err.Error() + "\n"
		}
		return ""
	case "in", "out":
		return r.packet(f)
	case "advance":
		d, err := time.ParseDuration(f[1])
		if err != nil {
			r.t.Fatal(err)
		}
		r.clk.Advance(d)
		n := r.e.Tick()
		if n == 0 {
			return ""
		}
		return fmt.Sprintf("expired %d\n", n)
	case "conns":
		return r.conns()
	case "dests":
		return r.dests()
	case "stats":
		return r.stats()
	}
	r.t.Fatalf("unknown command %q", line)
	return ""
}

// ipvsadm applies a tiny subset of ipvsadm's syntax (enough for the
// transcripts; the real grammar lives in package ipvsadm).
func (r *runner) ipvsadm(f []string) error {
	var k service.Key
	cfg := service.Config{Sched: "wlc"}
	dc := service.DestConfig{Fwd: service.Route, Weight: 1}
	var rs netip.AddrPort
	hasPort := false
	for i := 1; i < len(f); i++ {
		arg := func() string { i++; return f[i] }
		switch f[i] {
		case "-t", "-u":
			ap := netip.MustParseAddrPort(arg())
			k = service.Key{Family: service.FamilyOf(ap.Addr()), Proto: service.ProtoTCP, Addr: ap.Addr(), Port: ap.Port()}
			if f[i-1] == "-u" {
				k.Proto = service.ProtoUDP
			}
		case "-f":
			n, _ := strconv.Atoi(arg())
			k = service.Key{Family: service.IPv4, FWMark: uint32(n)}
		case "-s":
			cfg.Sched = arg()
		case "-p":
			cfg.Flags |= service.FlagPersistent
			cfg.Timeout = 360
			if i+1 < len(f) && !strings.HasPrefix(f[i+1], "-") {
				n, _ := strconv.Atoi(arg())
				cfg.Timeout = uint32(n)
			}
		case "-M":
			m := netip.MustParseAddr(arg()).As4()
			cfg.Netmask = uint32(m[0])<<24 | uint32(m[1])<<16 | uint32(m[2])<<8 | uint32(m[3])
		case "-o":
			cfg.Flags |= service.FlagOnePacket
		case "-r":
			s := arg()
			if ap, err := netip.ParseAddrPort(s); err == nil {
				rs, hasPort = ap, true
			} else {
				rs = netip.AddrPortFrom(netip.MustParseAddr(s), 0)
			}
		case "-m":
			dc.Fwd = service.Masq
		case "-g":
			dc.Fwd = service.Route
		case "-i":
			dc.Fwd = service.Tunnel
		case "-w":
			n, _ := strconv.Atoi(arg())
			dc.Weight = int32(n)
		case "-x":
			n, _ := strconv.Atoi(arg())
			dc.UThreshold = uint32(n)
		case "-y":
			n, _ := strconv.Atoi(arg())
			dc.LThreshold = uint32(n)
		default:
			r.t.Fatalf("transcript ipvsadm: unknown option %s", f[i])
		}
	}
	port := rs.Port()
	if !hasPort && !k.IsFWMark() {
		port = k.Port // a real server without port inherits the service's
	}
	switch f[0] {
	case "-A":
		return r.ctl.AddService(k, cfg)
	case "-E":
		return r.ctl.EditService(k, cfg)
	case "-D":
		return r.ctl.DeleteService(k)
	case "-a":
		return r.ctl.AddDest(k, rs.Addr(), port, dc)
	case "-e":
		return r.ctl.EditDest(k, rs.Addr(), port, dc)
	case "-d":
		return r.ctl.DeleteDest(k, rs.Addr(), port)
	}
	return nil
}

// packet: in|out tcp|udp SRC:PORT DST:PORT [FLAGS] [len=N] [mark=N]
func (r *runner) packet(f []string) string {
	p := Packet{Len: 60}
	switch f[1] {
	case "tcp":
		p.Proto = service.ProtoTCP
	case "udp":
		p.Proto = service.ProtoUDP
	case "sctp":
		p.Proto = service.ProtoSCTP
	}
	src, dst := netip.MustParseAddrPort(f[2]), netip.MustParseAddrPort(f[3])
	p.Src, p.SrcPort, p.Dst, p.DstPort = src.Addr(), src.Port(), dst.Addr(), dst.Port()
	for _, a := range f[4:] {
		switch {
		case strings.HasPrefix(a, "len="):
			p.Len, _ = strconv.Atoi(a[4:])
		case strings.HasPrefix(a, "mark="):
			n, _ := strconv.Atoi(a[5:])
			p.Mark = uint32(n)
		case strings.HasPrefix(a, "chunk="):
			n, _ := strconv.Atoi(a[6:])
			p.TCPFlags = uint8(n)
		default:
			for _, c := range a {
				p.TCPFlags |= map[rune]uint8{'S': proto.FlagSYN, 'A': proto.FlagACK, 'F': proto.FlagFIN, 'R': proto.FlagRST}[c]
			}
		}
	}
	r.w.Begin()
	var d Decision
	if f[0] == "in" {
		d = r.w.In(&p)
	} else {
		d = r.w.Out(&p)
	}
	switch d.Verdict {
	case Forward:
		if f[0] == "in" {
			return fmt.Sprintf("forward %s -> %s\n", d.Fwd, netip.AddrPortFrom(d.DAddr, d.DPort))
		}
		if d.Fwd == service.Masq {
			return fmt.Sprintf("forward %s snat %s\n", d.Fwd, netip.AddrPortFrom(d.VAddr, d.VPort))
		}
		return fmt.Sprintf("forward %s\n", d.Fwd)
	case Drop:
		return fmt.Sprintf("drop %s\n", d.Reason)
	}
	return d.Verdict.String() + "\n"
}

func protoName(p uint8) string {
	switch p {
	case service.ProtoTCP:
		return "TCP"
	case service.ProtoUDP:
		return "UDP"
	case service.ProtoSCTP:
		return "SCTP"
	}
	return "IP"
}

// conns lists the connection table like ipvsadm -L -n -c, sorted.
func (r *runner) conns() string {
	now := r.clk.Nanotime()
	var lines []string
	r.e.Conns().Walk(func(c conntable.Conn) bool {
		left := (c.Expires - now) / int64(time.Second)
		if left < 0 {
			left = 0
		}
		tmpl := c.Flags&conntable.FlagTemplate != 0
		vaddr := netip.AddrPortFrom(c.VAddr, c.VPort).String()
		if tmpl && c.FWMark != 0 && c.Proto == proto.IP {
			vaddr = fmt.Sprintf("FWM%d", c.FWMark)
		}
		lines = append(lines, fmt.Sprintf("%-4s %02d:%02d  %-11s %s %s %s", protoName(c.Proto), left/60, left%60,
			proto.StateName(c.Proto, proto.State(c.State), tmpl),
			netip.AddrPortFrom(c.CAddr, c.CPort), vaddr, netip.AddrPortFrom(c.DAddr, c.DPort)))
		return true
	})
	sort.Strings(lines)
	if len(lines) == 0 {
		return "(no connections)\n"
	}
	return strings.Join(lines, "\n") + "\n"
}

func (r *runner) dests() string {
	var b strings.Builder
	for _, s := range r.ctl.Snapshot().Services() {
		fmt.Fprintf(&b, "%s %s\n", s.Key, s.Config.Sched)
		for _, d := range s.Dests {
			ov := ""
			if d.Overloaded() {
				ov = " OVERLOAD"
			}
			fmt.Fprintf(&b, "  -> %s %s w=%d act=%d inact=%d persist=%d%s\n", netip.AddrPortFrom(d.Addr, d.Port), d.Fwd(),
				d.Weight(), d.ActiveConns(), d.InactConns(), d.PersistConns(), ov)
		}
	}
	return b.String()
}

func (r *runner) stats() string {
	var b strings.Builder
	for _, s := range r.ctl.Snapshot().Services() {
		v := s.Stats.Read()
		fmt.Fprintf(&b, "%s conns=%d inpkts=%d outpkts=%d inbytes=%d outbytes=%d\n", s.Key, v.Conns, v.InPkts, v.OutPkts, v.InBytes, v.OutBytes)
		for _, d := range s.Dests {
			v := d.Stats.Read()
			fmt.Fprintf(&b, "  -> %s conns=%d inpkts=%d outpkts=%d\n", netip.AddrPortFrom(d.Addr, d.Port), v.Conns, v.InPkts, v.OutPkts)
		}
	}
	v := r.ctl.Total().Read()
	fmt.Fprintf(&b, "total conns=%d inpkts=%d outpkts=%d\n", v.Conns, v.InPkts, v.OutPkts)
	return b.String()
}
