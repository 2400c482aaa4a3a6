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

// Test helpers. The environment is read here, never in the library:
//
//	LVSLAB_TRACE=1        log one line per delivered frame and per drop
//	LVSLAB_PCAPDIR=dir    write every segment's pcap to dir/<test>/ (else
//	                      pcaps are written to a temporary directory only
//	                      when a test fails, and its path is logged)

// lab is a Network wired to a test: corrupt packets fail the test, loops
// are fatal, pcaps are kept in memory and saved on failure.
type lab struct {
	*Network
	t            testing.TB
	pcaps        map[string]*bytes.Buffer
	allowCorrupt bool
	drops        []Drop
}

// tlogWriter logs each written line through t.Log.
type tlogWriter struct{ t testing.TB }

func (w tlogWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func newLab(t testing.TB, seed uint64, opts ...func(*Config)) *lab {
	t.Helper()
	l := &lab{t: t, pcaps: make(map[string]*bytes.Buffer)}
	cfg := Config{
		Seed:   seed,
		Clock:  nil,
		Fatalf: t.Fatalf,
		OnDrop: func(d Drop) {
			d.Packet = clone(d.Packet)
			l.drops = append(l.drops, d)
			if d.Reason.Corrupt() && !l.allowCorrupt {
				t.Errorf("corrupt packet: %v", d)
			}
		},
	}
	if os.Getenv("LVSLAB_TRACE") == "1" {
		cfg.Trace = tlogWriter{t}
	}
	for _, o := range opts {
		o(&cfg)
	}
	l.Network = New(cfg)
	t.Cleanup(l.savePCAPs)
	return l
}

// segment adds a segment capturing into memory.
func (l *lab) segment(name string) *Segment {
	s := l.NewSegment(name)
	buf := new(bytes.Buffer)
	if err := s.SetPCAP(buf); err != nil {
		l.t.Fatal(err)
	}
	l.pcaps[name] = buf
	return s
}

func (l *lab) savePCAPs() {
	dir := os.Getenv("LVSLAB_PCAPDIR")
	if dir == "" && !l.t.Failed() {
		return
	}
	name := strings.NewReplacer("/", "_", " ", "_").Replace(l.t.Name())
	if dir == "" {
		var err error
		if dir, err = os.MkdirTemp("", "lvslab-"+name+"-"); err != nil {
			l.t.Logf("pcaps not saved: %v", err)
			return
		}
	} else {
		dir = filepath.Join(dir, name)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			l.t.Logf("pcaps not saved: %v", err)
			return
		}
	}
	for seg, buf := range l.pcaps {
		if err := os.WriteFile(filepath.Join(dir, seg+".pcap"), buf.Bytes(), 0o644); err != nil {
			l.t.Logf("pcap %s not saved: %v", seg, err)
		}
	}
	l.t.Logf("pcaps in %s", dir)
}

// frames returns the frames delivered on a segment so far.
func (l *lab) frames(seg string) [][]byte {
	l.t.Helper()
	_, recs, err := ReadPCAP(bytes.NewReader(l.pcaps[seg].Bytes()))
	if err != nil {
		l.t.Fatalf("pcap %s: %v", seg, err)
	}
	out := make([][]byte, len(recs))
	for i, r := range recs {
		out[i] = r.Data
	}
	return out
}

// dropped counts the drops reported for reason on host ("" for any host).
func (l *lab) dropped(host string, r DropReason) int {
	n := 0
	for _, d := range l.drops {
		if d.Reason == r && (host == "" || d.Host == host) {
			n++
		}
	}
	return n
}

func pfx(s string) netip.Prefix       { return netip.MustParsePrefix(s) }
func ip(s string) netip.Addr          { return netip.MustParseAddr(s) }
func ap(s string) netip.AddrPort      { return netip.MustParseAddrPort(s) }
func anyPort(p uint16) netip.AddrPort { return netip.AddrPortFrom(netip.Addr{}, p) }

// mustGW sets a default gateway or fails.
func mustGW(t testing.TB, h *Host, gw string) {
	t.Helper()
	if err := h.SetDefaultGateway(ip(gw)); err != nil {
		t.Fatal(err)
	}
}

// decoded is a frame decoded far enough for assertions.
type decoded struct {
	src, dst MAC
	etype    uint16
	ip       ipHdr
	hasIP    bool
	l4       []byte
	tcp      tcpSeg
	hasTCP   bool
	arpOp    uint16
	arpSPA   netip.Addr
	arpTPA   netip.Addr
}

func decode(frame []byte) decoded {
	d := decoded{src: macAt(frame[6:]), dst: macAt(frame), etype: be16(frame[12:])}
	p := frame[ethHdrLen:]
	switch d.etype {
	case etherTypeARP:
		d.arpOp = be16(p[6:])
		d.arpSPA, d.arpTPA = addr4At(p[14:]), addr4At(p[24:])
	case etherTypeIPv4, etherTypeIPv6:
		h, r := parseIP(p, false)
		if r != 0 {
			return d
		}
		d.ip, d.hasIP = h, true
		d.l4 = p[h.hlen:h.tlen]
		if h.proto == protoTCP && !h.isFragment() {
			d.tcp, d.hasTCP = parseTCP(d.l4)
		}
	}
	return d
}

// ttl returns a frame's IP TTL / hop limit.
func (d decoded) ttl() uint8 { return d.ip.ttl }

// advanceUntil advances the clock in steps of d until cond holds or max
// elapses, failing the test in the second case.
func (l *lab) advanceUntil(cond func() bool, step, max time.Duration) {
	l.t.Helper()
	if !l.AdvanceUntil(cond, step, max) {
		l.t.Fatalf("condition not met after %v", max)
	}
}
