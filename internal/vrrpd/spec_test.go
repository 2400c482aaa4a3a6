package vrrpd

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"golvs/internal/keepalived"
	"golvs/internal/vrrp"
)

// TestBuildSpecs: a configuration with most of what vrrpd reads becomes
// the units it runs: keepalived's defaults and the globals resolved, the
// sync group's members together with the group's trackers unweighted.
func TestBuildSpecs(t *testing.T) {
	conf := `global_defs {
    vrrp_garp_master_repeat 3
    vrrp_garp_interval 0.01
    script_user nobody
}
vrrp_script chk {
    script "/bin/chk arg"
    interval 2
    weight -30
}
vrrp_sync_group G {
    group {
        A
        B
    }
    track_interface {
        eth3 weight 10
    }
    notify_master /bin/gmaster
}
vrrp_instance A {
    interface eth0
    virtual_router_id 51
    priority 150
    advert_int 1
    authentication {
        auth_type PASS
        auth_pass secret
    }
    virtual_ipaddress {
        198.18.0.100/24 brd + dev eth1 label eth1:vip scope link
        198.18.0.101
    }
    virtual_ipaddress_excluded {
        2001:db8::100/64 preferred_lft forever
    }
    track_script {
        chk
    }
    notify "/bin/notify x"
    garp_master_delay 0
}
vrrp_instance B {
    interface eth1
    virtual_router_id 52
    version 3
    advert_int 0.25
    nopreempt
    virtual_ipaddress {
        198.18.1.100/32
    }
}
vrrp_instance U {
    interface eth0
    virtual_router_id 53
    state MASTER
    priority 255
    unicast_src_ip 2001:db8::1
    unicast_peer {
        2001:db8::2
    }
    virtual_ipaddress {
        2001:db8::53
    }
    track_interface {
        eth2 weight -20 reverse
    }
}
`
	cfg, diags, err := keepalived.ParseBytes("k.conf", []byte(conf), keepalived.Options{Hostname: "h"})
	if err != nil {
		t.Fatalf("%v %v", err, diags)
	}
	units, warns, errs := buildSpecs(cfg)
	if len(errs) != 0 {
		t.Fatalf("errors: %v", errs)
	}
	user := func(s *keepalived.Script) *keepalived.Script {
		c := *s
		c.User = "nobody"
		return &c
	}
	vipA := vipSpec{Prefix: netip.MustParsePrefix("198.18.0.100/24"), Dev: "eth1", Label: "eth1:vip", Scope: 253,
		Broadcast: netip.MustParseAddr("198.18.0.255"), PreferredLft: -1}
	// vrrp_garp_master_repeat 3, the default garp_master_delay 5 s.
	garp := vrrp.GARPConfig{MasterDelay: 5 * time.Second, MasterRepeat: 3, RefreshRepeat: 1, LowerPrioDelay: 5 * time.Second, LowerPrioRepeat: 3}
	want := []*unitSpec{
		{
			Key: "group G", Group: "G",
			Notify:       keepalived.Notify{Master: user(cfg.VRRPSyncGroups[0].Notify.Master)},
			Scripts:      []keepalived.VRRPScript{cfg.VRRPScripts[0]},
			GARPInterval: 10 * time.Millisecond,
			Members: []*instSpec{
				{
					Name: "A", Group: "G", Iface: "eth0", Family: vrrp.IPv4, UnicastTTL: 255,
					McastGroup: vrrp.MulticastIPv4,
					Proto: vrrp.Config{Name: "A", VRID: 51, Priority: 150, AdvertInt: time.Second, Version: 2,
						InitialState: vrrp.Backup, Auth: vrrp.AuthPass, AuthPass: "secret", DownTimerAdverts: 3,
						VIPs: []netip.Addr{netip.MustParseAddr("198.18.0.100"), netip.MustParseAddr("198.18.0.101")},
						GARP: vrrp.GARPConfig{MasterDelay: -1, MasterRepeat: 3, RefreshRepeat: 1, LowerPrioDelay: -1, LowerPrioRepeat: 3}},
					VIPs: []vipSpec{
						vipA,
						{Prefix: netip.MustParsePrefix("198.18.0.101/32"), Dev: "eth0", PreferredLft: -1},
						{Prefix: netip.MustParsePrefix("2001:db8::100/64"), Dev: "eth0", PreferredLft: -1, Excluded: true},
					},
					// The group's weighted track_interface and the
					// script's weight count as unweighted (the parser
					// zeroes the members' weights).
					Trackers: []trackSpec{{Kind: trackLink, Name: "eth0"}, {Kind: trackScript, Name: "chk"}, {Kind: trackLink, Name: "eth3"}},
					Notify:   keepalived.Notify{Any: user(cfg.VRRPInstances[0].Notify.Any)},
				},
				{
					Name: "B", Group: "G", Iface: "eth1", Family: vrrp.IPv4, UnicastTTL: 255,
					McastGroup: vrrp.MulticastIPv4,
					Proto: vrrp.Config{Name: "B", VRID: 52, Priority: 100, AdvertInt: 250 * time.Millisecond, Version: 3,
						InitialState: vrrp.Backup, NoPreempt: true, DownTimerAdverts: 3,
						VIPs: []netip.Addr{netip.MustParseAddr("198.18.1.100")}, GARP: garp},
					VIPs:     []vipSpec{{Prefix: netip.MustParsePrefix("198.18.1.100/32"), Dev: "eth1", PreferredLft: -1}},
					Trackers: []trackSpec{{Kind: trackLink, Name: "eth1"}, {Kind: trackLink, Name: "eth3"}},
				},
			},
		},
		{
			Key: "instance U", GARPInterval: 10 * time.Millisecond,
			Members: []*instSpec{{
				Name: "U", Iface: "eth0", Family: vrrp.IPv6, UnicastTTL: 255, SrcIP: netip.MustParseAddr("2001:db8::1"),
				Proto: vrrp.Config{Name: "U", VRID: 53, Priority: 255, AdvertInt: time.Second, Version: 3,
					InitialState: vrrp.Master, DownTimerAdverts: 3,
					UnicastPeers: []netip.Addr{netip.MustParseAddr("2001:db8::2")},
					VIPs:         []netip.Addr{netip.MustParseAddr("2001:db8::53")}, GARP: garp},
				VIPs:     []vipSpec{{Prefix: netip.MustParsePrefix("2001:db8::53/128"), Dev: "eth0"}},
				Trackers: []trackSpec{{Kind: trackLink, Name: "eth0"}, {Kind: trackLink, Name: "eth2", Weight: -20, Reverse: true}},
			}},
		},
	}
	want[0].Scripts[0].Script.User = "nobody"
	if diff := cmp.Diff(want, units, cmpopts.IgnoreFields(unitSpec{}, "FP"), cmp.Comparer(func(a, b netip.Addr) bool { return a == b }),
		cmp.Comparer(func(a, b netip.Prefix) bool { return a == b })); diff != "" {
		t.Errorf("units (-want +got):\n%s", diff)
	}
	for _, w := range []string{"vrrp_instance A: sync group track_interface eth3: weight ignored", "vrrp_instance B: sync group track_interface eth3: weight ignored"} {
		if !strings.Contains(strings.Join(warns, "\n"), w) {
			t.Errorf("no warning %q in:\n%s", w, strings.Join(warns, "\n"))
		}
	}
}

