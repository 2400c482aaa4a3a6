package guard

import (
	"bytes"
	"errors"
	"fmt"
	"go/ast"
	"go/build/constraint"
	"go/format"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"testing/fstest"
)

// The import rules, by package directory relative to the module root. A
// rule for "internal/link" covers internal/link and everything under it.
// Directories that do not exist yet are simply not matched. The rules apply
// to non-test files: tests may use helpers (go-cmp, encoding/json for
// golden files) that the package itself must not.
var (
	// stdOnlyPkgs may import only the standard library and one another
	// (style.md §3.1): the zero-allocation packet views and keys at the
	// bottom of the graph. flow parses with header's views and header
	// computes checksums with checksum, so that each wire offset is
	// written once; the three stay a closed, std-only group.
	stdOnlyPkgs = []string{
		"internal/header",
		"internal/checksum",
		"internal/flow",
	}

	// packetPathPkgs run per packet or per connection, or hold what the
	// packet path reads (style.md §3.1, §4).
	packetPathPkgs = []string{
		"internal/datapath",
		"internal/forward",
		"internal/conntable",
		"internal/sched",
		"internal/proto",
		"internal/service",
		"internal/stats",
		"internal/estimator",
		"internal/engine",
		"internal/link",
	}

	// packetPathForbidden are what packetPathPkgs must not import, directly
	// or through other packages of this module (a forbidden package also
	// covers its subpackages: "log" covers log/syslog). Standard library
	// packages are not followed: fmt itself imports reflect.
	packetPathForbidden = []string{
		"log",           // no logging on the packet path (§4.9)
		"log/slog",      // idem; loggers are passed to control-plane components
		"encoding/json", // decoding belongs to api/config
		"net/http",      // the API is a control-plane adapter
		"reflect",       // slow and allocation-prone
		"os/exec",       // no processes from the data path
	}

	// packetPathForbiddenLocal are module packages (relative to the module
	// root) that packetPathPkgs must not reach: the control plane (§3.1:
	// "datapath ... never api, config").
	packetPathForbiddenLocal = []string{
		"internal/api",
		"internal/config",
	}

	// unixImporters are the only packages that may import
	// golang.org/x/sys/unix (style.md §3.2; cilium no-x-sys-unix).
	unixImporters = []string{
		"internal/link",
		"internal/hostnet",
		"internal/announce",
		"internal/lvstest",
		// The real-server side: raw IP-in-IP sockets, the TUN device,
		// flock of the state file (what hostnet is to the director).
		"internal/realserver",
		"cmd",
	}
)

const unixPkg = "golang.org/x/sys/unix"

// module is what the guards know of a module tree.
type module struct {
	fsys  fs.FS           // the tree
	path  string          // module path from go.mod
	files []string        // every .go file, slash paths relative to the root
	pkgs  map[string]*pkg // by directory relative to the root ("." for the root)
	byImp map[string]*pkg // by import path
	bad   []string        // files that did not parse as far as their imports
}

// pkg is one package directory's non-test, buildable files.
type pkg struct {
	dir   string
	path  string // import path
	files []*file
}

type file struct {
	name    string // slash path relative to the root
	pkg     string // package name
	doc     *ast.CommentGroup
	imports []string
}

// moduleRoot finds the root of the module holding this package by walking
// up to go.mod (the test runs in the package directory).
func moduleRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the test's directory")
		}
		dir = parent
	}
}

// modulePath returns the module line of a go.mod.
func modulePath(gomod []byte) (string, error) {
	for _, line := range strings.Split(string(gomod), "\n") {
		fields := strings.Fields(line)
		if len(fields) >= 2 && fields[0] == "module" {
			return strings.Trim(fields[1], `"`), nil
		}
	}
	return "", errors.New("go.mod has no module line")
}

// skipDir reports whether the go tool ignores a directory (testdata,
// vendor, names starting with . or _).
func skipDir(name string) bool {
	return name == "testdata" || name == "vendor" ||
		strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_")
}

