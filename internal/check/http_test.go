package check

import (
	"bufio"
	"bytes"
	"crypto/md5"
	"crypto/tls"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// rawHTTP is a raw TCP server that records each request's bytes (up to
// the blank line) and answers with reply(path).
type rawHTTP struct {
	mu   sync.Mutex
	reqs []string
}

func (h *rawHTTP) requests() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.reqs...)
}

func startRawHTTP(t *testing.T, addr netip.Addr, reply func(path string) string) (*rawHTTP, Target) {
	t.Helper()
	h := &rawHTTP{}
	l := listenTCP(t, addr)
	serve(t, l, func(c net.Conn) {
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		br := bufio.NewReader(c)
		var req strings.Builder
		for {
			line, err := br.ReadString('\n')
			req.WriteString(line)
			if err != nil || line == "\r\n" {
				break
			}
		}
		h.mu.Lock()
		h.reqs = append(h.reqs, req.String())
		h.mu.Unlock()
		path := ""
		if f := strings.Fields(req.String()); len(f) > 1 {
			path = f[1]
		}
		io.WriteString(c, reply(path))
	})
	return h, targetOf(t, l.Addr())
}

func md5hex(s string) string {
	sum := md5.Sum([]byte(s))
	return hex.EncodeToString(sum[:])
}

// TestHTTPRequestBytes asserts keepalived's request byte for byte.
func TestHTTPRequestBytes(t *testing.T) {
	ok := func(string) string { return "HTTP/1.0 200 OK\r\n\r\nhello" }
	for _, tt := range []struct {
		name  string
		addr  netip.Addr
		proto string
		vhost string // checker virtualhost
		uhost string // url virtualhost
		want  string // %s: host:port of the server
	}{
		{name: "1.0, address and port", addr: lo4, proto: "1.0",
			want: "GET /index.html HTTP/1.0\r\nUser-Agent: KeepAliveClient\r\nHost: %s\r\n\r\n"},
		{name: "default protocol is 1.0", addr: lo4,
			want: "GET /index.html HTTP/1.0\r\nUser-Agent: KeepAliveClient\r\nHost: %s\r\n\r\n"},
		{name: "1.0C adds Connection: close", addr: lo4, proto: "1.0C",
			want: "GET /index.html HTTP/1.0\r\nUser-Agent: KeepAliveClient\r\nConnection: close\r\nHost: %s\r\n\r\n"},
		{name: "1.1 has Connection: close", addr: lo4, proto: "1.1",
			want: "GET /index.html HTTP/1.1\r\nUser-Agent: KeepAliveClient\r\nConnection: close\r\nHost: %s\r\n\r\n"},
		{name: "virtualhost has no port", addr: lo4, proto: "1.1", vhost: "www.example.org",
			want: "GET /index.html HTTP/1.1\r\nUser-Agent: KeepAliveClient\r\nConnection: close\r\nHost: www.example.org\r\n\r\n"},
		{name: "url virtualhost wins", addr: lo4, vhost: "www.example.org", uhost: "app.example.org",
			want: "GET /index.html HTTP/1.0\r\nUser-Agent: KeepAliveClient\r\nHost: app.example.org\r\n\r\n"},
		{name: "IPv6 address in brackets", addr: lo6, proto: "1.1",
			want: "GET /index.html HTTP/1.1\r\nUser-Agent: KeepAliveClient\r\nConnection: close\r\nHost: %s\r\n\r\n"},
		{name: "IPv6 with virtualhost: no brackets, no port", addr: lo6, vhost: "v6.example.org",
			want: "GET /index.html HTTP/1.0\r\nUser-Agent: KeepAliveClient\r\nHost: v6.example.org\r\n\r\n"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if tt.addr.Is6() && len(loopbacks(t)) < 2 {
				t.Skip("no IPv6 loopback")
			}
			srv, tg := startRawHTTP(t, tt.addr, ok)
			s := Spec{Kind: KindHTTP, HTTPProtocol: tt.proto, Virtualhost: tt.vhost, ConnectTimeout: 2 * time.Second,
				URLs: []URL{{Path: "/index.html", Virtualhost: tt.uhost}}}
			r := probeOnce(t, s, tg)
			wantOK(t, r)
			want := tt.want
			if strings.Contains(want, "%s") {
				want = fmt.Sprintf(want, tg.String()) // "127.0.0.1:port", "[::1]:port"
			}
			if got := srv.requests(); len(got) != 1 || got[0] != want {
				t.Errorf("request\n got %q\nwant %q", got, want)
			}
			if r.HTTPStatus != 200 || r.URL != "/index.html" {
				t.Errorf("status %d url %q", r.HTTPStatus, r.URL)
			}
		})
	}
}

