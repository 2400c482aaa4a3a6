package realserver

import (
	"errors"
	"net/netip"
	"slices"
	"strings"
	"testing"
)

func TestParseVIPs(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    []string
		wantErr string
	}{
		{name: "one v4", in: "198.18.100.1", want: []string{"198.18.100.1"}},
		{name: "v4 and v6", in: "198.18.100.1,2001:db8::100", want: []string{"198.18.100.1", "2001:db8::100"}},
		{name: "spaces", in: " 198.18.100.1 , 2001:db8::100 ", want: []string{"198.18.100.1", "2001:db8::100"}},
		{name: "host prefixes", in: "198.18.100.1/32,2001:db8::100/128", want: []string{"198.18.100.1", "2001:db8::100"}},
		{name: "v6 normalised", in: "2001:DB8:0:0::0100", want: []string{"2001:db8::100"}},
		{name: "short prefix", in: "198.18.100.1/24", wantErr: "a VIP is one address: /32"},
		{name: "short v6 prefix", in: "2001:db8::100/64", wantErr: "a VIP is one address: /128"},
		{name: "bad prefix", in: "198.18.100.1/33", wantErr: "198.18.100.1/33"},
		{name: "not an address", in: "vip.example", wantErr: `"vip.example": not an IP address`},
		{name: "empty", in: "", wantErr: "empty entry"},
		{name: "empty entry", in: "198.18.100.1,,198.18.100.2", wantErr: "empty entry"},
		{name: "trailing comma", in: "198.18.100.1,", wantErr: "empty entry"},
		{name: "duplicate", in: "198.18.100.1,198.18.100.1", wantErr: "given twice"},
		{name: "duplicate v6 spellings", in: "2001:db8::100,2001:db8:0::100", wantErr: "given twice"},
		{name: "unspecified", in: "0.0.0.0", wantErr: "unspecified"},
		{name: "unspecified v6", in: "::", wantErr: "unspecified"},
		{name: "multicast", in: "224.0.0.18", wantErr: "multicast"},
		{name: "multicast v6", in: "ff02::12", wantErr: "multicast"},
		{name: "broadcast", in: "255.255.255.255", wantErr: "broadcast"},
		{name: "loopback", in: "127.0.0.2", wantErr: "loopback"},
		{name: "loopback v6", in: "::1", wantErr: "loopback"},
		{name: "link-local", in: "169.254.1.1", wantErr: "link-local"},
		{name: "link-local v6", in: "fe80::1", wantErr: "link-local"},
		{name: "zone", in: "fe80::1%eth0", wantErr: "zone"},
		{name: "v4-mapped", in: "::ffff:198.18.100.1", wantErr: "IPv4 form"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseVIPs(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParseVIPs(%q) = %v, %v; want error containing %q", tt.in, got, err, tt.wantErr)
				}
				if !errors.Is(err, ErrBadVIP) {
					t.Errorf("error %v does not wrap ErrBadVIP", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseVIPs(%q): %v", tt.in, err)
			}
			var s []string
			for _, a := range got {
				s = append(s, a.String())
			}
			if !slices.Equal(s, tt.want) {
				t.Errorf("ParseVIPs(%q) = %v, want %v", tt.in, s, tt.want)
			}
		})
	}
}

func TestConfigValidate(t *testing.T) {
	a := netip.MustParseAddr("198.18.100.1")
	tests := []struct {
		name    string
		cfg     Config
		wantErr string
	}{
		{name: "ok", cfg: Config{VIPs: []netip.Addr{a}}},
		{name: "no VIPs is valid (teardown, status)", cfg: Config{}},
		{name: "duplicate", cfg: Config{VIPs: []netip.Addr{a, a}}, wantErr: "given twice"},
		{name: "zero addr", cfg: Config{VIPs: []netip.Addr{{}}}, wantErr: "no address"},
		{name: "tun name too long", cfg: Config{TunName: "sixteen-chars-xx"}, wantErr: "interface name"},
		{name: "tun name slash", cfg: Config{TunName: "a/b"}, wantErr: "interface name"},
		{name: "tun name 15", cfg: Config{TunName: "fifteen-chars-x"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if tt.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Validate = %v, want error containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestConfigDefaults(t *testing.T) {
	var c Config
	if c.statePath() != "/run/lvsd/realserver.json" || c.tunName() != "lvstun0" {
		t.Errorf("defaults: state %q tun %q", c.statePath(), c.tunName())
	}
	c = Config{StateDir: "/tmp/x", TunName: "t0"}
	if c.statePath() != "/tmp/x/realserver.json" || c.tunName() != "t0" {
		t.Errorf("set: state %q tun %q", c.statePath(), c.tunName())
	}
}

func TestCheckIfName(t *testing.T) {
	for _, ok := range []string{"lvstun0", "a", "eth0.100", "fifteen-chars-x"} {
		if err := CheckIfName(ok); err != nil {
			t.Errorf("CheckIfName(%q): %v", ok, err)
		}
	}
	for _, bad := range []string{"", ".", "..", "a/b", "a:b", "a b", "sixteen-chars-xx"} {
		if CheckIfName(bad) == nil {
			t.Errorf("CheckIfName(%q) = nil", bad)
		}
	}
}

func TestEncaps(t *testing.T) {
	tests := []struct {
		vips string
		want Encaps
		str  string
	}{
		{"198.18.100.1", IPIP | IPIP6, "ipip,ipip6"},
		{"2001:db8::100", SIT | IP6IP6, "sit,ip6ip6"},
		{"198.18.100.1,2001:db8::100", allEncaps, "ipip,sit,ip6ip6,ipip6"},
	}
	for _, tt := range tests {
		vips, err := ParseVIPs(tt.vips)
		if err != nil {
			t.Fatal(err)
		}
		got := EncapsFor(vips)
		if got != tt.want || got.String() != tt.str {
			t.Errorf("EncapsFor(%s) = %v (%d), want %s", tt.vips, got, got, tt.str)
		}
	}
	if Encaps(0).String() != "none" {
		t.Errorf("empty set prints %q", Encaps(0).String())
	}
	for _, c := range []struct {
		e              Encaps
		outer6, inner6 bool
		proto          uint8
	}{
		{IPIP, false, false, 4}, {SIT, false, true, 41}, {IP6IP6, true, true, 41}, {IPIP6, true, false, 4},
	} {
		if c.e.outer6() != c.outer6 || c.e.inner6() != c.inner6 || c.e.proto() != c.proto {
			t.Errorf("%v: outer6 %v inner6 %v proto %d", c.e, c.e.outer6(), c.e.inner6(), c.e.proto())
		}
	}
}
