package realserver

import (
	"net/netip"
	"strings"
	"testing"
)

func TestReport(t *testing.T) {
	v4 := netip.MustParseAddr("198.18.100.1")
	v6 := netip.MustParseAddr("2001:db8::100")
	good := func() *Report {
		return &Report{
			StatePath: "/run/lvsd/realserver.json",
			State:     true,
			VIPs: []VIPStatus{
				{Addr: v4, Dev: "lo", Prefix: netip.PrefixFrom(v4, 32), Route: true, OK: true},
				{Addr: v6, Dev: "lo", Prefix: netip.PrefixFrom(v6, 128), OK: true},
			},
			Sysctls: []SysctlStatus{
				{Name: "net.ipv4.conf.all.arp_ignore", Value: "1", Want: "1, 2 or 8", OK: true},
			},
			TunName: "lvstun0",
		}
	}
	tests := []struct {
		name   string
		edit   func(r *Report)
		conf   bool
		output []string
	}{
		{name: "dr configured", conf: true, output: []string{
			"VIP 198.18.100.1: 198.18.100.1/32 on lo: ok\n",
			"VIP 198.18.100.1: host route: present\n",
			"VIP 2001:db8::100: 2001:db8::100/128 on lo: ok\n",
			"net.ipv4.conf.all.arp_ignore = 1 (want 1, 2 or 8): ok\n",
			"state file /run/lvsd/realserver.json: present\n",
			"realserver: configured\n",
		}},
		{name: "vip absent", edit: func(r *Report) { r.VIPs[1] = VIPStatus{Addr: v6} }, output: []string{
			"VIP 2001:db8::100: absent: NOT OK\n", "realserver: not configured\n",
		}},
		{name: "sysctl wrong", edit: func(r *Report) { r.Sysctls[0].Value, r.Sysctls[0].OK = "0", false }, output: []string{
			"net.ipv4.conf.all.arp_ignore = 0 (want 1, 2 or 8): NOT OK\n",
		}},
		{name: "no vips", edit: func(r *Report) { r.VIPs = nil }},
		{name: "tun without decap", edit: func(r *Report) { r.Tun, r.Need = true, IPIP|IPIP6|SIT|IP6IP6 }, output: []string{
			"tunnel: user-space decapsulation of ipip,sit,ip6ip6,ipip6: not running (no lvstun0): NOT OK\n",
		}},
		{name: "tun with decap", conf: true, edit: func(r *Report) { r.Tun, r.Need, r.TunUp = true, IPIP|IPIP6, true }, output: []string{
			"tunnel: user-space decapsulation of ipip,ipip6: running on lvstun0: ok\n",
		}},
		{name: "tun kernel", conf: true, edit: func(r *Report) { r.Tun, r.Need, r.Kernel = true, IPIP, IPIP }, output: []string{
			"tunnel: the kernel decapsulates ipip\n",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := good()
			if tt.edit != nil {
				tt.edit(r)
			}
			if r.Configured() != tt.conf {
				t.Errorf("Configured = %v, want %v", r.Configured(), tt.conf)
			}
			var b strings.Builder
			if err := r.Write(&b); err != nil {
				t.Fatal(err)
			}
			for _, want := range tt.output {
				if !strings.Contains(b.String(), want) {
					t.Errorf("output lacks %q:\n%s", want, b.String())
				}
			}
		})
	}
}