// load walks the tree in fsys, a module root. Nested modules (a directory
// with its own go.mod) have their files gofmt-checked but not their
// packages, which belong to another module.
func load(fsys fs.FS) (*module, error) {
	gomod, err := fs.ReadFile(fsys, "go.mod")
	if err != nil {
		return nil, err
	}
	mp, err := modulePath(gomod)
	if err != nil {
		return nil, err
	}
	m := &module{path: mp, pkgs: map[string]*pkg{}, byImp: map[string]*pkg{}, fsys: fsys}
	nested := map[string]bool{}
	err = fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if p != "." && skipDir(d.Name()) {
				return fs.SkipDir
			}
			if p != "." {
				if _, err := fs.Stat(fsys, path.Join(p, "go.mod")); err == nil {
					nested[p] = true
				}
			}
			return nil
		}
		if !strings.HasSuffix(p, ".go") {
			return nil
		}
		m.files = append(m.files, p)
		dir := path.Dir(p)
		if strings.HasSuffix(p, "_test.go") || inNested(dir, nested) {
			return nil
		}
		src, err := fs.ReadFile(fsys, p)
		if err != nil {
			return err
		}
		f, err := parser.ParseFile(token.NewFileSet(), p, src, parser.ImportsOnly|parser.ParseComments)
		if f == nil || f.Name == nil {
			m.bad = append(m.bad, fmt.Sprintf("%s: does not parse: %v", p, err))
			return nil
		}
		// ImportsOnly stops after the imports, so a file whose body is
		// half written still yields its package clause and imports.
		if ignored(f) {
			return nil
		}
		fi := &file{name: p, pkg: f.Name.Name, doc: f.Doc}
		for _, is := range f.Imports {
			ip, err := strconv.Unquote(is.Path.Value)
			if err != nil {
				return fmt.Errorf("%s: import %s: %w", p, is.Path.Value, err)
			}
			fi.imports = append(fi.imports, ip)
		}
		pk := m.pkgs[dir]
		if pk == nil {
			ip := mp
			if dir != "." {
				ip = mp + "/" + dir
			}
			pk = &pkg{dir: dir, path: ip}
			m.pkgs[dir] = pk
			m.byImp[ip] = pk
		}
		pk.files = append(pk.files, fi)
		return nil
	})
	return m, err
}

func inNested(dir string, nested map[string]bool) bool {
	for d := dir; d != "." && d != "/"; d = path.Dir(d) {
		if nested[d] {
			return true
		}
	}
	return false
}

// ignored reports whether a file is excluded from every build by a
// //go:build line that needs the "ignore" tag (generators and the like).
func ignored(f *ast.File) bool {
	for _, cg := range f.Comments {
		if cg.Pos() >= f.Package {
			break
		}
		for _, c := range cg.List {
			if !constraint.IsGoBuild(c.Text) {
				continue
			}
			expr, err := constraint.Parse(c.Text)
			if err != nil {
				return false
			}
			return !expr.Eval(func(tag string) bool { return tag != "ignore" })
		}
	}
	return false
}

// under reports whether the directory dir is p or below it.
func under(dir, p string) bool {
	return dir == p || strings.HasPrefix(dir, p+"/")
}

func underAny(dir string, ps []string) bool {
	return slices.ContainsFunc(ps, func(p string) bool { return under(dir, p) })
}

// checkGofmt returns a problem for every file that gofmt would change.
func checkGofmt(m *module) []string {
	var problems []string
	for _, p := range m.files {
		src, err := fs.ReadFile(m.fsys, p)
		if err != nil {
			problems = append(problems, fmt.Sprintf("%s: %v", p, err))
			continue
		}
		out, err := format.Source(src)
		switch {
		case err != nil:
			problems = append(problems, fmt.Sprintf("%s: gofmt rule: cannot be formatted: %v", p, err))
		case !bytes.Equal(src, out):
			problems = append(problems, fmt.Sprintf("%s: gofmt rule: not gofmt-clean (run gofmt -w %s)", p, p))
		}
	}
	return problems
}

// checkDocs returns a problem for every package directory without exactly
// one package doc comment, or whose doc does not start "Package <name>"
// (commands, package main, may start as they like: "Lvsd is ...").
func checkDocs(m *module) []string {
	var problems []string
	for _, dir := range sortedKeys(m.pkgs) {
		pk := m.pkgs[dir]
		names := map[string]bool{}
		var docs []*file
		for _, f := range pk.files {
			names[f.pkg] = true
			if f.doc != nil {
				docs = append(docs, f)
			}
		}
		if len(names) > 1 {
			problems = append(problems, fmt.Sprintf("%s: package rule: files of several packages %v", dir, sortedKeys(names)))
			continue
		}
		switch len(docs) {
		case 0:
			problems = append(problems, fmt.Sprintf("%s: package doc rule: no file has a package doc comment (add doc.go: // Package %s ...)", dir, pk.files[0].pkg))
			continue
		case 1:
		default:
			var where []string
			for _, f := range docs {
				where = append(where, f.name)
			}
			problems = append(problems, fmt.Sprintf("%s: package doc rule: %d package doc comments, want 1: %s", dir, len(docs), strings.Join(where, ", ")))
			continue
		}
		f := docs[0]
		if f.pkg == "main" {
			continue
		}
		text := f.doc.Text()
		prefix := "Package " + f.pkg
		if !strings.HasPrefix(text, prefix+" ") && !strings.HasPrefix(text, prefix+"\n") {
			problems = append(problems, fmt.Sprintf("%s: package doc rule: doc comment must start %q", f.name, prefix+" "))
		}
	}
	return problems
}

