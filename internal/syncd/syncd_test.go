package syncd

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"golvs/internal/conntable"
	"golvs/internal/control"
	"golvs/internal/engine"
	"golvs/internal/ipvsadm"
	"golvs/internal/ipvssync"
	"golvs/internal/proto"
	"golvs/internal/service"
)

// Addresses (RFC 5737 and 198.18.0.0/15); nothing is sent to them: the
// daemons talk over 127.0.0.1.
var (
	vip     = netip.MustParseAddr("198.18.0.100")
	rs1     = netip.MustParseAddr("198.19.0.11")
	rs2     = netip.MustParseAddr("198.19.0.12")
	loAddr  = netip.MustParseAddr("127.0.0.1")
	tcpKey  = service.Key{Family: service.IPv4, Proto: service.ProtoTCP, Addr: vip, Port: 80}
	udpKey  = service.Key{Family: service.IPv4, Proto: service.ProtoUDP, Addr: vip, Port: 53}
	persKey = service.Key{Family: service.IPv4, Proto: service.ProtoTCP, Addr: vip, Port: 443}
	testKey = ipvssync.Key{ID: 7, Secret: []byte("0123456789abcdef0123456789abcdef")}
)

// director is one GoLVS director without a data plane: its control, its
// engine, a data-path worker and its sync Manager.
type director struct {
	ctl *control.Control
	eng *engine.Engine
	w   *engine.Worker
	m   *Manager
}

