package ipvssync

import (
	"bytes"
	"encoding/hex"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

var cmpEntry = cmp.Options{cmp.Comparer(func(a, b netip.Addr) bool { return a == b }), cmpopts.EquateEmpty()}

// decodeAll reads every entry of msg; entries with an EntryErr are kept
// with their error in errs (nil for good ones).
func decodeAll(t testing.TB, msg []byte, syncID uint8) (Header, []Entry, []error, error) {
	t.Helper()
	var r Reader
	if err := r.Reset(msg, syncID); err != nil {
		return r.Header(), nil, nil, err
	}
	var es []Entry
	var errs []error
	for r.Next() {
		e := *r.Entry()
		e.PEData = bytes.Clone(e.PEData)
		e.PEName = bytes.Clone(e.PEName)
		es = append(es, e)
		errs = append(errs, r.EntryErr())
	}
	return r.Header(), es, errs, r.Err()
}

func mustHex(t testing.TB, s string) []byte {
	t.Helper()
	var b strings.Builder
	for _, line := range strings.Split(s, "\n") {
		if i := strings.Index(line, "//"); i >= 0 {
			line = line[:i]
		}
		b.WriteString(strings.Join(strings.Fields(line), ""))
	}
	out, err := hex.DecodeString(b.String())
	if err != nil {
		t.Fatalf("bad hex: %v", err)
	}
	return out
}

var (
	a4  = netip.MustParseAddr
	c4  = a4("192.0.2.10")
	v4  = a4("198.51.100.1")
	d4  = a4("203.0.113.5")
	c6  = a4("2001:db8:c::10")
	v6  = a4("2001:db8:c::100")
	d6  = a4("2001:db8:5::11")
	mk0 = a4("0.0.0.7") // fwmark 7 as a template's virtual address
)

// A version-1 message with one IPv4 entry, built by hand from struct
// ip_vs_sync_mesg and struct ip_vs_sync_v4.
const goldenV1IPv4 = `
00          // reserved, must be 0 (a v0 receiver reads nr_conns = 0)
05          // syncid 5
002c        // size 44 = 8 + 36
01          // nr_conns 1
01          // version 1 (SYNC_PROTO_VER)
0000        // spare
00          // type 0: IPv4
06          // protocol TCP
0024        // ver_size: version 0 << 12 | size 36
00000083    // flags: DROUTE (3) | NOOUTPUT (0x80), active
0001        // state ESTABLISHED
c350        // cport 50000
0050        // vport 80
1f90        // dport 8080
00000000    // fwmark 0
00000384    // timeout 900 s
c000020a    // caddr 192.0.2.10
c6336401    // vaddr 198.51.100.1
cb007105    // daddr 203.0.113.5
`

var goldenV1IPv4Entry = Entry{
	Proto: 6, Flags: 0x83, State: 1, CAddr: c4, VAddr: v4, DAddr: d4,
	CPort: 50000, VPort: 80, DPort: 8080, Timeout: 900,
}

// A version-1 message with an IPv6 entry carrying sequence data (and so
// 2 bytes of padding), an IPv4 UDP entry with persistence-engine data and
// name, and an IPv4 fwmark template.
const goldenV1Mixed = `
00 00 00c0 03 01 0000  // reserved, syncid 0, size 192, 3 conns, version 1, spare
// entry 1: struct ip_vs_sync_v6 + SEQ_DATA option
01          // type: STYPE_F_INET6
06          // protocol TCP
0062        // ver_size: size 98 = 72 + 2 + 24
00000700    // flags: IN_SEQ | OUT_SEQ | INACTIVE, NAT
0005        // state TIME_WAIT
a7f8 0015 0015  // cport 43000, vport 21, dport 21
00000000    // fwmark
00000078    // timeout 120 s
20010db8000c00000000000000000010  // caddr 2001:db8:c::10
20010db8000c00000000000000000100  // vaddr 2001:db8:c::100
20010db8000500000000000000000011  // daddr 2001:db8:5::11
01 18       // option SEQ_DATA, length 24
00000064 00000005 00000000  // in_seq: init_seq 100, delta 5, previous_delta 0
000000c8 fffffffd 00000002  // out_seq: init_seq 200, delta -3, previous_delta 2
0000        // padding to 4 bytes (not in the entry's size)
// entry 2: struct ip_vs_sync_v4 + PE_DATA + PE_NAME
00 11 0030  // IPv4, UDP, size 48 = 36 + 2 + 5 + 2 + 3
00000100    // flags: INACTIVE, NAT
0000        // state 0 (UDP)
13c4 13c4 13c4  // ports 5060
00000000 0000012c  // fwmark 0, timeout 300
c000020a c6336401 cb007105  // caddr, vaddr, daddr
02 05 6162634078  // PE_DATA "abc@x"
03 03 736970      // PE_NAME "sip"
// entry 3: fwmark template (protocol IPPROTO_IP, vaddr = the mark)
00 00 0024  // IPv4, protocol 0, size 36
00001183    // flags: TEMPLATE | INACTIVE | NOOUTPUT | DROUTE
0001        // state ASSURED
0000 0000 0000  // cport 0, vport 0, dport 0 (fwmark service, DR)
00000007 00000168  // fwmark 7, timeout 360 s
c0000200    // caddr: the client network 192.0.2.0
00000007    // vaddr: fwmark 7 as an address
cb007105    // daddr
`

var goldenV1MixedEntries = []Entry{
	{
		Proto: 6, Flags: 0x700, State: 5, CAddr: c6, VAddr: v6, DAddr: d6,
		CPort: 43000, VPort: 21, DPort: 21, Timeout: 120, HasSeq: true,
		InSeq: Seq{100, 5, 0}, OutSeq: Seq{200, 0xfffffffd, 2},
	},
	{
		Proto: 17, Flags: 0x100, CAddr: c4, VAddr: v4, DAddr: d4,
		CPort: 5060, VPort: 5060, DPort: 5060, Timeout: 300,
		PEData: []byte("abc@x"), PEName: []byte("sip"),
	},
	{
		Proto: 0, Flags: 0x1183, State: 1, CAddr: a4("192.0.2.0"), VAddr: mk0, DAddr: d4,
		FWMark: 7, Timeout: 360,
	},
}

// A version-0 message: struct ip_vs_sync_mesg_v0 and two struct
// ip_vs_sync_conn_v0, the second with struct ip_vs_sync_conn_options.
const goldenV0 = `
02          // nr_conns 2
09          // syncid 9
004c        // size 76 = 4 + 24 + 48
00          // reserved
06          // protocol TCP
c350 0050 1f90  // cport 50000, vport 80, dport 8080
c000020a c6336401 cb007105  // caddr, vaddr, daddr
0083        // flags (16 bits): DROUTE | NOOUTPUT
0001        // state ESTABLISHED
00 06 c351 0015 0015  // reserved, TCP, cport 50001, vport 21, dport 21
c000020a c6336401 cb007105
0600        // flags: IN_SEQ | OUT_SEQ, NAT, active
0007        // state CLOSE_WAIT
00000064 00000005 00000000  // in_seq
000000c8 fffffffd 00000002  // out_seq
`

var goldenV0Entries = []Entry{
	{Proto: 6, Flags: 0x83, State: 1, CAddr: c4, VAddr: v4, DAddr: d4, CPort: 50000, VPort: 80, DPort: 8080},
	{
		Proto: 6, Flags: 0x600, State: 7, CAddr: c4, VAddr: v4, DAddr: d4, CPort: 50001, VPort: 21, DPort: 21,
		HasSeq: true, InSeq: Seq{100, 5, 0}, OutSeq: Seq{200, 0xfffffffd, 2},
	},
}

func TestGoldenDecode(t *testing.T) {
	tests := []struct {
		name    string
		msg     string
		syncID  uint8
		hdr     Header
		entries []Entry
	}{
		{"v1 ipv4", goldenV1IPv4, 5, Header{Version: 1, SyncID: 5, Size: 44, Count: 1}, []Entry{goldenV1IPv4Entry}},
		{"v1 mixed", goldenV1Mixed, 0, Header{Version: 1, SyncID: 0, Size: 192, Count: 3}, goldenV1MixedEntries},
		{"v0", goldenV0, 9, Header{Version: 0, SyncID: 9, Size: 76, Count: 2}, goldenV0Entries},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			msg := mustHex(t, tt.msg)
			h, es, errs, err := decodeAll(t, msg, tt.syncID)
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			for i, e := range errs {
				if e != nil {
					t.Errorf("entry %d: %v", i, e)
				}
			}
			if diff := cmp.Diff(tt.hdr, h); diff != "" {
				t.Errorf("header (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.entries, es, cmpEntry); diff != "" {
				t.Errorf("entries (-want +got):\n%s", diff)
			}
		})
	}
}

