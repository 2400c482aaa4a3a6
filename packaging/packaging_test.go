package packaging

import (
	"bufio"
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// unitDirectives reads a systemd unit's "Key=Value" lines by section;
// repeated keys keep every value in order.
func unitDirectives(t *testing.T, path string) map[string][]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string][]string{}
	section := ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		l := strings.TrimSpace(sc.Text())
		switch {
		case l == "" || strings.HasPrefix(l, "#"):
		case strings.HasPrefix(l, "["):
			section = strings.Trim(l, "[]")
		default:
			k, v, ok := strings.Cut(l, "=")
			if !ok {
				t.Errorf("%s: not a directive: %q", path, l)
			}
			out[section+"."+k] = append(out[section+"."+k], v)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// The unit says what the issue and lvsd's tests require of it.
func TestUnitDirectives(t *testing.T) {
	d := unitDirectives(t, "lvsd.service")
	want := map[string]string{
		"Service.ExecStart":               "/usr/sbin/lvsd run -f /etc/keepalived/keepalived.conf",
		"Service.ExecReload":              "/bin/kill -HUP $MAINPID",
		"Service.Restart":                 "on-failure",
		"Service.RuntimeDirectory":        "lvsd", // /run/lvsd/lvsd.sock, lvsd's and ipvsadm's default socket
		"Service.StateDirectory":          "lvsd", // /var/lib/lvsd/state, lvsd's default state file
		"Service.User":                    "root",
		"Service.CapabilityBoundingSet":   "CAP_NET_ADMIN CAP_NET_RAW",
		"Service.AmbientCapabilities":     "CAP_NET_ADMIN CAP_NET_RAW",
		"Service.NoNewPrivileges":         "yes",
		"Service.ProtectSystem":           "strict",
		"Service.PrivateTmp":              "yes",
		"Service.RestrictAddressFamilies": "AF_UNIX AF_INET AF_INET6 AF_NETLINK AF_PACKET",
		"Install.WantedBy":                "multi-user.target",
	}
	for k, v := range want {
		if got := d[k]; !slices.Equal(got, []string{v}) {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
}

// systemd-analyze verify accepts the unit without a word. It checks that
// the binaries exist, so the copy verified runs a stand-in for lvsd.
func TestUnitVerify(t *testing.T) {
	sa, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze is not installed (Debian package systemd)")
	}
	dir := t.TempDir()
	lvsd := filepath.Join(dir, "lvsd")
	if err := os.WriteFile(lvsd, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	unit, err := os.ReadFile("lvsd.service")
	if err != nil {
		t.Fatal(err)
	}
	unit = bytes.ReplaceAll(unit, []byte("/usr/sbin/lvsd"), []byte(lvsd))
	path := filepath.Join(dir, "lvsd.service")
	if err := os.WriteFile(path, unit, 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, sa, "verify", "--man=no", path).CombinedOutput()
	// verify reports bad values as warnings with exit status 0: any
	// output is a failure.
	if err != nil || len(out) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
}

// fakeIpvsadm writes an ipvsadm into dir that prints rules for -S -n, as
// a running director would answer.
const fakeRules = `-A -t 198.18.0.100:80 -s rr
-a -t 198.18.0.100:80 -r 198.19.0.11:80 -m -w 1
-a -t 198.18.0.100:80 -r 198.19.0.12:80 -m -w 1
-A -t [2001:db8::100]:443 -s wlc
-a -t [2001:db8::100]:443 -r [2001:db8:1::11]:443 -g -w 1
-A -u 198.18.0.100:53 -s sh
-a -u 198.18.0.100:53 -r 198.19.0.13:53 -m -w 1
-A -f 7 -s rr
-a -f 7 -r 198.19.0.14:0 -g -w 1
`

func writeScript(t *testing.T, path, body string) {
	t.Helper()
	if err := os.WriteFile(path, []byte("#!/bin/sh\n"+body), 0o755); err != nil {
		t.Fatal(err)
	}
}

// completeScript sets the completion variables as bash does for the
// line (COMP_WORDS split at blanks and at ':' and '=', which are in
// COMP_WORDBREAKS) and prints COMPREPLY, one per line.
const completeScript = `
source "$COMPLETION" || exit 3
complete -p ipvsadm >/dev/null || exit 4
line=$1
COMP_LINE=$line COMP_POINT=${#line}
COMP_WORDS=() w=''
for ((i = 0; i < ${#line}; i++)); do
	c=${line:i:1}
	case $c in
	' ') [[ -n $w ]] && COMP_WORDS+=("$w"); w='' ;;
	: | =) [[ -n $w ]] && COMP_WORDS+=("$w"); COMP_WORDS+=("$c"); w='' ;;
	*) w+=$c ;;
	esac
done
COMP_WORDS+=("$w")
COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
if [[ -n $ONLY_WORDS ]]; then unset COMP_LINE COMP_POINT; fi
_golvs_ipvsadm ipvsadm "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"
printf '%s\n' "${COMPREPLY[@]}"
`

// complete runs the completion for line (the text before the cursor)
// with the ipvsadm of binDir first in PATH.
func complete(t *testing.T, bash, binDir, line string, env ...string) []string {
	t.Helper()
	abs, err := filepath.Abs("ipvsadm.bash-completion")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bash, "--norc", "--noprofile", "-c", completeScript, "bash", line)
	cmd.Env = append(os.Environ(), "PATH="+binDir+":"+os.Getenv("PATH"), "COMPLETION="+abs)
	cmd.Env = append(cmd.Env, env...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil || stderr.Len() > 0 {
		t.Fatalf("completing %q: %v\n%s", line, err, &stderr)
	}
	var got []string
	for _, l := range strings.Split(strings.TrimSuffix(string(out), "\n"), "\n") {
		if l != "" {
			got = append(got, l)
		}
	}
	return got
}

func TestCompletion(t *testing.T) {
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("no bash")
	}
	bin := t.TempDir()
	writeScript(t, filepath.Join(bin, "ipvsadm"), `[ "$1 $2" = "-S -n" ] || exit 1
cat <<'EOF'
`+fakeRules+`EOF
`)
	tests := []struct {
		line string
		want []string
	}{
		{"ipvsadm ", strings.Fields("-A -E -D -C -R -S -a -e -d -L -Z --set --start-daemon --stop-daemon -h")},
		{"ipvsadm --s", strings.Fields("--save --set --start-daemon --stop-daemon")},
		{"ipvsadm -A ", strings.Fields("-t -u --sctp-service -f -s -p -M --pe -b -o")},
		{"ipvsadm -A -t 198.18.0.1:80 --", strings.Fields("--scheduler --persistent --netmask --pe --sched-flags --ops")},
		{"ipvsadm -A -t 198.18.0.1:80 -s ", strings.Fields("rr wrr lc wlc lblc lblcr dh sh sed nq fo ovf mh twos")},
		{"ipvsadm -A -t 198.18.0.1:80 -s w", []string{"wrr", "wlc"}},
		{"ipvsadm -E -t 198.18.0.100:80 --scheduler=l", []string{"lc", "lblc", "lblcr"}},
		{"ipvsadm -A -t ", nil}, // a new service: the user's to name
		{"ipvsadm -A -f 7 -", strings.Fields("-s -p -M --pe -b -o -6")},
		{"ipvsadm -A -f 7 -b sh-port,mh", []string{"sh-port,mh-fallback", "sh-port,mh-port"}},
		{"ipvsadm -D ", strings.Fields("-t -u --sctp-service -f")},
		{"ipvsadm -D -t ", []string{"198.18.0.100:80", "[2001:db8::100]:443"}},
		{"ipvsadm -D -u ", []string{"198.18.0.100:53"}},
		{"ipvsadm -D -f ", []string{"7"}},
		// After a ':' bash replaces only the text after it.
		{"ipvsadm -D -t 198.18.0.100:", []string{"80"}},
		{"ipvsadm -D -t [2001:db8::1", []string{"100]:443"}}, // after "[2001:db8::"
		{"ipvsadm -d -t 198.18.0.100:80 -r ", []string{"198.19.0.11:80", "198.19.0.12:80"}},
		{"ipvsadm -e -t 198.18.0.100:80 -r 198.19.0.12:", []string{"80"}},
		{"ipvsadm --delete-server --tcp-service=198.18.0.100:80 --real-server ", []string{"198.19.0.11:80", "198.19.0.12:80"}},
		{"ipvsadm -d -u 198.18.0.100:53 -r ", []string{"198.19.0.13:53"}},
		{"ipvsadm -d -f 7 -r ", []string{"198.19.0.14:0"}},
		{"ipvsadm -a -t 198.18.0.100:80 -r ", []string{"198.19.0.11:80", "198.19.0.12:80", "198.19.0.13:53", "198.19.0.14:0", "[2001:db8:1::11]:443"}},
		{"ipvsadm -a -t 198.18.0.100:80 -r 198.19.0.20 -", strings.Fields("-g -i -m -w -x -y --tun-type --tun-port --tun-nocsum --tun-csum --tun-remcsum")},
		{"ipvsadm -a -t 198.18.0.100:80 -r 198.19.0.20 -m -", strings.Fields("-w -x -y --tun-type --tun-port --tun-nocsum --tun-csum --tun-remcsum")},
		{"ipvsadm -a -t 198.18.0.100:80 -r 198.19.0.20 -i --tun-type ", []string{"ipip", "gue", "gre"}},
		{"ipvsadm -a -t 198.18.0.100:80 -r 198.19.0.20 -w ", nil},
		{"ipvsadm -d -t 198.18.0.100:80 -r 198.19.0.11:80 -", nil},
		{"ipvsadm -L ", strings.Fields("-n -c -t -u --sctp-service -f --timeout --daemon --stats --rate --thresholds --persistent-conn --nosort --sort -X --tun-info")},
		{"ipvsadm -Ln --st", []string{"--stats"}},
		{"ipvsadm -L -n --stats --", strings.Fields("--connection --tcp-service --udp-service --sctp-service --fwmark-service --timeout --daemon --rate --thresholds --persistent-conn --nosort --sort --exact --tun-info")},
		{"ipvsadm -S ", []string{"-n"}},
		{"ipvsadm -Z -t ", []string{"198.18.0.100:80", "[2001:db8::100]:443"}},
		{"ipvsadm -C ", nil},
		{"ipvsadm --set 900 ", nil},
		{"ipvsadm --start-daemon ", []string{"master", "backup"}},
		{"ipvsadm --start-daemon master --sync", []string{"--syncid", "--sync-maxlen"}},
		{"ipvsadm --stop-daemon backup --", []string{"--syncid"}},
		{"ipvsadm --start-daemon master --mcast-interface lo", []string{"lo"}},
	}
	for _, tc := range tests {
		t.Run(tc.line, func(t *testing.T) {
			if strings.Contains(tc.line, "mcast-interface") {
				if _, err := os.Stat("/sys/class/net/lo"); err != nil {
					t.Skip("no /sys/class/net/lo")
				}
			}
			if diff := cmp.Diff(tc.want, complete(t, bash, bin, tc.line)); diff != "" {
				t.Errorf("COMPREPLY (-want +got):\n%s", diff)
			}
		})
	}
	// Called with COMP_WORDS alone (no COMP_LINE), as some wrappers do.
	t.Run("COMP_WORDS only", func(t *testing.T) {
		got := complete(t, bash, bin, "ipvsadm -A -t 198.18.0.1 -s s", "ONLY_WORDS=1")
		if diff := cmp.Diff([]string{"sh", "sed"}, got); diff != "" {
			t.Errorf("COMPREPLY (-want +got):\n%s", diff)
		}
	})
}

// Without a director (ipvsadm fails) or with one that does not answer,
// completion offers nothing, prints nothing and does not hang.
func TestCompletionNoDirector(t *testing.T) {
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("no bash")
	}
	down := t.TempDir()
	writeScript(t, filepath.Join(down, "ipvsadm"), `echo "ipvsadm: cannot reach lvsd at /run/lvsd/lvsd.sock" >&2; exit 1
`)
	if got := complete(t, bash, down, "ipvsadm -d -t 198.18.0.100:80 -r "); got != nil {
		t.Errorf("lvsd down: %q, want nothing", got)
	}
	if _, err := exec.LookPath("timeout"); err != nil {
		t.Skip("no timeout(1): a hanging director would hang completion")
	}
	hung := t.TempDir()
	writeScript(t, filepath.Join(hung, "ipvsadm"), "exec sleep 30\n")
	start := time.Now()
	if got := complete(t, bash, hung, "ipvsadm -D -t "); got != nil {
		t.Errorf("lvsd hung: %q, want nothing", got)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("completion took %v with a hung director, want about 2 s", d)
	}
}

// stubGo is a go command for make that "builds" each binary as a shell
// script, so that the install test does not compile GoLVS (a minute on
// a cold cache) in -short mode.
const stubGo = `[ "$1" = build ] && [ "$2" = -o ] || { echo "stub go: unexpected $*" >&2; exit 2; }
printf '#!/bin/sh\necho stub %s\n' "$4" > "$3" && chmod 0755 "$3"
`

// runMake runs make -C packaging (this directory) with args.
func runMake(t *testing.T, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "make", append([]string{"-C", "."}, args...)...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// make install into a scratch root installs every file with its mode,
// the unit pointing at the installed lvsd, and keepalived's directory;
// make uninstall removes them and leaves the configuration.
func TestMakeInstall(t *testing.T) {
	if _, err := exec.LookPath("make"); err != nil {
		t.Skip("make is not installed")
	}
	work := t.TempDir()
	goCmd := filepath.Join(work, "go")
	if testing.Short() {
		writeScript(t, goCmd, stubGo)
	} else {
		p, err := exec.LookPath("go")
		if err != nil {
			t.Skip("no go command to build with")
		}
		goCmd = p
	}
	for _, tc := range []struct {
		name    string
		args    []string
		sbin    string
		unitDir string
	}{
		{"defaults", nil, "/usr/sbin", "/lib/systemd/system"},
		{"SBINDIR and UNITDIR", []string{"SBINDIR=/usr/local/sbin", "UNITDIR=/etc/systemd/system"}, "/usr/local/sbin", "/etc/systemd/system"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := filepath.Join(t.TempDir(), "root")
			args := append([]string{"install", "DESTDIR=" + root, "BIN=" + filepath.Join(work, "bin"), "GO=" + goCmd}, tc.args...)
			if out, err := runMake(t, args...); err != nil {
				t.Fatalf("make %s: %v\n%s", strings.Join(args, " "), err, out)
			}
			want := map[string]os.FileMode{
				tc.sbin + "/lvsd":                                0o755,
				tc.sbin + "/ipvsadm":                             0o755,
				tc.sbin + "/ipvsadm-save":                        0o755,
				tc.sbin + "/ipvsadm-restore":                     0o755,
				tc.unitDir + "/lvsd.service":                     0o644,
				"/usr/share/bash-completion/completions/ipvsadm": 0o644,
				"/usr/share/doc/golvs/migrating.md":              0o644,
				"/etc/keepalived":                                os.ModeDir | 0o755,
			}
			got := map[string]os.FileMode{}
			err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
				if err != nil {
					return err
				}
				rel := strings.TrimPrefix(p, root)
				fi, err := d.Info()
				if err != nil {
					return err
				}
				if !d.IsDir() || rel == "/etc/keepalived" {
					got[rel] = fi.Mode()
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Fatalf("installed files (-want +got):\n%s", diff)
			}
			// Installed files are the tree's, the unit with its paths.
			for src, dst := range map[string]string{
				"ipvsadm-save":            tc.sbin + "/ipvsadm-save",
				"ipvsadm-restore":         tc.sbin + "/ipvsadm-restore",
				"ipvsadm.bash-completion": "/usr/share/bash-completion/completions/ipvsadm",
				"../docs/migrating.md":    "/usr/share/doc/golvs/migrating.md",
			} {
				a, _ := os.ReadFile(src)
				b, _ := os.ReadFile(filepath.Join(root, dst))
				if !bytes.Equal(a, b) {
					t.Errorf("%s is not %s", dst, src)
				}
			}
			unit := unitDirectives(t, filepath.Join(root, tc.unitDir, "lvsd.service"))
			if want := tc.sbin + "/lvsd run -f /etc/keepalived/keepalived.conf"; !slices.Equal(unit["Service.ExecStart"], []string{want}) {
				t.Errorf("installed unit's ExecStart = %q, want %q", unit["Service.ExecStart"], want)
			}
			if !testing.Short() {
				// The real binaries run.
				out, err := exec.Command(filepath.Join(root, tc.sbin, "lvsd"), "--help").CombinedOutput()
				if err != nil || !strings.Contains(string(out), "lvsd COMMAND") {
					t.Errorf("installed lvsd --help: %v\n%s", err, out)
				}
				cmd := exec.Command(filepath.Join(root, tc.sbin, "ipvsadm-save"), "-n")
				cmd.Env = append(os.Environ(), "LVSD_SOCKET="+filepath.Join(work, "none.sock"))
				out, err = cmd.CombinedOutput()
				if err == nil || !strings.Contains(string(out), "cannot reach lvsd at "+filepath.Join(work, "none.sock")) {
					t.Errorf("installed ipvsadm-save without lvsd: %v\n%s", err, out)
				}
			}

			// A second install over the first works; an existing
			// /etc/keepalived and its files are left alone.
			conf := filepath.Join(root, "etc/keepalived/keepalived.conf")
			if err := os.WriteFile(conf, []byte("# mine\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			if out, err := runMake(t, args...); err != nil {
				t.Fatalf("second make install: %v\n%s", err, out)
			}
			if b, err := os.ReadFile(conf); err != nil || string(b) != "# mine\n" {
				t.Errorf("keepalived.conf after install: %q, %v", b, err)
			}

			uargs := append([]string{"uninstall", "DESTDIR=" + root}, tc.args...)
			if out, err := runMake(t, uargs...); err != nil {
				t.Fatalf("make uninstall: %v\n%s", err, out)
			}
			var left []string
			_ = filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
				if err == nil && !d.IsDir() {
					left = append(left, strings.TrimPrefix(p, root))
				}
				return nil
			})
			if diff := cmp.Diff([]string{"/etc/keepalived/keepalived.conf"}, left); diff != "" {
				t.Errorf("files after uninstall (-want +got):\n%s", diff)
			}
			if _, err := os.Stat(filepath.Join(root, "usr/share/doc/golvs")); !os.IsNotExist(err) {
				t.Errorf("the doc directory is still there after uninstall (%v)", err)
			}
		})
	}
}