// isStd reports whether an import path is in the standard library: its
// first element has no dot, and it is neither this module nor cgo's "C".
func (m *module) isStd(ip string) bool {
	if ip == "C" || ip == m.path || strings.HasPrefix(ip, m.path+"/") {
		return false
	}
	first, _, _ := strings.Cut(ip, "/")
	return !strings.Contains(first, ".")
}

// local returns the directory of a module import path, or "" for another
// module's or the standard library's.
func (m *module) local(ip string) string {
	switch {
	case ip == m.path:
		return "."
	case strings.HasPrefix(ip, m.path+"/"):
		return strings.TrimPrefix(ip, m.path+"/")
	}
	return ""
}

// checkImports applies the import rules.
func checkImports(m *module) []string {
	var problems []string
	for _, dir := range sortedKeys(m.pkgs) {
		pk := m.pkgs[dir]
		for _, f := range pk.files {
			for _, ip := range f.imports {
				if underAny(dir, stdOnlyPkgs) && !m.isStd(ip) && !underAny(m.local(ip), stdOnlyPkgs) {
					problems = append(problems, fmt.Sprintf("%s: imports %q: std-only rule: %s may import only the standard library and %s (style.md §3.1)", f.name, ip, dir, strings.Join(stdOnlyPkgs, ", ")))
				}
				if ip == unixPkg && !underAny(dir, unixImporters) {
					problems = append(problems, fmt.Sprintf("%s: imports %q: x/sys/unix rule: only %s may (style.md §3.2)", f.name, ip, strings.Join(unixImporters, ", ")))
				}
			}
		}
		if underAny(dir, packetPathPkgs) {
			problems = append(problems, m.checkPacketPath(pk)...)
		}
	}
	return problems
}

// checkPacketPath reports the forbidden imports reachable from a packet-path
// package through the module's own packages, with the chain that reaches
// each one (breadth first, so the chain is a shortest one).
func (m *module) checkPacketPath(root *pkg) []string {
	var problems []string
	via := map[*pkg]*pkg{root: nil} // visited, and the package that led here
	queue := []*pkg{root}
	for len(queue) > 0 {
		pk := queue[0]
		queue = queue[1:]
		for _, f := range pk.files {
			for _, ip := range f.imports {
				bad := slices.ContainsFunc(packetPathForbidden, func(x string) bool { return under(ip, x) })
				if d := m.local(ip); d != "" && underAny(d, packetPathForbiddenLocal) {
					bad = true
				}
				if bad {
					problems = append(problems, fmt.Sprintf("%s: imports %q: packet-path rule: %s must not depend on %s (style.md §3.1)%s",
						f.name, ip, root.dir, ip, chain(via, pk)))
				}
				if next := m.byImp[ip]; next != nil {
					if _, seen := via[next]; !seen {
						via[next] = pk
						queue = append(queue, next)
					}
				}
			}
		}
	}
	return problems
}

