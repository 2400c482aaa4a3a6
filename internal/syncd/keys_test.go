package syncd

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"golvs/internal/ipvssync"
)

const hexKey = "000102030405060708090a0b0c0d0e0f"

func TestParseKeys(t *testing.T) {
	for _, tt := range []struct {
		name, in string
		want     []uint16 // key IDs, in order; nil: an error
	}{
		{"one", "1 " + hexKey + "\n", []uint16{1}},
		{"comments and blanks", "# keys\n\n  2 " + hexKey + hexKey + "  \n# old\n1 " + hexKey, []uint16{2, 1}},
		{"max id", "65535 " + hexKey, []uint16{65535}},
		{"empty", "\n# none\n", nil},
		{"id too big", "65536 " + hexKey, nil},
		{"id not a number", "k " + hexKey, nil},
		{"short secret", "1 0001020304", nil},
		{"long secret", "1 " + strings.Repeat("00", 65), nil},
		{"odd hex", "1 " + hexKey + "0", nil},
		{"not hex", "1 " + strings.Repeat("zz", 16), nil},
		{"three fields", "1 " + hexKey + " x", nil},
		{"duplicate id", "1 " + hexKey + "\n1 " + hexKey, nil},
		{"huge", strings.Repeat("#", maxKeyFile+1), nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			keys, err := ParseKeys(strings.NewReader(tt.in))
			if tt.want == nil {
				if !errors.Is(err, ErrKeyFile) {
					t.Fatalf("ParseKeys = %v, %v; want ErrKeyFile", keys, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var ids []uint16
			for _, k := range keys {
				ids = append(ids, k.ID)
				if len(k.Secret) < ipvssync.MinKeyLen {
					t.Errorf("key %d: %d bytes", k.ID, len(k.Secret))
				}
			}
			if !slices.Equal(ids, tt.want) {
				t.Errorf("IDs %v, want %v", ids, tt.want)
			}
		})
	}
}

func TestReadKeyFile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "keys")
	if err := os.WriteFile(p, []byte("3 "+hexKey+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	keys, err := ReadKeyFile(p)
	if err != nil || len(keys) != 1 || keys[0].ID != 3 || keys[0].Secret[15] != 15 {
		t.Fatalf("ReadKeyFile = %v, %v", keys, err)
	}
	if err := os.Chmod(p, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadKeyFile(p); !errors.Is(err, ErrKeyFile) {
		t.Errorf("a world-readable key file: %v, want ErrKeyFile", err)
	}
	if _, err := ReadKeyFile(filepath.Join(dir, "none")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a missing key file: %v", err)
	}
}

// FuzzParseKeys: no panic, and what is accepted makes a Verifier.
func FuzzParseKeys(f *testing.F) {
	f.Add("1 " + hexKey + "\n")
	f.Add("# c\n2 " + hexKey + hexKey + "\n1 " + hexKey)
	f.Add("1 zz")
	f.Fuzz(func(t *testing.T, s string) {
		keys, err := ParseKeys(strings.NewReader(s))
		if err != nil {
			return
		}
		if _, err := ipvssync.NewVerifier(ipvssync.VerifierConfig{Keys: keys}); err != nil {
			t.Errorf("accepted keys a Verifier refuses: %v", err)
		}
	})
}
