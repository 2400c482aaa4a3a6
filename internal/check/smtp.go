package check

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"time"
)

// smtpProber is SMTP_CHECK (keepalived/check/check_smtp.c): read the 220
// greeting, send HELO <helo_name>, expect 250, send QUIT, expect 221.
type smtpProber struct {
	addr    string
	timeout time.Duration
	dialer  *net.Dialer
	helo    []byte // "HELO <name>\r\n"
}

// defaultHelo is keepalived's SMTP_DEFAULT_HELO, used when the Spec has
// no helo_name and the host name cannot be read.
const defaultHelo = "smtpchecker.keepalived.org"

func newSMTPProber(s *Spec, t Target) (*smtpProber, error) {
	ep, err := endpoint(s, t, true)
	if err != nil {
		return nil, err
	}
	name := s.HeloName
	if name == "" {
		if h, err := os.Hostname(); err == nil && h != "" {
			name = h
		} else {
			name = defaultHelo
		}
	}
	return &smtpProber{addr: ep.String(), timeout: connectTimeout(s), dialer: dialer(s, "tcp", false),
		helo: []byte("HELO " + name + "\r\n")}, nil
}

// Probe implements Prober.
func (p *smtpProber) Probe(ctx context.Context) Result {
	start := time.Now()
	r := p.dialogue(ctx)
	r.Start, r.Duration = start, time.Since(start)
	return r
}

func (p *smtpProber) dialogue(ctx context.Context) Result {
	pctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	fail := func(err error) Result { return failure(pctx, p.timeout, err) }

	c, err := p.dialer.DialContext(pctx, "tcp", p.addr)
	if err != nil {
		return fail(fmt.Errorf("connect %s: %w", p.addr, err))
	}
	defer c.Close()
	stop := abortOnDone(pctx, c)
	defer stop()
	br := bufio.NewReaderSize(c, 1024)

	steps := [...]struct {
		send []byte
		want int
		what string
	}{
		{nil, 220, "greeting"},
		{p.helo, 250, "HELO"},
		{[]byte("QUIT\r\n"), 221, "QUIT"},
	}
	for _, st := range steps {
		if st.send != nil {
			if _, err := c.Write(st.send); err != nil {
				return fail(fmt.Errorf("SMTP %s to %s: %w", st.what, p.addr, err))
			}
		}
		code, err := readSMTPReply(br)
		if err != nil {
			return fail(fmt.Errorf("SMTP %s reply from %s: %w", st.what, p.addr, err))
		}
		if code != st.want {
			return Result{Err: fmt.Errorf("SMTP %s reply from %s: %w: code %d, want %d", st.what, p.addr, ErrReply, code, st.want)}
		}
	}
	return Result{OK: true}
}

// Bounds of one SMTP reply.
const (
	// maxSMTPLine: RFC 5321 §4.5.3.1.5 allows 512 octets per reply line;
	// twice that tolerates sloppy servers.
	maxSMTPLine = 1024
	// maxSMTPLines bounds a multi-line reply (an EHLO reply has a dozen).
	maxSMTPLines = 100
)

// errSMTPSyntax is a reply line that is not "NNN[ -]text".
var errSMTPSyntax = errors.New("malformed SMTP reply")

// readSMTPReply reads one reply (RFC 5321 §4.2): lines "NNN-text" go on,
// the line "NNN text" (or a bare "NNN") ends it, and its code is the
// reply's.
func readSMTPReply(br *bufio.Reader) (int, error) {
	for range maxSMTPLines {
		line, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) || len(line) > maxSMTPLine {
			return 0, fmt.Errorf("%w: line longer than %d bytes", errSMTPSyntax, maxSMTPLine)
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				return 0, fmt.Errorf("%w: connection closed", io.ErrUnexpectedEOF)
			}
			return 0, err
		}
		code, last, ok := parseSMTPLine(line)
		if !ok {
			return 0, fmt.Errorf("%w: %q", errSMTPSyntax, line)
		}
		if last {
			return code, nil
		}
	}
	return 0, fmt.Errorf("%w: more than %d lines", errSMTPSyntax, maxSMTPLines)
}

// parseSMTPLine parses one reply line (with its line end): its code and
// whether it is the reply's last line.
func parseSMTPLine(line []byte) (code int, last, ok bool) {
	if len(line) < 3 {
		return 0, false, false
	}
	for _, c := range line[:3] {
		if c < '0' || c > '9' {
			return 0, false, false
		}
		code = code*10 + int(c-'0')
	}
	switch rest := line[3:]; {
	case len(rest) == 0, rest[0] == ' ', rest[0] == '\r', rest[0] == '\n':
		return code, true, true
	case rest[0] == '-':
		return code, false, true
	}
	return 0, false, false
}
