package ipvsadm

import (
	"bytes"
	"fmt"
	"net/netip"
	"testing"

	"golvs/internal/service"
)

func TestKernelProtoName(t *testing.T) {
	for proto, want := range map[uint8]string{0: "IP", 1: "ICMP", 6: "TCP", 17: "UDP", 58: "ICMPv6", 132: "SCTP", 50: "IP_50"} {
		if got := kernelProtoName(proto); got != want {
			t.Errorf("kernelProtoName(%d) = %q, want %q", proto, got, want)
		}
	}
}

func TestFWMarkAddr(t *testing.T) {
	if got := FWMarkAddr(service.IPv4, 1); got != netip.MustParseAddr("0.0.0.1") {
		t.Errorf("IPv4: %v", got)
	}
	if got := FWMarkAddr(service.IPv6, 0x01020304); got != netip.MustParseAddr("102:304::") {
		t.Errorf("IPv6: %v", got)
	}
}

// TestConnSscanf: what ipvsadm's sscanf makes of fields with white space
// (only the first word of the persistence-engine data), and that PE data
// needs both words to switch to the wide format.
func TestConnSscanf(t *testing.T) {
	a := netip.MustParseAddr
	s := &State{Conns: []ConnEntry{
		{Proto: 17, Expires: 61, State: "UDP", CAddr: a("203.0.113.1"), CPort: 1, VAddr: a("192.0.2.1"), VPort: 5060,
			DAddr: a("198.51.100.1"), DPort: 5060, PEName: "sip", PEData: "a b"},
		{Proto: 17, Expires: 61, State: "UDP", CAddr: a("203.0.113.1"), CPort: 2, VAddr: a("192.0.2.1"), VPort: 5060,
			DAddr: a("198.51.100.1"), DPort: 5060, PEName: "sip"},
	}}
	var b bytes.Buffer
	if err := List(&b, s, ListOptions{Numeric: true, Connections: true, PersistentConn: true}, nil); err != nil {
		t.Fatal(err)
	}
	want := connHeaderPE +
		fmt.Sprintf("%-3s %-6s %-11s %-18s %-18s %-16s %-18s %s\n", "UDP", "01:01", "UDP", "203.0.113.1:1", "192.0.2.1:5060", "198.51.100.1:5060", "sip", "a") +
		fmt.Sprintf("%-3s %-6s %-11s %-18s %-18s %s\n", "UDP", "01:01", "UDP", "203.0.113.1:2", "192.0.2.1:5060", "198.51.100.1:5060")
	if b.String() != want {
		t.Errorf("listing:\n%s", lineDiff(want, b.String()))
	}
}