func TestBuildRequestPort80(t *testing.T) {
	// keepalived appends the port even when it is the default one.
	got := string(buildRequest("/", "1.0", requestHost("", netip.MustParseAddrPort("192.0.2.1:80"))))
	want := "GET / HTTP/1.0\r\nUser-Agent: KeepAliveClient\r\nHost: 192.0.2.1:80\r\n\r\n"
	if got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestHTTPResponses(t *testing.T) {
	body := "<html>GoLVS health page</html>\n"
	const ok = "HTTP/1.0 200 OK\r\nContent-Type: text/html\r\n\r\n"
	responses := map[string]string{
		"/ok":       ok + body,
		"/404":      "HTTP/1.0 404 Not Found\r\n\r\nnope",
		"/503":      "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n",
		"/cl":       "HTTP/1.1 200 OK\r\nContent-Length: " + fmt.Sprint(len(body)) + "\r\n\r\n" + body + "trailing junk",
		"/chunked":  "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n<html\r\n1b\r\n>GoLVS health page</html>\n\r\n0\r\n\r\n",
		"/nohdr":    "HTTP/1.0 200 OK\r\nno blank line",
		"/empty":    "",
		"/lfonly":   "HTTP/1.0 200 OK\n\nbody",
		"/redirect": "HTTP/1.0 302 Found\r\nLocation: /ok\r\n\r\n",
	}
	_, tg := startRawHTTP(t, lo4, func(p string) string { return responses[p] })
	chunkedRaw := strings.SplitN(responses["/chunked"], "\r\n\r\n", 2)[1]

	for _, tt := range []struct {
		name string
		urls []URL
		err  error
		code int
		url  string
	}{
		{name: "200 default range", urls: []URL{{Path: "/ok"}}, code: 200},
		{name: "404 outside default", urls: []URL{{Path: "/404"}}, err: ErrStatus, code: 404},
		{name: "404 accepted by status_code", urls: []URL{{Path: "/404", StatusCodes: []StatusRange{{200, 200}, {400, 499}}}}, code: 404},
		{name: "302 not in 200-299", urls: []URL{{Path: "/redirect"}}, err: ErrStatus, code: 302},
		{name: "503 single code list", urls: []URL{{Path: "/503", StatusCodes: []StatusRange{{200, 200}}}}, err: ErrStatus, code: 503},
		{name: "digest matches", urls: []URL{{Path: "/ok", Digest: md5hex(body)}}, code: 200},
		{name: "digest mismatch", urls: []URL{{Path: "/ok", Digest: md5hex("other")}}, err: ErrDigest, code: 200},
		{name: "digest stops at Content-Length", urls: []URL{{Path: "/cl", Digest: md5hex(body)}}, code: 200},
		{name: "digest of a chunked body is over its framing, as genhash's",
			urls: []URL{{Path: "/chunked", Digest: md5hex(chunkedRaw)}}, code: 200},
		{name: "regex matches", urls: []URL{{Path: "/ok", Regex: `health\s+page`}}, code: 200},
		{name: "regex does not match", urls: []URL{{Path: "/ok", Regex: `maintenance`}}, err: ErrRegex, code: 200},
		{name: "regex_no_match passes when absent", urls: []URL{{Path: "/ok", Regex: `maintenance`, RegexNoMatch: true}}, code: 200},
		{name: "regex_no_match fails when present", urls: []URL{{Path: "/ok", Regex: `GoLVS`, RegexNoMatch: true}}, err: ErrRegex, code: 200},
		{name: "regex over a chunked body", urls: []URL{{Path: "/chunked", Regex: `<html`}}, code: 200},
		{name: "status checked before digest", urls: []URL{{Path: "/404", Digest: md5hex("nope")}}, err: ErrStatus, code: 404},
		{name: "header never ends", urls: []URL{{Path: "/nohdr"}}, err: ErrNoResponse},
		{name: "no data", urls: []URL{{Path: "/empty"}}, err: ErrNoResponse},
		{name: "bare LF header is not a header (keepalived needs CRLFCRLF)", urls: []URL{{Path: "/lfonly"}}, err: ErrNoResponse},
		{name: "all urls pass", urls: []URL{{Path: "/ok"}, {Path: "/cl"}, {Path: "/chunked"}}, code: 200, url: "/chunked"},
		{name: "second url fails", urls: []URL{{Path: "/ok"}, {Path: "/404"}, {Path: "/cl"}}, err: ErrStatus, code: 404, url: "/404"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := probeOnce(t, Spec{Kind: KindHTTP, HTTPProtocol: "1.1", URLs: tt.urls, ConnectTimeout: 2 * time.Second}, tg)
			if tt.err == nil {
				wantOK(t, r)
			} else {
				wantFail(t, r, tt.err)
			}
			if r.HTTPStatus != tt.code {
				t.Errorf("HTTPStatus %d, want %d", r.HTTPStatus, tt.code)
			}
			wantURL := tt.url
			if wantURL == "" {
				wantURL = tt.urls[0].Path
			}
			if r.URL != wantURL {
				t.Errorf("URL %q, want %q", r.URL, wantURL)
			}
		})
	}
}

