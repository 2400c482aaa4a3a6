package ipvsadm

import (
	"flag"
	"fmt"
	"hash/fnv"
	"math"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"golvs/internal/control"
	"golvs/internal/service"
)

// oracleDir holds the transcripts of the real ipvsadm 1.31 on kernel 6.1
// (see its README.md for the format).
const oracleDir = "../../../shared/oracle/golden"

// oracleCmd is one recorded command of an oracle transcript.
type oracleCmd struct {
	file     string   // transcript file name
	line     int      // line of the "==== $" header
	command  string   // the command line as recorded
	argv     []string // its words after the program name
	program  string   // the program ("ipvsadm", "ipvsadm-save", ...)
	stdin    string   // what was fed on standard input
	hasStdin bool
	stdout   string
	stderr   string
	rc       int
}

// readTranscript parses a transcript written by the oracle's lib.sh:
//
//	==== $ <command line> [<<'STDIN' ... STDIN]
//	---- stdout bytes=N
//	<N bytes>[\n---- (no newline at end of stdout)]
//	---- stderr bytes=N
//	<N bytes>[...]
//	---- rc=N
//
// Other lines (section titles, "---- state:" dumps) are skipped.
func readOracleCmds(t testing.TB, name string) []oracleCmd {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(oracleDir, name))
	if err != nil {
		t.Skipf("oracle transcript not available: %v", err)
	}
	text := string(b)
	var cases []oracleCmd
	pos := 0
	lineNo := func(p int) int { return strings.Count(text[:p], "\n") + 1 }
	nextLine := func() (string, bool) {
		if pos >= len(text) {
			return "", false
		}
		i := strings.IndexByte(text[pos:], '\n')
		if i < 0 {
			l := text[pos:]
			pos = len(text)
			return l, true
		}
		l := text[pos : pos+i]
		pos += i + 1
		return l, true
	}
	readOutput := func(what string) string {
		l, _ := nextLine()
		prefix := "---- " + what + " bytes="
		if !strings.HasPrefix(l, prefix) {
			t.Fatalf("%s:%d: want %q, got %q", name, lineNo(pos), prefix, l)
		}
		n, err := strconv.Atoi(l[len(prefix):])
		if err != nil || pos+n > len(text) {
			t.Fatalf("%s:%d: bad byte count in %q", name, lineNo(pos), l)
		}
		out := text[pos : pos+n]
		pos += n
		if n > 0 && out[n-1] != '\n' {
			marker := "\n---- (no newline at end of " + what + ")\n"
			if !strings.HasPrefix(text[pos:], marker) {
				t.Fatalf("%s:%d: missing %q", name, lineNo(pos), marker)
			}
			pos += len(marker)
		}
		return out
	}
	for {
		start := pos
		l, ok := nextLine()
		if !ok {
			break
		}
		hdr, found := strings.CutPrefix(l, "==== $ ")
		if !found {
			continue
		}
		c := oracleCmd{file: name, line: lineNo(start), command: hdr}
		if cmd, ok := strings.CutSuffix(hdr, " <<'STDIN'"); ok {
			c.command, c.hasStdin = cmd, true
			var in strings.Builder
			for {
				l, ok := nextLine()
				if !ok {
					t.Fatalf("%s:%d: unterminated STDIN", name, c.line)
				}
				if l == "STDIN" {
					break
				}
				in.WriteString(l + "\n")
			}
			c.stdin = in.String()
		}
		words := strings.Fields(c.command)
		c.program, c.argv = words[0], words[1:]
		c.stdout = readOutput("stdout")
		c.stderr = readOutput("stderr")
		l, _ = nextLine()
		rc, found := strings.CutPrefix(l, "---- rc=")
		if !found {
			t.Fatalf("%s:%d: want rc, got %q", name, lineNo(pos), l)
		}
		if c.rc, err = strconv.Atoi(rc); err != nil {
			t.Fatalf("%s:%d: bad rc %q", name, lineNo(pos), l)
		}
		cases = append(cases, c)
	}
	return cases
}

func (c oracleCmd) String() string {
	return fmt.Sprintf("%s:%d: %s", c.file, c.line, c.command)
}

// TestReadTranscript checks the reader on the transcripts' shape.
func TestReadOracleCmds(t *testing.T) {
	cases := readOracleCmds(t, "b-errors.out")
	if len(cases) < 80 {
		t.Fatalf("b-errors.out: %d commands, want about 90", len(cases))
	}
	first := cases[0]
	if first.command != "ipvsadm -S -n" || first.rc != 0 || !strings.HasPrefix(first.stdout, "-A -t 198.18.0.100:80 -s rr\n") {
		t.Errorf("first case = %+v", first)
	}
	var sawStdin, sawBlankLine bool
	for _, c := range cases {
		if c.hasStdin {
			sawStdin = true
			if strings.Contains(c.stdin, "\n\n") {
				sawBlankLine = true
			}
		}
		if c.command == "ipvsadm -A -6 -f 6 -s rr" && c.stderr != "-6 used before -f\n\n" {
			t.Errorf("%v: stderr %q", c, c.stderr)
		}
	}
	if !sawStdin || !sawBlankLine {
		t.Errorf("STDIN blocks not read (stdin %v, blank line %v)", sawStdin, sawBlankLine)
	}
}

// argvResolver is the deterministic NameResolver of the tests: the oracle
// VM had no DNS, only /etc/hosts.
var argvResolver = ResolverFunc(func(name string) (netip.Addr, bool) {
	switch name {
	case "localhost":
		return netip.MustParseAddr("127.0.0.1"), true
	case "lb.example":
		return netip.MustParseAddr("198.18.0.100"), true
	case "mask.example":
		return netip.MustParseAddr("255.255.0.0"), true
	}
	return netip.Addr{}, false
})