// newDirector makes a director with a TCP service on port 80 and a UDP
// one on 53 (NAT to rs1 and rs2, round robin), and a persistent TCP
// service on 443 (NAT to rs1, timeout 300 s). The Manager sends to and
// listens on 127.0.0.1 (unicast peers).
func newDirector(t testing.TB, tweak func(*Config)) *director {
	t.Helper()
	ctl := control.New(control.Config{})
	eng, err := engine.New(engine.Config{Control: ctl, MaxConns: 4096, TableShards: 2})
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []service.Key{tcpKey, udpKey} {
		if err := ctl.AddService(k, service.Config{Sched: "rr"}); err != nil {
			t.Fatal(err)
		}
		for _, a := range []netip.Addr{rs1, rs2} {
			if err := ctl.AddDest(k, a, k.Port, service.DestConfig{Fwd: service.Masq, Weight: 1}); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := ctl.AddService(persKey, service.Config{Sched: "rr", Flags: service.FlagPersistent, Timeout: 300, Netmask: 0xffffffff}); err != nil {
		t.Fatal(err)
	}
	if err := ctl.AddDest(persKey, rs1, 443, service.DestConfig{Fwd: service.Masq, Weight: 1}); err != nil {
		t.Fatal(err)
	}
	cfg := Config{Engine: eng, Control: ctl, Peers: []netip.AddrPort{netip.AddrPortFrom(loAddr, 0)}, ListenAddr: loAddr}
	if tweak != nil {
		tweak(&cfg)
	}
	m, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return &director{ctl: ctl, eng: eng, w: eng.NewWorker(0), m: m}
}

// freePort returns a UDP port of 127.0.0.1 nobody listens on (at the
// time of the call).
func freePort(t testing.TB) uint16 {
	t.Helper()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return uint16(c.LocalAddr().(*net.UDPAddr).Port)
}

func (d *director) start(t testing.TB, state string, port uint16, syncID uint8) {
	t.Helper()
	if err := d.m.Start(ipvsadm.DaemonConfig{State: state, MCastInterface: "lo", MCastPort: port, SyncID: syncID}); err != nil {
		t.Fatal(err)
	}
}

// packet runs one client packet through the director's engine.
func (d *director) packet(t testing.TB, p engine.Packet) engine.Decision {
	t.Helper()
	d.w.Begin()
	dec := d.w.In(&p)
	if dec.Verdict != engine.Forward {
		t.Fatalf("%v:%d: %v", p.Src, p.SrcPort, dec.Verdict)
	}
	return dec
}

// tcpFlow opens a TCP connection from client:cport to VIP:vport and sends
// n more packets from the client, the reply of the server after the SYN.
// It returns the real server.
func (d *director) tcpFlow(t testing.TB, client netip.Addr, cport, vport uint16, n int) netip.Addr {
	t.Helper()
	p := engine.Packet{Proto: service.ProtoTCP, Src: client, SrcPort: cport, Dst: vip, DstPort: vport, Len: 60, TCPFlags: proto.FlagSYN}
	dec := d.packet(t, p)
	d.w.Begin()
	reply := engine.Packet{Proto: service.ProtoTCP, Src: dec.DAddr, SrcPort: dec.DPort, Dst: client, DstPort: cport, Len: 60,
		TCPFlags: proto.FlagSYN | proto.FlagACK}
	d.w.Out(&reply)
	p.TCPFlags = proto.FlagACK
	for range n {
		d.packet(t, p)
	}
	return dec.DAddr
}

// conns lists a director's connection table, one line each, sorted:
// protocol, state, client, virtual and real addresses, flags, whether
// bound, timeout.
func (d *director) conns() []string {
	var out []string
	d.eng.Conns().Walk(func(c conntable.Conn) bool {
		tpl := c.Flags&conntable.FlagTemplate != 0
		bound := "unbound"
		if c.DestID != 0 {
			bound = "bound"
		}
		out = append(out, fmt.Sprintf("%s %s %v:%d %v:%d %v:%d flags=%#x %s %v",
			protoName(c.Proto), proto.StateName(c.Proto, proto.State(c.State), tpl), c.CAddr, c.CPort, c.VAddr, c.VPort, c.DAddr, c.DPort,
			c.Flags, bound, c.Timeout.Round(time.Second)))
		return true
	})
	slices.Sort(out)
	return out
}

func protoName(p uint8) string {
	switch p {
	case service.ProtoTCP:
		return "TCP"
	case service.ProtoUDP:
		return "UDP"
	}
	return fmt.Sprint(p)
}

// counts returns the active, inactive and persistent counts of the real
// server addr:port of service k.
func (d *director) counts(k service.Key, addr netip.Addr) [3]int32 {
	for _, s := range d.ctl.Snapshot().Services() {
		if s.Key != k {
			continue
		}
		for _, dst := range s.Dests {
			if dst.Addr == addr {
				return [3]int32{dst.ActiveConns(), dst.InactConns(), dst.PersistConns()}
			}
		}
	}
	return [3]int32{-1, -1, -1}
}

// waitFor polls cond for up to timeout.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not after %v", what, timeout)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// checkNoLeak fails if goroutines started during the test outlive it.
func checkNoLeak(t *testing.T) {
	before := runtime.NumGoroutine()
	t.Cleanup(func() {
		deadline := time.Now().Add(2 * time.Second)
		for runtime.NumGoroutine() > before {
			if time.Now().After(deadline) {
				buf := make([]byte, 1<<16)
				t.Errorf("goroutines: %d before, %d after:\n%s", before, runtime.NumGoroutine(), buf[:runtime.Stack(buf, true)])
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	})
}

// TestMasterToBackup: connections made on a master appear on a backup
// with their states, timeouts and templates, bound to the backup's real
// servers with the right counts; the master sends a partial message
// FlushTime after its first entry.
func TestMasterToBackup(t *testing.T) {
	checkNoLeak(t)
	port := freePort(t)
	m, b := newDirector(t, nil), newDirector(t, nil)
	b.start(t, ipvsadm.DaemonBackup, port, 9)
	m.start(t, ipvsadm.DaemonMaster, port, 9)

	cli := netip.MustParseAddr("198.18.5.1")
	rsTCP := m.tcpFlow(t, cli, 40000, 80, 2) // ESTABLISHED, synced on the 3rd packet
	m.tcpFlow(t, cli, 40001, 80, 0)          // SYN_RECV: not synced (1 packet)
	udp := engine.Packet{Proto: service.ProtoUDP, Src: cli, SrcPort: 5353, Dst: vip, DstPort: 53, Len: 60}
	rsUDP := m.packet(t, udp).DAddr
	m.packet(t, udp)
	m.packet(t, udp)
	m.tcpFlow(t, cli, 40002, 443, 2) // persistent: the template on every packet
	start := time.Now()
	want := []string{
		"TCP ASSURED 198.18.5.1:0 198.18.0.100:443 198.19.0.11:443 flags=0x1120 bound 5m0s",
		"TCP ESTABLISHED 198.18.5.1:40000 198.18.0.100:80 " + rsTCP.String() + ":80 flags=0x20 bound 15m0s",
		"TCP ESTABLISHED 198.18.5.1:40002 198.18.0.100:443 198.19.0.11:443 flags=0x20 bound 15m0s",
		"UDP UDP 198.18.5.1:5353 198.18.0.100:53 " + rsUDP.String() + ":53 flags=0x120 bound 5m0s",
	}
	waitFor(t, 4*time.Second, "the backup's table", func() bool { return len(b.conns()) == len(want) })
	took := time.Since(start)
	if got := b.conns(); !slices.Equal(got, want) {
		t.Errorf("backup's table:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// One partial message, sent FlushTime after its first entry.
	if took < ipvssync.FlushTime-100*time.Millisecond || took > ipvssync.FlushTime+time.Second {
		t.Errorf("the partial message came after %v, want about %v", took, ipvssync.FlushTime)
	}
	// Active and inactive counts: a UDP connection is inactive for
	// good (it has no state that flips it).
	if got := b.counts(tcpKey, rsTCP); got != [3]int32{1, 0, 0} {
		t.Errorf("backup's TCP %v active/inactive/persistent %v, want [1 0 0]", rsTCP, got)
	}
	if got := b.counts(persKey, rs1); got != [3]int32{1, 0, 1} {
		t.Errorf("backup's persistent rs1 active/inactive/persistent %v, want [1 0 1]", got)
	}
	if got := b.counts(udpKey, rsUDP); got != [3]int32{0, 1, 0} {
		t.Errorf("backup's UDP %v %v, want [0 1 0]", rsUDP, got)
	}
	ms, bs := m.m.Stats(), b.m.Stats()
	// Entries: 40000, UDP, and the template 3 times and its connection.
	if ms.MessagesSent != 1 || ms.EntriesSent != 6 || ms.SendErrors != 0 || ms.RingDrops != 0 || ms.LastSent.IsZero() {
		t.Errorf("master's stats: %+v", ms)
	}
	if bs.MessagesReceived != 1 || bs.MessagesAccepted != 1 || bs.EntriesReceived != 6 || bs.Inserted != 4 || bs.Updated != 2 ||
		bs.LastReceived.IsZero() || bs.Rejects != ([NumReasons]uint64{}) {
		t.Errorf("backup's stats: %+v", bs)
	}

	// A state change is synced at once, and moves the backup's counts.
	p := engine.Packet{Proto: service.ProtoTCP, Src: cli, SrcPort: 40000, Dst: vip, DstPort: 80, Len: 60, TCPFlags: proto.FlagFIN | proto.FlagACK}
	m.packet(t, p)
	if err := m.m.Stop(ipvsadm.DaemonMaster); err != nil { // sends what it has
		t.Fatal(err)
	}
	waitFor(t, 2*time.Second, "the FIN's state on the backup", func() bool {
		return slices.Contains(b.conns(), "TCP CLOSE_WAIT 198.18.5.1:40000 198.18.0.100:80 "+rsTCP.String()+":80 flags=0x120 bound 1m0s")
	})
	if got := b.counts(tcpKey, rsTCP); got != [3]int32{0, 1, 0} {
		t.Errorf("backup's TCP %v after the FIN %v, want [0 1 0]", rsTCP, got)
	}
	// The backup's connections go as its own do: removing them gives
	// the counts back.
	b.eng.Conns().Flush()
	for _, k := range []service.Key{tcpKey, udpKey, persKey} {
		for _, a := range []netip.Addr{rs1, rs2} {
			if got := b.counts(k, a); got != [3]int32{} && got != [3]int32{-1, -1, -1} {
				t.Errorf("%v %v after the flush: %v", k, a, got)
			}
		}
	}
}

// TestBackupBindsLater: an entry for which the backup has no real server
// is kept unbound, and bound (counted) when a later message finds one.
func TestBackupBindsLater(t *testing.T) {
	port := freePort(t)
	m, b := newDirector(t, nil), newDirector(t, nil)
	b.start(t, ipvsadm.DaemonBackup, port, 0)
	m.start(t, ipvsadm.DaemonMaster, port, 0)
	cli := netip.MustParseAddr("198.18.5.2")
	rs := m.tcpFlow(t, cli, 40000, 80, 2)
	if err := b.ctl.DeleteDest(tcpKey, rs, 80); err != nil {
		t.Fatal(err)
	}
	m.m.Stop(ipvsadm.DaemonMaster)
	waitFor(t, 2*time.Second, "an unbound connection", func() bool { return len(b.conns()) == 1 })
	if got := b.conns()[0]; got != "TCP ESTABLISHED 198.18.5.2:40000 198.18.0.100:80 "+rs.String()+":80 flags=0x20 unbound 15m0s" {
		t.Errorf("backup: %s", got)
	}
	if s := b.m.Stats(); s.UnboundNoDest != 1 {
		t.Errorf("UnboundNoDest %d, want 1", s.UnboundNoDest)
	}
	if err := b.ctl.AddDest(tcpKey, rs, 80, service.DestConfig{Fwd: service.Masq, Weight: 1}); err != nil {
		t.Fatal(err)
	}
	m.start(t, ipvsadm.DaemonMaster, port, 0)
	for range 50 { // packet 53
		m.packet(t, engine.Packet{Proto: service.ProtoTCP, Src: cli, SrcPort: 40000, Dst: vip, DstPort: 80, Len: 60, TCPFlags: proto.FlagACK})
	}
	m.m.Stop(ipvsadm.DaemonMaster)
	waitFor(t, 2*time.Second, "the binding", func() bool { return b.counts(tcpKey, rs) == [3]int32{1, 0, 0} })
	if got := b.conns()[0]; !strings.Contains(got, " bound ") {
		t.Errorf("backup: %s", got)
	}
}

// sendRaw sends datagrams to the backup's port from 127.0.0.1.
func sendRaw(t testing.TB, port uint16, msgs ...[]byte) {
	t.Helper()
	c, err := net.DialUDP("udp4", nil, &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: int(port)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, m := range msgs {
		if _, err := c.Write(m); err != nil {
			t.Fatal(err)
		}
	}
}

// message builds a version-1 message of sync ID id with one established
// TCP connection from cport.
func message(t testing.TB, id uint8, cport uint16, reserve int) []byte {
	t.Helper()
	b, err := ipvssync.NewBuilder(ipvssync.BuilderConfig{Version: ipvssync.Version1, SyncID: id, Reserve: reserve})
	if err != nil {
		t.Fatal(err)
	}
	e := ipvssync.Entry{Proto: service.ProtoTCP, State: uint16(proto.TCPEstablished), CAddr: netip.MustParseAddr("198.18.6.1"),
		VAddr: vip, DAddr: rs2, CPort: cport, VPort: 80, DPort: 80, Timeout: 900}
	if _, err := b.Add(&e, 0); err != nil {
		t.Fatal(err)
	}
	return b.Flush()
}

func sign(t testing.TB, k ipvssync.Key, msg []byte) []byte {
	t.Helper()
	s, err := ipvssync.NewSigner(1, k, time.Now().UnixNano())
	if err != nil {
		t.Fatal(err)
	}
	out, err := s.Sign(msg, time.Now().UnixNano())
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// waitReceived waits until the backup has received n datagrams.
func waitReceived(t testing.TB, d *director, n uint64) Stats {
	t.Helper()
	waitFor(t, 2*time.Second, fmt.Sprintf("%d datagrams", n), func() bool { return d.m.Stats().MessagesReceived >= n })
	return d.m.Stats()
}

// TestAuthenticated: with a key, the backup takes what a master with the
// key sends, and refuses unsigned, forged, replayed and stale messages;
// each is counted and changes nothing.
func TestAuthenticated(t *testing.T) {
	checkNoLeak(t)
	port := freePort(t)
	withKey := func(c *Config) { c.Keys = []ipvssync.Key{testKey} }
	m, b := newDirector(t, withKey), newDirector(t, withKey)
	b.start(t, ipvsadm.DaemonBackup, port, 0)
	m.start(t, ipvsadm.DaemonMaster, port, 0)
	m.tcpFlow(t, netip.MustParseAddr("198.18.5.3"), 40000, 80, 2)
	m.m.Stop(ipvsadm.DaemonMaster)
	waitFor(t, 2*time.Second, "the signed connection", func() bool { return len(b.conns()) == 1 })

	good := sign(t, testKey, message(t, 0, 1000, ipvssync.TrailerLen))
	forgedKey := ipvssync.Key{ID: testKey.ID, Secret: []byte("another secret of 32 bytes......")}
	forged := sign(t, forgedKey, message(t, 0, 1001, ipvssync.TrailerLen))
	otherKey := sign(t, ipvssync.Key{ID: 8, Secret: testKey.Secret}, message(t, 0, 1002, ipvssync.TrailerLen))
	tampered := slices.Clone(good)
	tampered[20] ^= 1 // the entry's state
	stale, err := ipvssync.NewSigner(2, testKey, 1)
	if err != nil {
		t.Fatal(err)
	}
	old, _ := stale.Sign(message(t, 0, 1003, ipvssync.TrailerLen), time.Now().Add(-time.Hour).UnixNano())
	before := b.conns()
	sendRaw(t, port, message(t, 0, 1004, 0), forged, otherKey, tampered, old, good, good)
	s := waitReceived(t, b, 8)
	want := map[Reason]uint64{RejectUnsigned: 1, RejectForged: 2, RejectUnknownKey: 1, RejectStale: 1, RejectReplay: 1}
	for r := range NumReasons {
		if s.Rejects[r] != want[r] {
			t.Errorf("rejects %s: %d, want %d", r, s.Rejects[r], want[r])
		}
	}
	after := b.conns()
	if len(after) != len(before)+1 || !slices.Contains(after, "TCP ESTABLISHED 198.18.6.1:1000 198.18.0.100:80 198.19.0.12:80 flags=0x20 bound 15m0s") {
		t.Errorf("backup's table after the bad messages and one good one:\n%s", strings.Join(after, "\n"))
	}

	// A backup without a key counts a signed message and drops it.
	nokey := newDirector(t, nil)
	p2 := freePort(t)
	nokey.start(t, ipvsadm.DaemonBackup, p2, 0)
	sendRaw(t, p2, good)
	if s := waitReceived(t, nokey, 1); s.Rejects[RejectSigned] != 1 || len(nokey.conns()) != 0 {
		t.Errorf("a keyless backup took a signed message: %+v %v", s, nokey.conns())
	}
}

// TestRejects: malformed messages, messages of another sync ID or from
// an address that is not a peer are dropped, counted, and change nothing;
// the valid entries of a message whose end is bad are applied.
func TestRejects(t *testing.T) {
	port := freePort(t)
	b := newDirector(t, nil)
	b.start(t, ipvsadm.DaemonBackup, port, 5)
	good := message(t, 5, 2000, 0)
	badSize := append(slices.Clone(good), 0)
	short := []byte{0, 5, 0}
	version := slices.Clone(good)
	version[5] = 3
	// Two entries, the second truncated: the first is applied.
	two := append(slices.Clone(good[:8+36]), good[8:8+20]...)
	two[3] = byte(len(two))
	two[4] = 2
	badState := slices.Clone(good)
	badState[8+9] = 99 // state 99
	sendRaw(t, port, message(t, 6, 2001, 0), badSize, short, version, two, badState, make([]byte, 70000)[:1500])
	s := waitReceived(t, b, 7)
	want := map[Reason]uint64{RejectSyncID: 1, RejectSize: 2, RejectShort: 1, RejectVersion: 1, RejectTruncated: 1, RejectState: 1}
	for r := range NumReasons {
		if s.Rejects[r] != want[r] {
			t.Errorf("rejects %s: %d, want %d", r, s.Rejects[r], want[r])
		}
	}
	if got := b.conns(); len(got) != 1 || !strings.Contains(got[0], "198.18.6.1:2000 ") {
		t.Errorf("backup's table:\n%s", strings.Join(got, "\n"))
	}
	if s.MessagesAccepted != 2 || s.EntriesReceived != 1 {
		t.Errorf("accepted %d messages, %d entries; want 2, 1", s.MessagesAccepted, s.EntriesReceived)
	}
}

// TestPeerFilter: with unicast peers, a backup takes messages from the
// peers' addresses only.
func TestPeerFilter(t *testing.T) {
	port := freePort(t)
	b := newDirector(t, func(c *Config) { c.Peers = []netip.AddrPort{netip.MustParseAddrPort("198.18.9.9:0")} })
	b.start(t, ipvsadm.DaemonBackup, port, 0)
	sendRaw(t, port, message(t, 0, 3000, 0))
	if s := waitReceived(t, b, 1); s.Rejects[RejectPeer] != 1 || len(b.conns()) != 0 {
		t.Errorf("a message from a stranger: %+v %v", s.Rejects, b.conns())
	}
}

// TestManager: the kernel's errors of --start-daemon and --stop-daemon,
// the listing with its defaults, and keepalived's lvs_sync_daemon with
// and without a VRRP instance.
func TestManager(t *testing.T) {
	checkNoLeak(t)
	port := freePort(t)
	d := newDirector(t, nil)
	d.start(t, ipvsadm.DaemonBackup, port, 3)
	err := d.m.Start(ipvsadm.DaemonConfig{State: ipvsadm.DaemonBackup, MCastInterface: "lo", MCastPort: port})
	if !errors.Is(err, syscall.EEXIST) {
		t.Errorf("second backup: %v, want EEXIST", err)
	}
	if err := d.m.Start(ipvsadm.DaemonConfig{State: ipvsadm.DaemonMaster, MCastInterface: "golvs-nosuch0"}); !errors.Is(err, syscall.ENODEV) {
		t.Errorf("unknown interface: %v, want ENODEV", err)
	}
	if err := d.m.Start(ipvsadm.DaemonConfig{State: ipvsadm.DaemonMaster, MCastInterface: "lo", MCastGroup: vip}); err == nil {
		t.Error("a group that is not multicast was accepted")
	}
	d.start(t, ipvsadm.DaemonMaster, port, 3)
	lo, err := net.InterfaceByName("lo")
	if err != nil {
		t.Fatal(err)
	}
	want := []ipvsadm.DaemonEntry{
		{State: "master", MCastIfn: "lo", SyncID: 3, SyncMaxLen: 1472, MCastGroup: ipvssync.DefaultGroup, MCastPort: port, MCastTTL: 1},
		{State: "backup", MCastIfn: "lo", SyncID: 3, SyncMaxLen: uint16(min(lo.MTU, 65535) - 28), MCastGroup: ipvssync.DefaultGroup, MCastPort: port, MCastTTL: 1},
	}
	if got := d.m.List(); !slices.Equal(got, want) {
		t.Errorf("List = %+v\nwant %+v", got, want)
	}
	for _, st := range []string{"master", "backup"} {
		if err := d.m.Stop(st); err != nil {
			t.Errorf("stop %s: %v", st, err)
		}
		if err := d.m.Stop(st); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("stop %s again: %v, want ESRCH", st, err)
		}
	}

	roles := func() string {
		var s []string
		for _, e := range d.m.List() {
			s = append(s, e.State)
		}
		return strings.Join(s, ",")
	}
	ka := ipvsadm.DaemonConfig{MCastInterface: "lo", MCastPort: port, SyncID: 4}
	// No instance: both, all the time.
	if err := d.m.SetLVSSyncDaemon(&ka, false); err != nil || roles() != "master,backup" {
		t.Errorf("lvs_sync_daemon without an instance: %v, running %q", err, roles())
	}
	d.m.SetRole(true)
	if roles() != "master,backup" {
		t.Errorf("SetRole without an instance changed the daemons: %q", roles())
	}
	// With an instance: the backup until it is master (the role last
	// set is kept: it was master).
	d.m.SetRole(false)
	if err := d.m.SetLVSSyncDaemon(&ka, true); err != nil || roles() != "backup" {
		t.Errorf("lvs_sync_daemon with an instance: %v, running %q", err, roles())
	}
	for _, tt := range []struct {
		master bool
		want   string
	}{{true, "master"}, {true, "master"}, {false, "backup"}, {true, "master"}} {
		if err := d.m.SetRole(tt.master); err != nil || roles() != tt.want {
			t.Errorf("SetRole(%v): %v, running %q, want %q", tt.master, err, roles(), tt.want)
		}
	}
	if e := d.m.List()[0]; e.SyncID != 4 {
		t.Errorf("keepalived's daemon: %+v", e)
	}
	// The same configuration again changes nothing; none stops them.
	if err := d.m.SetLVSSyncDaemon(&ka, true); err != nil || roles() != "master" {
		t.Errorf("same lvs_sync_daemon: %v, %q", err, roles())
	}
	if err := d.m.SetLVSSyncDaemon(nil, false); err != nil || roles() != "" {
		t.Errorf("no lvs_sync_daemon: %v, %q", err, roles())
	}
	d.m.Close()
	if err := d.m.Start(ipvsadm.DaemonConfig{State: ipvsadm.DaemonBackup, MCastInterface: "lo", MCastPort: port}); err == nil {
		t.Error("Start after Close succeeded")
	}
}

func TestConfigErrors(t *testing.T) {
	d := newDirector(t, nil)
	v0 := ipvssync.DefaultSysctls()
	v0.Version = 0
	bad := ipvssync.DefaultSysctls()
	bad.Retries = 4
	for name, c := range map[string]Config{
		"no engine":        {Control: d.ctl},
		"v0 with a key":    {Engine: d.eng, Control: d.ctl, Sysctls: &v0, Keys: []ipvssync.Key{testKey}},
		"short key":        {Engine: d.eng, Control: d.ctl, Keys: []ipvssync.Key{{ID: 1, Secret: []byte("short")}}},
		"bad sysctl":       {Engine: d.eng, Control: d.ctl, Sysctls: &bad},
		"multicast peer":   {Engine: d.eng, Control: d.ctl, Peers: []netip.AddrPort{netip.MustParseAddrPort("224.0.0.81:8848")}},
		"unspecified peer": {Engine: d.eng, Control: d.ctl, Peers: []netip.AddrPort{netip.MustParseAddrPort("0.0.0.0:8848")}},
	} {
		if _, err := New(c); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// TestStatsJSON: the counters as GET /v1/sync serves them, rejects by
// reason name.
func TestStatsJSON(t *testing.T) {
	var s Stats
	s.MessagesSent = 2
	s.Rejects[RejectForged] = 3
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	rej := got["rejects"].(map[string]any)
	if got["messages_sent"] != 2.0 || rej["forged"] != 3.0 || len(rej) != int(NumReasons) || got["last_sent"] != nil {
		t.Errorf("JSON %s", b)
	}
	seen := map[string]bool{}
	for r := range NumReasons {
		if n := r.String(); n == "" || seen[n] {
			t.Errorf("reason %d: name %q", r, n)
		}
		seen[r.String()] = true
	}
}
