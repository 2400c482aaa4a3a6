package datapath_test

import (
	"fmt"
	"net/netip"
	"testing"

	"golvs/internal/addrset"
	"golvs/internal/datapath"
	"golvs/internal/fwmark"
	"golvs/internal/service"
)

// TestFirewallMarkService: a firewall-mark service gets the traffic its
// mark rules classify (the iptables command over ports 80 and
// 8080 of the VIP, in both families), and nothing else.
func TestFirewallMarkService(t *testing.T) {
	l := newLab(t, 7, service.Masq)
	rules, err := fwmark.Parse("rules", []byte(fmt.Sprintf(`
iptables -t mangle -A PREROUTING -d %v -p tcp -m multiport --dports 80,8080 -j MARK --set-mark 1
ip6tables -t mangle -A PREROUTING -d %v -p tcp -m multiport --dports 80,8080 -j MARK --set-mark 1
`, vip4, vip6)))
	must(t, err)
	l.d.Pipeline.SetMarks(fwmark.NewClassifier(rules))
	for _, fam := range []service.Family{service.IPv4, service.IPv6} {
		k := service.Key{Family: fam, FWMark: 1}
		l.addService(k, service.Config{Sched: "rr"})
		// Port 0: the real server gets the packet's own port.
		l.addDests(k, service.Masq, 0, 1, 1, 1)
	}
	got := map[string]int{}
	for i := range 12 {
		vip, port := vip4, uint16(80)
		if i%2 == 1 {
			port = 8080
		}
		if i >= 6 {
			vip = vip6
		}
		name, err := l.get(vip, port)
		if err != nil {
			t.Fatalf("request %d to %v port %d: %v", i, vip, port, err)
		}
		got[name]++
	}
	wantCounts(t, got, map[string]int{"rs1": 4, "rs2": 4, "rs3": 4})
	// Port 7 is not marked: no service, and the director's own stack
	// (which has nothing on it) refuses the connection.
	if name, err := l.get(vip4, 7); err == nil {
		t.Errorf("an unmarked port reached a real server: %q", name)
	}
	// Without rules, nothing is marked.
	l.d.Pipeline.SetMarks(nil)
	if name, err := l.get(vip4, 80); err == nil {
		t.Errorf("without mark rules, port 80 reached %q", name)
	}
}

// TestDenyList: a client in the deny list gets nothing from the services
// (its packets are dropped and counted), and gets through again once it
// is removed.
func TestDenyList(t *testing.T) {
	l := newLab(t, 8, service.Masq)
	k := tcpKey(vip4, 80)
	l.addService(k, service.Config{Sched: "rr"})
	l.addDests(k, service.Masq, 80, 1, 1, 1)
	if _, err := l.get(vip4, 80); err != nil {
		t.Fatal(err)
	}
	deny, err := addrset.New([]addrset.Range{addrset.FromPrefix(netip.PrefixFrom(client4, 32))})
	must(t, err)
	l.d.Pipeline.SetDeny(deny)
	if name, err := l.get(vip4, 80); err == nil {
		t.Fatalf("a denied client reached %q", name)
	}
	if n := l.w.Stats().Drops()[datapath.ReasonDenied]; n == 0 {
		t.Error("no drop counted as denied")
	}
	l.d.Pipeline.SetDeny(nil)
	if _, err := l.get(vip4, 80); err != nil {
		t.Fatalf("after the deny list was emptied: %v", err)
	}
}
