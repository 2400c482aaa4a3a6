package keepalived

import (
	"errors"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
)

// source is where configuration files come from: the OS or an fs.FS.
type source interface {
	// readFile returns the file's contents; skip is set (with err nil)
	// when the name is not a regular, non-executable file, which
	// keepalived skips ("is not a regular non-executable file").
	readFile(name string) (data []byte, skip bool, err error)
	// glob returns the sorted names matching pattern.
	glob(pattern string) ([]string, error)
	// dir and join are the path functions of the source's namespace.
	dir(name string) string
	join(dir, name string) string
	isAbs(name string) bool
}

type osSource struct{}

func (osSource) readFile(name string) ([]byte, bool, error) {
	st, err := os.Stat(name)
	if err != nil {
		return nil, false, err
	}
	if st.IsDir() {
		return nil, true, errIsDir
	}
	// 0o111: any execute bit, as keepalived's S_IXUSR|S_IXGRP|S_IXOTH test.
	if !st.Mode().IsRegular() || st.Mode().Perm()&0o111 != 0 {
		return nil, true, nil
	}
	data, err := os.ReadFile(name)
	return data, false, err
}

func (osSource) glob(pattern string) ([]string, error) {
	m, err := filepath.Glob(pattern)
	slices.Sort(m)
	return m, err
}
func (osSource) dir(name string) string       { return filepath.Dir(name) }
func (osSource) join(dir, name string) string { return filepath.Join(dir, name) }
func (osSource) isAbs(name string) bool       { return filepath.IsAbs(name) }

// fsSource reads from an fs.FS. Names are slash-separated; a leading "/"
// is stripped, so configurations written with absolute paths work over an
// fstest.MapFS rooted at "/".
type fsSource struct{ fsys fs.FS }

func fsName(name string) string {
	name = path.Clean("/" + name)
	if name == "/" {
		return "."
	}
	return name[1:]
}

func (s fsSource) readFile(name string) ([]byte, bool, error) {
	n := fsName(name)
	st, err := fs.Stat(s.fsys, n)
	if err != nil {
		return nil, false, err
	}
	if st.IsDir() {
		return nil, true, errIsDir
	}
	if !st.Mode().IsRegular() || st.Mode().Perm()&0o111 != 0 {
		return nil, true, nil
	}
	data, err := fs.ReadFile(s.fsys, n)
	return data, false, err
}

func (s fsSource) glob(pattern string) ([]string, error) {
	abs := strings.HasPrefix(pattern, "/")
	m, err := fs.Glob(s.fsys, fsName(pattern))
	if err != nil {
		return nil, err
	}
	if abs {
		for i := range m {
			m[i] = "/" + m[i]
		}
	}
	slices.Sort(m)
	return m, nil
}
func (fsSource) dir(name string) string       { return path.Dir(name) }
func (fsSource) join(dir, name string) string { return path.Join(dir, name) }
func (fsSource) isAbs(name string) bool       { return strings.HasPrefix(name, "/") }

// maxBraceExpansions bounds the alternatives a {a,b} include pattern may
// produce, so that a hostile pattern cannot exhaust memory.
const maxBraceExpansions = 1024

// errIsDir is returned by readFile for a directory, which include skips.
var errIsDir = errors.New("is a directory")

var errBraceTooMany = errors.New("too many brace expansions")

// expandBraces expands csh-style {a,b} alternatives (glob(3)'s
// GLOB_BRACE, which keepalived asks for), nested or not.
func expandBraces(p string) ([]string, error) {
	depth, open := 0, -1
	for i := 0; i < len(p); i++ {
		switch p[i] {
		case '\\':
			i++
		case '{':
			if depth == 0 {
				open = i
			}
			depth++
		case '}':
			if depth == 0 {
				continue
			}
			depth--
			if depth > 0 {
				continue
			}
			// Split p[open+1:i] at top-level commas.
			inner := p[open+1 : i]
			var alts []string
			d, start := 0, 0
			for j := 0; j < len(inner); j++ {
				switch inner[j] {
				case '{':
					d++
				case '}':
					d--
				case ',':
					if d == 0 {
						alts = append(alts, inner[start:j])
						start = j + 1
					}
				}
			}
			alts = append(alts, inner[start:])
			if len(alts) == 1 {
				// "{x}" is not an expansion in glob(3): keep it literal.
				continue
			}
			var out []string
			for _, a := range alts {
				rest, err := expandBraces(p[:open] + a + p[i+1:])
				if err != nil {
					return nil, err
				}
				out = append(out, rest...)
				if len(out) > maxBraceExpansions {
					return nil, errBraceTooMany
				}
			}
			return out, nil
		}
	}
	return []string{p}, nil
}

func hasGlobMeta(p string) bool { return strings.ContainsAny(p, "*?[") }
