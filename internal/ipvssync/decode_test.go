package ipvssync

import (
	"encoding/binary"
	"errors"
	"testing"
)

// v1msg builds a version-1 message with the given count (-1: the number
// of entries) around raw entries, padding each but the last to 4 bytes.
func v1msg(syncID uint8, count int, entries ...[]byte) []byte {
	m := []byte{0, syncID, 0, 0, 0, 1, 0, 0}
	for i, e := range entries {
		m = append(m, e...)
		if i < len(entries)-1 {
			m = append(m, make([]byte, -len(m)&3)...)
		}
	}
	if count < 0 {
		count = len(entries)
	}
	m[4] = byte(count)
	binary.BigEndian.PutUint16(m[2:], uint16(len(m)))
	return m
}

func rawEntry(t testing.TB, e Entry) []byte {
	t.Helper()
	b, err := AppendEntry(nil, &e)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// withOpts appends raw option bytes to a v1 entry and fixes its size.
func withOpts(e []byte, opts ...byte) []byte {
	e = append(append([]byte(nil), e...), opts...)
	binary.BigEndian.PutUint16(e[2:], uint16(len(e)))
	return e
}

func patch(b []byte, off int, v ...byte) []byte {
	b = append([]byte(nil), b...)
	copy(b[off:], v)
	return b
}

func TestReaderErrors(t *testing.T) {
	good := rawEntry(t, goldenV1IPv4Entry)
	tcp := func(state uint16) []byte {
		e := goldenV1IPv4Entry
		e.State = state
		return rawEntry(t, e)
	}
	withProto := func(p uint8, state uint16, flags uint32) []byte {
		e := goldenV1IPv4Entry
		e.Proto, e.State, e.Flags = p, state, flags
		return rawEntry(t, e)
	}
	seqOpt := append([]byte{OptSeqData, 24}, make([]byte, 24)...)
	v0entry := func(proto byte, flags, state uint16) []byte {
		e := make([]byte, EntryLenV0)
		e[1] = proto
		binary.BigEndian.PutUint16(e[20:], flags)
		binary.BigEndian.PutUint16(e[22:], state)
		return e
	}
	v0msg := func(count int, entries ...[]byte) []byte {
		m := []byte{byte(count), 0, 0, 0}
		for _, e := range entries {
			m = append(m, e...)
		}
		binary.BigEndian.PutUint16(m[2:], uint16(len(m)))
		return m
	}

	tests := []struct {
		name     string
		msg      []byte
		syncID   uint8
		reset    error   // from Reset
		entries  []error // EntryErr of each entry Next returned
		err      error   // Err at the end
		checkHdr func(Header) bool
	}{
		{name: "empty", msg: nil, reset: ErrShort},
		{name: "3 bytes", msg: []byte{1, 0, 0}, reset: ErrShort},
		{name: "size larger than datagram", msg: patch(v1msg(0, -1, good), 3, 45), reset: ErrSize},
		{name: "size smaller than datagram", msg: append(v1msg(0, -1, good), 0), reset: ErrSize},
		{name: "other sync ID", msg: v1msg(5, -1, good), syncID: 6, reset: ErrSyncID},
		{name: "sync ID filter 0 accepts all", msg: v1msg(5, -1, good), syncID: 0, entries: []error{nil}},
		{name: "same sync ID", msg: v1msg(5, -1, good), syncID: 5, entries: []error{nil}},
		{name: "unknown version", msg: patch(v1msg(0, -1, good), 5, 3), reset: ErrVersion},
		{name: "spare not zero", msg: patch(v1msg(0, -1, good), 7, 1), reset: ErrVersion},
		{name: "signed", msg: patch(v1msg(0, -1, good), 5, AuthVersion), reset: ErrSigned},
		{name: "no entries", msg: v1msg(0, 0), checkHdr: func(h Header) bool { return h.Version == 1 && h.Count == 0 }},
		{name: "count above entries", msg: v1msg(0, 2, good), entries: []error{nil}, err: ErrTruncated},
		{name: "count below entries", msg: v1msg(0, 1, good, good), entries: []error{nil}},
		{name: "trailing bytes ignored", msg: v1msg(0, 1, good, []byte{1, 2, 3}), entries: []error{nil}},
		{name: "entry size past end", msg: v1msg(0, -1, patch(good, 3, 40)), err: ErrTruncated},
		{name: "entry version", msg: v1msg(0, -1, patch(good, 2, 0x10)), err: ErrEntryVersion},
		{name: "type 2", msg: v1msg(0, -1, patch(good, 0, 2)), err: ErrFamily},
		{name: "type 3 is IPv6, too short", msg: v1msg(0, -1, patch(good, 0, 3)), err: ErrEntryLen},
		{name: "entry size 0", msg: v1msg(0, -1, patch(good, 2, 0, 0)), err: ErrEntryLen},
		{name: "entry size below fixed part", msg: v1msg(0, -1, patch(good, 3, 30)), err: ErrEntryLen},
		{name: "option header cut", msg: v1msg(0, -1, withOpts(good, OptSeqData)), err: ErrOptTruncated},
		{name: "option length 0", msg: v1msg(0, -1, withOpts(good, 0x45, 0)), err: ErrOptTruncated},
		{name: "option data past entry", msg: v1msg(0, -1, withOpts(good, OptPEData, 4, 1, 2, 3)), err: ErrOptTruncated},
		{name: "seq data of 23 bytes", msg: v1msg(0, -1, withOpts(good, append([]byte{OptSeqData, 23}, make([]byte, 23)...)...)), err: ErrBadOption},
		{name: "seq data twice", msg: v1msg(0, -1, withOpts(good, append(seqOpt, seqOpt...)...)), err: ErrDupOption},
		{name: "seq data with the param flag", msg: v1msg(0, -1, withOpts(good, append([]byte{OptSeqData | OptParamFlag, 24}, make([]byte, 24)...)...)), entries: []error{nil}},
		{name: "PE name of 17 bytes", msg: v1msg(0, -1, withOpts(good, append([]byte{OptPEName, 17}, make([]byte, 17)...)...)), err: ErrBadOption},
		{name: "PE data twice", msg: v1msg(0, -1, withOpts(good, OptPEData, 1, 'a', OptPEData, 1, 'b', OptPEName, 1, 's')), err: ErrDupOption},
		{name: "PE name twice", msg: v1msg(0, -1, withOpts(good, OptPEData, 1, 'a', OptPEName, 1, 's', OptPEName, 1, 's')), err: ErrDupOption},
		{name: "PE data without name", msg: v1msg(0, -1, withOpts(good, OptPEData, 1, 'a'), good), entries: []error{ErrPEParams, nil}},
		{name: "unknown mandatory option drops the entry only", msg: v1msg(0, -1, withOpts(good, 5, 1, 0), good), entries: []error{ErrUnknownOption, nil}},
		{name: "unknown mandatory option stops option parsing", msg: v1msg(0, -1, withOpts(good, 5, 1, 0, OptSeqData)), entries: []error{ErrUnknownOption}},
		{name: "unknown optional option skipped", msg: v1msg(0, -1, withOpts(good, 5|OptParamFlag, 2, 0, 0)), entries: []error{nil}},
		{name: "unknown protocol", msg: v1msg(0, -1, withProto(47, 0, 0), good), entries: []error{ErrProto, nil}},
		{name: "IPPROTO_IP connection", msg: v1msg(0, -1, withProto(0, 0, 0)), entries: []error{ErrProto}},
		{name: "TCP SYNACK (10) ok", msg: v1msg(0, -1, tcp(10)), entries: []error{nil}},
		{name: "TCP state 11", msg: v1msg(0, -1, tcp(11), good), entries: []error{ErrState, nil}},
		{name: "UDP state 1", msg: v1msg(0, -1, withProto(17, 1, 0)), entries: []error{ErrState}},
		{name: "SCTP CLOSED (13) ok", msg: v1msg(0, -1, withProto(132, 13, 0)), entries: []error{nil}},
		{name: "SCTP state 14", msg: v1msg(0, -1, withProto(132, 14, 0)), entries: []error{ErrState}},
		{name: "AH state 0 ok", msg: v1msg(0, -1, withProto(51, 0, 0)), entries: []error{nil}},
		{name: "ESP state 1", msg: v1msg(0, -1, withProto(50, 1, 0)), entries: []error{ErrState}},
		{name: "template of any protocol and state", msg: v1msg(0, -1, withProto(99, 15, FlagTemplate)), entries: []error{nil}},
		{name: "template state 16", msg: v1msg(0, -1, withProto(6, 16, FlagTemplate)), entries: []error{ErrState}},
		{name: "v0 good", msg: v0msg(1, v0entry(6, 0, 1)), entries: []error{nil}},
		{name: "v0 count above entries", msg: v0msg(2, v0entry(6, 0, 1)), entries: []error{nil}, err: ErrTruncated},
		{name: "v0 seq flags without seq data", msg: v0msg(1, v0entry(6, 0x0400, 1)), err: ErrTruncated},
		{name: "v0 unknown protocol", msg: v0msg(2, v0entry(47, 0, 0), v0entry(17, 0, 0)), entries: []error{ErrProto, nil}},
		{name: "v0 bad state", msg: v0msg(1, v0entry(6, 0, 11)), entries: []error{ErrState}},
		{name: "v0 4-byte header of a would-be v1", msg: []byte{0, 0, 0, 4}, reset: ErrVersion},
		{name: "v0 5 bytes", msg: []byte{1, 0, 0, 5, 0}, err: ErrTruncated},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var r Reader
			err := r.Reset(tt.msg, tt.syncID)
			if !errors.Is(err, tt.reset) || (err == nil) != (tt.reset == nil) {
				t.Fatalf("Reset: %v, want %v", err, tt.reset)
			}
			var got []error
			for r.Next() {
				got = append(got, r.EntryErr())
			}
			if len(got) != len(tt.entries) {
				t.Fatalf("entries: %v, want %v", got, tt.entries)
			}
			for i := range got {
				if got[i] != tt.entries[i] {
					t.Errorf("entry %d: %v, want %v", i, got[i], tt.entries[i])
				}
			}
			want := tt.err
			if tt.reset != nil {
				want = tt.reset
			}
			if r.Err() != want {
				t.Errorf("Err: %v, want %v", r.Err(), want)
			}
			if tt.checkHdr != nil && !tt.checkHdr(r.Header()) {
				t.Errorf("header %+v", r.Header())
			}
		})
	}
}