// TestHTTPKeepsConnectionOpen: a server that ignores Connection: close
// but sends a Content-Length (or a chunked body) is judged when the body
// ends, not at connect_timeout.
func TestHTTPKeepsConnectionOpen(t *testing.T) {
	for _, resp := range []string{
		"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\nX-Trailer: 1\r\n\r\n",
	} {
		l := listenTCP(t, lo4)
		release := make(chan struct{})
		serve(t, l, func(c net.Conn) {
			c.Read(make([]byte, 512))
			io.WriteString(c, resp)
			<-release
		})
		start := time.Now()
		r := probeOnce(t, Spec{Kind: KindHTTP, HTTPProtocol: "1.1", URLs: []URL{{Path: "/", Digest: ""}}, ConnectTimeout: 3 * time.Second}, targetOf(t, l.Addr()))
		close(release)
		wantOK(t, r)
		if el := time.Since(start); el > time.Second {
			t.Errorf("%q: took %v, the body's end was not seen", resp, el)
		}
	}
}

func TestHTTPFailures(t *testing.T) {
	t.Run("refused", func(t *testing.T) {
		r := probeOnce(t, Spec{Kind: KindHTTP, URLs: []URL{{Path: "/"}}, ConnectTimeout: time.Second}, Target{Addr: lo4, Port: closedPort(t, lo4)})
		wantFail(t, r, syscall.ECONNREFUSED)
	})
	t.Run("server never answers", func(t *testing.T) {
		l := listenTCP(t, lo4)
		release := make(chan struct{})
		serve(t, l, func(c net.Conn) { <-release })
		defer close(release)
		start := time.Now()
		r := probeOnce(t, Spec{Kind: KindHTTP, URLs: []URL{{Path: "/"}}, ConnectTimeout: 300 * time.Millisecond}, targetOf(t, l.Addr()))
		wantFail(t, r, ErrTimeout)
		if el := time.Since(start); el > 3*time.Second {
			t.Errorf("took %v", el)
		}
	})
	t.Run("server trickles past connect_timeout", func(t *testing.T) {
		// connect_timeout bounds the whole exchange, not each read.
		l := listenTCP(t, lo4)
		serve(t, l, func(c net.Conn) {
			c.Read(make([]byte, 512))
			io.WriteString(c, "HTTP/1.0 200 OK\r\n\r\n")
			for range 20 {
				if _, err := io.WriteString(c, "."); err != nil {
					return
				}
				time.Sleep(50 * time.Millisecond)
			}
		})
		r := probeOnce(t, Spec{Kind: KindHTTP, URLs: []URL{{Path: "/"}}, ConnectTimeout: 300 * time.Millisecond}, targetOf(t, l.Addr()))
		wantFail(t, r, ErrTimeout)
	})
	t.Run("reset mid-body", func(t *testing.T) {
		l := listenTCP(t, lo4)
		serve(t, l, func(c net.Conn) {
			c.Read(make([]byte, 512))
			io.WriteString(c, "HTTP/1.0 200 OK\r\n\r\npartial")
			time.Sleep(20 * time.Millisecond)
			c.(*net.TCPConn).SetLinger(0) // RST on close
		})
		r := probeOnce(t, Spec{Kind: KindHTTP, URLs: []URL{{Path: "/"}}, ConnectTimeout: 2 * time.Second}, targetOf(t, l.Addr()))
		wantFail(t, r, syscall.ECONNRESET)
	})
}