func TestGoldenEncode(t *testing.T) {
	tests := []struct {
		name    string
		msg     string
		version uint8
		syncID  uint8
		entries []Entry
	}{
		{"v1 ipv4", goldenV1IPv4, 1, 5, []Entry{goldenV1IPv4Entry}},
		{"v1 mixed", goldenV1Mixed, 1, 0, goldenV1MixedEntries},
		{"v0", goldenV0, 0, 9, goldenV0Entries},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := NewBuilder(BuilderConfig{Version: tt.version, SyncID: tt.syncID})
			if err != nil {
				t.Fatal(err)
			}
			for i := range tt.entries {
				if full, err := b.Add(&tt.entries[i], 0); err != nil || full != nil {
					t.Fatalf("Add %d: full %x, %v", i, full, err)
				}
			}
			got := b.Flush()
			want := mustHex(t, tt.msg)
			if !bytes.Equal(got, want) {
				t.Errorf("encoded\n got %x\nwant %x", got, want)
			}
		})
	}
}

// TestKernelCaptures decodes sync messages a real kernel master sent
// (Debian 6.1.0-50-amd64 in the oracle VM; testdata/kernel/s1-sync-capture.sh
// made them and .out is its transcript), checks entries against what the
// transcript's listings show, and re-encodes them: the Builder must give
// back the kernel's bytes exactly.
func TestKernelCaptures(t *testing.T) {
	vip, cl := a4("198.18.0.100"), a4("198.18.0.10")
	rs1, rs2 := a4("198.19.0.11"), a4("198.19.0.12")
	tests := []struct {
		file    string
		version uint8
		count   int
		check   map[int]Entry // some entries, by index
	}{
		{"v1-tcp-udp.hex", 1, 7, map[int]Entry{
			// client 40000 -> rs2: synced at its 3rd packet, ESTABLISHED, 900 s
			0: {Proto: 6, Flags: 0, State: 1, CAddr: cl, VAddr: vip, DAddr: rs2, CPort: 40000, VPort: 80, DPort: 80, Timeout: 900},
			// then forced by the changes to CLOSE_WAIT and TIME_WAIT, inactive
			1: {Proto: 6, Flags: 0x100, State: 7, CAddr: cl, VAddr: vip, DAddr: rs2, CPort: 40000, VPort: 80, DPort: 80, Timeout: 60},
			2: {Proto: 6, Flags: 0x100, State: 5, CAddr: cl, VAddr: vip, DAddr: rs2, CPort: 40000, VPort: 80, DPort: 80, Timeout: 120},
			// the UDP flow at its 3rd datagram
			6: {Proto: 17, Flags: 0x100, State: 0, CAddr: cl, VAddr: vip, DAddr: rs2, CPort: 41000, VPort: 80, DPort: 80, Timeout: 300},
		}},
		{"v1-template-ipv6.hex", 1, 12, map[int]Entry{
			// the persistence template, sent on every packet of its connection
			0: {Proto: 6, Flags: 0x1100, State: 0, CAddr: cl, VAddr: vip, DAddr: rs1, VPort: 81, DPort: 81, Timeout: 300},
			1: {Proto: 6, Flags: 0x1100, State: 1, CAddr: cl, VAddr: vip, DAddr: rs1, VPort: 81, DPort: 81, Timeout: 300},
			2: {Proto: 6, Flags: 0, State: 1, CAddr: cl, VAddr: vip, DAddr: rs1, CPort: 42000, VPort: 81, DPort: 81, Timeout: 900},
			9: {Proto: 6, Flags: 0, State: 1, CAddr: c6, VAddr: v6, DAddr: d6, CPort: 43000, VPort: 80, DPort: 80, Timeout: 900},
		}},
		{"v0.hex", 0, 10, map[int]Entry{
			0: {Proto: 6, Flags: 0, State: 1, CAddr: cl, VAddr: vip, DAddr: rs2, CPort: 44000, VPort: 80, DPort: 80},
			// the template left ASSURED by the first round; v0 has no timeout
			4: {Proto: 6, Flags: 0x1100, State: 1, CAddr: cl, VAddr: vip, DAddr: rs1, VPort: 81, DPort: 81},
			9: {Proto: 17, Flags: 0x100, State: 0, CAddr: cl, VAddr: vip, DAddr: rs1, CPort: 44200, VPort: 80, DPort: 80},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			raw, err := os.ReadFile(filepath.Join("testdata", "kernel", tt.file))
			if err != nil {
				t.Fatal(err)
			}
			msg := mustHex(t, string(raw))
			h, es, errs, err := decodeAll(t, msg, 7)
			if err != nil {
				t.Fatal(err)
			}
			if h.Version != tt.version || h.SyncID != 7 || int(h.Count) != tt.count || len(es) != tt.count {
				t.Fatalf("header %+v, %d entries; want version %d, syncid 7, %d entries", h, len(es), tt.version, tt.count)
			}
			for i, e := range errs {
				if e != nil {
					t.Errorf("entry %d: %v", i, e)
				}
			}
			for i, want := range tt.check {
				if diff := cmp.Diff(want, es[i], cmpEntry); diff != "" {
					t.Errorf("entry %d (-want +got):\n%s", i, diff)
				}
			}
			b, _ := NewBuilder(BuilderConfig{Version: tt.version, SyncID: 7})
			for i := range es {
				if full, err := b.Add(&es[i], 0); err != nil || full != nil {
					t.Fatalf("Add %d: %x %v", i, full, err)
				}
			}
			if got := b.Flush(); !bytes.Equal(got, msg) {
				t.Errorf("re-encoded\n got %x\nwant %x", got, msg)
			}
		})
	}
}
