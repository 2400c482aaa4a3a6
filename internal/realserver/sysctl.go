package realserver

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// defaultProcSys is where the kernel's parameters are. /proc/sys/net is
// the network namespace of the thread that opens the file, so a caller on
// a thread locked into another namespace configures that one.
const defaultProcSys = "/proc/sys"

// rule says what a sysctl must hold for a real server.
type rule struct {
	// want is what Setup writes when the value is not acceptable.
	want string
	// accept lists the values left alone: the wanted one and any other
	// that is at least as strict.
	accept []string
}

func (r rule) ok(v string) bool { return slices.Contains(r.accept, v) }

// Want describes the acceptable values for Status: "1, 2 or 8".
func (r rule) describe() string {
	switch len(r.accept) {
	case 1:
		return r.accept[0]
	default:
		return strings.Join(r.accept[:len(r.accept)-1], ", ") + " or " + r.accept[len(r.accept)-1]
	}
}

var (
	// arpIgnoreRule: 1 answers only for addresses of the incoming
	// interface; 2 adds a same-subnet check on the sender; 8 never
	// answers. 0, 3 (answers for global-scope addresses on lo) and the
	// reserved 4-7 (treated as 0) would answer for the VIP
	// (net/ipv4/arp.c arp_ignore).
	arpIgnoreRule = rule{want: "1", accept: []string{"1", "2", "8"}}
	// arpAnnounceRule: 2 always picks the best local address for the
	// target as the ARP source, never the VIP on lo.
	arpAnnounceRule = rule{want: "2", accept: []string{"2"}}
	// rpFilterRule: 2 is loose reverse-path filtering (the source must be
	// reachable through some interface), 0 none; 1, strict, drops
	// decapsulated packets (fib_validate_source).
	rpFilterRule = rule{want: "2", accept: []string{"0", "2"}}
)

// ipv4Conf returns the path under /proc/sys of an IPv4 per-interface
// parameter ("all" and "default" included).
func ipv4Conf(dev, name string) string { return "net/ipv4/conf/" + dev + "/" + name }

// ipv6Conf is ipv4Conf for IPv6.
func ipv6Conf(dev, name string) string { return "net/ipv6/conf/" + dev + "/" + name }

// sysctlName turns a path under /proc/sys into the dotted name sysctl(8)
// prints (an interface name with a dot would print ambiguously; so does
// sysctl's own output).
func sysctlName(path string) string { return strings.ReplaceAll(path, "/", ".") }

// sysctls reads and writes kernel parameters under a root (/proc/sys, or
// a directory of plain files in tests).
type sysctls struct{ root string }

func (s sysctls) file(path string) string {
	root := s.root
	if root == "" {
		root = defaultProcSys
	}
	return filepath.Join(root, filepath.FromSlash(path))
}

// get returns the value without its trailing newline.
func (s sysctls) get(path string) (string, error) {
	b, err := os.ReadFile(s.file(path))
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(b)), nil
}

// set writes v. /proc/sys files take a write at offset 0 of an existing
// file; O_TRUNC keeps plain files in tests right and is ignored by procfs.
func (s sysctls) set(path, v string) error {
	f, err := os.OpenFile(s.file(path), os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		return err
	}
	_, err = f.WriteString(v + "\n")
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// exists reports whether the parameter exists (an interface's directory
// goes away with the interface).
func (s sysctls) exists(path string) bool {
	_, err := os.Stat(s.file(path))
	return !errors.Is(err, fs.ErrNotExist)
}
