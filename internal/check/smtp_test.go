package check

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"
)

// fakeSMTP answers the checker's dialogue with the given replies: the
// greeting, the reply to the first command and the reply to the second;
// it records the commands.
func fakeSMTP(t *testing.T, greeting, heloReply, quitReply string) (Target, chan string) {
	t.Helper()
	cmds := make(chan string, 8)
	l := listenTCP(t, lo4)
	serve(t, l, func(c net.Conn) {
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		br := bufio.NewReader(c)
		if _, err := io.WriteString(c, greeting); err != nil || !strings.HasPrefix(greeting, "2") {
			return
		}
		for _, reply := range []string{heloReply, quitReply} {
			line, err := br.ReadString('\n')
			if err != nil {
				return
			}
			cmds <- line
			if reply == "" {
				return // hang up
			}
			io.WriteString(c, reply)
		}
	})
	return targetOf(t, l.Addr()), cmds
}

func TestSMTPCheck(t *testing.T) {
	for _, tt := range []struct {
		name                 string
		greeting, helo, quit string
		err                  error
	}{
		{name: "dialogue", greeting: "220 mail.example.org ESMTP\r\n", helo: "250 mail.example.org\r\n", quit: "221 bye\r\n"},
		{name: "multi-line greeting", greeting: "220-mail.example.org ESMTP\r\n220-more\r\n220 ready\r\n",
			helo: "250 ok\r\n", quit: "221 bye\r\n"},
		{name: "bare codes", greeting: "220\r\n", helo: "250\r\n", quit: "221\r\n"},
		{name: "busy greeting", greeting: "554 no service\r\n", err: ErrReply},
		{name: "HELO refused", greeting: "220 hi\r\n", helo: "501 bad HELO\r\n", quit: "221 bye\r\n", err: ErrReply},
		{name: "QUIT not 221", greeting: "220 hi\r\n", helo: "250 ok\r\n", quit: "250 ok\r\n", err: ErrReply},
		{name: "hang up after HELO", greeting: "220 hi\r\n", helo: "250 ok\r\n", quit: "", err: io.ErrUnexpectedEOF},
		{name: "garbage", greeting: "hello there\r\n", err: errSMTPSyntax},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tg, cmds := fakeSMTP(t, tt.greeting, tt.helo, tt.quit)
			r := probeOnce(t, Spec{Kind: KindSMTP, HeloName: "lvs.example.org", ConnectTimeout: 2 * time.Second}, tg)
			if tt.err == nil {
				wantOK(t, r)
				if got := <-cmds; got != "HELO lvs.example.org\r\n" {
					t.Errorf("first command %q", got)
				}
				if got := <-cmds; got != "QUIT\r\n" {
					t.Errorf("second command %q", got)
				}
			} else {
				wantFail(t, r, tt.err)
			}
		})
	}
	t.Run("default helo_name is the host name", func(t *testing.T) {
		tg, cmds := fakeSMTP(t, "220 hi\r\n", "250 ok\r\n", "221 bye\r\n")
		wantOK(t, probeOnce(t, Spec{Kind: KindSMTP, ConnectTimeout: 2 * time.Second}, tg))
		if got := <-cmds; !strings.HasPrefix(got, "HELO ") || len(got) <= len("HELO \r\n") {
			t.Errorf("first command %q", got)
		}
	})
	t.Run("refused", func(t *testing.T) {
		r := probeOnce(t, Spec{Kind: KindSMTP, ConnectTimeout: time.Second}, Target{Addr: lo4, Port: closedPort(t, lo4)})
		wantFail(t, r, syscall.ECONNREFUSED)
	})
	t.Run("silent server", func(t *testing.T) {
		l := listenTCP(t, lo4)
		release := make(chan struct{})
		serve(t, l, func(net.Conn) { <-release })
		defer close(release)
		r := probeOnce(t, Spec{Kind: KindSMTP, ConnectTimeout: 200 * time.Millisecond}, targetOf(t, l.Addr()))
		wantFail(t, r, ErrTimeout)
	})
}

func TestParseSMTPLine(t *testing.T) {
	for _, tt := range []struct {
		line     string
		code     int
		last, ok bool
	}{
		{"220 ready\r\n", 220, true, true},
		{"220-more\r\n", 220, false, true},
		{"250\r\n", 250, true, true},
		{"250\n", 250, true, true},
		{"25\r\n", 0, false, false},
		{"2x0 no\r\n", 0, false, false},
		{"220x\r\n", 0, false, false},
	} {
		code, last, ok := parseSMTPLine([]byte(tt.line))
		if code != tt.code || last != tt.last || ok != tt.ok {
			t.Errorf("parseSMTPLine(%q) = %d %v %v, want %d %v %v", tt.line, code, last, ok, tt.code, tt.last, tt.ok)
		}
	}
}

// FuzzReadSMTPReply: no input panics; a reply's code is that of its last
// line, which starts with three digits.
func FuzzReadSMTPReply(f *testing.F) {
	for _, s := range []string{"220 hi\r\n", "220-a\r\n220 b\r\n", "250\r\n", "", "x", strings.Repeat("220-", 300)} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		code, err := readSMTPReply(bufio.NewReaderSize(bytes.NewReader(data), 1024))
		if err != nil {
			return
		}
		if code < 0 || code > 999 {
			t.Fatalf("code %d", code)
		}
	})
}