// testParser parses as the oracle's ipvsadm did: its /etc/services was
// netbase 6.4's, its resolver knew only localhost.
func testParser() *Parser {
	return &Parser{Resolver: argvResolver, Services: BuiltinServiceNames()}
}

// oracleKernelErrors are the transcript commands ("file command") whose
// outcome depends on the kernel's state, not on the command line: Parse
// must accept them, and the failure the kernel reported must print as
// ipvsadm printed it.
var oracleKernelErrors = map[string]error{
	"b-errors.out ipvsadm -A -t 198.18.0.100:80 -s rr":                        control.ErrServiceExists,
	"b-errors.out ipvsadm -A -t 198.18.0.100:80":                              control.ErrServiceExists,
	"b-errors.out ipvsadm -A -t 198.18.0.100:http":                            control.ErrServiceExists,
	"b-errors.out ipvsadm -E -t 198.18.0.100:81 -s rr":                        control.ErrNoService,
	"b-errors.out ipvsadm -D -t 198.18.0.100:81":                              control.ErrNoService,
	"b-errors.out ipvsadm -Z -t 198.18.0.100:81":                              control.ErrNoService,
	"b-errors.out ipvsadm -L -n -t 198.18.0.100:81":                           control.ErrNoService,
	"b-errors.out ipvsadm -a -t 198.18.0.100:81 -r 198.19.0.11:80":            control.ErrServiceUndef,
	"b-errors.out ipvsadm -a -t 198.18.0.100:80 -r 198.19.0.11:80 -m":         control.ErrDestExists,
	"b-errors.out ipvsadm -e -t 198.18.0.100:80 -r 198.19.0.99:80 -m":         control.ErrNoDest,
	"b-errors.out ipvsadm -d -t 198.18.0.100:80 -r 198.19.0.99:80":            control.ErrNoDest,
	"b-errors.out ipvsadm -A -t 198.18.0.100:82 -s bogus":                     control.ErrSchedNotFound,
	"b-errors.out ipvsadm -A -t 198.18.0.100:83 -s twos":                      control.ErrSchedNotFound,
	"b-errors.out ipvsadm -A -u 198.18.0.100:5060 --pe bogus -p 10":           control.ErrSchedNotFound,
	"b-errors.out ipvsadm -a -t 198.18.0.100:80 -r 198.19.0.12:80 -x 5 -y 10": control.ErrRange,
	"a1-formats.out ipvsadm -a -t 198.18.0.100:80 -r 198.19.0.16:80 -m -y 7":  control.ErrRange,
	"a1-formats.out ipvsadm -d -t 198.18.0.100:80 -r 198.19.0.16:80":          control.ErrNoDest, // its -a failed earlier
}

// oracleArgvCmds returns the commands of the transcripts that ipvsadm ran
// with arguments (not the -R blocks, not the ipvsadm-save/-restore
// wrappers).
func oracleArgvCmds(t testing.TB) []oracleCmd {
	var out []oracleCmd
	for _, f := range []string{"a1-formats.out", "b-errors.out"} {
		for _, c := range readOracleCmds(t, f) {
			if c.program == "ipvsadm" && !c.hasStdin {
				out = append(out, c)
			}
		}
	}
	return out
}

// TestOracleArgv checks Parse against every command line of the oracle
// transcripts: a rejected line must give ipvsadm's stderr and status
// exactly; an accepted one must have succeeded in the oracle, or have
// failed in the kernel as oracleKernelErrors says, with that message.
func TestOracleArgv(t *testing.T) {
	cmds := oracleArgvCmds(t)
	used := map[string]bool{}
	for _, oc := range cmds {
		c, err := testParser().Parse(oc.argv)
		key := oc.file + " " + oc.command
		kerr, isKernel := oracleKernelErrors[key]
		used[key] = true
		switch {
		case err != nil:
			ue, ok := err.(*UsageError)
			if !ok {
				t.Errorf("%v: error %T %v, want *UsageError", oc, err, err)
				continue
			}
			if got := ue.Msg + "\n"; got != oc.stderr || ue.Code != oc.rc || oc.stdout != "" {
				t.Errorf("%v:\n got stderr %q rc %d\nwant stderr %q rc %d", oc, got, ue.Code, oc.stderr, oc.rc)
			}
			if isKernel {
				t.Errorf("%v: listed as a kernel failure but rejected by Parse", oc)
			}
		case isKernel:
			text, code := c.Failure(kerr)
			if text+"\n" != oc.stderr || code != oc.rc {
				t.Errorf("%v: Failure(%v) = %q, %d; want %q, %d", oc, kerr, text, code, oc.stderr, oc.rc)
			}
		case oc.rc != 0 || oc.stderr != "":
			t.Errorf("%v: Parse accepted it (%v), ipvsadm said %q rc %d", oc, c.Argv(), oc.stderr, oc.rc)
		case c.Kind == CmdHelp:
			if got := HelpText("ipvsadm"); got != oc.stdout {
				t.Errorf("%v: HelpText differs:\n%s", oc, lineDiffArgv(oc.stdout, got))
			}
		case c.Kind == CmdVersion:
			if VersionText != oc.stdout {
				t.Errorf("%v: VersionText = %q, want %q", oc, VersionText, oc.stdout)
			}
		}
	}
	for cmd := range oracleKernelErrors {
		if !used[cmd] {
			t.Errorf("oracleKernelErrors: %q is not in the transcripts", cmd)
		}
	}
}

