package ipvssync

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"golvs/internal/conntable"
	"golvs/internal/proto"
	"golvs/internal/service"
)

// backupFixture is a backup's services:
//
//	TCP 198.18.0.100:80  -> rs1 198.19.0.11:80 Masq, rs2 198.19.0.12:8080 Route
//	UDP 198.18.0.100:80  -> rs2 198.19.0.12:80 Masq
//	FWM 7 (IPv4)         -> rs1 198.19.0.11:0 Route, rs4 198.19.0.14:0 Masq
type backupFixture struct {
	snap                         *service.Snapshot
	reg                          *service.Registry
	rs1, rs2, udp2, fwRS1, fwRS4 *service.Dest
}

var (
	bVIP = a4("198.18.0.100")
	bCl  = a4("198.18.0.10")
	bRS1 = a4("198.19.0.11")
	bRS2 = a4("198.19.0.12")
	bRS4 = a4("198.19.0.14")
)

func newBackupFixture(t testing.TB) *backupFixture {
	t.Helper()
	f := &backupFixture{reg: service.NewRegistry()}
	dest := func(k service.Key, addr netip.Addr, port uint16, fwd service.FwdMethod) *service.Dest {
		id, ok := f.reg.Alloc()
		if !ok {
			t.Fatal("registry full")
		}
		d := service.NewDest(id, k, addr, port, service.DestConfig{Fwd: fwd, Weight: 1}, nil)
		f.reg.Set(d)
		return d
	}
	tcp := service.Key{Family: service.FamilyOf(bVIP), Proto: service.ProtoTCP, Addr: bVIP, Port: 80}
	udp := service.Key{Family: service.FamilyOf(bVIP), Proto: service.ProtoUDP, Addr: bVIP, Port: 80}
	fwm := service.Key{Family: service.FamilyOf(bVIP), FWMark: 7}
	f.rs1 = dest(tcp, bRS1, 80, service.Masq)
	f.rs2 = dest(tcp, bRS2, 8080, service.Route)
	f.udp2 = dest(udp, bRS2, 80, service.Masq)
	f.fwRS1 = dest(fwm, bRS1, 0, service.Route)
	f.fwRS4 = dest(fwm, bRS4, 0, service.Masq)
	f.snap = service.NewSnapshot([]*service.Service{
		{Key: tcp, Dests: []*service.Dest{f.rs2, f.rs1}},
		{Key: udp, Dests: []*service.Dest{f.udp2}},
		{Key: fwm, Dests: []*service.Dest{f.fwRS4, f.fwRS1}},
	})
	return f
}

