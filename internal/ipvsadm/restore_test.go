package ipvsadm

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"testing/iotest"

	"golvs/internal/control"
	"golvs/internal/service"
)

// fakeKernel applies commands with the kernel's failure classes for what
// the -R transcripts exercise: duplicate services and destinations,
// unknown schedulers and persistence engines, missing services,
// thresholds out of range. It records what it applied.
type fakeKernel struct {
	services map[service.Key]map[netip.AddrPort]service.DestConfig
	applied  []string // Argv of every command applied, joined by spaces
	lists    []Command
}

func newFakeKernel() *fakeKernel {
	return &fakeKernel{services: map[service.Key]map[netip.AddrPort]service.DestConfig{}}
}

// kernelScheds are the schedulers of the oracle's kernel (no twos).
var kernelScheds = map[string]bool{
	"rr": true, "wrr": true, "lc": true, "wlc": true, "lblc": true, "lblcr": true,
	"dh": true, "sh": true, "sed": true, "nq": true, "fo": true, "ovf": true, "mh": true,
}

func (k *fakeKernel) apply(c Command) error {
	svc := k.services[c.Service]
	switch c.Kind {
	case CmdAddService:
		if svc != nil {
			return control.ErrServiceExists
		}
		if !kernelScheds[c.Config.Sched] || (c.Config.PE != "" && c.Config.PE != "sip") {
			return control.ErrSchedNotFound
		}
		k.services[c.Service] = map[netip.AddrPort]service.DestConfig{}
	case CmdAddServer:
		if svc == nil {
			return control.ErrServiceUndef
		}
		if c.DestConfig.LThreshold > c.DestConfig.UThreshold {
			return control.ErrRange
		}
		ap := netip.AddrPortFrom(c.Dest, c.DestPort)
		if _, ok := svc[ap]; ok {
			return control.ErrDestExists
		}
		svc[ap] = c.DestConfig
	case CmdDeleteService:
		if svc == nil {
			return control.ErrNoService
		}
		delete(k.services, c.Service)
	case CmdFlush:
		clear(k.services)
	case CmdList:
		k.lists = append(k.lists, c)
		if c.Options&OptService != 0 && svc == nil {
			return control.ErrNoService
		}
	case CmdSave:
		k.lists = append(k.lists, c)
	}
	k.applied = append(k.applied, strings.Join(c.Argv(), " "))
	return nil
}

// oracleRestoreApplied is, per -R block of the transcripts (by its line),
// the commands ipvsadm applied, as the state listed after it shows.
var oracleRestoreApplied = map[string][]string{
	"b-errors.out:1207": {
		"-A -t 198.18.0.100:8001 -s rr",
		"-a -t 198.18.0.100:8001 -r 198.19.0.11:8001 -m",
		"-a -t 198.18.0.100:8001 -r 198.19.0.12:8001 -m -w 70000",
		"-A -t 198.18.0.100:8002 -s rr",
	},
	"b-errors.out:1239": {"-A -t 198.18.0.100:8003 -s rr"}, // "-X bogus" stops it
	"b-errors.out:1272": {"-A -t 198.18.0.100:8005 -s rr", "-A -t 198.18.0.100:8006 -s rr"},
	"b-errors.out:1307": nil, // "# comment line" stops it
	"b-errors.out:1341": {"-A -t 198.18.0.100:8008 -s rr", "-A -t 198.18.0.100:8009 -s rr"},
	"b-errors.out:1377": {"-A -t 198.18.0.100:8010 -s rr", "-L -n", "-A -t 198.18.0.100:8011 -s rr"},
	"b-errors.out:1443": {"-A -t 198.18.0.100:8012 -s rr", "-A -t 198.18.0.100:8014 -s rr"},
	"b-errors.out:1486": {"-A -t 198.18.0.100:8015 -s rr"},
	"b-errors.out:1525": {"-C"},
}

