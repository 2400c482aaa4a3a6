package forward

import (
	"testing"

	"golvs/internal/flow"
)

func TestCheckMTU(t *testing.T) {
	v4 := func(n int, df bool) *flow.Parsed {
		return &flow.Parsed{Tuple: flow.Tuple{Family: flow.FamilyIPv4}, IPLen: n, DF: df}
	}
	v6 := func(n int) *flow.Parsed {
		return &flow.Parsed{Tuple: flow.Tuple{Family: flow.FamilyIPv6}, IPLen: n}
	}
	icmp := func(p *flow.Parsed) *flow.Parsed { p.ICMPError = true; return p }
	later := func(p *flow.Parsed) *flow.Parsed { p.IsFragment = true; return p }
	first := func(p *flow.Parsed) *flow.Parsed { p.IsFragment, p.IsFirstFragment = true, true; return p }

	ipip4 := &Tunnel{Src: lb4, Dst: rs4}
	ipip6 := &Tunnel{Src: lb6, Dst: rs6}
	gue4 := &Tunnel{Src: lb4, Dst: rs4, Type: TunnelGUE}
	gre4c := &Tunnel{Src: lb4, Dst: rs4, Type: TunnelGRE, Csum: true}
	gre6 := &Tunnel{Src: lb6, Dst: rs6, Type: TunnelGRE}
	nodisc := &Tunnel{Src: lb4, Dst: rs4, NoPMTUDisc: true}

	tests := []struct {
		name string
		p    *flow.Parsed
		mtu  int
		t    *Tunnel
		want MTUVerdict
		wmtu int
	}{
		{"IPv4 fits exactly", v4(1500, true), 1500, nil, MTUFits, 1500},
		{"IPv4 DF too big", v4(1501, true), 1500, nil, MTUFragNeeded, 1500},
		{"IPv4 no DF too big: fragment", v4(1501, false), 1500, nil, MTUFragment, 1500},
		{"IPv4 DF ICMP error relayed: fragment", icmp(v4(1600, true)), 1500, nil, MTUFragment, 1500},
		{"IPv4 into IPIP: 20 bytes less", v4(1481, true), 1500, ipip4, MTUFragNeeded, 1480},
		{"IPv4 into IPIP fits", v4(1480, true), 1500, ipip4, MTUFits, 1480},
		{"IPv4 into GUE: 32 bytes less", v4(1469, true), 1500, gue4, MTUFragNeeded, 1468},
		{"IPv4 into GRE with checksum: 28 less", v4(1473, true), 1500, gre4c, MTUFragNeeded, 1472},
		{"IPv4 into IPv6 GRE: 44 less", v4(1457, true), 1500, gre6, MTUFragNeeded, 1456},
		{"pmtu_disc=0: never frag needed", v4(9000, true), 1500, nodisc, MTUFragment, 1480},
		{"pmtu_disc=0 fits", v4(100, true), 1500, nodisc, MTUFits, 1480},
		{"IPv4 tunnel floor 68", v4(40, true), 87, ipip4, MTUTunnelTooSmall, 67},
		{"IPv4 tunnel at the floor", v4(40, true), 88, ipip4, MTUFits, 68},
		{"IPv6 tunnel floor 1280", v6(100), 1319, ipip6, MTUTunnelTooSmall, 1279},
		{"IPv6 tunnel at the floor", v6(100), 1320, ipip6, MTUFits, 1280},
		{"IPv6 too big", v6(1501), 1500, nil, MTUFragNeeded, 1500},
		{"IPv6 first fragment too big", first(v6(1501)), 1500, nil, MTUFragNeeded, 1500},
		{"IPv6 later fragment too big: silent", later(v6(1501)), 1500, nil, MTUDrop, 1500},
		{"IPv6 ICMP error too big: silent", icmp(v6(1501)), 1500, nil, MTUDrop, 1500},
		{"IPv6 into IPv4 IPIP", v6(1481), 1500, ipip4, MTUFragNeeded, 1480},
		{"not IP", &flow.Parsed{}, 1500, nil, MTUBadFrame, 0},
		{"unknown tunnel type", v4(100, true), 1500, &Tunnel{Src: lb4, Dst: rs4, Type: 9}, MTUBadFrame, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v, m := CheckMTU(tc.p, tc.mtu, tc.t)
			if v != tc.want || m != tc.wmtu {
				t.Fatalf("got %v %d, want %v %d", v, m, tc.want, tc.wmtu)
			}
		})
	}
}
