package proto

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

var rewrite = flag.Bool("rewrite", false, "rewrite testdata/*.txt with the actual output (review the diff before committing)")

// Transcript tests (style.md §10.5): each testdata/*.txt file is a script of
// blocks
//
//	# comments (kept on rewrite)
//	command args
//	----
//	expected output
//	<blank line>
//
// run in order against one Timeouts value and one connection at a time.
// Blank lines and comments before a command belong to it; the blank line
// after an expected output ends it.
// Commands:
//
//	conn tcp|udp|sctp nat|dr|tun [persist]
//	                      new connection: state 0, InitialTimeout, counted
//	                      inactive on its real server; dr/tun set NOOUTPUT;
//	                      persist gives it a template (state NONE)
//	in X / out X          one packet from the client / the real server. X is
//	                      TCP flags (letters S F A R P U, "-" for none),
//	                      SCTP chunks (comma-separated names, the packet's
//	                      chunk list, "-" for none), nothing for UDP
//	set TCP TCPFIN UDP    ipvsadm --set (seconds)
//	timeout               ipvsadm -L --timeout
//	timeouts tcp|sctp     every state's timeout
//	secure on|off         secure_tcp in effect or not
//
// A connection prints "STATE mm:ss dir=DIR conns=ActiveConn/InActConn",
// "nooutput" while its NOOUTPUT flag is set, the template's state for
// persist connections, and, when they happen, "to-active"/"to-inactive",
// "clear-nooutput", "assure".
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
	comments []string
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
		i++
		if i >= len(lines) || lines[i] != "----" {
			t.Fatalf("%s:%d: command %q not followed by ----", file, b.line, l)
		}
		var out []string
		for i+1 < len(lines) && lines[i+1] != "" {
			i++
			out = append(out, lines[i])
		}
		b.want = strings.Join(out, "\n")
		blocks = append(blocks, b)
	}
	return blocks, pending
}

