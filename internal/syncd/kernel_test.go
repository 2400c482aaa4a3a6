package syncd

import (
	"encoding/hex"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golvs/internal/conntable"
	"golvs/internal/control"
	"golvs/internal/engine"
	"golvs/internal/ipvsadm"
	"golvs/internal/proto"
	"golvs/internal/service"
)

// TestKernelMaster gives a backup the datagrams a kernel master sent in
// the oracle VM (package ipvssync's testdata/kernel, made by
// s1-sync-capture.sh) and compares its connection table and real-server
// counts with what the kernel backup listed there (s1-sync-capture.out):
// the oracle backup had TCP and UDP services on 198.18.0.100:80 with NAT
// real servers 198.19.0.11:80 and 198.19.0.12:80, nothing on port 81
// nor IPv6 (those connections are kept unbound).
func TestKernelMaster(t *testing.T) {
	vip := netip.MustParseAddr("198.18.0.100")
	rss := []netip.Addr{netip.MustParseAddr("198.19.0.11"), netip.MustParseAddr("198.19.0.12")}
	ctl := control.New(control.Config{})
	eng, err := engine.New(engine.Config{Control: ctl, MaxConns: 1024})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []uint8{service.ProtoTCP, service.ProtoUDP} {
		k := service.Key{Family: service.IPv4, Proto: p, Addr: vip, Port: 80}
		if err := ctl.AddService(k, service.Config{Sched: "wlc"}); err != nil {
			t.Fatal(err)
		}
		for _, a := range rss {
			if err := ctl.AddDest(k, a, 80, service.DestConfig{Fwd: service.Masq, Weight: 1}); err != nil {
				t.Fatal(err)
			}
		}
	}
	m, err := New(Config{Engine: eng, Control: ctl})
	if err != nil {
		t.Fatal(err)
	}
	bk := &backup{m: m, entry: ipvsadm.DaemonEntry{State: ipvsadm.DaemonBackup}, maxLen: 1472}
	for _, f := range []string{"v1-tcp-udp.hex", "v1-template-ipv6.hex"} {
		raw, err := os.ReadFile(filepath.Join("..", "ipvssync", "testdata", "kernel", f))
		if err != nil {
			t.Fatal(err)
		}
		msg, err := hex.DecodeString(strings.Join(strings.Fields(string(raw)), ""))
		if err != nil {
			t.Fatal(err)
		}
		bk.handle(msg, netip.MustParseAddr("198.18.1.1"), 0)
	}
	if s := m.Stats(); s.MessagesAccepted != 2 || s.Rejects != ([NumReasons]uint64{}) {
		t.Errorf("stats: %+v", s)
	}
	var got []string
	eng.Conns().Walk(func(c conntable.Conn) bool {
		st := proto.StateName(c.Proto, proto.State(c.State), c.Flags&conntable.FlagTemplate != 0)
		dest := "unbound"
		if c.DestID != 0 {
			dest = "bound"
		}
		got = append(got, fmt.Sprintf("%d %s %v:%d %v:%d %v:%d %s flags=%#x %v",
			c.Proto, st, c.CAddr, c.CPort, c.VAddr, c.VPort, c.DAddr, c.DPort, dest, c.Flags, c.Timeout.Round(time.Second)))
		return true
	})
	slices.Sort(got)
	want := []string{
		// the oracle backup's `ipvsadm -L -n -c` (TIME_WAIT 01:55 etc.)
		"17 UDP 198.18.0.10:41000 198.18.0.100:80 198.19.0.12:80 bound flags=0x120 5m0s",
		"6 ASSURED 198.18.0.10:0 198.18.0.100:81 198.19.0.11:81 unbound flags=0x1120 5m0s",
		"6 TIME_WAIT 198.18.0.10:40000 198.18.0.100:80 198.19.0.12:80 bound flags=0x120 2m0s",
		"6 TIME_WAIT 198.18.0.10:40001 198.18.0.100:80 198.19.0.11:80 bound flags=0x120 2m0s",
		"6 TIME_WAIT 198.18.0.10:42000 198.18.0.100:81 198.19.0.11:81 unbound flags=0x120 2m0s",
		"6 TIME_WAIT 2001:db8:c::10:43000 2001:db8:c::100:80 2001:db8:5::11:80 unbound flags=0x120 2m0s",
	}
	if !slices.Equal(got, want) {
		t.Errorf("table:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// The oracle backup's `ipvsadm -L -n`: TCP rs1 0/1, rs2 0/1; UDP rs1 0/0, rs2 0/1.
	wantCounts := map[string][2]int32{
		"6 198.19.0.11": {0, 1}, "6 198.19.0.12": {0, 1}, "17 198.19.0.11": {0, 0}, "17 198.19.0.12": {0, 1},
	}
	for _, s := range ctl.Snapshot().Services() {
		for _, d := range s.Dests {
			k := fmt.Sprintf("%d %v", s.Key.Proto, d.Addr)
			if got := [2]int32{d.ActiveConns(), d.InactConns()}; got != wantCounts[k] {
				t.Errorf("%s: active/inactive %v, want %v", k, got, wantCounts[k])
			}
			delete(wantCounts, k)
		}
	}
	if len(wantCounts) != 0 {
		t.Errorf("real servers not found: %v", wantCounts)
	}
}
