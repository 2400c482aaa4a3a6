package lvslab

import (
	"bytes"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestPCAP(t *testing.T) {
	l, a, _ := twoHosts(t, 40, false)
	a.Ping(netip.Addr{}, ip("192.0.2.2"), 10)
	l.Drain()
	l.Advance(1500 * time.Millisecond)
	a.Ping(netip.Addr{}, ip("192.0.2.2"), 1400)
	l.Drain()

	raw := l.pcaps["lan"].Bytes()
	// File header, little-endian: magic a1b23c4d (nanoseconds), 2.4,
	// snaplen 262144, LINKTYPE_ETHERNET.
	wantHdr := []byte{0x4d, 0x3c, 0xb2, 0xa1, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 4, 0, 1, 0, 0, 0}
	if !bytes.Equal(raw[:pcapHeaderLen], wantHdr) {
		t.Fatalf("header % x", raw[:pcapHeaderLen])
	}
	lt, recs, err := ReadPCAP(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	seg := l.Segments()[0]
	if lt != linkTypeEthernet || uint64(len(recs)) != seg.Delivered() || len(recs) != 6 {
		t.Fatalf("linktype %d, %d records, segment delivered %d", lt, len(recs), seg.Delivered())
	}
	for i, r := range recs {
		if len(r.Data) < ethMinFrame {
			t.Errorf("record %d: %d bytes, below the Ethernet minimum", i, len(r.Data))
		}
		if i > 0 && r.Time < recs[i-1].Time {
			t.Errorf("record %d goes back in time", i)
		}
	}
	if recs[4].Time != 1500*time.Millisecond || len(recs[4].Data) != ethHdrLen+ipv4HdrLen+icmpHdrLen+1400 {
		t.Errorf("second ping request at %v, %d bytes", recs[4].Time, len(recs[4].Data))
	}
	// Record layout by hand: the first record header follows the file
	// header: ts_sec 0, ts_nsec 0, incl_len = orig_len = 60 (a padded ARP).
	if got := raw[pcapHeaderLen : pcapHeaderLen+pcapRecordLen]; !bytes.Equal(got, []byte{0, 0, 0, 0, 0, 0, 0, 0, 60, 0, 0, 0, 60, 0, 0, 0}) {
		t.Errorf("first record header % x", got)
	}

	// A truncated file is an error, not a silent short read.
	if _, _, err := ReadPCAP(bytes.NewReader(raw[:len(raw)-3])); err == nil {
		t.Error("truncated pcap parsed")
	}
	if _, _, err := ReadPCAP(bytes.NewReader(append([]byte{1, 2, 3, 4}, raw[4:]...))); err == nil {
		t.Error("bad magic parsed")
	}
}

func TestPCAPDir(t *testing.T) {
	dir := t.TempDir()
	n := New(Config{Seed: 1, PCAPDir: dir, Fatalf: t.Fatalf})
	lan := n.NewSegment("lan")
	a, b := n.NewHost("a", HostConfig{}), n.NewHost("b", HostConfig{})
	a.AddInterface(lan, "eth0", pfx("192.0.2.1/24"))
	b.AddInterface(lan, "eth0", pfx("192.0.2.2/24"))
	a.Ping(netip.Addr{}, ip("192.0.2.2"), 8)
	n.Drain()
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(filepath.Join(dir, "lan.pcap"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	_, recs, err := ReadPCAP(f)
	if err != nil || len(recs) != 4 {
		t.Fatalf("%d records, %v", len(recs), err)
	}
}

// TestDeterminism: the same seed gives byte-identical pcaps and traces; a
// different seed changes the ISNs, ports and IP IDs, hence the bytes.
func TestDeterminism(t *testing.T) {
	run := func(seed uint64) (map[string][]byte, string) {
		var trace strings.Builder
		l, client, d, _ := tunNet(t, seed, true, func(c *Config) { c.Trace = &trace })
		lost := false
		l.Segments()[1].SetDropFilter(func(f []byte) bool {
			if x := decode(f); x.hasTCP && len(x.tcp.data) > 0 && !lost {
				lost = true
				return true
			}
			return false
		})
		for i := range 3 {
			c, err := client.DialTCP(netip.AddrPort{}, netip.AddrPortFrom(d.vip, 80), nil)
			if err != nil {
				t.Fatal(err)
			}
			l.Drain()
			c.Write(bytes.Repeat([]byte{byte(i)}, 3000))
			l.advanceUntil(func() bool { return c.PeerClosed() }, 100*time.Millisecond, 5*time.Second)
			c.Close()
			l.Advance(time.Second)
		}
		out := map[string][]byte{}
		for name, b := range l.pcaps {
			out[name] = bytes.Clone(b.Bytes())
		}
		return out, trace.String()
	}
	p1, t1 := run(42)
	p2, t2 := run(42)
	p3, _ := run(43)
	if len(p1) != 2 {
		t.Fatalf("%d pcaps", len(p1))
	}
	for name := range p1 {
		if !bytes.Equal(p1[name], p2[name]) {
			t.Errorf("segment %s: same seed, different pcaps", name)
		}
		if bytes.Equal(p1[name], p3[name]) {
			t.Errorf("segment %s: different seeds, same pcaps", name)
		}
	}
	if t1 != t2 || t1 == "" {
		t.Error("same seed, different traces")
	}
	if !strings.Contains(t1, "[dropped by filter]") || !strings.Contains(t1, "frag-needed") {
		t.Error("scenario did not exercise loss and PMTU")
	}
}