func runTranscript(t *testing.T, file string) {
	blocks, trailer := parseTranscript(t, file)
	r := &runner{tm: DefaultTimeouts()}
	var buf strings.Builder
	for _, b := range blocks {
		got := r.run(b.cmd)
		if !*rewrite && got != b.want {
			t.Errorf("%s:%d: %s\ngot:\n%s\nwant:\n%s", file, b.line, b.cmd, got, b.want)
		}
		for _, c := range b.comments {
			buf.WriteString(c + "\n")
		}
		buf.WriteString(b.cmd + "\n----\n")
		if got != "" {
			buf.WriteString(got + "\n")
		}
	}
	for _, c := range trailer {
		buf.WriteString(c + "\n")
	}
	if *rewrite {
		if err := os.WriteFile(file, []byte(buf.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// runner is the connection under test plus its real server's counters.
type runner struct {
	tm       Timeouts
	secure   bool
	proto    uint8
	state    State
	noOutput bool
	persist  bool
	tmpl     State
	active   int // the real server's ActiveConn
	inact    int // the real server's InActConn
}

func (r *runner) run(cmd string) string {
	f := strings.Fields(cmd)
	switch f[0] {
	case "conn":
		return r.conn(f[1:])
	case "in", "out":
		return r.packet(f[0], f[1:])
	case "set":
		if len(f) != 4 {
			return "usage: set TCP TCPFIN UDP"
		}
		var v [3]time.Duration
		for i, s := range f[1:] {
			n, err := strconv.Atoi(s)
			if err != nil {
				return "error: " + err.Error()
			}
			v[i] = time.Duration(n) * time.Second
		}
		if err := r.tm.Set(v[0], v[1], v[2]); err != nil {
			return "error: " + err.Error()
		}
		return "ok"
	case "timeout":
		tcp, fin, udp := r.tm.Get()
		// The exact line ipvsadm prints.
		return fmt.Sprintf("Timeout (tcp tcpfin udp): %d %d %d", tcp/time.Second, fin/time.Second, udp/time.Second)
	case "timeouts":
		var p uint8
		var n State
		switch f[1] {
		case "tcp":
			p, n = TCP, numTCPStates
		case "sctp":
			p, n = SCTP, numSCTPStates
		default:
			return "unknown protocol " + f[1]
		}
		var parts []string
		for s := State(0); s < n; s++ {
			parts = append(parts, fmt.Sprintf("%s=%d", StateName(p, s, false), r.tm.For(p, s)/time.Second))
		}
		return strings.Join(parts, " ")
	case "secure":
		r.secure = f[1] == "on"
		return "ok"
	}
	return "unknown command " + f[0]
}

var protoNames = map[string]uint8{"tcp": TCP, "udp": UDP, "sctp": SCTP}

func (r *runner) conn(args []string) string {
	if len(args) < 2 {
		return "usage: conn tcp|udp|sctp nat|dr|tun [persist]"
	}
	p, ok := protoNames[args[0]]
	if !ok {
		return "unknown protocol " + args[0]
	}
	r.proto, r.state = p, 0
	r.noOutput = args[1] != "nat"
	r.persist = len(args) > 2 && args[2] == "persist"
	r.tmpl = TemplateNone
	// ip_vs_bind_dest: a new connection carries INACTIVE and counts in
	// InActConn.
	r.active, r.inact = 0, 1
	return r.show(InitialTimeout, "", nil)
}

func (r *runner) packet(dirName string, args []string) string {
	if r.proto == 0 {
		return "no connection"
	}
	hook := Input
	if dirName == "out" {
		hook = Output
	}
	var info uint8
	switch r.proto {
	case TCP:
		if len(args) != 1 {
			return "usage: in|out FLAGS"
		}
		var ok bool
		if info, ok = parseFlags(args[0]); !ok {
			return "bad flags " + args[0]
		}
	case SCTP:
		if len(args) != 1 {
			return "usage: in|out CHUNK[,CHUNK...]"
		}
		pkt, ok := buildChunks(args[0])
		if !ok {
			return "bad chunks " + args[0]
		}
		typ, bundled, ok := SCTPFirstChunk(pkt)
		if !ok {
			// set_sctp_state returns early: state and timeout stay.
			return "no chunk header: state unchanged"
		}
		info = SCTPEffectiveChunk(typ, bundled)
	}
	tr := r.tm.Step(r.proto, r.state, hook, r.noOutput, info, r.secure)
	r.state = tr.State
	var notes []string
	switch tr.Flip {
	case ToActive:
		r.active, r.inact = r.active+1, r.inact-1
		notes = append(notes, "to-active")
	case ToInactive:
		r.active, r.inact = r.active-1, r.inact+1
		notes = append(notes, "to-inactive")
	}
	if tr.ClearNoOutput {
		r.noOutput = false
		notes = append(notes, "clear-nooutput")
	}
	if tr.Assure {
		notes = append(notes, "assure")
		if r.persist {
			r.tmpl = TemplateAssured
		}
	}
	return r.show(tr.Timeout, tr.Dir.String(), notes)
}

func (r *runner) show(timeout time.Duration, dir string, notes []string) string {
	secs := int(timeout / time.Second)
	s := fmt.Sprintf("%s %02d:%02d", StateName(r.proto, r.state, false), secs/60, secs%60)
	if dir != "" {
		s += " dir=" + dir
	}
	s += fmt.Sprintf(" conns=%d/%d", r.active, r.inact)
	if r.noOutput {
		s += " nooutput"
	}
	if r.persist {
		s += " template=" + StateName(r.proto, r.tmpl, true)
	}
	for _, n := range notes {
		s += " " + n
	}
	return s
}

func parseFlags(s string) (uint8, bool) {
	if s == "-" {
		return 0, true
	}
	bits := map[rune]uint8{'F': FlagFIN, 'S': FlagSYN, 'R': FlagRST, 'P': 0x08, 'A': FlagACK, 'U': 0x20}
	var f uint8
	for _, c := range s {
		b, ok := bits[c]
		if !ok {
			return 0, false
		}
		f |= b
	}
	return f, true
}

var chunkNames = map[string]uint8{
	"DATA": ChunkData, "INIT": ChunkInit, "INIT_ACK": ChunkInitAck, "SACK": ChunkSACK,
	"HEARTBEAT": ChunkHeartbeat, "HEARTBEAT_ACK": ChunkHeartbeatAck, "ABORT": ChunkAbort,
	"SHUTDOWN": ChunkShutdown, "SHUTDOWN_ACK": ChunkShutdownAck, "ERROR": ChunkError,
	"COOKIE_ECHO": ChunkCookieEcho, "COOKIE_ACK": ChunkCookieAck, "ECNE": ChunkECNE,
	"CWR": ChunkCWR, "SHUTDOWN_COMPLETE": ChunkShutdownComplete,
	"I_DATA": 0x40, // RFC 8260, unknown to the kernel's table: counts as DATA
}

// buildChunks returns the chunk list of an SCTP packet (after the common
// header): each named chunk with a 4-byte header and a 5-byte body, so the
// look-ahead has to honour the padding to 4 bytes.
func buildChunks(s string) ([]byte, bool) {
	if s == "-" {
		return nil, true
	}
	const bodyLen = 5 // deliberately not a multiple of 4
	var b []byte
	for _, name := range strings.Split(s, ",") {
		typ, ok := chunkNames[name]
		if !ok {
			return nil, false
		}
		n := sctpChunkHeaderLen + bodyLen
		b = append(b, typ, 0, byte(n>>8), byte(n))
		b = append(b, make([]byte, (n+3)&^3-sctpChunkHeaderLen)...)
	}
	return b, true
}
