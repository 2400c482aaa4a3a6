package keepalived

import (
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden from the parser's output")

// goldenCases are the realistic configurations of testdata/ and the
// configuration id each is read with.
var goldenCases = []struct {
	file, id, golden string
}{
	{"nat_http.conf", "", "nat_http.golden"},
	{"dr_tcp_persist.conf", "", "dr_tcp_persist.golden"},
	{"fwmark_misc.conf", "", "fwmark_misc.golden"},
	{"sorry_quorum.conf", "", "sorry_quorum.golden"},
	{"vsg_ranges.conf", "", "vsg_ranges.golden"},
	{"vrrp_master.conf", "", "vrrp_master.golden"},
	{"vrrp_backup.conf", "", "vrrp_backup.golden"},
	{"include_glob.conf", "", "include_glob.golden"},
	{"bgp.conf", "", "bgp.golden"},
	{"definitions.conf", "", "definitions.golden"},
	{"definitions.conf", "lb1", "definitions.lb1.golden"},
}

// render is the golden form: the dump, then every diagnostic.
func render(cfg *Config, diags []Diagnostic) string {
	var b strings.Builder
	b.WriteString(cfg.Dump())
	b.WriteString("---- diagnostics\n")
	for _, d := range diags {
		b.WriteString(d.String())
		b.WriteByte('\n')
	}
	return b.String()
}

func TestGolden(t *testing.T) {
	for _, c := range goldenCases {
		t.Run(c.golden, func(t *testing.T) {
			cfg, diags, err := Parse(c.file, Options{FS: os.DirFS("testdata"), ConfigID: c.id, Hostname: "lvs-test"})
			if err != nil {
				t.Fatal(err)
			}
			got := render(cfg, diags)
			path := filepath.Join("testdata", c.golden)
			if *update {
				if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if got != string(want) {
				t.Errorf("%s differs from the parser's output (run with -update after checking):\n%s", path, diffLines(string(want), got))
			}
		})
	}
}

// diffLines is a small line diff for golden failures.
func diffLines(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	var b strings.Builder
	for i := 0; i < max(len(w), len(g)); i++ {
		var a, c string
		if i < len(w) {
			a = w[i]
		}
		if i < len(g) {
			c = g[i]
		}
		if a != c {
			b.WriteString("line " + itoa(i+1) + ":\n  - " + a + "\n  + " + c + "\n")
		}
	}
	return b.String()
}

// TestKeepalivedAccepts runs the real keepalived -t over every testdata
// configuration: what GoLVS accepts as a realistic configuration,
// keepalived must accept too. The GoLVS extension block bgp { } is cut
// out first. Only the exit status is checked (keepalived -t reports to
// stderr, and fails on its own warnings too).
func TestKeepalivedAccepts(t *testing.T) {
	if testing.Short() {
		t.Skip("runs keepalived: not in -short")
	}
	bin, err := exec.LookPath("keepalived")
	if err != nil {
		t.Skip("keepalived is not installed (Debian package keepalived)")
	}
	if os.Geteuid() != 0 {
		t.Skip("keepalived -t needs root")
	}
	dir := t.TempDir()
	if err := os.CopyFS(dir, os.DirFS("testdata")); err != nil {
		t.Fatal(err)
	}
	for _, c := range goldenCases {
		t.Run(c.golden, func(t *testing.T) {
			path := filepath.Join(dir, c.file)
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, []byte(stripBlock(string(data), "bgp")), 0o644); err != nil {
				t.Fatal(err)
			}
			args := []string{"-t", "-f", path}
			if c.id != "" {
				args = append(args, "-i", c.id)
			}
			cmd := exec.Command(bin, args...)
			done := make(chan struct{})
			var out []byte
			go func() { out, err = cmd.CombinedOutput(); close(done) }()
			select {
			case <-done:
			case <-time.After(60 * time.Second):
				_ = cmd.Process.Kill()
				<-done
				t.Fatalf("keepalived -t did not finish in 60 s")
			}
			if err != nil {
				t.Errorf("keepalived %s: %v\n%s", strings.Join(args, " "), err, out)
			}
		})
	}
}

// stripBlock removes top-level "kw {...}" blocks by counting braces
// (enough for the test configurations, which quote no braces there).
func stripBlock(s, kw string) string {
	var out []string
	depth := -1
	for _, l := range strings.Split(s, "\n") {
		f := strings.Fields(l)
		if depth < 0 && len(f) > 0 && f[0] == kw {
			depth = 0
		}
		if depth >= 0 {
			depth += strings.Count(l, "{") - strings.Count(l, "}")
			if depth <= 0 && strings.Contains(l, "}") {
				depth = -1
			}
			continue
		}
		out = append(out, l)
	}
	return strings.Join(out, "\n")
}