func TestBackupPlan(t *testing.T) {
	f := newBackupFixture(t)
	est, cw := uint16(proto.TCPEstablished), uint16(proto.TCPCloseWait)
	tcpE := func(daddr netip.Addr, dport uint16, flags uint32, state uint16) Entry {
		return Entry{Proto: 6, Flags: flags, State: state, CAddr: bCl, VAddr: bVIP, DAddr: daddr, CPort: 40000, VPort: 80, DPort: dport, Timeout: 900}
	}
	cur := func(daddr netip.Addr, dport uint16, flags conntable.Flags, d *service.Dest) *conntable.Conn {
		c := &conntable.Conn{Proto: 6, Flags: flags, CAddr: bCl, VAddr: bVIP, DAddr: daddr, CPort: 40000, VPort: 80, DPort: dport, Ref: 42}
		if d != nil {
			c.DestID = d.ID
		}
		return c
	}
	const sync, inact, nooutput, dr = conntable.FlagSync, conntable.FlagInactive, conntable.FlagNoOutput, conntable.FlagRoute
	const tpl = conntable.FlagTemplate
	custom := proto.DefaultTimeouts()
	if err := custom.Set(100*time.Second, 0, 0); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name    string
		b       Backup
		version uint8
		e       Entry
		cur     *conntable.Conn
		want    Plan // Conn compared on Flags, State, OldState, Timeout, InPkts, DestID
		err     error
	}{
		{
			name: "insert, bound to a NAT real server", version: 1,
			e:    tcpE(bRS1, 80, 0, est),
			want: Plan{Action: Insert, Binding: Bound, Dest: f.rs1, Conn: conntable.Conn{Flags: sync, State: 1, OldState: 1, Timeout: 900 * time.Second, InPkts: 3, DestID: f.rs1.ID}},
		},
		{
			name: "the backup's forwarding method wins over the master's", version: 1,
			e:    tcpE(bRS1, 80, uint32(dr|nooutput), est),
			want: Plan{Action: Insert, Binding: Bound, Dest: f.rs1, Conn: conntable.Conn{Flags: sync, State: 1, OldState: 1, Timeout: 900 * time.Second, InPkts: 3, DestID: f.rs1.ID}},
		},
		{
			name: "DR real server: NOOUTPUT, master's INACTIVE kept", version: 1,
			e:    tcpE(bRS2, 8080, uint32(inact), cw),
			want: Plan{Action: Insert, Binding: Bound, Dest: f.rs2, Conn: conntable.Conn{Flags: sync | inact | dr | nooutput, State: 7, OldState: 7, Timeout: 900 * time.Second, InPkts: 3, DestID: f.rs2.ID}},
		},
		{
			name: "DR real server, active connection stays active", version: 1,
			e:    tcpE(bRS2, 8080, 0, est),
			want: Plan{Action: Insert, Binding: Bound, Dest: f.rs2, Conn: conntable.Conn{Flags: sync | dr | nooutput, State: 1, OldState: 1, Timeout: 900 * time.Second, InPkts: 3, DestID: f.rs2.ID}},
		},
		{
			name: "template takes the real server's INACTIVE", version: 1,
			e:    Entry{Proto: 6, Flags: 0x1000, State: 1, CAddr: bCl, VAddr: bVIP, DAddr: bRS1, VPort: 80, DPort: 80, Timeout: 360},
			want: Plan{Action: Insert, Binding: Bound, Dest: f.rs1, Conn: conntable.Conn{Flags: sync | tpl | inact, State: 1, OldState: 1, Timeout: 360 * time.Second, InPkts: 3, DestID: f.rs1.ID}},
		},
		{
			name: "no service: unbound, master's method and the backup mask", version: 1,
			e: Entry{Proto: 6, Flags: 0x83 | 0x400 | FlagNFCT | FlagOnePacket | FlagHashed, State: 1,
				CAddr: bCl, VAddr: a4("198.18.0.200"), DAddr: bRS1, CPort: 1, VPort: 80, DPort: 80, Timeout: 900},
			want: Plan{Action: Insert, Binding: NoService, Seq: false, Conn: conntable.Conn{Flags: sync | dr | nooutput | conntable.FlagInSeq, State: 1, OldState: 1, Timeout: 900 * time.Second, InPkts: 3}},
		},
		{
			name: "no such real server: unbound", version: 1,
			e:    tcpE(a4("198.19.0.99"), 80, 0, est),
			want: Plan{Action: Insert, Binding: NoDest, Conn: conntable.Conn{Flags: sync, State: 1, OldState: 1, Timeout: 900 * time.Second, InPkts: 3}},
		},
		{
			name: "dest port must match", version: 1,
			e:    tcpE(bRS1, 81, 0, est),
			want: Plan{Action: Insert, Binding: NoDest, Conn: conntable.Conn{Flags: sync, State: 1, OldState: 1, Timeout: 900 * time.Second, InPkts: 3}},
		},
		{
			name: "fwmark DR: real server port 0", version: 1,
			e:    Entry{Proto: 6, Flags: 0x83, State: 1, CAddr: bCl, VAddr: bVIP, DAddr: bRS1, CPort: 5, VPort: 443, DPort: 443, FWMark: 7, Timeout: 900},
			want: Plan{Action: Insert, Binding: Bound, Dest: f.fwRS1, Conn: conntable.Conn{Flags: sync | dr | nooutput, State: 1, OldState: 1, Timeout: 900 * time.Second, InPkts: 3, DestID: f.fwRS1.ID}},
		},
		{
			name: "fwmark NAT: dport first, then port 0", version: 1,
			e:    Entry{Proto: 6, Flags: 0, State: 1, CAddr: bCl, VAddr: bVIP, DAddr: bRS4, CPort: 5, VPort: 443, DPort: 443, FWMark: 7, Timeout: 900},
			want: Plan{Action: Insert, Binding: Bound, Dest: f.fwRS4, Conn: conntable.Conn{Flags: sync, State: 1, OldState: 1, Timeout: 900 * time.Second, InPkts: 3, DestID: f.fwRS4.ID}},
		},
		{
			name: "fwmark template", version: 1,
			e:    Entry{Proto: 0, Flags: 0x1183, State: 1, CAddr: a4("198.18.0.0"), VAddr: a4("0.0.0.7"), DAddr: bRS1, FWMark: 7, Timeout: 300},
			want: Plan{Action: Insert, Binding: Bound, Dest: f.fwRS1, Conn: conntable.Conn{Flags: sync | tpl | inact | dr | nooutput, State: 1, OldState: 1, Timeout: 300 * time.Second, InPkts: 3, DestID: f.fwRS1.ID}},
		},
		{
			name: "update: INACTIVE from the master, counts flip", version: 1,
			e:    tcpE(bRS1, 80, uint32(inact), cw),
			cur:  cur(bRS1, 80, sync, f.rs1),
			want: Plan{Action: Update, Ref: 42, Binding: AlreadyBound, Dest: f.rs1, Flip: ToInactive, Conn: conntable.Conn{Flags: sync | inact, State: 7, OldState: 7, Timeout: 900 * time.Second, InPkts: 3, DestID: f.rs1.ID}},
		},
		{
			name: "update: back to active", version: 1,
			e:    tcpE(bRS1, 80, 0, est),
			cur:  cur(bRS1, 80, sync|inact, f.rs1),
			want: Plan{Action: Update, Ref: 42, Binding: AlreadyBound, Dest: f.rs1, Flip: ToActive, Conn: conntable.Conn{Flags: sync, State: 1, OldState: 1, Timeout: 900 * time.Second, InPkts: 3, DestID: f.rs1.ID}},
		},
		{
			name: "update: only INACTIVE and the SEQ bits change", version: 1,
			e:    tcpE(bRS2, 8080, uint32(conntable.FlagInSeq|conntable.FlagOutSeq|conntable.FlagNoCPort), est),
			cur:  cur(bRS2, 8080, sync|dr|nooutput, f.rs2),
			want: Plan{Action: Update, Ref: 42, Binding: AlreadyBound, Dest: f.rs2, Conn: conntable.Conn{Flags: sync | dr | nooutput | conntable.FlagInSeq | conntable.FlagOutSeq, State: 1, OldState: 1, Timeout: 900 * time.Second, InPkts: 3, DestID: f.rs2.ID}},
		},
		{
			name: "update: no flip without a real server", version: 1,
			e:    tcpE(a4("198.19.0.99"), 80, uint32(inact), cw),
			cur:  cur(a4("198.19.0.99"), 80, sync, nil),
			want: Plan{Action: Update, Ref: 42, Binding: NoDest, Conn: conntable.Conn{Flags: sync | inact, State: 7, OldState: 7, Timeout: 900 * time.Second, InPkts: 3}},
		},
		{
			name: "update binds an unbound entry (ip_vs_try_bind_dest)", version: 1,
			e:    tcpE(bRS2, 8080, uint32(inact), cw),
			cur:  cur(bRS2, 8080, sync, nil),
			want: Plan{Action: Update, Ref: 42, Binding: Bound, Bind: true, Dest: f.rs2, Conn: conntable.Conn{Flags: sync | inact | dr | nooutput, State: 7, OldState: 7, Timeout: 900 * time.Second, InPkts: 3, DestID: f.rs2.ID}},
		},
		{
			name: "another real server, active: replace", version: 1,
			e:    tcpE(bRS1, 80, 0, est),
			cur:  cur(bRS2, 8080, sync|dr|nooutput, f.rs2),
			want: Plan{Action: Replace, Ref: 42, Binding: Bound, Dest: f.rs1, Conn: conntable.Conn{Flags: sync, State: 1, OldState: 1, Timeout: 900 * time.Second, InPkts: 3, DestID: f.rs1.ID}},
		},
		{
			name: "another real server, inactive: stale, ignored", version: 1,
			e:    tcpE(bRS1, 80, uint32(inact), cw),
			cur:  cur(bRS2, 8080, sync|dr|nooutput, f.rs2),
			want: Plan{Action: Ignore, Ref: 42},
		},
		{
			name: "template with another real server: updated, not replaced", version: 1,
			e:    Entry{Proto: 6, Flags: 0x1100, State: 1, CAddr: bCl, VAddr: bVIP, DAddr: bRS1, VPort: 80, DPort: 80, Timeout: 300},
			cur:  &conntable.Conn{Proto: 6, Flags: sync | tpl | inact | dr | nooutput, CAddr: bCl, VAddr: bVIP, DAddr: bRS2, VPort: 80, DPort: 8080, DestID: f.rs2.ID, Ref: 7},
			want: Plan{Action: Update, Ref: 7, Binding: AlreadyBound, Dest: f.rs2, Conn: conntable.Conn{Flags: sync | tpl | inact | dr | nooutput, State: 1, OldState: 1, Timeout: 300 * time.Second, InPkts: 3, DestID: f.rs2.ID}},
		},
		{
			name: "v0: protocol timeout for the state", version: 0,
			e:    Entry{Proto: 6, State: est, CAddr: bCl, VAddr: bVIP, DAddr: bRS1, CPort: 1, VPort: 80, DPort: 80},
			want: Plan{Action: Insert, Binding: Bound, Dest: f.rs1, Conn: conntable.Conn{Flags: sync, State: 1, OldState: 1, Timeout: 900 * time.Second, InPkts: 3, DestID: f.rs1.ID}},
		},
		{
			name: "v0: the backup's own timeouts", version: 0, b: Backup{Threshold: 3, Timeouts: &custom},
			e:    Entry{Proto: 6, State: est, CAddr: bCl, VAddr: bVIP, DAddr: bRS1, CPort: 1, VPort: 80, DPort: 80},
			want: Plan{Action: Insert, Binding: Bound, Dest: f.rs1, Conn: conntable.Conn{Flags: sync, State: 1, OldState: 1, Timeout: 100 * time.Second, InPkts: 3, DestID: f.rs1.ID}},
		},
		{
			name: "v0: template 3 minutes", version: 0,
			e:    Entry{Proto: 6, Flags: 0x1100, State: 1, CAddr: bCl, VAddr: bVIP, DAddr: bRS1, VPort: 80, DPort: 80},
			want: Plan{Action: Insert, Binding: Bound, Dest: f.rs1, Conn: conntable.Conn{Flags: sync | tpl | inact, State: 1, OldState: 1, Timeout: 180 * time.Second, InPkts: 3, DestID: f.rs1.ID}},
		},
		{
			name: "v0: UDP 300 s, and no masking of the flags", version: 0,
			e:    Entry{Proto: 17, Flags: 0x8000 | 0x40 | 0x100, CAddr: bCl, VAddr: bVIP, DAddr: bRS2, CPort: 1, VPort: 80, DPort: 80},
			want: Plan{Action: Insert, Binding: Bound, Dest: f.udp2, Conn: conntable.Conn{Flags: 0x8000 | sync | inact, Timeout: 300 * time.Second, InPkts: 3, DestID: f.udp2.ID}},
		},
		{
			name: "v1 with timeout 0 falls back like v0", version: 1,
			e:    Entry{Proto: 6, State: cw, CAddr: bCl, VAddr: bVIP, DAddr: bRS1, CPort: 1, VPort: 80, DPort: 80},
			want: Plan{Action: Insert, Binding: Bound, Dest: f.rs1, Conn: conntable.Conn{Flags: sync, State: 7, OldState: 7, Timeout: 60 * time.Second, InPkts: 3, DestID: f.rs1.ID}},
		},
		{
			name: "AH has no timeout table: 3 minutes", version: 0,
			e:    Entry{Proto: 51, CAddr: bCl, VAddr: bVIP, DAddr: bRS1, VPort: 500, DPort: 500},
			want: Plan{Action: Insert, Binding: NoService, Conn: conntable.Conn{Flags: sync, Timeout: 180 * time.Second, InPkts: 3}},
		},
		{
			name: "v0 one-packet flag", version: 0,
			e:   Entry{Proto: 17, Flags: 0x2000, CAddr: bCl, VAddr: bVIP, DAddr: bRS2, CPort: 1, VPort: 80, DPort: 80},
			err: ErrOnePacket,
		},
		{
			name: "v1 one-packet flag is masked", version: 1,
			e:    Entry{Proto: 17, Flags: 0x2000 | 0x100, CAddr: bCl, VAddr: bVIP, DAddr: bRS2, CPort: 1, VPort: 80, DPort: 80, Timeout: 300},
			want: Plan{Action: Insert, Binding: Bound, Dest: f.udp2, Conn: conntable.Conn{Flags: sync | inact, Timeout: 300 * time.Second, InPkts: 3, DestID: f.udp2.ID}},
		},
		{
			name: "PE data, no engine", version: 1,
			e:   Entry{Proto: 17, CAddr: bCl, VAddr: bVIP, DAddr: bRS2, PEData: []byte("x"), PEName: []byte("sip")},
			err: ErrUnknownPE,
		},
		{
			name: "PE data, known engine", version: 1, b: Backup{Threshold: 3, KnownPE: func(n []byte) bool { return string(n) == "sip" }},
			e:    Entry{Proto: 17, Flags: 0x100, CAddr: bCl, VAddr: bVIP, DAddr: bRS2, CPort: 1, VPort: 80, DPort: 80, Timeout: 300, PEData: []byte("x"), PEName: []byte("sip")},
			want: Plan{Action: Insert, Binding: Bound, Dest: f.udp2, Conn: conntable.Conn{Flags: sync | inact, Timeout: 300 * time.Second, InPkts: 3, DestID: f.udp2.ID}},
		},
		{
			name: "sequence data reported", version: 1,
			e:    Entry{Proto: 6, Flags: 0x600, State: est, CAddr: bCl, VAddr: bVIP, DAddr: bRS1, CPort: 1, VPort: 80, DPort: 80, Timeout: 900, HasSeq: true},
			want: Plan{Action: Insert, Binding: Bound, Dest: f.rs1, Seq: true, Conn: conntable.Conn{Flags: sync | conntable.FlagInSeq | conntable.FlagOutSeq, State: 1, OldState: 1, Timeout: 900 * time.Second, InPkts: 3, DestID: f.rs1.ID}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := tt.b
			if b.Threshold == 0 {
				b.Threshold = 3
			}
			p, err := b.Plan(&tt.e, tt.version, tt.cur, f.snap, f.reg)
			if !errors.Is(err, tt.err) || (err == nil) != (tt.err == nil) {
				t.Fatalf("err %v, want %v", err, tt.err)
			}
			if err != nil {
				return
			}
			got := fmt.Sprintf("%v ref=%d %v bind=%v flip=%d seq=%v dest=%v flags=%#x state=%d/%d timeout=%v pkts=%d id=%d",
				p.Action, p.Ref, p.Binding, p.Bind, p.Flip, p.Seq, destName(p.Dest), p.Conn.Flags, p.Conn.State, p.Conn.OldState, p.Conn.Timeout, p.Conn.InPkts, p.Conn.DestID)
			w := tt.want
			want := fmt.Sprintf("%v ref=%d %v bind=%v flip=%d seq=%v dest=%v flags=%#x state=%d/%d timeout=%v pkts=%d id=%d",
				w.Action, w.Ref, w.Binding, w.Bind, w.Flip, w.Seq, destName(w.Dest), w.Conn.Flags, w.Conn.State, w.Conn.OldState, w.Conn.Timeout, w.Conn.InPkts, w.Conn.DestID)
			if got != want {
				t.Errorf("\n got %s\nwant %s", got, want)
			}
			if p.Action == Insert || p.Action == Replace {
				c := p.Conn
				if c.Proto != tt.e.Proto || c.CAddr != tt.e.CAddr || c.VAddr != tt.e.VAddr || c.DAddr != tt.e.DAddr ||
					c.CPort != tt.e.CPort || c.VPort != tt.e.VPort || c.DPort != tt.e.DPort || c.FWMark != tt.e.FWMark {
					t.Errorf("key not copied: %+v", c)
				}
			}
		})
	}
}