// chain describes how the packet-path package reaches pk, if indirectly.
func chain(via map[*pkg]*pkg, pk *pkg) string {
	if via[pk] == nil {
		return ""
	}
	var dirs []string
	for p := pk; p != nil; p = via[p] {
		dirs = append(dirs, p.dir)
	}
	slices.Reverse(dirs)
	return "; reached via " + strings.Join(dirs, " -> ")
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// loadRepo loads this repository's module.
func loadRepo(t *testing.T) *module {
	t.Helper()
	m, err := load(os.DirFS(moduleRoot(t)))
	if err != nil {
		t.Fatal(err)
	}
	if len(m.pkgs) == 0 {
		t.Fatal("found no packages: is the module root right?")
	}
	return m
}

func report(t *testing.T, problems []string) {
	t.Helper()
	for _, p := range problems {
		t.Error(p)
	}
}

func TestGofmt(t *testing.T) {
	report(t, checkGofmt(loadRepo(t)))
}

func TestPackageDocs(t *testing.T) {
	m := loadRepo(t)
	report(t, m.bad)
	report(t, checkDocs(m))
}

func TestImports(t *testing.T) {
	report(t, checkImports(loadRepo(t)))
}

// TestGuardsCatchViolations runs the guards on a small made-up module with
// one violation of every rule, and one clean package of each kind, so that
// a guard that silently stops matching fails here.
func TestGuardsCatchViolations(t *testing.T) {
	src := func(s string) *fstest.MapFile { return &fstest.MapFile{Data: []byte(s)} }
	fsys := fstest.MapFS{
		"go.mod": src("module example.test/m\n\ngo 1.26\n"),

		// Clean packages.
		"internal/header/doc.go":        src("// Package header is fine.\npackage header\n\nimport \"encoding/binary\"\n\nvar _ = binary.BigEndian\n"),
		"internal/header/x_test.go":     src("package header\n\nimport _ \"github.com/google/go-cmp/cmp\"\n"), // tests are exempt
		"internal/flow/doc.go":          src("// Package flow may use header.\npackage flow\n\nimport _ \"example.test/m/internal/header\"\n"),
		"internal/link/afpacket/doc.go": src("// Package afpacket is fine.\npackage afpacket\n\nimport _ \"golang.org/x/sys/unix\"\n"),
		"cmd/lvsd/main.go":              src("// Lvsd is the daemon.\npackage main\n\nimport _ \"golang.org/x/sys/unix\"\n\nfunc main() {}\n"),
		"internal/sched/doc.go":         src("// Package sched is fine.\npackage sched\n\nimport _ \"fmt\"\n"),
		"internal/gen/gen.go":           src("//go:build ignore\n\npackage main\n"), // ignored file, no doc needed
		"internal/gen/doc.go":           src("// Package gen is fine.\npackage gen\n"),
		"testdata/bad.go":               src("package  bad\n"), // ignored directory

		// Violations.
		"internal/checksum/doc.go":  src("// Package checksum imports the module.\npackage checksum\n\nimport _ \"example.test/m/internal/util\"\n"),
		"internal/util/doc.go":      src("// Package util logs.\npackage util\n\nimport _ \"log/slog\"\n"),
		"internal/datapath/doc.go":  src("// Package datapath reaches slog through util.\npackage datapath\n\nimport _ \"example.test/m/internal/util\"\n"),
		"internal/datapath/rx.go":   src("package datapath\n\nimport _ \"net/http/pprof\"\n"),
		"internal/forward/doc.go":   src("// Package forward uses the control plane.\npackage forward\n\nimport _ \"example.test/m/internal/config\"\n"),
		"internal/config/doc.go":    src("// Package config is fine.\npackage config\n"),
		"internal/vrrp/doc.go":      src("// Package vrrp uses unix.\npackage vrrp\n\nimport _ \"golang.org/x/sys/unix\"\n"),
		"internal/nodoc/a.go":       src("package nodoc\n"),
		"internal/twodocs/a.go":     src("// Package twodocs, once.\npackage twodocs\n"),
		"internal/twodocs/b.go":     src("// Package twodocs, twice.\npackage twodocs\n"),
		"internal/wrongdoc/doc.go":  src("// This package does things.\npackage wrongdoc\n"),
		"internal/unformatted/a.go": src("// Package unformatted is not gofmt-clean.\npackage unformatted\nvar  x = 1\n"),
		"internal/broken/a.go":      src("// Package broken does not parse past its imports.\npackage broken\n\nfunc {\n"),
	}
	m, err := load(fsys)
	if err != nil {
		t.Fatal(err)
	}
	got := slices.Concat(checkGofmt(m), checkDocs(m), checkImports(m), m.bad)
	want := []string{
		`internal/unformatted/a.go: gofmt rule: not gofmt-clean`,
		`internal/broken/a.go: gofmt rule: cannot be formatted`,
		`internal/nodoc: package doc rule: no file has a package doc comment`,
		`internal/twodocs: package doc rule: 2 package doc comments, want 1: internal/twodocs/a.go, internal/twodocs/b.go`,
		`internal/wrongdoc/doc.go: package doc rule: doc comment must start "Package wrongdoc "`,
		`internal/checksum/doc.go: imports "example.test/m/internal/util": std-only rule`,
		`internal/util/doc.go: imports "log/slog": packet-path rule: internal/datapath must not depend on log/slog (style.md §3.1); reached via internal/datapath -> internal/util`,
		`internal/datapath/rx.go: imports "net/http/pprof": packet-path rule: internal/datapath must not depend on net/http/pprof`,
		`internal/forward/doc.go: imports "example.test/m/internal/config": packet-path rule`,
		`internal/vrrp/doc.go: imports "golang.org/x/sys/unix": x/sys/unix rule`,
	}
	for _, w := range want {
		if !slices.ContainsFunc(got, func(g string) bool { return strings.HasPrefix(g, w) }) {
			t.Errorf("missing problem %q", w)
		}
	}
	for _, g := range got {
		if !slices.ContainsFunc(want, func(w string) bool { return strings.HasPrefix(g, w) }) {
			t.Errorf("unexpected problem %q", g)
		}
	}
}
