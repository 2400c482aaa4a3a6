package ipvssync

import (
	"bytes"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func addSeeds(f *testing.F) {
	for _, s := range []string{goldenV1IPv4, goldenV1Mixed, goldenV0} {
		f.Add(mustHex(f, s))
	}
	files, _ := filepath.Glob(filepath.Join("testdata", "kernel", "*.hex"))
	for _, p := range files {
		raw, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(mustHex(f, string(raw)))
	}
	f.Add([]byte{})
	f.Add([]byte{0, 0, 0, 8, 0, 1, 0, 0})
}

// FuzzDecode: the Reader never panics nor reads past the message, and
// every entry it accepts encodes back to an entry that decodes the same.
func FuzzDecode(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, msg []byte) {
		var r Reader
		if r.Reset(msg, 0) != nil {
			if r.Next() {
				t.Fatal("entries after a refused header")
			}
			return
		}
		v1 := r.Header().Version == Version1
		for r.Next() {
			if r.EntryErr() != nil {
				continue
			}
			e := *r.Entry()
			var enc []byte
			var err error
			if v1 {
				enc, err = AppendEntry(nil, &e)
			} else {
				enc, err = AppendEntryV0(nil, &e)
			}
			if err != nil {
				if errors.Is(err, ErrPENameOnly) {
					continue // accepted (and ignored) by a receiver, never sent
				}
				t.Fatalf("re-encode %+v: %v", e, err)
			}
			var m []byte
			if v1 {
				m = v1msg(0, -1, enc)
			} else {
				m = append([]byte{1, 0, 0, byte(4 + len(enc))}, enc...)
			}
			var r2 Reader
			if err := r2.Reset(m, 0); err != nil || !r2.Next() || r2.EntryErr() != nil {
				t.Fatalf("decode of re-encoded entry: %v %v %v", err, r2.EntryErr(), r2.Err())
			}
			if diff := cmp.Diff(e, *r2.Entry(), cmpEntry); diff != "" {
				t.Fatalf("round trip (-decoded +re-decoded):\n%s", diff)
			}
		}
	})
}

// FuzzRoundTrip: decode(encode(x)) == x for every entry the encoders take.
func FuzzRoundTrip(f *testing.F) {
	f.Add(uint8(6), uint32(0x100), uint16(1), []byte("\xc0\x00\x02\x0a\xc6\x33\x64\x01\xcb\x00\x71\x05"), uint16(1), uint16(2), uint16(3), uint32(0), uint32(900), false, uint32(5), []byte(nil), []byte(nil), uint8(1))
	f.Add(uint8(17), uint32(0x600), uint16(0), bytes.Repeat([]byte{0x20}, 48), uint16(5060), uint16(5060), uint16(5060), uint32(7), uint32(300), true, uint32(9), []byte("call"), []byte("sip"), uint8(1))
	f.Add(uint8(6), uint32(0x83), uint16(1), []byte("\xc0\x00\x02\x0a\xc6\x33\x64\x01\xcb\x00\x71\x05"), uint16(1), uint16(2), uint16(3), uint32(0), uint32(0), false, uint32(0), []byte(nil), []byte(nil), uint8(0))
	f.Fuzz(func(t *testing.T, p uint8, flags uint32, state uint16, addrs []byte, cport, vport, dport uint16,
		fwmark, timeout uint32, hasSeq bool, seqSeed uint32, peData, peName []byte, version uint8) {
		e := Entry{Proto: p, Flags: flags, State: state, CPort: cport, VPort: vport, DPort: dport,
			FWMark: fwmark, Timeout: timeout, HasSeq: hasSeq, PEData: peData, PEName: peName}
		switch {
		case len(addrs) >= 48:
			e.CAddr = netip.AddrFrom16([16]byte(addrs[:16]))
			e.VAddr = netip.AddrFrom16([16]byte(addrs[16:32]))
			e.DAddr = netip.AddrFrom16([16]byte(addrs[32:48]))
		case len(addrs) >= 12:
			e.CAddr = netip.AddrFrom4([4]byte(addrs[:4]))
			e.VAddr = netip.AddrFrom4([4]byte(addrs[4:8]))
			e.DAddr = netip.AddrFrom4([4]byte(addrs[8:12]))
		default:
			return
		}
		if hasSeq {
			e.InSeq = Seq{seqSeed, seqSeed * 3, ^seqSeed}
			e.OutSeq = Seq{^seqSeed, seqSeed + 1, seqSeed * 7}
		}
		version %= 2
		if version == Version0 {
			// What v0 carries: 16 bits of flags, sequence data exactly
			// when the flags say so, nothing else.
			e.Flags &= 0xffff
			e.FWMark, e.Timeout, e.PEData, e.PEName = 0, 0, nil, nil
			e.HasSeq = e.Flags&FlagSeqMask != 0
			if !e.HasSeq {
				e.InSeq, e.OutSeq = Seq{}, Seq{}
			}
		}
		b, err := NewBuilder(BuilderConfig{Version: version, SyncID: 1})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := b.Add(&e, 0); err != nil {
			return // refused by the encoder: nothing to round-trip
		}
		m := b.Flush()
		var r Reader
		if err := r.Reset(m, 1); err != nil {
			t.Fatalf("Reset: %v", err)
		}
		if !r.Next() {
			t.Fatalf("no entry: %v", r.Err())
		}
		if err := r.EntryErr(); err != nil && !errors.Is(err, ErrProto) && !errors.Is(err, ErrState) && !errors.Is(err, ErrPEParams) {
			t.Fatalf("EntryErr: %v", err)
		}
		if diff := cmp.Diff(e, *r.Entry(), cmpEntry); diff != "" {
			t.Fatalf("round trip (-sent +decoded):\n%s", diff)
		}
		if r.Next() || r.Err() != nil {
			t.Fatalf("extra entry or error: %v", r.Err())
		}
	})
}

// FuzzVerify: Verify never panics, never accepts what was not signed
// with the key, and what it accepts is a message the Reader takes.
func FuzzVerify(f *testing.F) {
	s, err := NewSigner(9, testKey, t0)
	if err != nil {
		f.Fatal(err)
	}
	for n := range 3 {
		m, err := s.Sign(plainMsg(f, n+1), t0)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(m)
	}
	addSeeds(f)
	f.Fuzz(func(t *testing.T, msg []byte) {
		v := newVerifier(t, testKey)
		orig := bytes.Clone(msg)
		body, err := v.Verify(msg, t0)
		if err != nil {
			if !bytes.Equal(msg, orig) {
				t.Fatal("refused message modified")
			}
			return
		}
		if len(body)+TrailerLen != len(orig) || body[5] != Version1 {
			t.Fatalf("accepted % x -> % x", orig, body)
		}
		var r Reader
		if err := r.Reset(body, 0); err != nil {
			t.Fatalf("verified body refused: %v", err)
		}
		for r.Next() {
		}
		if _, err := v.Verify(orig, t0); !errors.Is(err, ErrReplay) {
			t.Fatalf("second Verify: %v", err)
		}
	})
}