// TestOracleRestore feeds the -R blocks of the transcripts to ReadRestore
// and checks stderr and the exit status byte for byte, and what was
// applied.
func TestOracleRestore(t *testing.T) {
	seen := map[string]bool{}
	for _, f := range []string{"a1-formats.out", "b-errors.out"} {
		for _, oc := range readOracleCmds(t, f) {
			if !oc.hasStdin || oc.command != "ipvsadm -R" {
				continue
			}
			key := oc.file + ":" + strconv.Itoa(oc.line)
			seen[key] = true
			k := newFakeKernel()
			var stderr bytes.Buffer
			err := testParser().ReadRestore(strings.NewReader(oc.stdin), k.apply, &stderr)
			rc := 0
			var ee *ExitError
			if errors.As(err, &ee) {
				rc = ee.Code
			} else if err != nil {
				t.Fatalf("%v: %v", oc, err)
			}
			if stderr.String() != oc.stderr || rc != oc.rc {
				t.Errorf("%v:\n got stderr %q rc %d\nwant stderr %q rc %d", oc, stderr.String(), rc, oc.stderr, oc.rc)
			}
			if oc.stdout != "" && len(k.lists) == 0 {
				t.Errorf("%v: ipvsadm listed, ReadRestore applied no listing", oc)
			}
			want, ok := oracleRestoreApplied[key]
			if !ok {
				// A block without errors applies every line.
				for _, l := range strings.Split(strings.TrimSpace(oc.stdin), "\n") {
					c, err := testParser().Parse(strings.Fields(l))
					if err != nil {
						t.Fatalf("%v: %q: %v", oc, l, err)
					}
					want = append(want, strings.Join(c.Argv(), " "))
				}
			}
			if strings.Join(k.applied, "\n") != strings.Join(want, "\n") {
				t.Errorf("%v: applied\n%s\nwant\n%s", oc, strings.Join(k.applied, "\n"), strings.Join(want, "\n"))
			}
		}
	}
	for key := range oracleRestoreApplied {
		if !seen[key] {
			t.Errorf("oracleRestoreApplied: no -R block at %s", key)
		}
	}
}

func bufioReader(s string) *bufio.Reader { return bufio.NewReader(strings.NewReader(s)) }

// TestStreamReader checks config_stream_read's splitting.
func TestStreamReader(t *testing.T) {
	long := strings.Repeat("a", maxToken)
	for _, tc := range []struct {
		name string
		in   string
		want [][]string // nil entry = a line without words
	}{
		{"simple", "-A -t x\n-C\n", [][]string{{"-A", "-t", "x"}, {"-C"}}},
		{"blank lines", "\n-C\n\n  \t\n-C\n", [][]string{nil, {"-C"}, nil, nil, {"-C"}}},
		{"blanks around", "  -A \t -t\tx  \n", [][]string{{"-A", "-t", "x"}}},
		{"crlf", "-A -t x\r\n-C\r\n", [][]string{{"-A", "-t", "x"}, {"-C"}}},
		{"ipvsadm words", "ipvsadm -C\n-s ipvsadm rr\nipvsadm\n", [][]string{{"-C"}, {"-s", "rr"}, nil}},
		{"no quoting", `-s "r r"` + "\n", [][]string{{"-s", `"r`, `r"`}}},
		{"hash", "# comment line\n-C # x\n", [][]string{{"#", "comment", "line"}, {"-C", "#", "x"}}},
		{"vertical tab is a word byte", "-C\v\n", [][]string{{"-C\v"}}},
		{"last line without newline", "-C\n-A -t x", [][]string{{"-C"}, {"-A", "-t", "x"}}},
		{"last line, one blank, no newline", "-A -t x ", [][]string{{"-A", "-t", "x"}}},
		{"last line, two blanks, no newline, lost", "-C\n-A -t x  ", [][]string{{"-C"}}},
		{"only blanks at the end", "-C\n   ", [][]string{{"-C"}}},
		{"NUL ends a word", "-C\x00junk -n\n", [][]string{{"-C", "-n"}}},
		{"long word split", long + "b\n", [][]string{{long, "b"}}},
		{"word of the maximum length", long + "\n-C\n", [][]string{{long}, {"-C"}}},
		{"empty input", "", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sr := streamReader{r: bufioReader(tc.in)}
			var got [][]string
			for {
				w, ok, err := sr.readLine()
				if err != nil {
					t.Fatal(err)
				}
				if !ok {
					break
				}
				got = append(got, w)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
			for i := range got {
				if strings.Join(got[i], "\x00") != strings.Join(tc.want[i], "\x00") || (got[i] == nil) != (tc.want[i] == nil) {
					t.Errorf("line %d: got %q, want %q", i, got[i], tc.want[i])
				}
			}
		})
	}
}