func TestReaderZeroAlloc(t *testing.T) {
	msg := mustHex(t, goldenV1Mixed)
	var r Reader
	n := testing.AllocsPerRun(100, func() {
		if r.Reset(msg, 0) != nil {
			t.Fatal("reset")
		}
		for r.Next() {
			_ = r.Entry()
		}
	})
	if n != 0 {
		t.Errorf("%v allocations per message, want 0", n)
	}
}

// BenchmarkReader decodes a full message of the default sync_maxlen (1472
// bytes): 40 IPv4 entries, or 20 IPv6 ones.
func BenchmarkReader(b *testing.B) {
	for _, ipv6 := range []bool{false, true} {
		name := "ipv4"
		e := goldenV1IPv4Entry
		if ipv6 {
			name = "ipv6"
			e.CAddr, e.VAddr, e.DAddr = c6, v6, d6
		}
		b.Run(name, func(b *testing.B) {
			bl, _ := NewBuilder(BuilderConfig{Version: 1})
			var msg []byte
			for msg == nil {
				msg, _ = bl.Add(&e, 0)
			}
			var r Reader
			b.ReportAllocs()
			b.SetBytes(int64(len(msg)))
			n := 0
			for b.Loop() {
				_ = r.Reset(msg, 0)
				for r.Next() {
					n += int(r.Entry().CPort)
				}
			}
			b.ReportMetric(float64(r.Header().Count), "entries/msg")
		})
	}
}