func TestSSLGet(t *testing.T) {
	body := "secure ok"
	var mu sync.Mutex
	var sni []string
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/down" {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		io.WriteString(w, body)
	}))
	srv.TLS = &tls.Config{GetConfigForClient: func(h *tls.ClientHelloInfo) (*tls.Config, error) {
		mu.Lock()
		sni = append(sni, h.ServerName)
		mu.Unlock()
		return nil, nil
	}}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	tg := targetOf(t, srv.Listener.Addr())
	lastSNI := func() string {
		mu.Lock()
		defer mu.Unlock()
		return sni[len(sni)-1]
	}
	base := Spec{Kind: KindSSL, HTTPProtocol: "1.1", ConnectTimeout: 2 * time.Second, Virtualhost: "www.example.org"}

	t.Run("self-signed certificate accepted, digest checked", func(t *testing.T) {
		s := base
		s.URLs = []URL{{Path: "/", Digest: md5hex(body)}}
		wantOK(t, probeOnce(t, s, tg))
		if got := lastSNI(); got != "" {
			t.Errorf("SNI %q sent without enable_sni", got)
		}
	})
	t.Run("enable_sni sends the virtualhost", func(t *testing.T) {
		s := base
		s.EnableSNI = true
		s.URLs = []URL{{Path: "/"}}
		wantOK(t, probeOnce(t, s, tg))
		if got := lastSNI(); got != "www.example.org" {
			t.Errorf("SNI %q, want the virtualhost", got)
		}
	})
	t.Run("sni_name wins", func(t *testing.T) {
		s := base
		s.EnableSNI, s.SNIName = true, "sni.example.org"
		s.URLs = []URL{{Path: "/"}}
		wantOK(t, probeOnce(t, s, tg))
		if got := lastSNI(); got != "sni.example.org" {
			t.Errorf("SNI %q, want sni_name", got)
		}
	})
	t.Run("status", func(t *testing.T) {
		s := base
		s.URLs = []URL{{Path: "/down"}}
		wantFail(t, probeOnce(t, s, tg), ErrStatus)
	})
	t.Run("plain HTTP server", func(t *testing.T) {
		_, plain := startRawHTTP(t, lo4, func(string) string { return "HTTP/1.0 200 OK\r\n\r\n" })
		s := base
		s.URLs = []URL{{Path: "/"}}
		r := probeOnce(t, s, plain)
		wantFail(t, r, nil)
		if !strings.Contains(r.Err.Error(), "TLS handshake") {
			t.Errorf("error %v", r.Err)
		}
	})
}

func TestStatusCode(t *testing.T) {
	for line, want := range map[string]int{
		"HTTP/1.1 200 OK":        200,
		"HTTP/1.0 404":           404,
		"HTTP/1.1 2000 Too long": 2000,
		"HTTP/1.1  200 OK":       0, // keepalived's atoi of an empty field
		"HTTP/1.1 abc":           0,
		"garbage":                0,
		"":                       0,
		"HTTP/1.1 99999999999 x": 999999999,
	} {
		if got := statusCode([]byte(line)); got != want {
			t.Errorf("statusCode(%q) = %d, want %d", line, got, want)
		}
	}
}