// TestBuildSpecsErrors: instances GoLVS cannot run are left out with an
// error, a sync group with them.
func TestBuildSpecsErrors(t *testing.T) {
	conf := `vrrp_sync_group G {
    group {
        AH
        OK
    }
}
vrrp_instance AH {
    interface eth0
    virtual_router_id 51
    authentication {
        auth_type AH
        auth_pass x
    }
    virtual_ipaddress {
        198.18.0.100
    }
}
vrrp_instance OK {
    interface eth0
    virtual_router_id 52
    virtual_ipaddress {
        198.18.0.101
    }
}
vrrp_instance ALONE {
    interface eth0
    virtual_router_id 53
    virtual_ipaddress {
        198.18.0.102
    }
}
`
	cfg, diags, err := keepalived.ParseBytes("k.conf", []byte(conf), keepalived.Options{Hostname: "h"})
	if err != nil {
		t.Fatalf("%v %v", err, diags)
	}
	units, _, errs := buildSpecs(cfg)
	if len(units) != 1 || units[0].Key != "instance ALONE" {
		t.Errorf("units %v, want ALONE alone", units)
	}
	var msgs []string
	for _, e := range errs {
		msgs = append(msgs, e.Error())
	}
	got := strings.Join(msgs, "\n")
	for _, w := range []string{"vrrp_instance AH: auth_type AH", "vrrp_sync_group G: not started"} {
		if !strings.Contains(got, w) {
			t.Errorf("errors %q lack %q", got, w)
		}
	}
}

// TestFingerprint: moving a block in the file keeps a unit's fingerprint;
// changing it does not.
func TestFingerprint(t *testing.T) {
	fp := func(conf string) string {
		cfg, diags, err := keepalived.ParseBytes("k.conf", []byte(conf), keepalived.Options{Hostname: "h"})
		if err != nil {
			t.Fatalf("%v %v", err, diags)
		}
		units, _, _ := buildSpecs(cfg)
		return units[0].FP
	}
	a := fp(instance("VI_1", 51, 100, ""))
	if b := fp("\n\n\n" + instance("VI_1", 51, 100, "")); a != b {
		t.Errorf("moved block: fingerprint changed")
	}
	if b := fp(instance("VI_1", 51, 101, "")); a == b {
		t.Errorf("priority changed: same fingerprint")
	}
}

// TestBuildVIP covers the address options.
func TestBuildVIP(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   keepalived.IPAddress
		want vipSpec
		err  string
	}{
		{"brd -", keepalived.IPAddress{Prefix: netip.MustParsePrefix("198.18.0.9/24"), Brd: "-"},
			vipSpec{Prefix: netip.MustParsePrefix("198.18.0.9/24"), Dev: "eth0", Broadcast: netip.MustParseAddr("198.18.0.0"), PreferredLft: -1}, ""},
		{"brd address", keepalived.IPAddress{Prefix: netip.MustParsePrefix("198.18.0.9/24"), Brd: "198.18.0.127"},
			vipSpec{Prefix: netip.MustParsePrefix("198.18.0.9/24"), Dev: "eth0", Broadcast: netip.MustParseAddr("198.18.0.127"), PreferredLft: -1}, ""},
		{"scope number, flags", keepalived.IPAddress{Prefix: netip.MustParsePrefix("2001:db8::9/64"), Scope: "200", Flags: []string{"-nodad", "noprefixroute", "preferred_lft", "30"}},
			vipSpec{Prefix: netip.MustParsePrefix("2001:db8::9/64"), Dev: "eth0", Scope: 200, Flags: ifaNoDAD | ifaNoPrefixRoute, PreferredLft: 30}, ""},
		{"no interface", keepalived.IPAddress{Prefix: netip.MustParsePrefix("198.18.0.9/32")}, vipSpec{}, "no interface"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			iface := "eth0"
			if tc.err == "no interface" {
				iface = ""
			}
			got, _, err := buildVIP(tc.in, iface)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Errorf("error %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got, cmp.Comparer(func(a, b netip.Addr) bool { return a == b }),
				cmp.Comparer(func(a, b netip.Prefix) bool { return a == b })); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}
