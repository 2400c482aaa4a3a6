package syncd

import (
	"bytes"
	"net/netip"
	"strings"
	"testing"

	"golvs/internal/conntable"
	"golvs/internal/ipvsadm"
	"golvs/internal/ipvssync"
	"golvs/internal/proto"
	"golvs/internal/service"
)

// FuzzReceive gives a backup random datagrams: it must not panic, and the
// only connections it creates are those of entries a Reader decodes
// without error from the same bytes; the real servers' counts stay equal
// to what the table holds.
func FuzzReceive(f *testing.F) {
	for _, seed := range receiveSeeds(f) {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, msg []byte) {
		d := newDirector(t, nil)
		bk := &backup{m: d.m, entry: ipvsadm.DaemonEntry{State: ipvsadm.DaemonBackup}, maxLen: 65535}
		bk.handle(bytes.Clone(msg), loAddr, 0)

		valid := map[string]bool{}
		var r ipvssync.Reader
		if r.Reset(msg, 0) == nil {
			for r.Next() {
				if r.EntryErr() == nil {
					e := r.Entry()
					valid[key(e.Proto, e.CAddr, e.CPort, e.VAddr, e.VPort, e.Template())] = true
				}
			}
		}
		type counts struct{ act, inact, persist int32 }
		want := map[uint32]*counts{}
		d.eng.Conns().Walk(func(c conntable.Conn) bool {
			tpl := c.Flags&conntable.FlagTemplate != 0
			vaddr := c.VAddr
			if tpl && c.Proto == 0 {
				vaddr = ipvsadm.FWMarkAddr(service.FamilyOf(c.CAddr), c.FWMark)
			}
			if !valid[key(c.Proto, c.CAddr, c.CPort, vaddr, c.VPort, tpl)] {
				t.Errorf("connection of no valid entry: %+v", c)
			}
			n := want[c.DestID]
			if n == nil {
				n = &counts{}
				want[c.DestID] = n
			}
			switch {
			case tpl:
				n.persist++
			case c.Flags&conntable.FlagInactive != 0:
				n.inact++
			default:
				n.act++
			}
			return true
		})
		for _, s := range d.ctl.Snapshot().Services() {
			for _, dst := range s.Dests {
				w := want[dst.ID]
				if w == nil {
					w = &counts{}
				}
				if got := (counts{dst.ActiveConns(), dst.InactConns(), dst.PersistConns()}); got != *w {
					t.Errorf("%v %v: counts %+v, table %+v", s.Key, dst.Addr, got, *w)
				}
			}
		}
	})
}

func key(p uint8, c netip.Addr, cport uint16, v netip.Addr, vport uint16, tpl bool) string {
	var b strings.Builder
	b.WriteString(c.String())
	b.WriteByte(' ')
	b.WriteString(v.String())
	b.WriteByte(' ')
	b.WriteByte(p)
	b.WriteByte(byte(cport >> 8))
	b.WriteByte(byte(cport))
	b.WriteByte(byte(vport >> 8))
	b.WriteByte(byte(vport))
	if tpl {
		b.WriteByte('T')
	}
	return b.String()
}

// receiveSeeds are messages of every kind: connections of the backup's
// services (bound) and of others, templates, updates of the same
// connection with another real server or state, v0, and broken ones.
func receiveSeeds(t testing.TB) [][]byte {
	cli := netip.MustParseAddr("198.18.7.1")
	conn := func(cport uint16, d netip.Addr, state proto.State, flags uint32) ipvssync.Entry {
		return ipvssync.Entry{Proto: service.ProtoTCP, Flags: flags, State: uint16(state), CAddr: cli, VAddr: vip, DAddr: d,
			CPort: cport, VPort: 80, DPort: 80, Timeout: 900}
	}
	build := func(v uint8, es ...ipvssync.Entry) []byte {
		b, err := ipvssync.NewBuilder(ipvssync.BuilderConfig{Version: v, MaxLen: 65000})
		if err != nil {
			t.Fatal(err)
		}
		for i := range es {
			if _, err := b.Add(&es[i], 0); err != nil {
				t.Fatal(err)
			}
		}
		return b.Flush()
	}
	tpl := ipvssync.Entry{Proto: service.ProtoTCP, Flags: ipvssync.FlagTemplate, State: 1, CAddr: cli, VAddr: vip, DAddr: rs1, VPort: 443, DPort: 443, Timeout: 300}
	fwm := ipvssync.Entry{Flags: ipvssync.FlagTemplate, CAddr: cli, VAddr: netip.AddrFrom4([4]byte{0, 0, 0, 9}), DAddr: rs1, FWMark: 9, Timeout: 300}
	udp := ipvssync.Entry{Proto: service.ProtoUDP, Flags: ipvssync.FlagInactive, CAddr: cli, VAddr: vip, DAddr: rs2, CPort: 53, VPort: 53, DPort: 53, Timeout: 300}
	other := conn(3, rs1, proto.TCPEstablished, 0)
	other.VAddr = netip.MustParseAddr("198.18.0.200")
	v6 := ipvssync.Entry{Proto: service.ProtoTCP, State: 1, CAddr: netip.MustParseAddr("2001:db8::1"), VAddr: netip.MustParseAddr("2001:db8::100"),
		DAddr: netip.MustParseAddr("2001:db8::11"), CPort: 1, VPort: 80, DPort: 80, Timeout: 60}
	seeds := [][]byte{
		build(1, conn(1, rs1, proto.TCPEstablished, 0), conn(1, rs2, proto.TCPEstablished, 0), conn(1, rs1, proto.TCPFinWait, ipvssync.FlagInactive)),
		build(1, conn(2, rs1, proto.TCPSynRecv, ipvssync.FlagInactive), conn(2, rs1, proto.TCPEstablished, 0), conn(2, rs2, proto.TCPClose, ipvssync.FlagInactive)),
		build(1, tpl, tpl, fwm, udp, other, v6),
		build(0, conn(4, rs1, proto.TCPEstablished, 0), udp),
		{},
		{0, 0, 0, 8, 0, 1, 0, 0},
	}
	broken := build(1, conn(5, rs1, proto.TCPEstablished, 0), conn(6, rs2, proto.TCPEstablished, 0))
	seeds = append(seeds, broken[:len(broken)-7])
	return seeds
}
