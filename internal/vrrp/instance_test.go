package vrrp

import (
	"errors"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

var vip4 = []netip.Addr{netip.MustParseAddr("198.18.1.1")}

func TestNormalize(t *testing.T) {
	base := Config{Name: "vi", VRID: 51, LocalAddr: src4, VIPs: vip4}
	tests := []struct {
		name string
		edit func(*Config)
		want func(*Config) // changes from the defaults
		warn string        // substring of the only warning, "" for none
		err  bool
	}{
		{name: "defaults", want: func(c *Config) {}},
		{name: "no VRID", edit: func(c *Config) { c.VRID = 0 }, err: true},
		{name: "no address", edit: func(c *Config) { c.LocalAddr = netip.Addr{} }, err: true},
		{name: "version 4", edit: func(c *Config) { c.Version = 4 }, err: true},
		{name: "IPv6 is version 3", edit: func(c *Config) {
			c.LocalAddr, c.VIPs = src6, []netip.Addr{netip.MustParseAddr("2001:db8::1")}
		}, want: func(c *Config) {
			c.Version, c.LocalAddr, c.VIPs = 3, src6, []netip.Addr{netip.MustParseAddr("2001:db8::1")}
		}},
		{name: "priority from MASTER", edit: func(c *Config) { c.InitialState = Master },
			want: func(c *Config) { c.Priority, c.InitialState = 255, Master }},
		{name: "MASTER from priority 255", edit: func(c *Config) { c.Priority = 255 },
			want: func(c *Config) { c.Priority, c.InitialState = 255, Master }},
		{name: "v2 interval rounded", edit: func(c *Config) { c.AdvertInt = 2400 * time.Millisecond },
			want: func(c *Config) { c.AdvertInt = 2 * time.Second }, warn: "must be an integer"},
		{name: "v2 interval below 1 s", edit: func(c *Config) { c.AdvertInt = 300 * time.Millisecond },
			want: func(c *Config) { c.AdvertInt = time.Second }, warn: "must be an integer"},
		{name: "v2 interval too long", edit: func(c *Config) { c.AdvertInt = 300 * time.Second },
			want: func(c *Config) { c.AdvertInt = 255 * time.Second }, warn: "out of range"},
		{name: "v3 interval rounded", edit: func(c *Config) { c.Version, c.AdvertInt = 3, 1234*time.Millisecond },
			want: func(c *Config) { c.Version, c.AdvertInt = 3, 1230*time.Millisecond }, warn: "units of 10ms"},
		{name: "down timer adverts", edit: func(c *Config) { c.DownTimerAdverts = 101 },
			want: func(c *Config) {}, warn: "down_timer_adverts"},
		{name: "password truncated", edit: func(c *Config) { c.Auth, c.AuthPass = AuthPass, "0123456789" },
			want: func(c *Config) { c.Auth, c.AuthPass = AuthPass, "01234567" }},
		{name: "password missing", edit: func(c *Config) { c.Auth = AuthPass },
			want: func(c *Config) {}, warn: "no password"},
		{name: "AH", edit: func(c *Config) { c.Auth, c.AuthPass = AuthAH, "x" }, err: true},
		{name: "v3 auth ignored", edit: func(c *Config) { c.Version, c.Auth, c.AuthPass = 3, AuthPass, "x" },
			want: func(c *Config) { c.Version = 3 }, warn: "does not support authentication"},
		{name: "preempt delay out of range", edit: func(c *Config) { c.PreemptDelay = 1001 * time.Second },
			want: func(c *Config) {}, warn: "Preempt_delay not valid"},
		{name: "GARP none kept", edit: func(c *Config) { c.GARP.MasterDelay, c.GARP.LowerPrioRepeat = -1, -1 },
			want: func(c *Config) {
				c.GARP.MasterDelay, c.GARP.LowerPrioDelay, c.GARP.LowerPrioRepeat = -1, -1, -1
			}},
		{name: "too many IPv6 VIPs", edit: func(c *Config) {
			c.LocalAddr, c.VIPs = src6, nil
			for i := range 100 {
				c.VIPs = append(c.VIPs, netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 15: byte(i)}))
			}
		}, want: func(c *Config) {
			c.Version = 3
			c.LocalAddr, c.VIPs = src6, nil
			for i := range 89 { // (1500 - 14 - 40 - 8) / 16
				c.VIPs = append(c.VIPs, netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 15: byte(i)}))
			}
		}, warn: "exceeds maximum"},
	}
	defaults := base
	defaults.Version, defaults.Priority, defaults.InitialState = 2, 100, Backup
	defaults.AdvertInt, defaults.DownTimerAdverts = time.Second, 3
	defaults.GARP = GARPConfig{MasterDelay: 5 * time.Second, MasterRepeat: 5, RefreshRepeat: 1, LowerPrioDelay: 5 * time.Second, LowerPrioRepeat: 5}
	opt := cmp.Comparer(func(a, b netip.Addr) bool { return a == b })
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := base
			c.VIPs = slices.Clone(base.VIPs)
			if tc.edit != nil {
				tc.edit(&c)
			}
			got, warn, err := c.Normalize()
			if tc.err {
				if !errors.Is(err, ErrConfig) {
					t.Fatalf("err = %v, want ErrConfig", err)
				}
				if _, err := NewInstance(c); !errors.Is(err, ErrConfig) {
					t.Errorf("NewInstance err = %v, want ErrConfig", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			want := defaults
			want.VIPs = slices.Clone(defaults.VIPs)
			tc.want(&want)
			if d := cmp.Diff(want, got, opt); d != "" {
				t.Errorf("Normalize (-want +got):\n%s", d)
			}
			switch {
			case tc.warn == "" && len(warn) != 0:
				t.Errorf("warnings %q, want none", warn)
			case tc.warn != "" && (len(warn) != 1 || !strings.Contains(warn[0], tc.warn)):
				t.Errorf("warnings %q, want one with %q", warn, tc.warn)
			}
			// Idempotent: a normalised Config normalises to itself, silently.
			again, warn2, err := got.Normalize()
			if err != nil || len(warn2) != 0 || cmp.Diff(got, again, opt) != "" {
				t.Errorf("second Normalize: %v %q %s", err, warn2, cmp.Diff(got, again, opt))
			}
		})
	}
}