// make install refuses to overwrite the files of Debian's ipvsadm
// package on the running system, unless told to.
func TestMakeConflicts(t *testing.T) {
	if _, err := exec.LookPath("make"); err != nil {
		t.Skip("make is not installed")
	}
	dir := t.TempDir()
	installed := filepath.Join(dir, "dpkg-query-installed")
	writeScript(t, installed, "printf 'install ok installed'\n")
	absent := filepath.Join(dir, "dpkg-query-absent")
	writeScript(t, absent, "echo 'dpkg-query: no packages found matching ipvsadm' >&2; exit 1\n")
	// Only the conflicts target runs: nothing is built or installed.
	// /usr/sbin is the package's directory only on a merged /usr.
	merged := false
	if p, err := filepath.EvalSymlinks("/sbin"); err == nil && p == "/usr/sbin" {
		merged = true
	}
	for _, tc := range []struct {
		args []string
		ok   bool
	}{
		{[]string{"SBINDIR=/sbin", "DPKG_QUERY=" + installed}, false},
		{[]string{"SBINDIR=/usr/sbin", "DPKG_QUERY=" + installed}, !merged},
		{[]string{"SBINDIR=/sbin", "DPKG_QUERY=" + installed, "FORCE=1"}, true},
		{[]string{"SBINDIR=/usr/local/sbin", "DPKG_QUERY=" + installed}, true},
		{[]string{"SBINDIR=/sbin", "DPKG_QUERY=" + installed, "DESTDIR=" + dir}, true},
		{[]string{"SBINDIR=/sbin", "DPKG_QUERY=" + absent}, true},
	} {
		out, err := runMake(t, append([]string{"-s", "conflicts"}, tc.args...)...)
		if (err == nil) != tc.ok {
			t.Errorf("make conflicts %s: %v, want ok=%v\n%s", strings.Join(tc.args, " "), err, tc.ok, out)
		}
		if !tc.ok && !strings.Contains(out, "apt-get remove ipvsadm") {
			t.Errorf("make conflicts %s: no advice:\n%s", strings.Join(tc.args, " "), out)
		}
	}
}