func TestReadResponseKeep(t *testing.T) {
	resp, err := readResponse(strings.NewReader("HTTP/1.0 200 OK\r\n\r\n0123456789"), 4)
	if err != nil {
		t.Fatal(err)
	}
	if string(resp.body) != "0123" || resp.bodyLen != 10 || resp.digest != md5.Sum([]byte("0123456789")) {
		t.Errorf("body %q len %d digest %x", resp.body, resp.bodyLen, resp.digest)
	}
}

// FuzzReadResponse: no input makes the reader panic, read past the data
// or report a body larger than what followed the header.
func FuzzReadResponse(f *testing.F) {
	for _, s := range []string{
		"HTTP/1.0 200 OK\r\n\r\nbody",
		"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nbodyjunk",
		"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\nbody",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nbody\r\n0\r\n\r\n",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nbody",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffff\r\nbody",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n1;ext=1\r\nb\r\n0\r\nT: x\r\n\r\n",
		"\r\n\r\n",
		"",
		"HTTP/1.0 200",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		resp, err := readResponse(bytes.NewReader(data), 64)
		if err != nil {
			return
		}
		i := bytes.Index(data, []byte("\r\n\r\n"))
		if i < 0 {
			t.Fatalf("success without a header end in %q", data)
		}
		rest := data[i+4:]
		if resp.bodyLen > int64(len(rest)) || len(resp.body) > 64 || int64(len(resp.body)) > resp.bodyLen {
			t.Fatalf("bodyLen %d kept %d of %d bytes", resp.bodyLen, len(resp.body), len(rest))
		}
		if !bytes.HasPrefix(rest, resp.body) {
			t.Fatalf("kept %q is not the start of the body %q", resp.body, rest)
		}
		if resp.digest != md5.Sum(rest[:resp.bodyLen]) {
			t.Fatalf("digest is not over the body's first %d bytes", resp.bodyLen)
		}
		if resp.status < 0 {
			t.Fatalf("status %d", resp.status)
		}
	})
}

// FuzzResponseRoundTrip builds responses from a status and a body in each
// framing and checks that the reader gets the status, the body's end and
// keepalived's digest right.
func FuzzResponseRoundTrip(f *testing.F) {
	f.Add(200, []byte("hello"), uint8(0), uint8(3))
	f.Add(503, []byte(""), uint8(1), uint8(1))
	f.Add(404, []byte("\r\n\r\n0\r\n\r\n"), uint8(2), uint8(2))
	f.Fuzz(func(t *testing.T, status int, body []byte, mode, chunk uint8) {
		if status < 100 || status > 999 {
			status = 200
		}
		hdr := fmt.Sprintf("HTTP/1.1 %d Reason\r\nServer: fuzz\r\n", status)
		var raw []byte // the body bytes as sent after the header
		switch mode % 3 {
		case 0: // until close
			raw = body
		case 1: // Content-Length, then junk that must not count
			hdr += fmt.Sprintf("Content-Length: %d\r\n", len(body))
			raw = body
		case 2: // chunked
			hdr += "Transfer-Encoding: chunked\r\n"
			n := int(chunk%16) + 1
			for b := body; len(b) > 0; {
				c := b[:min(n, len(b))]
				raw = fmt.Appendf(raw, "%x\r\n%s\r\n", len(c), c)
				b = b[len(c):]
			}
			raw = append(raw, "0\r\n\r\n"...)
		}
		stream := append([]byte(hdr+"\r\n"), raw...)
		if mode%3 != 0 {
			stream = append(stream, "JUNK AFTER THE BODY"...)
		}
		resp, err := readResponse(bytes.NewReader(stream), maxKeptBody)
		if err != nil {
			t.Fatal(err)
		}
		if resp.status != status {
			t.Fatalf("status %d, want %d", resp.status, status)
		}
		if resp.digest != md5.Sum(raw) || !bytes.Equal(resp.body, raw) {
			t.Fatalf("mode %d: body %q, want %q", mode%3, resp.body, raw)
		}
	})
}