// lineDiffArgv shows the first differing line of two texts.
func lineDiffArgv(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	for i := 0; i < len(w) || i < len(g); i++ {
		var wl, gl string
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if wl != gl {
			return fmt.Sprintf("line %d:\nwant %q\n got %q", i+1, wl, gl)
		}
	}
	return "(equal)"
}

var rewriteArgv = flag.Bool("rewrite", false, "rewrite the golden files of testdata/argv from Parse's results")

// argvGoldenDir holds one golden file per command line: the argv, a
// "----" line, and what Parse makes of it.
const argvGoldenDir = "testdata/argv"

// extraArgvCases are command lines beyond the oracle's, for quirks read in
// ipvsadm.c and popt.c (cited in the comments of parse.go). Each becomes a
// golden file.
var extraArgvCases = [][]string{
	{},
	{"-L"}, {"-l"}, {"--list"}, {"-Ln"}, {"-nL"}, {"-L", "--numeric=yes"},
	{"-L", "-n", "-c", "--persistent-conn"},
	{"-l", "-n", "--tun-info", "--nosort", "--sort", "-X"},
	{"-L", "-t", "lb.example:http", "--stats", "--exact"},
	{"-L", "-c", "-t", "198.18.0.100:80"},
	{"-L", "--timeout", "--daemon"},
	{"-L", "--timeout", "--stats"},
	{"-L", "--daemon", "--persistent-conn"},
	{"-L", "-c", "--rate"},
	{"-L", "-n", "-M", "24"},
	{"-L", "-n", "-n"},
	{"-Ln="},
	{"-S"}, {"-Sn"}, {"--save", "--numeric"}, {"-S", "-c"},
	{"-R"}, {"-R", "-n"},
	{"-C"}, {"-C", "-n"},
	{"-Z"}, {"-Z", "-t", "198.18.0.100:80"}, {"-Z", "-f", "5", "-6"}, {"-Z", "-n"},
	{"-At", "198.18.0.100:80"},
	{"-A", "--tcp-service=198.18.0.100:80", "--scheduler=rr"},
	{"--add-service", "--udp-service", "198.18.0.100:domain"},
	{"-A", "-u", "198.18.0.100:http"},
	{"-A", "--sctp-service", "[2001:db8::1]:38412", "-s", "rr"},
	{"-A", "-t", "198.18.0.100:80", "-p"},
	{"-A", "-t", "198.18.0.100:0", "-p"},
	{"-A", "-t", "198.18.0.100:80", "-p10"},
	{"-A", "-t", "198.18.0.100:80", "-p=10"},
	{"-A", "-t", "198.18.0.100:80", "--persistent=20"},
	{"-A", "-t", "198.18.0.100:80", "--persistent="},
	{"-A", "-t", "198.18.0.100:80", "-p", "-s", "rr"},
	{"-A", "-t", "198.18.0.100:80", "-p", "2678400"},
	{"-A", "-t", "198.18.0.100:80", "-p", "2678401"},
	{"-A", "-t", "198.18.0.100:80", "-p", "+30"},
	{"-A", "-t", "198.18.0.100:80", "-p", " 30"},
	{"-A", "-t", "198.18.0.100:80", "-p", "30 "},
	{"-A", "-t", "198.18.0.100:80", "-M", "255.255.255.0", "-p", "60"},
	{"-A", "-t", "198.18.0.100:80", "-p", "-M", "mask.example"},
	{"-A", "-t", "198.18.0.100:80", "-p", "-M", "300.1.1.1"},
	{"-A", "-t", "198.18.0.100:80", "-p", "-M", "0xffffff00"},
	{"-A", "-t", "198.18.0.100:80", "-p", "-M", "255.255.255.0 trailing"},
	{"-A", "-M", "24", "-t", "[2001:db8::1]:80", "-p"},
	{"-A", "-t", "[2001:db8::1]:80", "-p", "10", "-M", "64"},
	{"-A", "-t", "[2001:db8::1]:80", "-p", "-M", "64abc"},
	{"-A", "-t", "[2001:db8::1]:80", "-p", "-M", "abc"},
	{"-A", "-t", "[2001:db8::1]:80", "-p", "-M", "4294967297"},
	{"-A", "-t", "[2001:db8::1]:80", "-p", "-M", "-1"},
	{"-A", "-f", "5", "-6", "-M", "64", "-p"},
	{"-A", "-f", "5", "-M", "64", "-6"},
	{"-A", "-f", "5", "-6", "-6"},
	{"-A", "-f", " +7"},
	{"-A", "-f", "4294967295", "-s", "nq"},
	{"-A", "-f", "-1"},
	{"-A", "-f", "1", "-t", "198.18.0.100:80"},
	{"-A", "-t", "198.18.0.100:80", "-s", "averyveryverylongschedulername"},
	{"-A", "-t", "198.18.0.100:80", "-s", ""},
	{"-A", "-t", "198.18.0.100:80", "-s", "-x"},
	{"-A", "-t", "198.18.0.100:80", "-s", "rr", "-b", "flag-1,flag-3"},
	{"-A", "-t", "198.18.0.100:80", "-s", "sh", "-b", "sh-fallback,,sh-port,"},
	{"-A", "-t", "198.18.0.100:80", "-s", "mh", "-b", "mh-port,flag-3"},
	{"-A", "-t", "198.18.0.100:80", "-b", "sh-port"},
	{"-A", "-t", "198.18.0.100:80", "-b", "flag-2"},
	{"-A", "-t", "198.18.0.100:80", "-b", ""},
	{"-A", "-t", "198.18.0.100:80", "-b", ","},
	{"-A", "-t", "198.18.0.100:80", "-b", "sh-port", "-s", "sh"},
	{"-A", "-t", "198.18.0.100:80", "--pe", "sip", "-p"},
	{"-A", "-t", "198.18.0.100:80", "--pe", "averyveryverylongpename"},
	{"-A", "-u", "198.18.0.100:53", "-o"},
	{"-A", "-f", "1", "-o"},
	{"-A", "--sctp-service", "198.18.0.100:9999", "-o"},
	{"-A", "-t", "198.18.0.100:80", "-s", "rr", "-s", "wrr"},
	{"-A", "-t", "198.18.0.100:80", "-x", "5"},
	{"-A", "-t", "198.18.0.100:80", "--tun-info"},
	{"-A", "-t", "10.1:80"},
	{"-A", "-t", "0x0a000001:80"},
	{"-A", "-t", "012.0.0.1:80"},
	{"-A", "-t", "08.0.0.1:80"},
	{"-A", "-t", "1.2.3.256:80"},
	{"-A", "-t", "1.2.65535:80"},
	{"-A", "-t", "1.2.65536:80"},
	{"-A", "-t", "80"},
	{"-A", "-t", ""},
	{"-A", "-t", ":80"},
	{"-A", "-t", "198.18.0.100:"},
	{"-A", "-t", "198.18.0.100: 80"},
	{"-A", "-t", "198.18.0.100:+80"},
	{"-A", "-t", "198.18.0.100:65535"},
	{"-A", "-t", "198.18.0.100:65536"},
	{"-A", "-t", "localhost:http"},
	{"-A", "-t", "localhost:www"},
	{"-A", "-t", "localhost:HTTP"},
	{"-A", "-t", "[198.18.0.100]:80"},
	{"-A", "-t", "[198.18.0.100]:80", "-p"},
	{"-A", "-t", "[2001:db8::1]:http"},
	{"-A", "-t", "[2001:db8::1]80"},
	{"-A", "-t", "[2001:db8::1"},
	{"-A", "-t", "[fe80::1%eth0]:80"},
	{"-A", "-t", "::ffff:198.18.0.100"},
	{"-A", "-t", "[::ffff:198.18.0.100]:80"},
	{"-A", "-t", "2001:db8::1", "-p"},
	{"-A", "-t", "198.18.0.100:80", "-A"},
	{"-AD"},
	{"-AQ"},
	{"-A", "-t"},
	{"-A", "-t", "198.18.0.100:80", "-s"},
	{"-A", "-t", "198.18.0.100:80", "-h"},
	{"-A", "-t", "198.18.0.100:80", "-Ah"},
	{"-A", "--start-daemon", "master"},
	{"-A", "-t", "198.18.0.100:80", "foo"},
	{"-A", "-t", "198.18.0.100:80", "-", "-s", "rr"},
	{"-A", "-t", "198.18.0.100:80", "--", "-s", "rr"},
	{"-A", "-t", "198.18.0.100:80", "---s"},
	{"-A", "-t", "198.18.0.100:80", "--sched=rr"},
	{"-A", "-t", "198.18.0.100:80", "-list"},
	{"-A", "-t", "198.18.0.100:80\x00junk"},
	{"-E", "-t", "198.18.0.100:80"},
	{"-E", "-t", "198.18.0.100:80", "-p", "600"},
	{"-D", "-f", "5"},
	{"-D", "-t", "198.18.0.100:80", "-p"},
	{"-a", "-t", "198.18.0.100:80", "-r", "198.19.0.11:8080", "-g"},
	{"-a", "-t", "198.18.0.100:80", "-r", "198.19.0.11:8080", "-m"},
	{"-a", "-t", "198.18.0.100:80", "-r", "198.19.0.11:8080", "-i"},
	{"-a", "-t", "198.18.0.100:80", "-r", "198.19.0.11:http", "-m"},
	{"-a", "-r", "198.19.0.11", "-t", "198.18.0.100:80", "-m"},
	{"-a", "-r", "198.19.0.11:http", "-t", "198.18.0.100:80", "-m"},
	{"-a", "-f", "5", "-r", "198.19.0.11", "-g"},
	{"-a", "-f", "5", "-r", "198.19.0.11:8080", "-g"},
	{"-a", "-f", "5", "-r", "198.19.0.11:http", "-m"},
	{"-a", "-f", "5", "-r", "[2001:db8::11]:80", "-6", "-m"},
	{"-a", "-f", "5", "-6", "-r", "198.19.0.11", "-m"},
	{"-a", "-t", "198.18.0.100:80", "-r", "[2001:db8::11]:80", "-i"},
	{"-a", "-t", "[2001:db8::1]:80", "-r", "198.19.0.11", "-i"},
	{"-a", "-t", "198.18.0.100:80", "-r", "198.19.0.11", "-w", "0"},
	{"-a", "-t", "198.18.0.100:80", "-r", "198.19.0.11", "-w=5"},
	{"-a", "-t", "198.18.0.100:80", "-r", "198.19.0.11", "-w5"},
	{"-a", "-t", "198.18.0.100:80", "-r", "198.19.0.11", "-w", " 5"},
	{"-a", "-t", "198.18.0.100:80", "-r", "198.19.0.11", "-w", "+7"},
	{"-a", "-t", "198.18.0.100:80", "-r", "198.19.0.11", "-w", "2147483647"},
	{"-a", "-t", "198.18.0.100:80", "-r", "198.19.0.11", "-w", "99999999999999999999"},
	{"-a", "-t", "198.18.0.100:80", "-r", "198.19.0.11", "-w", ""},
	{"-a", "-t", "198.18.0.100:80", "-r", "198.19.0.11", "-w="},
	{"-a", "-t", "198.18.0.100:80", "-r", "198.19.0.11", "-x", "2147483647", "-y", "0"},
	{"-a", "-t", "198.18.0.100:80", "-r", "198.19.0.11", "-y", "-1"},
	{"-a", "-t", "198.18.0.100:80", "-r", "198.19.0.11", "-r", "198.19.0.12"},
	{"-a", "-t", "198.18.0.100:80", "-r", "198.19.0.300"},
	{"-a", "-t", "198.18.0.100:80", "-r", "198.19.0.11", "-m", "-n"},
	{"-a", "-t", "198.18.0.100:80", "-r", "198.19.0.11", "-i", "--tun-type", "gue", "--tun-port", "6080", "--tun-csum", "--tun-remcsum"},
	{"-a", "-t", "198.18.0.100:80", "-r", "198.19.0.11", "-i", "--tun-type", "gue", "--tun-port", "6080", "--tun-remcsum"},
	{"-a", "-t", "198.18.0.100:80", "-r", "198.19.0.11", "-i", "--tun-type", "gre", "--tun-remcsum"},
	{"-a", "-t", "198.18.0.100:80", "-r", "198.19.0.11", "-i", "--tun-type", "gre", "--tun-nocsum"},
	{"-a", "-t", "198.18.0.100:80", "-r", "198.19.0.11", "-i", "--tun-port", "5"},
	{"-a", "-t", "198.18.0.100:80", "-r", "198.19.0.11", "-i", "--tun-type", "gue", "--tun-port", "65536"},
	{"-a", "-t", "198.18.0.100:80", "-r", "198.19.0.11", "--tun-nocsum"},
	{"-a", "-t", "198.18.0.100:80", "-r", "198.19.0.11", "-i", "--tun-type", "ipip", "--tun-type", "gre"},
	{"-e", "-t", "198.18.0.100:80", "-r", "198.19.0.11", "-w", "3"},
	{"-e", "-t", "198.18.0.100:80", "-w", "3"},
	{"-d", "-t", "198.18.0.100:80", "-r", "198.19.0.11"},
	{"-d", "-t", "198.18.0.100:80", "-r", "198.19.0.11:8080", "-m"},
	{"-d", "-f", "5", "-r", "198.19.0.11:8080"},
	{"--set", "100", "20", "30"},
	{"--set", "0", "0", "0"},
	{"--set", "1", "2", "3", "4"},
	{"--set", "2678401", "0", "0"},
	{"--set", "-1", "0", "0"},
	{"--set", "--", "-1", "0", "0"},
	{"1", "--set", "2", "3"},
	{"--set", "1", "2", "3", "-n"},
	{"--start-daemon", "master"},
	{"--start-daemon=backup", "--mcast-interface", "eth1", "--syncid", "7", "--sync-maxlen", "1400", "--mcast-group", "239.1.1.1", "--mcast-port", "8849", "--mcast-ttl", "2"},
	{"--start-daemon", "master", "--mcast-interface", "averyveryverylongifname"},
	{"--start-daemon", "master", "--mcast-interface", ""},
	{"--start-daemon", "master", "--mcast-group", "10.0.0.1"},
	{"--start-daemon", "master", "--mcast-group", "224.000.0.1"},
	{"--start-daemon", "master", "--mcast-group", "ff02::1"},
	{"--start-daemon", "master", "--mcast-group", "2001:db8::1"},
	{"--start-daemon", "master", "--syncid", "256"},
	{"--start-daemon", "master", "--sync-maxlen", "65508"},
	{"--start-daemon", "master", "--mcast-port", "0"},
	{"--start-daemon", "master", "--mcast-ttl", "256"},
	{"--start-daemon", "master", "-n"},
	{"--start-daemon", "Master"},
	{"--start-daemon"},
	{"--stop-daemon", "backup", "--syncid", "3"},
	{"--stop-daemon", "bogus"},
	{"--stop-daemon", "master", "--mcast-interface", "eth0"},
	{"-h", "--bogus"},
	{"--help"},
	{"-hA"},
	{"-v", "-A"},
	{"-6", "-A"},
	{"-w", "5"},
	{"foo"},
	{"-"},
	{"--"},
	{"--list="},
	{"-A", "-t", "198.18.0.100:80", "-6"},
}

