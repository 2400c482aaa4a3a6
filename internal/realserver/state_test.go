package realserver

import (
	"bytes"
	"errors"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func sampleState() *state {
	v4 := netip.MustParseAddr("198.18.100.1")
	v6 := netip.MustParseAddr("2001:db8::100")
	return &state{
		Version: stateVersion,
		Tun:     true,
		VIPs:    []vipRecord{{Addr: v4, Dev: "lo"}, {Addr: v6, Dev: "lo"}},
		Actions: []action{
			{Kind: actLinkAdd, Dev: "tunl0"},
			{Kind: actLinkUp, Dev: "tunl0"},
			{Kind: actSysctl, Path: "net/ipv4/conf/all/rp_filter", Old: "1", New: "2"},
			{Kind: actSysctl, Path: "net/ipv4/conf/all/arp_ignore", Old: "0", New: "1"},
			{Kind: actAddr, VIP: v4, Dev: "lo", Prefix: netip.PrefixFrom(v4, 32)},
			{Kind: actRoute, VIP: v4, Dev: "lo", Prefix: netip.PrefixFrom(v4, 32)},
			{Kind: actAddr, VIP: v6, Dev: "lo", Prefix: netip.PrefixFrom(v6, 128)},
		},
	}
}

func TestStateRoundTrip(t *testing.T) {
	s := sampleState()
	b, err := s.marshal()
	if err != nil {
		t.Fatal(err)
	}
	got, err := parseState(b)
	if err != nil {
		t.Fatalf("parse: %v\n%s", err, b)
	}
	if !reflect.DeepEqual(got, s) {
		t.Errorf("round trip:\n got %+v\nwant %+v", got, s)
	}
	b2, err := got.marshal()
	if err != nil || !bytes.Equal(b, b2) {
		t.Errorf("second marshal differs:\n%s\n%s", b, b2)
	}
	// Host-wide actions carry no VIP field at all.
	if !strings.Contains(string(b), `"kind": "link-add",`+"\n\t\t\t"+`"dev": "tunl0"`) {
		t.Errorf("host-wide action not as expected:\n%s", b)
	}
}

func TestStateFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "sub", StateFile)
	if s, err := loadState(path); s != nil || err != nil {
		t.Fatalf("missing file: %v, %v; want nil, nil", s, err)
	}
	s := sampleState()
	if err := saveState(path, s); err != nil {
		t.Fatal(err)
	}
	got, err := loadState(path)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, s) {
		t.Errorf("load after save:\n got %+v\nwant %+v", got, s)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o644 {
		t.Errorf("state file mode %v, %v", fi.Mode(), err)
	}
	// Overwrite: no temporary file left behind.
	s.VIPs = s.VIPs[:1]
	if err := saveState(path, s); err != nil {
		t.Fatal(err)
	}
	ents, _ := os.ReadDir(filepath.Dir(path))
	if len(ents) != 1 {
		t.Errorf("directory holds %d files, want only the state file: %v", len(ents), ents)
	}
	if err := removeState(path); err != nil {
		t.Fatal(err)
	}
	if err := removeState(path); err != nil {
		t.Errorf("removing a missing state file: %v", err)
	}
	if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("state file still there: %v", err)
	}
}

func TestParseStateRejects(t *testing.T) {
	for name, in := range map[string]string{
		"not json":       `{`,
		"version 2":      `{"version": 2, "vips": [], "actions": []}`,
		"no version":     `{"vips": [], "actions": []}`,
		"unknown field":  `{"version": 1, "vips": [], "actions": [], "extra": 1}`,
		"unknown action": `{"version": 1, "vips": [], "actions": [{"kind": "rm -rf"}]}`,
		"bad address":    `{"version": 1, "vips": [{"addr": "nope", "dev": "lo"}], "actions": []}`,
	} {
		if _, err := parseState([]byte(in)); err == nil {
			t.Errorf("%s: parsed %s", name, in)
		}
	}
}

// FuzzParseState: whatever parses marshals to something that parses to
// the same state.
func FuzzParseState(f *testing.F) {
	b, _ := sampleState().marshal()
	f.Add(b)
	f.Add([]byte(`{"version":1,"vips":[],"actions":[]}`))
	f.Fuzz(func(t *testing.T, in []byte) {
		s, err := parseState(in)
		if err != nil {
			return
		}
		out, err := s.marshal()
		if err != nil {
			t.Fatal(err)
		}
		s2, err := parseState(out)
		if err != nil {
			t.Fatalf("re-parse: %v\n%s", err, out)
		}
		if !reflect.DeepEqual(s, s2) {
			t.Fatalf("unstable:\n%+v\n%+v", s, s2)
		}
	})
}

func TestSysctlRules(t *testing.T) {
	tests := []struct {
		r        rule
		ok, bad  []string
		describe string
	}{
		{arpIgnoreRule, []string{"1", "2", "8"}, []string{"0", "3", "4", "7", ""}, "1, 2 or 8"},
		{arpAnnounceRule, []string{"2"}, []string{"0", "1"}, "2"},
		{rpFilterRule, []string{"0", "2"}, []string{"1"}, "0 or 2"},
	}
	for _, tt := range tests {
		for _, v := range tt.ok {
			if !tt.r.ok(v) {
				t.Errorf("rule %+v rejects %q", tt.r, v)
			}
		}
		for _, v := range tt.bad {
			if tt.r.ok(v) {
				t.Errorf("rule %+v accepts %q", tt.r, v)
			}
		}
		if !tt.r.ok(tt.r.want) {
			t.Errorf("rule %+v does not accept what it writes", tt.r)
		}
		if tt.r.describe() != tt.describe {
			t.Errorf("describe = %q, want %q", tt.r.describe(), tt.describe)
		}
	}
}

func TestSysctlFiles(t *testing.T) {
	root := t.TempDir()
	s := sysctls{root: root}
	path := ipv4Conf("all", "arp_ignore")
	if err := os.MkdirAll(filepath.Dir(s.file(path)), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(s.file(path), []byte("0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if v, err := s.get(path); v != "0" || err != nil {
		t.Fatalf("get = %q, %v", v, err)
	}
	if err := s.set(path, "1"); err != nil {
		t.Fatal(err)
	}
	if v, _ := s.get(path); v != "1" {
		t.Errorf("after set: %q", v)
	}
	if !s.exists(path) || s.exists(ipv4Conf("gone0", "rp_filter")) {
		t.Error("exists wrong")
	}
	if sysctlName(path) != "net.ipv4.conf.all.arp_ignore" {
		t.Errorf("name %q", sysctlName(path))
	}
	if (sysctls{}).file(path) != "/proc/sys/net/ipv4/conf/all/arp_ignore" {
		t.Errorf("default root: %q", (sysctls{}).file(path))
	}
}
