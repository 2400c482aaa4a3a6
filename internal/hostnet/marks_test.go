package hostnet

import (
	"net/netip"
	"os/exec"
	"strings"
	"testing"

	"golvs/internal/fwmark"
)

// TestMarkRulesFromRuleset reads mark rules written by iptables (the
// iptables-nft the command runs) and by nft, and checks that the
// classifier built from them marks packets as the kernel would.
func TestMarkRulesFromRuleset(t *testing.T) {
	requireNetNS(t)
	n := newNS(t)
	run := func(args ...string) {
		t.Helper()
		full := append([]string{"netns", "exec", n.name}, args...)
		if out, err := exec.Command("ip", full...).CombinedOutput(); err != nil {
			t.Fatalf("%s: %v: %s", strings.Join(args, " "), err, out)
		}
	}
	haveIptables := exec.Command("iptables", "--version").Run() == nil
	if haveIptables {
		// The command, for two VIPs.
		run("iptables", "-t", "mangle", "-A", "PREROUTING", "-d", "198.18.0.10", "-p", "tcp", "-m", "multiport", "--dports", "80,443", "-j", "MARK", "--set-mark", "1")
		run("iptables", "-t", "mangle", "-A", "PREROUTING", "-d", "198.18.0.11", "-p", "tcp", "-m", "multiport", "--dports", "80,443", "-j", "MARK", "--set-mark", "1")
		run("iptables", "-t", "mangle", "-A", "PREROUTING", "-s", "198.18.9.0/24", "-d", "198.18.0.12/32", "-p", "udp", "--dport", "53", "-j", "MARK", "--set-xmark", "0x2/0xffffffff")
		run("iptables", "-t", "mangle", "-A", "PREROUTING", "-d", "198.18.0.13", "-m", "conntrack", "--ctstate", "NEW", "-j", "MARK", "--set-mark", "7")
	} else {
		t.Log("iptables is not installed: only the nft rules are read")
	}
	if _, err := exec.LookPath("nft"); err != nil {
		t.Skip("needs nft (nftables)")
	}
	run("nft", "add table inet golvstest")
	run("nft", "add chain inet golvstest pre { type filter hook prerouting priority -150; }")
	run("nft", "add rule inet golvstest pre ip6 daddr 2001:db8::10 tcp dport { 80, 8000-8080 } meta mark set 3")
	run("nft", "add rule inet golvstest pre ip daddr 198.18.1.0/24 meta l4proto udp meta mark set 4")
	run("nft", "add rule inet golvstest pre iifname \"veth*\" ip daddr 198.18.2.1 tcp dport 22 counter meta mark set 5")

	rules, bad, err := n.host(t).MarkRules()
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rules {
		t.Logf("rule %s: %s", r.Origin, r.String())
	}
	for _, u := range bad {
		t.Logf("untranslated %s: %s", u.Origin, u.Reason)
	}
	if haveIptables {
		if len(bad) != 1 || !strings.Contains(bad[0].Reason, "conntrack") || !strings.Contains(bad[0].Origin, "table ip mangle chain PREROUTING") {
			t.Errorf("untranslated = %+v, want the conntrack rule", bad)
		}
	}
	c := fwmark.NewClassifier(rules)
	p := func(proto uint8, src, dst string, dport uint16, ifc string) *fwmark.Packet {
		return &fwmark.Packet{Proto: proto, Src: netip.MustParseAddr(src), Dst: netip.MustParseAddr(dst), SrcPort: 40000, DstPort: dport, HasPorts: true, InIface: ifc}
	}
	cases := []struct {
		p    *fwmark.Packet
		want uint32
	}{
		{p(6, "2001:db8::1", "2001:db8::10", 80, "eth0"), 3},
		{p(6, "2001:db8::1", "2001:db8::10", 8042, "eth0"), 3},
		{p(6, "2001:db8::1", "2001:db8::10", 8081, "eth0"), 0},
		{p(17, "198.18.3.1", "198.18.1.77", 9, "eth0"), 4},
		{p(6, "198.18.3.1", "198.18.1.77", 9, "eth0"), 0},
		{p(6, "198.18.3.1", "198.18.2.1", 22, "veth3"), 5},
		{p(6, "198.18.3.1", "198.18.2.1", 22, "eth0"), 0},
	}
	if haveIptables {
		cases = append(cases, []struct {
			p    *fwmark.Packet
			want uint32
		}{
			{p(6, "198.18.3.1", "198.18.0.10", 80, "eth0"), 1},
			{p(6, "198.18.3.1", "198.18.0.11", 443, "eth0"), 1},
			{p(6, "198.18.3.1", "198.18.0.11", 444, "eth0"), 0},
			{p(17, "198.18.9.5", "198.18.0.12", 53, "eth0"), 2},
			{p(17, "198.18.8.5", "198.18.0.12", 53, "eth0"), 0},
		}...)
	}
	for _, tc := range cases {
		if got := c.Classify(tc.p); got != tc.want {
			t.Errorf("Classify(%v %v -> %v:%d on %s) = %d, want %d", tc.p.Proto, tc.p.Src, tc.p.Dst, tc.p.DstPort, tc.p.InIface, got, tc.want)
		}
	}
}