// quoteArgv renders argv words separated by spaces, Go-quoting the words
// that would not survive splitting (empty, blanks, quotes, '#' first,
// non-printable bytes).
func quoteArgv(argv []string) string {
	q := make([]string, len(argv))
	for i, a := range argv {
		q[i] = a
		if a == "" || strings.ContainsAny(a, " \t\r\n\"\\") || strings.HasPrefix(a, "#") || strconv.Quote(a) != `"`+a+`"` {
			q[i] = strconv.Quote(a)
		}
	}
	return strings.Join(q, " ")
}

// unquoteArgv splits a line written by quoteArgv.
func unquoteArgv(line string) ([]string, error) {
	var out []string
	for line != "" {
		line = strings.TrimLeft(line, " ")
		if line == "" {
			break
		}
		if line[0] == '"' {
			w, err := strconv.QuotedPrefix(line)
			if err != nil {
				return nil, err
			}
			u, _ := strconv.Unquote(w)
			out = append(out, u)
			line = line[len(w):]
			continue
		}
		w, rest, _ := strings.Cut(line, " ")
		out = append(out, w)
		line = rest
	}
	return out, nil
}

// describeArgv is the stable text rendering of a Parse result in the
// golden files.
func describeArgv(c Command, err error) string {
	var b strings.Builder
	if err != nil {
		ue := err.(*UsageError)
		fmt.Fprintf(&b, "error: rc=%d", ue.Code)
		if ue.NonFatal {
			b.WriteString(" (non-fatal in -R)")
		}
		fmt.Fprintf(&b, "\nstderr: %q\n", ue.Msg+"\n")
		return b.String()
	}
	fmt.Fprintf(&b, "kind: %v\n", c.Kind)
	if c.Options != 0 {
		fmt.Fprintf(&b, "options: %v\n", c.Options)
	}
	if c.Options&OptService != 0 {
		fmt.Fprintf(&b, "service: %v (%v)\n", c.Service, c.Service.Family)
	}
	switch c.Kind {
	case CmdAddService, CmdEditService:
		cf := c.Config
		fmt.Fprintf(&b, "config: sched=%q flags=%s timeout=%d netmask=%s pe=%q\n",
			cf.Sched, flagsText(cf.Flags), cf.Timeout, netmaskString(c.Service.Family, cf.Netmask), cf.PE)
	case CmdAddServer, CmdEditServer, CmdDeleteServer:
		fmt.Fprintf(&b, "dest: %v (%v)\n", netip.AddrPortFrom(c.Dest, c.DestPort), service.FamilyOf(c.Dest))
		if c.Kind != CmdDeleteServer {
			d := c.DestConfig
			fmt.Fprintf(&b, "dest config: fwd=%v weight=%d uthreshold=%d lthreshold=%d tun=%s tunport=%d tunflags=%d\n",
				d.Fwd, d.Weight, d.UThreshold, d.LThreshold, tunTypeNames[d.TunType], d.TunPort, d.TunFlags)
		}
	case CmdList, CmdSave:
		fmt.Fprintf(&b, "list: %+v\n", c.List)
	case CmdSetTimeouts:
		fmt.Fprintf(&b, "timeouts: tcp=%d tcpfin=%d udp=%d\n", c.Timeouts.TCP, c.Timeouts.TCPFin, c.Timeouts.UDP)
	case CmdStartDaemon, CmdStopDaemon:
		d := c.Daemon
		fmt.Fprintf(&b, "daemon: state=%s mcast-interface=%q syncid=%d sync-maxlen=%d mcast-group=%v mcast-port=%d mcast-ttl=%d\n",
			d.State, d.MCastInterface, d.SyncID, d.SyncMaxLen, d.MCastGroup, d.MCastPort, d.MCastTTL)
	}
	fmt.Fprintf(&b, "argv: %s\n", quoteArgv(c.Argv()))
	return b.String()
}