func TestEffectivePriority(t *testing.T) {
	tests := []struct {
		name     string
		base     uint8
		trackers []Tracker
		prio     uint8
		fault    bool
	}{
		{"none", 100, nil, 100, false},
		{"positive up", 100, []Tracker{{Weight: 20, Up: true}}, 120, false},
		{"positive down", 100, []Tracker{{Weight: 20}}, 100, false},
		{"negative down", 100, []Tracker{{Weight: -30}}, 70, false},
		{"negative up", 100, []Tracker{{Weight: -30, Up: true}}, 100, false},
		{"positive reversed up", 100, []Tracker{{Weight: 20, Up: true, Reverse: true}}, 80, false},
		{"negative reversed down", 100, []Tracker{{Weight: -30, Reverse: true}}, 130, false},
		{"clamped high", 200, []Tracker{{Weight: 100, Up: true}}, 254, false},
		{"clamped low", 10, []Tracker{{Weight: -100}}, 1, false},
		{"unweighted down", 100, []Tracker{{Weight: 10, Up: true}, {}}, 110, true},
		{"unweighted up", 100, []Tracker{{Up: true}}, 100, false},
		{"unweighted reversed up", 100, []Tracker{{Up: true, Reverse: true}}, 100, true},
		{"owner never changes", 255, []Tracker{{Weight: -50, Up: true}}, 255, false},
		{"owner weights cleared", 255, []Tracker{{Weight: -50}}, 255, true},
	}
	for _, tc := range tests {
		prio, fault := EffectivePriority(tc.base, tc.trackers)
		if prio != tc.prio || fault != tc.fault {
			t.Errorf("%s: EffectivePriority = %d, %v; want %d, %v", tc.name, prio, fault, tc.prio, tc.fault)
		}
	}
}