// TestReadRestoreExits checks how each kind of failure ends (or does not
// end) a restore.
func TestReadRestoreExits(t *testing.T) {
	for _, tc := range []struct {
		name    string
		in      string
		stderr  string
		rc      int
		applied []string
	}{
		{"popt error goes on", "-A -t 198.18.0.100:1 -Q\n-A -t 198.18.0.100:2\n", "-Q: unknown option\n", 0, []string{"-A -t 198.18.0.100:2"}},
		{"popt error last", "-A -t 198.18.0.100:2\n-C -t\n", "-t: missing argument\n", 255, []string{"-A -t 198.18.0.100:2"}},
		{"fail stops", "-A -t 198.18.0.100:1\n-A -t 198.18.0.300:2\n-C\n", "illegal virtual server address[:port] specified\n", 2, []string{"-A -t 198.18.0.100:1"}},
		{"nested restore", "-R\n-C\n", "Try `ipvsadm -h' or 'ipvsadm --help' for more information.\n", 255, nil},
		{"help ends with 0", "-C\n-h\n-C\n", "", 0, []string{"-C", "-h"}},
		{"version ends with 0", "-v\n-C\n", "", 0, []string{"-v"}},
		{"kernel error goes on", "-A -t 198.18.0.100:1\n-A -t 198.18.0.100:1\n-C\n", "Service already exists\n", 0, []string{"-A -t 198.18.0.100:1", "-C"}},
		{"kernel error last", "-A -t 198.18.0.100:1\n-A -t 198.18.0.100:1\n", "Service already exists\n", 255, []string{"-A -t 198.18.0.100:1"}},
		{"kernel error then blank lines", "-A -t 198.18.0.100:1\n-A -t 198.18.0.100:1\n\n\n", "Service already exists\n", 255, []string{"-A -t 198.18.0.100:1"}},
		{"list failure stops with 1", "-L -n -t 198.18.0.100:9\n-C\n", "No such service\n", 1, nil},
		{"save inside", "-S -n\n", "", 0, []string{"-S -n"}},
		{"only blanks", "\n \n", "", 0, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k := newFakeKernel()
			var applied []string
			apply := func(c Command) error {
				if c.Kind == CmdHelp || c.Kind == CmdVersion {
					applied = append(applied, strings.Join(c.Argv(), " "))
					return nil
				}
				n := len(k.applied)
				err := k.apply(c)
				if len(k.applied) > n {
					applied = append(applied, k.applied[n])
				}
				return err
			}
			var stderr bytes.Buffer
			err := testParser().ReadRestore(strings.NewReader(tc.in), apply, &stderr)
			rc := 0
			var ee *ExitError
			if errors.As(err, &ee) {
				rc = ee.Code
			} else if err != nil {
				t.Fatal(err)
			}
			if stderr.String() != tc.stderr || rc != tc.rc {
				t.Errorf("stderr %q rc %d, want %q rc %d", stderr.String(), rc, tc.stderr, tc.rc)
			}
			if strings.Join(applied, "\n") != strings.Join(tc.applied, "\n") {
				t.Errorf("applied %q, want %q", applied, tc.applied)
			}
		})
	}
}

func TestReadRestoreReadError(t *testing.T) {
	boom := errors.New("boom")
	r := io.MultiReader(strings.NewReader("-C\n"), iotest.ErrReader(boom))
	n := 0
	err := ReadRestore(r, func(Command) error { n++; return nil }, io.Discard)
	if !errors.Is(err, boom) || n != 1 {
		t.Errorf("err %v after %d commands, want boom after 1", err, n)
	}
}

// FuzzReadRestore checks that ReadRestore never panics, hands apply only
// commands that render back to themselves, and ends with nil or an
// ExitError of a status ipvsadm can have.
func FuzzReadRestore(f *testing.F) {
	for _, oc := range readOracleCmds(f, "b-errors.out") {
		if oc.hasStdin {
			f.Add(oc.stdin)
		}
	}
	for _, oc := range readOracleCmds(f, "a1-formats.out") {
		if oc.hasStdin {
			f.Add(oc.stdin)
		}
	}
	f.Add("-A -t 198.18.0.100:1 -Q\n-h\n")
	f.Add("-C\n-A -t x  ")
	f.Fuzz(func(t *testing.T, in string) {
		k := newFakeKernel()
		p := testParser()
		apply := func(c Command) error {
			checkArgvRoundTrip(t, p, c)
			if c.Kind == CmdHelp || c.Kind == CmdVersion {
				return nil
			}
			return k.apply(c)
		}
		err := p.ReadRestore(strings.NewReader(in), apply, io.Discard)
		var ee *ExitError
		if err != nil && (!errors.As(err, &ee) || (ee.Code != 1 && ee.Code != 2 && ee.Code != 255)) {
			t.Fatalf("ReadRestore(%q) = %v", in, err)
		}
	})
}

// BenchmarkReadRestore11k reads the -R input of the load target:
// a thousand services with ten real servers each, applied to nothing.
func BenchmarkReadRestore11k(b *testing.B) {
	var in strings.Builder
	for s := range 1000 {
		svc := netip.AddrPortFrom(netip.AddrFrom4([4]byte{198, 18, byte(s >> 8), byte(s)}), 80)
		in.WriteString("-A -t " + svc.String() + " -s wlc\n")
		for d := range 10 {
			in.WriteString("-a -t " + svc.String() + " -r 198.19.0." + strconv.Itoa(10+d) + ":8080 -m -w 1\n")
		}
	}
	text := in.String()
	p := testParser()
	n := 0
	apply := func(Command) error { n++; return nil }
	b.ReportAllocs()
	b.SetBytes(int64(len(text)))
	for b.Loop() {
		if err := p.ReadRestore(strings.NewReader(text), apply, io.Discard); err != nil {
			b.Fatal(err)
		}
	}
	if n%11000 != 0 {
		b.Fatalf("%d commands applied", n)
	}
}