func flagsText(f service.Flags) string {
	var n []string
	for _, x := range []struct {
		f    service.Flags
		name string
	}{
		{service.FlagPersistent, "persistent"},
		{service.FlagOnePacket, "onepacket"},
		{service.FlagSched1, "sched1"},
		{service.FlagSched2, "sched2"},
		{service.FlagSched3, "sched3"},
	} {
		if f&x.f != 0 {
			n = append(n, x.name)
		}
	}
	if len(n) == 0 {
		return "-"
	}
	return strings.Join(n, ",")
}

// goldenArgvName is the file name of a command line's golden file: a
// readable slug and a hash that keeps different lines apart.
func goldenArgvName(line string) string {
	var b strings.Builder
	for _, r := range line {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.':
			b.WriteRune(r)
		case b.Len() > 0 && !strings.HasSuffix(b.String(), "_"):
			b.WriteByte('_')
		}
	}
	slug := strings.Trim(b.String(), "_")
	if len(slug) > 60 {
		slug = slug[:60]
	}
	if slug == "" {
		slug = "noargs"
	}
	h := fnv.New32a()
	h.Write([]byte(line))
	return fmt.Sprintf("%s-%08x.txt", slug, h.Sum32())
}

// TestGoldenArgv checks Parse on every command line of the oracle
// transcripts, of extraArgvCases and of the files already in
// testdata/argv against the golden files; -rewrite writes them. Every
// accepted line must also render back (Command.Argv) to a line that
// parses to the same Command.
func TestGoldenArgv(t *testing.T) {
	type gcase struct {
		argv   []string
		source string
	}
	var cases []gcase
	seen := map[string]bool{}
	add := func(argv []string, source string) {
		line := quoteArgv(argv)
		if !seen[line] {
			seen[line] = true
			cases = append(cases, gcase{argv, source})
		}
	}
	for _, oc := range oracleArgvCmds(t) {
		add(oc.argv, fmt.Sprintf("oracle %s:%d", oc.file, oc.line))
	}
	for _, a := range extraArgvCases {
		add(a, "")
	}
	files, _ := filepath.Glob(filepath.Join(argvGoldenDir, "*.txt"))
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		argv, _, err := splitGoldenArgv(string(b))
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		add(argv, "")
	}
	if *rewriteArgv {
		if err := os.MkdirAll(argvGoldenDir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, gc := range cases {
		line := quoteArgv(gc.argv)
		c, err := testParser().Parse(gc.argv)
		got := describeArgv(c, err)
		path := filepath.Join(argvGoldenDir, goldenArgvName(line))
		if *rewriteArgv {
			var head string
			if gc.source != "" {
				head = "# " + gc.source + "\n"
			} else if b, err := os.ReadFile(path); err == nil {
				head = goldenHead(string(b))
			}
			if err := os.WriteFile(path, []byte(head+line+"\n----\n"+got), 0o644); err != nil {
				t.Fatal(err)
			}
		} else {
			b, rerr := os.ReadFile(path)
			if rerr != nil {
				t.Errorf("%s: %v (run with -rewrite)", line, rerr)
				continue
			}
			_, want, serr := splitGoldenArgv(string(b))
			if serr != nil {
				t.Fatalf("%s: %v", path, serr)
			}
			if got != want {
				t.Errorf("%s (%s):\n got:\n%s\nwant:\n%s", line, path, got, want)
			}
		}
		if err == nil {
			checkArgvRoundTrip(t, testParser(), c)
		}
	}
}

// goldenHead returns the leading '#' comment lines of a golden file.
func goldenHead(text string) string {
	var b strings.Builder
	for _, l := range strings.SplitAfter(text, "\n") {
		if !strings.HasPrefix(l, "#") {
			break
		}
		b.WriteString(l)
	}
	return b.String()
}

// splitGoldenArgv splits a golden file into its argv and expected text.
func splitGoldenArgv(text string) ([]string, string, error) {
	text = text[len(goldenHead(text)):]
	line, rest, ok := strings.Cut(text, "\n")
	if !ok {
		return nil, "", fmt.Errorf("no argv line")
	}
	want, ok := strings.CutPrefix(rest, "----\n")
	if !ok {
		return nil, "", fmt.Errorf("no ---- line after the argv")
	}
	argv, err := unquoteArgv(line)
	return argv, want, err
}

// checkArgvRoundTrip checks that c renders to a command line that parses
// back to c.
func checkArgvRoundTrip(t testing.TB, p *Parser, c Command) {
	t.Helper()
	argv := c.Argv()
	c2, err := p.Parse(argv)
	if err != nil {
		t.Errorf("round trip of %+v: Parse(%q): %v", c, argv, err)
		return
	}
	if c2 != c {
		t.Errorf("round trip through %q:\n got %+v\nwant %+v", argv, c2, c)
	}
}

// FuzzParse checks that Parse never panics, fails only with a UsageError
// of status 2 or 255, and that an accepted command line renders back
// (Command.Argv) to one that parses to the same Command. The input is the
// argv, one word per line.
func FuzzParse(f *testing.F) {
	for _, a := range extraArgvCases {
		f.Add(strings.Join(a, "\n"))
	}
	for _, oc := range oracleArgvCmds(f) {
		f.Add(strings.Join(oc.argv, "\n"))
	}
	f.Fuzz(func(t *testing.T, in string) {
		var argv []string
		if in != "" {
			argv = strings.Split(in, "\n")
		}
		p := testParser()
		c, err := p.Parse(argv)
		if err != nil {
			ue, ok := err.(*UsageError)
			if !ok || ue.Msg == "" || (ue.Code != ExitUsage && ue.Code != ExitPopt) || (ue.NonFatal && ue.Code != ExitPopt) {
				t.Fatalf("Parse(%q): %#v", argv, err)
			}
			return
		}
		if c.Kind == CmdNone {
			t.Fatalf("Parse(%q): no command", argv)
		}
		checkArgvRoundTrip(t, p, c)
	})
}

// TestParseQuirks pins behaviour that the golden files show only
// indirectly.
func TestParseQuirks(t *testing.T) {
	p := testParser()
	t.Run("posixly correct", func(t *testing.T) {
		pp := *p
		pp.PosixlyCorrect = true
		_, err := pp.Parse([]string{"-A", "x", "-t", "198.18.0.100:80"})
		if ue, ok := err.(*UsageError); !ok || ue.Msg != "unexpected argument x" {
			t.Errorf("got %v, want unexpected argument x", err)
		}
		if _, err := p.Parse([]string{"-A", "x", "-t", "198.18.0.100:80"}); err == nil || err.Error() != "unexpected argument x" {
			t.Errorf("without POSIXLY_CORRECT: %v", err)
		}
		c, err := pp.Parse([]string{"--set", "1", "2", "3"})
		if err != nil || c.Timeouts != (TimeoutConfig{1, 2, 3}) {
			t.Errorf("--set with POSIXLY_CORRECT: %+v, %v", c, err)
		}
	})
	t.Run("program name", func(t *testing.T) {
		pp := *p
		pp.Program = "/sbin/ipvsadm"
		_, err := pp.Parse([]string{"-Q"})
		if err == nil || err.Error() != "Try `/sbin/ipvsadm -h' or '/sbin/ipvsadm --help' for more information." {
			t.Errorf("got %v", err)
		}
	})
	t.Run("no arguments", func(t *testing.T) {
		c, err := p.Parse(nil)
		if err != nil || c != (Command{Kind: CmdList}) {
			t.Errorf("Parse(nil) = %+v, %v", c, err)
		}
	})
	t.Run("services by protocol", func(t *testing.T) {
		for _, tc := range []struct {
			argv []string
			port uint16
		}{
			{[]string{"-A", "-t", "198.18.0.100:https"}, 443},
			{[]string{"-A", "-u", "198.18.0.100:https"}, 443},
			{[]string{"-A", "-u", "198.18.0.100:sip"}, 5060},
			{[]string{"-A", "-t", "198.18.0.100:ssh"}, 22},
			{[]string{"-A", "-t", "198.18.0.100:smtp"}, 25},
			{[]string{"-A", "-t", "198.18.0.100:ftp"}, 21},
			{[]string{"-A", "-t", "198.18.0.100:http-alt"}, 8080},
		} {
			c, err := p.Parse(tc.argv)
			if err != nil || c.Service.Port != tc.port {
				t.Errorf("Parse(%q) = port %d, %v; want %d", tc.argv, c.Service.Port, err, tc.port)
			}
		}
	})
}

func TestInetAton(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want string // "" = rejected
	}{
		{"1.2.3.4", "1.2.3.4"},
		{"1.2.3.4 junk", "1.2.3.4"},
		{"1.2.3.4\t", "1.2.3.4"},
		{"1.2.3.4x", ""},
		{"1", "0.0.0.1"},
		{"4294967295", "255.255.255.255"},
		{"4294967296", ""},
		{"1.2", "1.0.0.2"},
		{"1.16777215", "1.255.255.255"},
		{"1.16777216", ""},
		{"1.2.3", "1.2.0.3"},
		{"0x7f.1", "127.0.0.1"},
		{"0X7F.0.0.01", "127.0.0.1"},
		{"0x", ""},
		{"0x.1", ""},
		{"010.0.0.1", "8.0.0.1"},
		{"09", ""},
		{"1.2.3.4.5", ""},
		{"256.1.1.1", ""},
		{"1..2", ""},
		{".1", ""},
		{"1.", ""},
		{"", ""},
		{" 1.2.3.4", ""},
		{"+1", ""},
		{"99999999999999999999999", ""},
	} {
		a, ok := inetAton(tc.in)
		got := ""
		if ok {
			got = a.String()
		}
		if got != tc.want {
			t.Errorf("inetAton(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestStringToNumber(t *testing.T) {
	for _, tc := range []struct {
		in     string
		lo, hi int64
		want   int64
		ok     bool
	}{
		{"5", 0, 10, 5, true},
		{" 5", 0, 10, 5, true},
		{"\t+5", 0, 10, 5, true},
		{"5 ", 0, 10, 0, false},
		{"-0", 0, 10, 0, true},
		{"-1", 0, 10, 0, false},
		{"", 0, 10, 0, false},
		{" ", 0, 10, 0, false},
		{"+", 0, 10, 0, false},
		{"0x10", 0, 100, 0, false},
		{"010", 0, 100, 10, true},
		{"2147483647", 0, intMax, intMax, true},
		{"2147483648", 0, intMax, 0, false},
		{"9223372036854775807", 0, math.MaxInt64, math.MaxInt64, true},
		{"9223372036854775808", 0, math.MaxInt64, 0, false},
		{"-9223372036854775808", math.MinInt64, 0, math.MinInt64, true},
		{"-9223372036854775809", math.MinInt64, 0, 0, false},
	} {
		got, ok := stringToNumber(tc.in, tc.lo, tc.hi)
		if got != tc.want || ok != tc.ok {
			t.Errorf("stringToNumber(%q, %d, %d) = %d, %v; want %d, %v", tc.in, tc.lo, tc.hi, got, ok, tc.want, tc.ok)
		}
	}
	for _, tc := range []struct {
		in   string
		want int32
	}{
		{"64", 64}, {"64abc", 64}, {" -1", -1}, {"abc", 0}, {"4294967297", 1}, {"99999999999999999999", -1}, {"-99999999999999999999", 0},
	} {
		if got := atoi(tc.in); got != tc.want {
			t.Errorf("atoi(%q) = %d, want %d", tc.in, got, tc.want)
		}
	}
}

func TestServiceNames(t *testing.T) {
	s, err := ParseServiceNames(strings.NewReader("# comment\nfoo 1/tcp bar baz # x\nfoo 2/udp\nqux 1/tcp\nbad line\nbad 99999/tcp\nnoproto 3\n"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		proto uint8
		port  uint16
		ok    bool
	}{
		{"foo", service.ProtoTCP, 1, true},
		{"baz", service.ProtoTCP, 1, true},
		{"foo", service.ProtoUDP, 2, true},
		{"foo", service.ProtoSCTP, 0, false},
		{"Foo", service.ProtoTCP, 0, false},
		{"bad", service.ProtoTCP, 0, false},
		{"noproto", service.ProtoTCP, 0, false},
		{"foo", 0, 0, false},
	} {
		port, ok := s.Port(tc.name, tc.proto)
		if port != tc.port || ok != tc.ok {
			t.Errorf("Port(%q, %d) = %d, %v; want %d, %v", tc.name, tc.proto, port, ok, tc.port, tc.ok)
		}
	}
	if n, ok := s.Name(1, service.ProtoTCP); n != "foo" || !ok {
		t.Errorf("Name(1, tcp) = %q, %v; want the first entry", n, ok)
	}
	if _, ok := s.Name(1, service.ProtoUDP); ok {
		t.Errorf("Name(1, udp) found")
	}
	b := BuiltinServiceNames()
	// The oracle lists TCP 80 as http and 8080 as http-alt, UDP 80 as 80.
	for _, tc := range []struct {
		port  uint16
		proto uint8
		name  string
	}{
		{80, service.ProtoTCP, "http"}, {8080, service.ProtoTCP, "http-alt"}, {53, service.ProtoUDP, "domain"}, {80, service.ProtoUDP, ""},
	} {
		n, _ := b.Name(tc.port, tc.proto)
		if n != tc.name {
			t.Errorf("builtin Name(%d, %d) = %q, want %q", tc.port, tc.proto, n, tc.name)
		}
	}
	if SystemServiceNames() == nil {
		t.Error("SystemServiceNames is nil")
	}
}

func TestSystemResolverNumeric(t *testing.T) {
	// Strings gethostbyname treats as numeric never reach DNS.
	for _, name := range []string{"", "1.2.3.4.5", "256.0.0.1", "::1", "2001:db8::1", "1:2"} {
		if a, ok := SystemResolver.LookupHost4(name); ok {
			t.Errorf("SystemResolver(%q) = %v", name, a)
		}
	}
}

func BenchmarkParse(b *testing.B) {
	p := testParser()
	argv := []string{"-a", "-t", "198.18.0.100:80", "-r", "198.19.0.11:8080", "-m", "-w", "3"}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := p.Parse(argv); err != nil {
			b.Fatal(err)
		}
	}
}