// TestSkew checks Skew_Time and Master_Down_Interval against the RFC
// formulas, truncated to microseconds as keepalived does.
func TestSkew(t *testing.T) {
	for _, version := range []uint8{2, 3} {
		for _, interval := range []time.Duration{10 * time.Millisecond, 100 * time.Millisecond, time.Second, 3 * time.Second} {
			if version == 2 && interval < time.Second {
				continue
			}
			for _, prio := range []uint8{1, 50, 100, 150, 200, 254, 255} {
				in, err := NewInstance(Config{Name: "s", VRID: 1, Version: version, Priority: prio, AdvertInt: interval, LocalAddr: src4, VIPs: vip4})
				if err != nil {
					t.Fatal(err)
				}
				// RFC 5798 §6.1: ((256 - Priority) * Master_Adver_Interval) / 256;
				// RFC 3768 §6.1: (256 - Priority) / 256 seconds.
				var want time.Duration
				if version == 3 {
					want = time.Duration(256-int(prio)) * interval / 256
				} else {
					want = time.Duration(256-int(prio)) * time.Second / 256
				}
				want = want.Truncate(time.Microsecond)
				if got := in.SkewTime(); got != want {
					t.Errorf("v%d %v prio %d: skew %v, want %v", version, interval, prio, got, want)
				}
				if got := in.MasterDownInterval(); got != 3*interval+want {
					t.Errorf("v%d %v prio %d: down %v, want %v", version, interval, prio, got, 3*interval+want)
				}
			}
		}
	}
	// The brief's numbers: 1 s, priority 100: takeover within 3.7 s;
	// VRRPv3 100 ms: within 0.4 s.
	a, _ := NewInstance(Config{Name: "a", VRID: 1, Priority: 100, LocalAddr: src4, VIPs: vip4})
	b, _ := NewInstance(Config{Name: "b", VRID: 1, Priority: 100, Version: 3, AdvertInt: 100 * time.Millisecond, LocalAddr: src4, VIPs: vip4})
	if d := a.MasterDownInterval(); d != 3609375*time.Microsecond || d > 3700*time.Millisecond {
		t.Errorf("v2 1 s prio 100: %v", d)
	}
	if d := b.MasterDownInterval(); d != 360937*time.Microsecond || d > 400*time.Millisecond {
		t.Errorf("v3 100 ms prio 100: %v", d)
	}
}

// TestBuildAccepted: what one instance builds, another of the same
// configuration accepts, through the codec.
func TestBuildAccepted(t *testing.T) {
	for _, cfg := range []Config{
		{VRID: 5, LocalAddr: src4, VIPs: vip4, Auth: AuthPass, AuthPass: "pw"},
		{VRID: 5, Version: 3, AdvertInt: 250 * time.Millisecond, LocalAddr: src4, VIPs: vip4, V3ChecksumAsV2: true},
		{VRID: 5, LocalAddr: src6, VIPs: []netip.Addr{netip.MustParseAddr("fe80::5"), netip.MustParseAddr("2001:db8::5")}},
	} {
		cfg.Name = "tx"
		tx, err := NewInstance(cfg)
		if err != nil {
			t.Fatal(err)
		}
		cfg.Name, cfg.LocalAddr = "rx", cfg.LocalAddr.Next()
		rx, err := NewInstance(cfg)
		if err != nil {
			t.Fatal(err)
		}
		rx.Start(epoch)
		dst := MulticastIPv4
		if cfg.LocalAddr.Is6() {
			dst = MulticastIPv6
		}
		src := tx.Config().LocalAddr
		b := tx.Codec().Append(nil, tx.Build(200), src, dst)
		a, err := rx.Codec().Decode(b, FamilyOf(src), src, dst)
		if err != nil {
			t.Fatalf("%+v: Decode: %v", cfg, err)
		}
		if _, err := rx.Advert(epoch.Add(time.Second), src, a); err != nil {
			t.Errorf("%+v: Advert: %v", cfg, err)
		}
		if want := epoch.Add(time.Second + rx.MasterDownInterval()); rx.NextDeadline() != want {
			t.Errorf("%+v: deadline %v, want %v", cfg, rx.NextDeadline(), want)
		}
	}
}