func destName(d *service.Dest) string {
	if d == nil {
		return "-"
	}
	return netip.AddrPortFrom(d.Addr, d.Port).String() + "/" + d.Svc.String()
}

func TestTemplateKey(t *testing.T) {
	e := Entry{Proto: 0, VAddr: a4("0.0.1.2"), CAddr: bCl}
	if p, _, _, _, m := TemplateKey(&e); p != 0 || m != 0x0102 {
		t.Errorf("IPv4 fwmark template: proto %d mark %#x", p, m)
	}
	e.VAddr = a4("0:7::")
	if _, _, _, _, m := TemplateKey(&e); m != 7 {
		t.Errorf("IPv6 fwmark template: mark %#x", m)
	}
	e = Entry{Proto: 6, VAddr: bVIP, VPort: 80, FWMark: 9}
	if p, _, v, port, m := TemplateKey(&e); p != 6 || v != bVIP || port != 80 || m != 0 {
		t.Errorf("port template: %d %v %d %d", p, v, port, m)
	}
}

// applyPlan is what the wiring of a backup does with a Plan, over a real
// connection table; it needs no more than the table's API has today,
// except for the binding of an entry found unbound (not exercised here).
func applyPlan(t testing.TB, tab *conntable.Table, p Plan, now int64) {
	t.Helper()
	switch p.Action {
	case Replace:
		tab.ExpireNow(p.Ref)
		fallthrough
	case Insert:
		if _, err := tab.Insert(&p.Conn, now); err != nil {
			t.Fatalf("insert %+v: %v", p.Conn, err)
		}
		if p.Dest != nil {
			p.Dest.Bind(p.Conn.Flags&conntable.FlagTemplate != 0, p.Conn.Flags&conntable.FlagInactive != 0)
		}
	case Update:
		if p.Bind {
			t.Fatal("binding on update: not exercised")
		}
		tab.SetState(p.Ref, p.Conn.State, p.Conn.Flags, p.Conn.Timeout, now)
		switch p.Flip {
		case ToActive:
			p.Dest.ToActive()
		case ToInactive:
			p.Dest.ToInactive()
		}
	}
}

