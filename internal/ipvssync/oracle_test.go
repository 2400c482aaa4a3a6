package ipvssync

import (
	"encoding/hex"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// craftedMessages are messages made with this package and sent to a real
// kernel backup by testdata/kernel/s2-crafted.sh in the oracle VM (Debian
// 6.1.0-50-amd64); what the kernel made of them is in s2-crafted.out, and
// TestKernelCrafted checks that GoLVS's backup logic agrees. Among them: a
// signed message (the kernel drops it), a v1 entry with timeout 0 (the
// protocol's timeout), a template in state 5 (accepted, listed "ERR!"), an
// unknown mandatory option (that entry dropped), an entry of type 2 (the
// rest of the message dropped), a v0 one-packet connection (created and
// expired at once: not listed, not counted), version byte 3 and a size
// mismatch (nothing). The backup has TCP and UDP services on
// 198.18.0.100:80 with NAT real servers 198.19.0.11:80 and 198.19.0.12:80.
func craftedMessages(t testing.TB) []struct{ name, hex string } {
	t.Helper()
	vip, rs1, rs2 := a4("198.18.0.100"), a4("198.19.0.11"), a4("198.19.0.12")
	conn := func(cport uint16, flags uint32, state uint16, timeout uint32) Entry {
		return Entry{Proto: 6, Flags: flags, State: state, CAddr: a4("198.18.0.50"), VAddr: vip, DAddr: rs1,
			CPort: cport, VPort: 80, DPort: 80, Timeout: timeout}
	}
	build := func(version uint8, es ...Entry) []byte {
		b, err := NewBuilder(BuilderConfig{Version: version, SyncID: 3, Reserve: TrailerLen})
		if err != nil {
			t.Fatal(err)
		}
		for i := range es {
			if full, err := b.Add(&es[i], 0); err != nil || full != nil {
				t.Fatalf("%v %v", full, err)
			}
		}
		return b.Flush()
	}
	signer, err := NewSigner(1, testKey, t0)
	if err != nil {
		t.Fatal(err)
	}
	signed, err := signer.Sign(build(1, conn(50001, 0, 1, 900)), t0)
	if err != nil {
		t.Fatal(err)
	}
	tpl := Entry{Proto: 6, Flags: FlagTemplate, State: 5, CAddr: a4("198.18.0.51"), VAddr: vip, DAddr: rs1, VPort: 80, DPort: 80, Timeout: 200}
	unknownOpt := v1msg(3, -1, withOpts(rawEntry(t, conn(50003, 0, 1, 900)), 5, 1, 0), rawEntry(t, conn(50004, 0, 1, 900)))
	badType := v1msg(3, -1, rawEntry(t, conn(50005, 0, 1, 900)), patch(rawEntry(t, conn(50006, 0, 1, 900)), 0, 2), rawEntry(t, conn(50010, 0, 1, 900)))
	ops := Entry{Proto: 17, Flags: FlagOnePacket | FlagInactive, CAddr: a4("198.18.0.52"), VAddr: vip, DAddr: rs2, CPort: 50007, VPort: 80, DPort: 80}
	v0tpl := Entry{Proto: 6, Flags: FlagTemplate, State: 1, CAddr: a4("198.18.0.53"), VAddr: vip, DAddr: rs1, VPort: 80, DPort: 80}
	nodest := conn(50009, 0, 1, 900)
	nodest.VAddr = a4("198.18.0.200")
	v3 := build(1, conn(50011, 0, 1, 900))
	v3[5] = 3
	return []struct{ name, hex string }{
		{"plain", hex.EncodeToString(build(1, conn(50000, 0, 1, 900)))},
		{"signed", hex.EncodeToString(signed)},
		{"timeout0", hex.EncodeToString(build(1, conn(50002, FlagInactive, 7, 0)))},
		{"tplstate5", hex.EncodeToString(build(1, tpl))},
		{"unknownopt", hex.EncodeToString(unknownOpt)},
		{"badtype", hex.EncodeToString(badType)},
		{"v0ops", hex.EncodeToString(build(0, ops))},
		{"v0", hex.EncodeToString(build(0, conn(50008, 0, 1, 0), v0tpl))},
		{"nodest", hex.EncodeToString(build(1, nodest))},
		{"version3", hex.EncodeToString(v3)},
		{"sizemismatch", hex.EncodeToString(append(build(1, conn(50012, 0, 1, 900)), 0))},
	}
}

// TestKernelCrafted checks the crafted messages embedded in
// testdata/kernel/s2-crafted.sh against the code that makes them
// (UPDATE_CRAFTED=1 rewrites them there; the oracle run must then be
// redone), and what GoLVS's backup does with them against what the kernel
// backup did: the connections it listed afterwards (s2-crafted.out), with
// their timeouts.
func TestKernelCrafted(t *testing.T) {
	script := filepath.Join("testdata", "kernel", "s2-crafted.sh")
	var b strings.Builder
	msgs := craftedMessages(t)
	for _, m := range msgs {
		fmt.Fprintf(&b, "%s %s\n", m.name, m.hex)
	}
	sc, err := os.ReadFile(script)
	if err != nil {
		t.Fatal(err)
	}
	const open, end = "cat > /tmp/crafted.txt <<'EOF'\n", "EOF\n"
	i := strings.Index(string(sc), open)
	j := strings.Index(string(sc)[i+len(open):], end)
	if i < 0 || j < 0 {
		t.Fatalf("%s: no crafted.txt here-document", script)
	}
	if have := string(sc)[i+len(open) : i+len(open)+j]; have != b.String() {
		if os.Getenv("UPDATE_CRAFTED") != "1" {
			t.Fatalf("%s does not embed what craftedMessages makes: rerun with UPDATE_CRAFTED=1 and redo the oracle run", script)
		}
		sc = []byte(string(sc)[:i+len(open)] + b.String() + string(sc)[i+len(open)+j:])
		if err := os.WriteFile(script, sc, 0o644); err != nil {
			t.Fatal(err)
		}
	}

	// What GoLVS creates: source -> timeout, over all messages.
	got := map[string]time.Duration{}
	for _, m := range msgs {
		raw, _ := hex.DecodeString(m.hex)
		var r Reader
		if r.Reset(raw, 0) != nil {
			continue
		}
		for r.Next() {
			if r.EntryErr() != nil {
				continue
			}
			p, err := (&Backup{Threshold: 3}).Plan(r.Entry(), r.Header().Version, nil, nil, nil)
			if err != nil {
				continue
			}
			got[netip.AddrPortFrom(p.Conn.CAddr, p.Conn.CPort).String()] = p.Conn.Timeout
		}
	}

	// What the kernel listed: source -> expire, from `ipvsadm -L -n -c`.
	out, err := os.ReadFile(filepath.Join("testdata", "kernel", "s2-crafted.out"))
	if err != nil {
		t.Fatal(err)
	}
	listing := string(out)
	listing = listing[strings.Index(listing, "==== $ ip netns exec bk ipvsadm -L -n -c"):]
	listing = listing[:strings.Index(listing, "---- stderr")]
	kernel := map[string]time.Duration{}
	for _, line := range strings.Split(listing, "\n") {
		f := strings.Fields(line)
		if len(f) != 6 || (f[0] != "TCP" && f[0] != "UDP") {
			continue
		}
		var mm, ss int
		if _, err := fmt.Sscanf(f[1], "%d:%d", &mm, &ss); err != nil {
			t.Fatalf("expire %q", f[1])
		}
		kernel[f[3]] = time.Duration(mm*60+ss) * time.Second
	}
	if len(kernel) != 8 {
		t.Fatalf("%d connections in the kernel's listing, want 8", len(kernel))
	}
	for src, exp := range kernel {
		to, ok := got[src]
		if !ok {
			t.Errorf("%s: created by the kernel, not by GoLVS", src)
			continue
		}
		// The listing came a few seconds (of a slow emulated VM) after
		// the messages: the kernel's expiry is the timeout less those.
		if exp > to || exp < to-30*time.Second {
			t.Errorf("%s: kernel expire %v, GoLVS timeout %v", src, exp, to)
		}
	}
	for src := range got {
		if _, ok := kernel[src]; !ok {
			t.Errorf("%s: created by GoLVS, not by the kernel", src)
		}
	}
}