// TestGroupOfThree: all members go MASTER together when the last one wants
// to (keepalived may leave one behind for a down interval; see Group).
func TestGroupOfThree(t *testing.T) {
	var members []*Instance
	for i := range 3 {
		in, err := NewInstance(Config{Name: string(rune('a' + i)), VRID: uint8(10 + i), LocalAddr: src4, VIPs: vip4})
		if err != nil {
			t.Fatal(err)
		}
		members = append(members, in)
	}
	g, err := NewGroup("g", members...)
	if err != nil {
		t.Fatal(err)
	}
	g.Start(epoch)
	if g.State() != Backup {
		t.Fatalf("group %v", g.State())
	}
	d := g.NextDeadline()
	acts := g.Tick(d)
	for _, in := range members {
		if in.State() != Master {
			t.Errorf("%s: %v after the common timeout", in.Name(), in.State())
		}
	}
	if g.State() != Master || acts[len(acts)-1] != (Action{Kind: RunNotify, Group: "g", State: Master}) {
		t.Errorf("group %v, last action %v", g.State(), acts[len(acts)-1])
	}
	g.Shutdown(d)
	if g.State() != Stop || members[1].State() != Stop {
		t.Errorf("after Shutdown: group %v, member %v", g.State(), members[1].State())
	}
	if _, err := NewGroup("again", members[0]); err == nil {
		t.Error("an instance joined two groups")
	}
}

// TestRestart: an instance starts again after Shutdown, with its
// configured priority restored for an owner demoted by a conflict, and
// Start on a running instance does nothing.
func TestRestart(t *testing.T) {
	in, err := NewInstance(Config{Name: "o", VRID: 1, Priority: 255, LocalAddr: src4, VIPs: vip4})
	if err != nil {
		t.Fatal(err)
	}
	if acts := in.Start(epoch); in.State() != Master || len(acts) == 0 {
		t.Fatalf("owner start: %v %v", in.State(), acts)
	}
	if acts := in.Start(epoch); acts != nil {
		t.Errorf("second Start: %v", acts)
	}
	other := in.Build(255)
	if _, err := in.Advert(epoch, src4.Next(), other); err != nil || in.Priority() != 254 || in.State() != Backup {
		t.Fatalf("owner conflict: %v, priority %d, %v", err, in.Priority(), in.State())
	}
	in.Shutdown(epoch.Add(time.Second))
	in.Start(epoch.Add(2 * time.Second))
	if in.Priority() != 255 || in.State() != Master {
		t.Errorf("restart: priority %d, %v", in.Priority(), in.State())
	}
	if err := in.SetLocalAddr(src6); err != ErrFamily {
		t.Errorf("SetLocalAddr of another family: %v", err)
	}
	if err := in.SetLocalAddr(src4.Next()); err != nil || in.Config().LocalAddr != src4.Next() {
		t.Errorf("SetLocalAddr: %v", err)
	}
}

func TestActionString(t *testing.T) {
	for _, tc := range []struct {
		a    Action
		want string
	}{
		{Action{Kind: SendAdvert, Instance: "a", Priority: 0}, "a: send prio=0"},
		{Action{Kind: BecomeBackup, Instance: "a", Release: true}, "a: become BACKUP release"},
		{Action{Kind: RunNotify, Group: "g", State: Fault}, "group g: notify FAULT"},
		{Action{Kind: SendGARP, Instance: "a", Count: 5}, "a: garp n=5"},
	} {
		if got := tc.a.String(); got != tc.want {
			t.Errorf("%#v: %q, want %q", tc.a, got, tc.want)
		}
	}
}
