package check

import (
	"context"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

func TestFileCheck(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "weight")
	write := func(s string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	type want struct {
		ok     bool
		weight int
		hasW   bool
	}
	up, down := want{ok: true}, want{}
	adj := func(w int) want { return want{ok: true, weight: w, hasW: true} }
	for _, tt := range []struct {
		name    string
		content *string // nil: file missing
		weight  int
		reverse bool
		want    want
	}{
		{name: "weight 0: 0 is up", content: ptr("0\n"), want: up},
		{name: "weight 0: non-zero is down", content: ptr("3\n"), want: down},
		{name: "weight 0: negative is down", content: ptr("-1"), want: down},
		{name: "weight 0 reverse: 0 is down", content: ptr("0"), reverse: true, want: down},
		{name: "weight 0 reverse: non-zero is up", content: ptr("7"), reverse: true, want: up},
		{name: "weight 0: missing file reads 0, up", want: up},
		{name: "weight 0 reverse: missing file is down", reverse: true, want: down},
		{name: "weight 0: empty file is 0", content: ptr(""), want: up},
		{name: "weight 0: text reads 0", content: ptr("abc"), want: up},
		{name: "weight 1: value is the adjustment", content: ptr("5"), weight: 1, want: adj(5)},
		{name: "weight 3: value x weight", content: ptr(" 5 \n"), weight: 3, want: adj(15)},
		{name: "negative value", content: ptr("-4"), weight: 2, want: adj(-8)},
		{name: "reverse negates", content: ptr("4"), weight: 2, reverse: true, want: adj(-8)},
		{name: "hex", content: ptr("0x10"), weight: 1, want: adj(16)},
		{name: "octal", content: ptr("010"), weight: 1, want: adj(8)},
		{name: "digits then text", content: ptr("12abc"), weight: 1, want: adj(12)},
		{name: "0 with a weight is up, adjustment 0", content: ptr("0"), weight: 5, want: adj(0)},
		{name: "missing with a weight is 0", weight: 5, want: adj(0)},
		{name: "clamped to int32", content: ptr("2000000000"), weight: 2, want: adj(math.MaxInt32)},
		{name: "reaching -2^31 is a fault", content: ptr("-1073741824"), weight: 2, want: down},
		{name: "-2^31 x 1 is a fault", content: ptr("-2147483648"), weight: 1, want: down},
		{name: "2^31 is accepted", content: ptr("2147483648"), weight: -1, want: down},
	} {
		t.Run(tt.name, func(t *testing.T) {
			os.Remove(path)
			if tt.content != nil {
				write(*tt.content)
			}
			r := probeOnce(t, Spec{Kind: KindFile, FilePath: path, FileWeight: tt.weight, FileReverse: tt.reverse}, Target{})
			if r.OK != tt.want.ok || r.DynWeight != tt.want.weight || r.DynWeightSet != tt.want.hasW {
				t.Errorf("ok %v weight %d set %v (%v), want %+v", r.OK, r.DynWeight, r.DynWeightSet, r.Err, tt.want)
			}
			if !r.OK {
				wantFail(t, r, ErrFileFault)
			}
		})
	}
	t.Run("out of range keeps the previous value", func(t *testing.T) {
		p, err := NewProber(Spec{Kind: KindFile, FilePath: path, FileWeight: 1}, Target{})
		if err != nil {
			t.Fatal(err)
		}
		write("9")
		if r := p.Probe(context.Background()); r.DynWeight != 9 {
			t.Fatalf("weight %d", r.DynWeight)
		}
		for _, bad := range []string{"2147483649", "-2147483649", "99999999999999999999999"} {
			write(bad)
			if r := p.Probe(context.Background()); !r.OK || r.DynWeight != 9 {
				t.Errorf("%s: %+v, want the previous value 9", bad, r)
			}
		}
		os.Remove(path)
		if r := p.Probe(context.Background()); r.DynWeight != 0 {
			t.Errorf("deleted file: weight %d, want 0", r.DynWeight)
		}
	})
}

func ptr(s string) *string { return &s }

func TestStrtol(t *testing.T) {
	for _, tt := range []struct {
		in string
		v  int64
		ok bool
	}{
		{"42", 42, true}, {"  -17xyz", -17, true}, {"+8", 8, true}, {"0x1f", 31, true}, {"0X1F", 31, true},
		{"0x", 0, true}, {"0xg", 0, true}, {"017", 15, true}, {"019", 1, true}, {"", 0, true}, {"-", 0, true},
		{"\t\n 5", 5, true}, {"9223372036854775807", math.MaxInt64, true}, {"-9223372036854775808", math.MinInt64, true},
		{"9223372036854775808", 0, false}, {"-9223372036854775809", 0, false}, {"5\x006", 5, true},
	} {
		v, ok := strtol([]byte(tt.in))
		if v != tt.v || ok != tt.ok {
			t.Errorf("strtol(%q) = %d %v, want %d %v", tt.in, v, ok, tt.v, tt.ok)
		}
	}
}

// FuzzStrtol compares strtol with strconv on plain decimal input and
// checks it never panics.
func FuzzStrtol(f *testing.F) {
	for _, s := range []string{"0", "-1", "0x7fffffff", "0777", " 12 ", "99999999999999999999"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, ok := strtol([]byte(s))
		if n, err := strconv.ParseInt(s, 10, 64); err == nil && (len(s) < 2 || s[0] != '0') && (len(s) < 3 || s[1] != '0') {
			if !ok || v != n {
				t.Fatalf("strtol(%q) = %d %v, strconv %d", s, v, ok, n)
			}
		}
	})
}
