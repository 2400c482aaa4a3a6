package check

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"sync"
	"syscall"
	"time"
)

// fileProber is FILE_CHECK (keepalived/check/check_file.c over
// keepalived/core/track_file.c): it reads the number in the tracked file
// and turns it into a state and a weight as track_file.c's
// update_track_file_status and process_update_checker_track_file_status
// do:
//
//   - the value is read as strtol(buf, NULL, 0) reads the file's first 127
//     bytes: leading blanks, a sign, decimal, 0x hexadecimal or 0 octal
//     digits, up to the first other byte; no digits is 0;
//   - a missing, unreadable or empty file is 0 (keepalived: open or read
//     failing leaves the value 0, and a deleted file "is treated as though
//     the value is 0");
//   - a value outside [-2^31, 2^31] is ignored: the previous value stays;
//   - with weight 0, a non-zero value is a fault (down) and 0 is up;
//     reverse swaps them;
//   - with another weight, value x weight (negated with reverse), clamped
//     to the int32 range, is a weight adjustment (Result.DynWeight) and
//     the checker is up, unless the product reaches -2^31
//     (IPVS_WEIGHT_FAULT): then it is down.
//
// FileDynamic changes nothing: keepalived 2.2.7's FILE_CHECK has no
// "dynamic" keyword (the man page's text describes what weight does).
type fileProber struct {
	path    string
	weight  int64
	reverse bool

	mu   sync.Mutex
	last int64 // guarded by mu: the last value accepted
}

// trackFileBuf is keepalived's read buffer (process_track_file: char
// buf[128], one byte kept for the terminator).
const trackFileBuf = 127

func newFileProber(s *Spec) (*fileProber, error) {
	if s.FilePath == "" {
		return nil, errors.New("check: FILE_CHECK without a track_file path")
	}
	return &fileProber{path: s.FilePath, weight: int64(s.FileWeight), reverse: s.FileReverse}, nil
}

// Probe implements Prober.
func (p *fileProber) Probe(context.Context) Result {
	start := time.Now()
	v, err := readTrackFile(p.path)
	p.mu.Lock()
	if err == nil {
		p.last = v
	}
	v = p.last
	p.mu.Unlock()
	r := p.judge(v)
	r.Start, r.Duration = start, time.Since(start)
	return r
}

// judge maps a value to the checker's state and weight.
func (p *fileProber) judge(v int64) Result {
	if p.weight == 0 {
		fault := v != 0
		if p.reverse {
			fault = !fault
		}
		if fault {
			return Result{Err: fmt.Errorf("%w: %s holds %d", ErrFileFault, p.path, v)}
		}
		return Result{OK: true}
	}
	mult := int64(1)
	if p.reverse {
		mult = -1
	}
	// |v| <= 2^31 and |weight| < 2^31: the product fits in an int64.
	w := v * p.weight * mult
	w = max(min(w, math.MaxInt32), math.MinInt32)
	if w == math.MinInt32 {
		return Result{Err: fmt.Errorf("%w: %s holds %d, x weight %d", ErrFileFault, p.path, v, p.weight*mult)}
	}
	return Result{OK: true, DynWeight: int(w), DynWeightSet: true}
}

// errTrackValue is a value keepalived ignores.
var errTrackValue = errors.New("track file value out of range")

// readTrackFile returns the file's value; errTrackValue when keepalived
// would ignore it. A file that cannot be opened or read is 0.
func readTrackFile(path string) (int64, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return 0, nil
	}
	defer f.Close()
	buf := make([]byte, trackFileBuf)
	n, _ := f.Read(buf)
	v, ok := strtol(buf[:n])
	if !ok || v < math.MinInt32 || v > math.MaxInt32+1 {
		return 0, errTrackValue
	}
	return v, nil
}

// strtol is C's strtol(s, NULL, 0) on s up to its first NUL byte: ok is
// false when the value overflows an int64 (ERANGE). A leading "0x" with
// no hex digit after it reads as 0, as glibc does.
func strtol(s []byte) (int64, bool) {
	i := 0
	for i < len(s) && (s[i] == ' ' || (s[i] >= '\t' && s[i] <= '\r')) {
		i++
	}
	neg := false
	if i < len(s) && (s[i] == '+' || s[i] == '-') {
		neg = s[i] == '-'
		i++
	}
	base := uint64(10)
	if i < len(s) && s[i] == '0' {
		base = 8
		if i+2 < len(s) && (s[i+1] == 'x' || s[i+1] == 'X') && hexDigit(s[i+2]) >= 0 {
			base = 16
			i += 2
		}
	}
	var u uint64
	overflow := false
	for ; i < len(s); i++ {
		d := hexDigit(s[i])
		if d < 0 || uint64(d) >= base {
			break
		}
		if u > (math.MaxUint64-uint64(d))/base {
			overflow = true
			continue
		}
		u = u*base + uint64(d)
	}
	limit := uint64(math.MaxInt64)
	if neg {
		limit++
	}
	if overflow || u > limit {
		return 0, false
	}
	if neg {
		if u == limit {
			return math.MinInt64, true
		}
		return -int64(u), true
	}
	return int64(u), true
}

// hexDigit is c's value as a hexadecimal digit, -1 for any other byte.
func hexDigit(c byte) int {
	switch {
	case c >= '0' && c <= '9':
		return int(c - '0')
	case c >= 'a' && c <= 'f':
		return int(c-'a') + 10
	case c >= 'A' && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
}