// TestKernelBackupState replays the kernel master's messages of the
// oracle capture into a backup built like the oracle's backup (its TCP and
// UDP services on port 80 with both real servers, nothing on port 81 or
// IPv6) and compares the resulting table and real-server counts with what
// the kernel backup listed (testdata/kernel/s1-sync-capture.out).
func TestKernelBackupState(t *testing.T) {
	reg := service.NewRegistry()
	var dests []*service.Dest
	var svcs []*service.Service
	for _, p := range []uint8{service.ProtoTCP, service.ProtoUDP} {
		k := service.Key{Family: service.FamilyOf(bVIP), Proto: p, Addr: bVIP, Port: 80}
		s := &service.Service{Key: k}
		for _, a := range []netip.Addr{bRS1, bRS2} {
			id, _ := reg.Alloc()
			d := service.NewDest(id, k, a, 80, service.DestConfig{Fwd: service.Masq, Weight: 1}, nil)
			reg.Set(d)
			s.Dests = append(s.Dests, d)
			dests = append(dests, d)
		}
		svcs = append(svcs, s)
	}
	snap := service.NewSnapshot(svcs)
	tab, err := conntable.New(conntable.Config{Shards: 1, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	b := Backup{Threshold: 3}
	now := int64(time.Hour)
	for _, file := range []string{"v1-tcp-udp.hex", "v1-template-ipv6.hex"} {
		raw, err := os.ReadFile(filepath.Join("testdata", "kernel", file))
		if err != nil {
			t.Fatal(err)
		}
		var r Reader
		if err := r.Reset(mustHex(t, string(raw)), 0); err != nil {
			t.Fatal(err)
		}
		for r.Next() {
			if r.EntryErr() != nil {
				t.Fatal(r.EntryErr())
			}
			e := r.Entry()
			var cur conntable.Conn
			var found bool
			if e.Template() {
				p, snet, v, port, mark := TemplateKey(e)
				var ref conntable.Ref
				if ref, found = tab.LookupTemplate(p, snet, v, port, mark, now); found {
					cur, _ = tab.Get(ref)
				}
			} else {
				_, found = tab.LookupInConn(e.Proto, e.CAddr, e.CPort, e.VAddr, e.VPort, now, &cur)
			}
			var cp *conntable.Conn
			if found {
				cp = &cur
			}
			p, err := b.Plan(e, r.Header().Version, cp, snap, reg)
			if err != nil {
				t.Fatal(err)
			}
			applyPlan(t, tab, p, now)
		}
		if r.Err() != nil {
			t.Fatal(r.Err())
		}
	}
	var got []string
	tab.Walk(func(c conntable.Conn) bool {
		st := proto.StateName(c.Proto, proto.State(c.State), c.Flags&conntable.FlagTemplate != 0)
		dest := "unbound"
		if c.DestID != 0 {
			dest = "bound"
		}
		got = append(got, fmt.Sprintf("%d %s %v:%d %v:%d %v:%d %s flags=%#x %v",
			c.Proto, st, c.CAddr, c.CPort, c.VAddr, c.VPort, c.DAddr, c.DPort, dest, c.Flags, c.Timeout))
		return true
	})
	sort.Strings(got)
	want := []string{
		// the oracle backup's `ipvsadm -L -n -c` (TIME_WAIT 01:55 etc.)
		"17 UDP 198.18.0.10:41000 198.18.0.100:80 198.19.0.12:80 bound flags=0x120 5m0s",
		"6 ASSURED 198.18.0.10:0 198.18.0.100:81 198.19.0.11:81 unbound flags=0x1120 5m0s",
		"6 TIME_WAIT 198.18.0.10:40000 198.18.0.100:80 198.19.0.12:80 bound flags=0x120 2m0s",
		"6 TIME_WAIT 198.18.0.10:40001 198.18.0.100:80 198.19.0.11:80 bound flags=0x120 2m0s",
		"6 TIME_WAIT 198.18.0.10:42000 198.18.0.100:81 198.19.0.11:81 unbound flags=0x120 2m0s",
		"6 TIME_WAIT 2001:db8:c::10:43000 2001:db8:c::100:80 2001:db8:5::11:80 unbound flags=0x120 2m0s",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("table:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// The oracle backup's `ipvsadm -L -n`: TCP rs1 0/1, rs2 0/1; UDP rs1 0/0, rs2 0/1.
	wantCounts := [][2]int32{{0, 1}, {0, 1}, {0, 0}, {0, 1}}
	for i, d := range dests {
		if got := [2]int32{d.ActiveConns(), d.InactConns()}; got != wantCounts[i] {
			t.Errorf("%s: active/inactive %v, want %v", destName(d), got, wantCounts[i])
		}
	}
}
