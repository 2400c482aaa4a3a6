package ipvssync

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"
	"time"
)

var (
	testKey  = Key{ID: 1, Secret: []byte("0123456789abcdef0123456789abcdef")}
	otherKey = Key{ID: 2, Secret: []byte("fedcba9876543210fedcba9876543210")}
	t0       = time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC).UnixNano()
)

// plainMsg is a kernel-format message with room for a trailer.
func plainMsg(t testing.TB, n int) []byte {
	t.Helper()
	b, err := NewBuilder(BuilderConfig{Version: 1, SyncID: 4, Reserve: TrailerLen})
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		e := entryN(i)
		if _, err := b.Add(&e, 0); err != nil {
			t.Fatal(err)
		}
	}
	return b.Flush()
}

func newVerifier(t testing.TB, keys ...Key) *Verifier {
	t.Helper()
	v, err := NewVerifier(VerifierConfig{Keys: keys})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestSignVerify(t *testing.T) {
	s, err := NewSigner(77, testKey, t0)
	if err != nil {
		t.Fatal(err)
	}
	plain := plainMsg(t, 3)
	want := bytes.Clone(plain)
	signed, err := s.Sign(plain, t0)
	if err != nil {
		t.Fatal(err)
	}
	if len(signed) != len(want)+TrailerLen || &signed[0] != &plain[0] {
		t.Fatalf("signed %d bytes (in place: %v)", len(signed), &signed[0] == &plain[0])
	}
	// Header: only the version byte differs; Size still the plain size.
	if signed[5] != AuthVersion || !bytes.Equal(signed[:5], want[:5]) || !bytes.Equal(signed[6:len(want)], want[6:]) {
		t.Errorf("signed body % x", signed[:len(want)])
	}
	tr := signed[len(want):]
	if binary.BigEndian.Uint32(tr) != 77 || binary.BigEndian.Uint16(tr[4:]) != 1 || tr[6] != 1 || tr[7] != 0 ||
		binary.BigEndian.Uint64(tr[8:]) != uint64(t0) || int64(binary.BigEndian.Uint64(tr[16:])) != t0 {
		t.Errorf("trailer % x", tr)
	}

	// The plain Reader refuses it; a kernel would too (size mismatch).
	var r Reader
	if err := r.Reset(signed, 0); !errors.Is(err, ErrSigned) {
		t.Errorf("Reader on a signed message: %v", err)
	}
	if int(binary.BigEndian.Uint16(signed[2:])) == len(signed) {
		t.Error("header size covers the trailer: a kernel backup would not drop it")
	}

	v := newVerifier(t, otherKey, testKey)
	body, err := v.Verify(signed, t0+int64(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(body, want) {
		t.Errorf("verified body\n got % x\nwant % x", body, want)
	}
	if err := r.Reset(body, 4); err != nil {
		t.Fatal(err)
	}
	n := 0
	for r.Next() {
		n++
	}
	if n != 3 || r.Err() != nil {
		t.Errorf("%d entries, %v", n, r.Err())
	}
}

func TestVerifyRefuses(t *testing.T) {
	sign := func(t *testing.T, s *Signer, at int64) []byte {
		m, err := s.Sign(plainMsg(t, 2), at)
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	t.Run("unsigned", func(t *testing.T) {
		v := newVerifier(t, testKey)
		for _, m := range [][]byte{plainMsg(t, 2), nil, mustHex(t, goldenV0), make([]byte, 48)} {
			if _, err := v.Verify(m, t0); !errors.Is(err, ErrUnsigned) {
				t.Errorf("% x: %v", m, err)
			}
		}
	})
	t.Run("truncated or extended", func(t *testing.T) {
		v := newVerifier(t, testKey)
		s, _ := NewSigner(1, testKey, t0)
		m := sign(t, s, t0)
		if _, err := v.Verify(m[:len(m)-1], t0); !errors.Is(err, ErrUnsigned) {
			t.Errorf("cut: %v", err)
		}
		if _, err := v.Verify(append(bytes.Clone(m), 0), t0); !errors.Is(err, ErrUnsigned) {
			t.Errorf("extended: %v", err)
		}
	})
	t.Run("unknown key", func(t *testing.T) {
		v := newVerifier(t, testKey)
		s, _ := NewSigner(1, otherKey, t0)
		if _, err := v.Verify(sign(t, s, t0), t0); !errors.Is(err, ErrUnknownKey) {
			t.Errorf("%v", err)
		}
	})
	t.Run("wrong secret under a known ID", func(t *testing.T) {
		v := newVerifier(t, testKey)
		s, _ := NewSigner(1, Key{ID: testKey.ID, Secret: otherKey.Secret}, t0)
		if _, err := v.Verify(sign(t, s, t0), t0); !errors.Is(err, ErrForged) {
			t.Errorf("%v", err)
		}
	})
	t.Run("every bit flipped", func(t *testing.T) {
		s, _ := NewSigner(1, testKey, t0)
		m := sign(t, s, t0)
		for i := range len(m) * 8 {
			v := newVerifier(t, testKey)
			c := bytes.Clone(m)
			c[i/8] ^= 1 << (i % 8)
			flipped := bytes.Clone(c)
			if _, err := v.Verify(c, t0); err == nil {
				t.Fatalf("bit %d flipped: accepted", i)
			}
			if !bytes.Equal(c, flipped) {
				t.Fatalf("bit %d: Verify modified a refused message", i)
			}
		}
	})
	t.Run("stale and future", func(t *testing.T) {
		v := newVerifier(t, testKey)
		s, _ := NewSigner(1, testKey, t0)
		if _, err := v.Verify(sign(t, s, t0), t0+int64(DefaultMaxAge)+1); !errors.Is(err, ErrStale) {
			t.Errorf("old: %v", err)
		}
		if _, err := v.Verify(sign(t, s, t0+int64(DefaultMaxAge)+1), t0); !errors.Is(err, ErrStale) {
			t.Errorf("future: %v", err)
		}
		if _, err := v.Verify(sign(t, s, t0), t0+int64(DefaultMaxAge)); err != nil {
			t.Errorf("at the limit: %v", err)
		}
	})
	t.Run("replay and reordering", func(t *testing.T) {
		v := newVerifier(t, testKey)
		s, _ := NewSigner(1, testKey, t0)
		var ms [][]byte
		for range 70 {
			ms = append(ms, sign(t, s, t0))
		}
		keep := func(i int) []byte { return bytes.Clone(ms[i]) }
		if _, err := v.Verify(keep(5), t0); err != nil {
			t.Fatal(err)
		}
		if _, err := v.Verify(keep(5), t0); !errors.Is(err, ErrReplay) {
			t.Errorf("replay: %v", err)
		}
		if _, err := v.Verify(keep(3), t0); err != nil { // late but new
			t.Errorf("reordered: %v", err)
		}
		if _, err := v.Verify(keep(3), t0); !errors.Is(err, ErrReplay) {
			t.Errorf("replay of the reordered one: %v", err)
		}
		if _, err := v.Verify(keep(69), t0); err != nil { // jump ahead by 64
			t.Fatal(err)
		}
		if _, err := v.Verify(keep(4), t0); !errors.Is(err, ErrReplay) {
			t.Errorf("below the window: %v", err)
		}
		if _, err := v.Verify(keep(6), t0); err != nil { // 63 below the top: still in the window
			t.Errorf("in the window: %v", err)
		}
		// Another sender has its own numbers.
		s2, _ := NewSigner(2, testKey, t0)
		if _, err := v.Verify(sign(t, s2, t0), t0); err != nil {
			t.Errorf("second sender: %v", err)
		}
	})
	t.Run("restarted sender continues above its old numbers", func(t *testing.T) {
		v := newVerifier(t, testKey)
		s, _ := NewSigner(1, testKey, t0)
		for range 10 {
			if _, err := v.Verify(sign(t, s, t0), t0); err != nil {
				t.Fatal(err)
			}
		}
		s2, _ := NewSigner(1, testKey, t0+int64(time.Millisecond))
		if _, err := v.Verify(sign(t, s2, t0+int64(time.Millisecond)), t0); err != nil {
			t.Errorf("after restart: %v", err)
		}
	})
	t.Run("too many senders, forgotten after MaxAge", func(t *testing.T) {
		v, _ := NewVerifier(VerifierConfig{Keys: []Key{testKey}, MaxSenders: 2, MaxAge: 10 * time.Second})
		for id := uint32(1); id <= 2; id++ {
			s, _ := NewSigner(id, testKey, t0)
			if _, err := v.Verify(sign(t, s, t0), t0); err != nil {
				t.Fatal(err)
			}
		}
		s3, _ := NewSigner(3, testKey, t0)
		if _, err := v.Verify(sign(t, s3, t0), t0); !errors.Is(err, ErrTooManySenders) {
			t.Errorf("third sender: %v", err)
		}
		later := t0 + int64(11*time.Second)
		if _, err := v.Verify(sign(t, s3, later), later); err != nil {
			t.Errorf("third sender after the others aged out: %v", err)
		}
	})
}

func TestSignerConfig(t *testing.T) {
	if _, err := NewSigner(1, Key{ID: 1, Secret: make([]byte, 15)}, 0); !errors.Is(err, ErrConfig) {
		t.Errorf("short key: %v", err)
	}
	if _, err := NewVerifier(VerifierConfig{}); !errors.Is(err, ErrConfig) {
		t.Errorf("no key: %v", err)
	}
	if _, err := NewVerifier(VerifierConfig{Keys: []Key{testKey, testKey}}); !errors.Is(err, ErrConfig) {
		t.Errorf("duplicate key: %v", err)
	}
	s, _ := NewSigner(1, testKey, 0)
	for _, m := range [][]byte{mustHex(t, goldenV0), nil, append(mustHex(t, goldenV1IPv4), 0)} {
		if _, err := s.Sign(m, 0); !errors.Is(err, ErrNotV1) {
			t.Errorf("Sign(% x): %v", m, err)
		}
	}
}

func BenchmarkVerify(b *testing.B) {
	v := newVerifier(b, testKey)
	s, _ := NewSigner(1, testKey, t0)
	plain := plainMsg(b, 39) // a full 1472-byte signed message
	msgs := make([][]byte, 1024)
	for i := range msgs {
		m, _ := s.Sign(bytes.Clone(plain), t0)
		msgs[i] = m
	}
	b.SetBytes(int64(len(msgs[0])))
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		m := msgs[i%len(msgs)]
		m[5] = AuthVersion // restored by the previous round's Verify
		if i >= len(msgs) {
			// Past the first round every message is a replay: a refused
			// one costs the same MAC.
			_, _ = v.Verify(m, t0)
		} else if _, err := v.Verify(m, t0); err != nil {
			b.Fatal(err)
		}
		i++
	}
}
