package syncd

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"golvs/internal/ipvssync"
)

// ErrKeyFile reports a key file that cannot be used.
var ErrKeyFile = errors.New("syncd: bad key file")

// maxKeyFile bounds a key file (a few keys of a few dozen bytes each).
const maxKeyFile = 64 << 10

// maxKeyLen bounds a secret (a SHA-256 HMAC key longer than its 64-byte
// block is hashed first: longer keys add nothing).
const maxKeyLen = 64

// ParseKeys reads the authentication keys of the sync daemons (GoLVS, not
// in the kernel): one key a line, "ID SECRET", ID a number from 0 to
// 65535 and SECRET the key in hexadecimal, 16 to 64 bytes (32 to 128 hex
// digits); blank lines and lines starting with # are ignored. The first
// key signs what a master sends; a backup accepts all of them, so that a
// key can be rolled over: add the new key second on every director, then
// move it first, then remove the old one.
func ParseKeys(r io.Reader) ([]ipvssync.Key, error) {
	data, err := io.ReadAll(io.LimitReader(r, maxKeyFile+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxKeyFile {
		return nil, fmt.Errorf("%w: longer than %d bytes", ErrKeyFile, maxKeyFile)
	}
	var keys []ipvssync.Key
	seen := map[uint16]bool{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Fields(line)
		if len(f) != 2 {
			return nil, fmt.Errorf("%w: line %d: want \"ID SECRET\"", ErrKeyFile, n)
		}
		id, err := strconv.ParseUint(f[0], 10, 16)
		if err != nil {
			return nil, fmt.Errorf("%w: line %d: key ID %q: want 0 to 65535", ErrKeyFile, n, f[0])
		}
		secret, err := hex.DecodeString(f[1])
		if err != nil {
			return nil, fmt.Errorf("%w: line %d: secret: not hexadecimal", ErrKeyFile, n)
		}
		if len(secret) < ipvssync.MinKeyLen || len(secret) > maxKeyLen {
			return nil, fmt.Errorf("%w: line %d: secret of %d bytes, want %d to %d", ErrKeyFile, n, len(secret), ipvssync.MinKeyLen, maxKeyLen)
		}
		if seen[uint16(id)] {
			return nil, fmt.Errorf("%w: line %d: key ID %d twice", ErrKeyFile, n, id)
		}
		seen[uint16(id)] = true
		keys = append(keys, ipvssync.Key{ID: uint16(id), Secret: secret})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrKeyFile, err)
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("%w: no key", ErrKeyFile)
	}
	return keys, nil
}

// ReadKeyFile reads a key file (see ParseKeys). Like ssh with its private
// keys, it refuses a file that others than its owner may read or write.
func ReadKeyFile(path string) ([]ipvssync.Key, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if st.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("%w: %s: mode %#o lets others read it: want 0600 or 0400", ErrKeyFile, path, st.Mode().Perm())
	}
	keys, err := ParseKeys(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return keys, nil
}
