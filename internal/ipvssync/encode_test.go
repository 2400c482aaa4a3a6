package ipvssync

import (
	"encoding/binary"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"golvs/internal/conntable"
)

func TestMaxLen(t *testing.T) {
	tests := []struct {
		role      Role
		ipv6      bool
		mtu, conf int
		want      int
	}{
		{RoleMaster, false, 1500, 0, 1472}, // 1500 - 20 - 8: ipvsadm -L --daemon shows maxlen=1472
		{RoleMaster, false, 9000, 0, 1472}, // a master ignores the MTU
		{RoleMaster, false, 1280, 0, 1472}, // ...even a smaller one (IP_PMTUDISC_DONT: fragments)
		{RoleMaster, true, 1500, 0, 1452},  // 1500 - 40 - 8
		{RoleBackup, false, 1500, 0, 1472}, // the oracle's backup line: maxlen=1472
		{RoleBackup, false, 9000, 0, 8972}, // a backup follows its MTU...
		{RoleBackup, false, 1280, 0, 1472}, // ...clamped to at least 1500
		{RoleBackup, false, 70000, 0, 65507},
		{RoleBackup, true, 9000, 0, 8952},
		{RoleMaster, false, 1500, 1, 1}, // --sync-maxlen is clamped to 1..65535-hdr for a master
		{RoleMaster, false, 1500, 100000, 65507},
		{RoleBackup, false, 1500, 100, 1024}, // and to 1024.. for a backup
		{RoleBackup, true, 1500, 65535, 65487},
	}
	for _, tt := range tests {
		if got := MaxLen(tt.role, tt.ipv6, tt.mtu, tt.conf); got != tt.want {
			t.Errorf("MaxLen(%v, ipv6=%v, mtu %d, conf %d) = %d, want %d", tt.role, tt.ipv6, tt.mtu, tt.conf, got, tt.want)
		}
	}
}

func entryN(i int) Entry {
	e := goldenV1IPv4Entry
	e.CPort = uint16(1000 + i)
	return e
}

func TestBuilderBatching(t *testing.T) {
	b, err := NewBuilder(BuilderConfig{Version: 1, SyncID: 3})
	if err != nil {
		t.Fatal(err)
	}
	// 8 + 40*36 = 1448 <= 1472; the 41st entry would make 1484.
	var msgs [][]byte
	for i := range 100 {
		e := entryN(i)
		full, err := b.Add(&e, 0)
		if err != nil {
			t.Fatal(err)
		}
		if full != nil {
			msgs = append(msgs, full)
		}
	}
	if last := b.Flush(); last != nil {
		msgs = append(msgs, last)
	}
	counts := []int{}
	next := 0
	for _, m := range msgs {
		if len(m) > 1472 {
			t.Errorf("message of %d bytes", len(m))
		}
		_, es, errs, err := decodeAll(t, m, 3)
		if err != nil {
			t.Fatal(err)
		}
		for i := range es {
			if errs[i] != nil || es[i].CPort != uint16(1000+next) {
				t.Fatalf("entry %d: %v port %d", next, errs[i], es[i].CPort)
			}
			next++
		}
		counts = append(counts, len(es))
	}
	if len(counts) != 3 || counts[0] != 40 || counts[1] != 40 || counts[2] != 20 {
		t.Errorf("entries per message %v, want [40 40 20]", counts)
	}
	if b.Flush() != nil {
		t.Error("second Flush returned a message")
	}
}

func TestBuilderPaddingAndLimits(t *testing.T) {
	pe := goldenV1MixedEntries[1]  // 48 bytes
	odd := goldenV1MixedEntries[0] // 98 bytes, padded to 100
	t.Run("padding counts against maxlen", func(t *testing.T) {
		// 8 + 98 = 106; the next entry needs 2 bytes of padding: 108 + 48 = 156.
		b, _ := NewBuilder(BuilderConfig{Version: 1, MaxLen: 155})
		if full, _ := b.Add(&odd, 0); full != nil {
			t.Fatal("first entry flushed")
		}
		full, _ := b.Add(&pe, 0)
		if full == nil || len(full) != 106 {
			t.Fatalf("full = %d bytes, want the 106-byte message without trailing padding", len(full))
		}
		if m := b.Flush(); len(m) != 8+48 {
			t.Errorf("second message %d bytes", len(m))
		}
		b2, _ := NewBuilder(BuilderConfig{Version: 1, MaxLen: 156})
		b2.Add(&odd, 0)
		if full, _ := b2.Add(&pe, 0); full != nil {
			t.Fatal("fits exactly but was flushed")
		}
		if m := b2.Flush(); len(m) != 156 {
			t.Errorf("message %d bytes, want 156", len(m))
		}
	})
	t.Run("entry larger than maxlen travels alone", func(t *testing.T) {
		b, _ := NewBuilder(BuilderConfig{Version: 1, MaxLen: 1}) // --sync-maxlen 1
		var n int
		for i := range 3 {
			e := entryN(i)
			if full, _ := b.Add(&e, 0); full != nil {
				n++
				if len(full) != 44 {
					t.Errorf("message of %d bytes", len(full))
				}
			}
		}
		if n != 2 || b.Count() != 1 {
			t.Errorf("%d messages out, %d pending; want 2 and 1", n, b.Count())
		}
	})
	t.Run("255 entries at most", func(t *testing.T) {
		b, _ := NewBuilder(BuilderConfig{Version: 0, MaxLen: 65507})
		var full []byte
		i := 0
		for full == nil {
			e := entryN(i)
			full, _ = b.Add(&e, 0)
			i++
		}
		if full[0] != 255 || i != 256 || len(full) != 4+255*24 {
			t.Errorf("count %d after %d adds, %d bytes", full[0], i, len(full))
		}
	})
	t.Run("reserve", func(t *testing.T) {
		b, _ := NewBuilder(BuilderConfig{Version: 1, Reserve: TrailerLen})
		var full []byte
		for i := 0; full == nil; i++ {
			e := entryN(i)
			full, _ = b.Add(&e, 0)
		}
		// 1472 - 40 = 1432: 8 + 39*36 = 1412.
		if len(full) != 1412 || cap(full) < len(full)+TrailerLen {
			t.Errorf("len %d cap %d", len(full), cap(full))
		}
	})
	t.Run("refused entries change nothing", func(t *testing.T) {
		b, _ := NewBuilder(BuilderConfig{Version: 1})
		e := entryN(0)
		b.Add(&e, 0)
		bad := []Entry{
			{CAddr: c4, VAddr: v6, DAddr: d4},
			{CAddr: c4, VAddr: v4, DAddr: d4, PEName: []byte("sip")},
			{CAddr: c4, VAddr: v4, DAddr: d4, PEData: make([]byte, 256), PEName: []byte("sip")},
			{CAddr: c4, VAddr: v4, DAddr: d4, PEData: []byte("x"), PEName: make([]byte, 17)},
		}
		wantErr := []error{ErrMixedFamily, ErrPENameOnly, ErrTooLong, ErrTooLong}
		for i := range bad {
			if _, err := b.Add(&bad[i], 0); !errors.Is(err, wantErr[i]) {
				t.Errorf("bad %d: %v, want %v", i, err, wantErr[i])
			}
		}
		b0, _ := NewBuilder(BuilderConfig{Version: 0})
		e6 := Entry{CAddr: c6, VAddr: v6, DAddr: d6}
		if _, err := b0.Add(&e6, 0); !errors.Is(err, ErrV0IPv6) {
			t.Errorf("v0 IPv6: %v", err)
		}
		if b.Count() != 1 || b.Len() != 44 {
			t.Errorf("count %d len %d", b.Count(), b.Len())
		}
	})
}

