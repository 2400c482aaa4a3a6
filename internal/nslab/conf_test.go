package nslab

import (
	"flag"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"golvs/internal/keepalived"
	"golvs/internal/service"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// TestKeepalivedConfGolden keeps the files the lab writes in testdata,
// so that a change to them shows in review.
func TestKeepalivedConfGolden(t *testing.T) {
	for i := 1; i <= numDirectors; i++ {
		path := filepath.Join("testdata", fmt.Sprintf("director%d.conf", i))
		got := KeepalivedConf(i)
		if *update {
			if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		want, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if got != string(want) {
			t.Errorf("KeepalivedConf(%d) differs from %s (go test -update rewrites it):\n%s", i, path, got)
		}
	}
}

// TestKeepalivedConfParses reads each director's file with lvsd's own
// keepalived.conf reader and checks what lvsd will act on: the VRRP
// instance of each director, the sync daemon following it, and the four
// virtual servers with their methods, schedulers and checkers.
func TestKeepalivedConfParses(t *testing.T) {
	for i := 1; i <= numDirectors; i++ {
		cfg, diags, err := keepalived.ParseBytes(fmt.Sprintf("director%d.conf", i), []byte(KeepalivedConf(i)), keepalived.Options{})
		if err != nil {
			t.Fatalf("director%d: %v", i, err)
		}
		for _, d := range diags {
			t.Errorf("director%d: diagnostic: %v", i, d)
		}
		if len(cfg.VRRPInstances) != 1 {
			t.Fatalf("director%d: %d VRRP instances, want 1", i, len(cfg.VRRPInstances))
		}
		in := cfg.VRRPInstances[0]
		wantState, wantPrio := "MASTER", uint8(150)
		if i == 2 {
			wantState, wantPrio = "BACKUP", 100
		}
		if in.State != wantState || in.Priority != wantPrio || in.VRID != 51 || in.Interface != "eth0" || in.AdvertInt.Seconds() != 1 {
			t.Errorf("director%d: instance %s state %s priority %d vrid %d interface %s advert %v", i, in.Name, in.State, in.Priority, in.VRID, in.Interface, in.AdvertInt)
		}
		var vips []string
		for _, v := range in.VIPs {
			vips = append(vips, v.Prefix.String()+" "+v.Dev)
		}
		if want := []string{"198.18.0.101/32 eth0", "198.18.0.102/32 eth0", "198.18.0.103/32 eth0", "198.18.1.1/32 eth1"}; !slices.Equal(vips, want) {
			t.Errorf("director%d: VIPs %q, want %q", i, vips, want)
		}
		sd := cfg.Global.LVSSyncDaemon
		if sd == nil || sd.Interface != "eth1" || sd.Instance != in.Name {
			t.Errorf("director%d: lvs_sync_daemon %+v, want eth1 following %s", i, sd, in.Name)
		}
		if len(cfg.VirtualServers) != len(Services) {
			t.Fatalf("director%d: %d virtual servers, want %d", i, len(cfg.VirtualServers), len(Services))
		}
		for j, vs := range cfg.VirtualServers {
			svc := Services[j]
			wantKey := service.Key{Family: service.IPv4, Proto: svc.protoNum(), Addr: svc.VIP, Port: svc.Port}
			if len(vs.Keys) != 1 || vs.Keys[0] != wantKey || vs.Sched != svc.Sched {
				t.Errorf("director%d: virtual server %d: keys %v sched %s, want %v %s", i, j, vs.Keys, vs.Sched, wantKey, svc.Sched)
			}
			if len(vs.RealServers) != numRS {
				t.Fatalf("director%d: %v: %d real servers", i, wantKey, len(vs.RealServers))
			}
			for r, rs := range vs.RealServers {
				if rs.Addr != RSAddr(r+1) || rs.Port != svc.RSPort || len(rs.Checkers) != 1 {
					t.Errorf("director%d: %v: real server %v:%d with %d checkers", i, wantKey, rs.Addr, rs.Port, len(rs.Checkers))
					continue
				}
				want := map[string]string{"NAT": "HTTP_GET", "DR": "TCP_CHECK", "TUN": "TCP_CHECK", "UDP": "UDP_CHECK"}[svc.Name]
				if got := rs.Checkers[0].Spec.Kind.String(); got != want {
					t.Errorf("director%d: %s: checker %s, want %s", i, svc.Name, got, want)
				}
			}
		}
	}
}

// TestAddresses keeps every address of the lab in 198.18.0.0/15.
func TestAddresses(t *testing.T) {
	bench := netip.MustParsePrefix("198.18.0.0/15")
	addrs := []netip.Addr{ClientAddr, VIP1, VIP2, VIP3, GatewayVIP, RouterFront, RouterLAN}
	for i := 1; i <= numDirectors; i++ {
		addrs = append(addrs, DirectorFront(i), DirectorLAN(i))
	}
	for i := 1; i <= numRS; i++ {
		addrs = append(addrs, RSAddr(i))
	}
	seen := map[netip.Addr]bool{}
	for _, a := range addrs {
		if !bench.Contains(a) {
			t.Errorf("%v is outside %v", a, bench)
		}
		if seen[a] {
			t.Errorf("%v used twice", a)
		}
		seen[a] = true
	}
}