func TestBuilderDueAndVersion(t *testing.T) {
	b, _ := NewBuilder(BuilderConfig{Version: 1})
	if b.Due(int64(time.Hour)) {
		t.Error("empty builder due")
	}
	t0 := int64(5 * time.Second)
	e := entryN(0)
	b.Add(&e, t0)
	b.Add(&e, t0+int64(time.Second)) // the age is the first entry's
	if b.Due(t0 + int64(FlushTime) - 1) {
		t.Error("due before 2 s")
	}
	if !b.Due(t0 + int64(FlushTime)) {
		t.Error("not due at 2 s")
	}
	// Switching to v0 hands out the v1 message (ip_vs_sync_conn_v0's
	// "Send buffer if it is for v1").
	full, err := b.SetVersion(Version0)
	if err != nil || full == nil || full[5] != 1 || full[4] != 2 {
		t.Fatalf("SetVersion: %x %v", full, err)
	}
	b.Recycle(full)
	b.Add(&e, t0)
	m := b.Flush()
	if m[0] != 1 || binary.BigEndian.Uint16(m[2:]) != 28 || len(m) != 28 {
		t.Errorf("v0 message %x", m)
	}
	if full, _ := b.SetVersion(Version0); full != nil {
		t.Error("same version flushed")
	}
	if _, err := b.SetVersion(2); !errors.Is(err, ErrConfig) {
		t.Errorf("version 2: %v", err)
	}
	if _, err := NewBuilder(BuilderConfig{Version: 3}); !errors.Is(err, ErrConfig) {
		t.Errorf("NewBuilder version 3: %v", err)
	}
}

func TestAppendEntryV0(t *testing.T) {
	// v0 sends the low 16 bits of the flags and no fwmark or timeout,
	// and sequence data whenever the flags ask for it.
	e := goldenV1IPv4Entry
	e.Flags = FlagNFCT | FlagSeqMask | 3
	e.FWMark, e.Timeout = 9, 99
	b, err := AppendEntryV0(nil, &e)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) != FullEntryLenV0 || binary.BigEndian.Uint16(b[20:]) != 0x0603 {
		t.Errorf("% x", b)
	}
	if EntrySizeV0(&e) != 48 || EntrySizeV0(&goldenV1IPv4Entry) != 24 {
		t.Error("EntrySizeV0")
	}
}

// BenchmarkBuilder packs IPv4 entries into 1472-byte messages, recycling
// each message as a sender would after sending it.
func BenchmarkBuilder(b *testing.B) {
	bl, _ := NewBuilder(BuilderConfig{Version: 1})
	e := goldenV1IPv4Entry
	b.ReportAllocs()
	for b.Loop() {
		if full, _ := bl.Add(&e, 0); full != nil {
			bl.Recycle(full)
		}
	}
}

func TestEntryFromConn(t *testing.T) {
	c := conntable.Conn{Proto: 6, State: 5, Flags: conntable.FlagInactive | conntable.FlagRoute | conntable.FlagNoOutput,
		CAddr: c4, VAddr: v4, DAddr: d4, CPort: 1, VPort: 2, DPort: 3, FWMark: 4, Timeout: 119900 * time.Millisecond}
	e := EntryFromConn(&c)
	want := Entry{Proto: 6, State: 5, Flags: 0x183, CAddr: c4, VAddr: v4, DAddr: d4, CPort: 1, VPort: 2, DPort: 3, FWMark: 4, Timeout: 119}
	if diff := cmp.Diff(want, e, cmpEntry); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}
