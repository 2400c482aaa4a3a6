package check

import (
	"context"
	"crypto/tls"
	"encoding/hex"
	"fmt"
	"net"
	"net/netip"
	"regexp"
	"strconv"
	"time"
)

// httpProber is HTTP_GET and SSL_GET (keepalived/check/check_http.c,
// check_ssl.c): for each url in turn, connect, (TLS handshake,) send
// keepalived's GET request, read the response, and check its status code,
// body digest and regex. The check succeeds when every url passes; it
// stops at the first url that fails. Each url gets its own
// connect_timeout, which bounds the whole of its exchange.
//
// keepalived checks the urls of a server that is down (alpha, or after a
// failure) one per delay_loop unless fast_recovery is set; here every
// probe checks all the urls, which is fast_recovery's behaviour, so
// FastRecovery changes nothing.
type httpProber struct {
	kind    Kind
	addr    string
	timeout time.Duration
	dialer  *net.Dialer
	urls    []httpURL
}

type httpURL struct {
	path string
	// request is the exact request sent (buildRequest).
	request []byte
	// digest is the expected MD5 of the body when hasDigest.
	digest    [16]byte
	hasDigest bool
	codes     []StatusRange
	re        *regexp.Regexp
	noMatch   bool
	// tls is the client configuration of SSL_GET (nil for HTTP_GET).
	tls *tls.Config
}

func newHTTPProber(s *Spec, t Target) (*httpProber, error) {
	ep, err := endpoint(s, t, true)
	if err != nil {
		return nil, err
	}
	if len(s.URLs) == 0 {
		// check_http.c http_get_check_end: "HTTP/SSL_GET checker has no
		// urls specified - ignoring"; the parser should not hand one over.
		return nil, fmt.Errorf("check: %v to %v: no url", s.Kind, ep)
	}
	switch s.HTTPProtocol {
	case "", "1.0", "1.0C", "1.0c", "1.1":
	default:
		return nil, fmt.Errorf("check: %v: invalid http_protocol %q", s.Kind, s.HTTPProtocol)
	}
	p := &httpProber{kind: s.Kind, addr: ep.String(), timeout: connectTimeout(s), dialer: dialer(s, "tcp", false)}
	for _, u := range s.URLs {
		hu := httpURL{path: u.Path, codes: u.StatusCodes, noMatch: u.RegexNoMatch}
		vhost := u.Virtualhost
		if vhost == "" {
			vhost = s.Virtualhost
		}
		hu.request = buildRequest(u.Path, s.HTTPProtocol, requestHost(vhost, ep))
		if u.Digest != "" {
			b, err := hex.DecodeString(u.Digest)
			if err != nil || len(b) != len(hu.digest) {
				return nil, fmt.Errorf("check: %v url %s: digest %q is not 32 hex digits", s.Kind, u.Path, u.Digest)
			}
			copy(hu.digest[:], b)
			hu.hasDigest = true
		}
		if u.Regex != "" {
			// Go's RE2 syntax, not PCRE2: look-arounds and back-references
			// are rejected here, once, rather than failing every probe.
			re, err := regexp.Compile(u.Regex)
			if err != nil {
				return nil, fmt.Errorf("check: %v url %s: regex: %w", s.Kind, u.Path, err)
			}
			hu.re = re
		}
		if s.Kind == KindSSL {
			hu.tls = &tls.Config{
				// keepalived's SSL_GET verifies no certificate unless the
				// global SSL block names a CA (check_ssl.c); the Spec has none.
				InsecureSkipVerify: true,
				// keepalived's auto-generated context takes what OpenSSL
				// offers; Go's client default (TLS 1.2) would refuse an old
				// server keepalived accepts.
				MinVersion: tls.VersionTLS10,
			}
			if s.EnableSNI {
				hu.tls.ServerName = s.SNIName
				if hu.tls.ServerName == "" {
					hu.tls.ServerName = vhost
				}
			}
		}
		p.urls = append(p.urls, hu)
	}
	return p, nil
}

// requestHost is the Host header's value (check_http.c
// http_request_thread): the virtualhost as configured, without a port;
// without one, the connect address and port, the port always written
// (also 80 and 443: keepalived appends it unconditionally), and an IPv6
// address in brackets (RFC 2732).
func requestHost(vhost string, ep netip.AddrPort) string {
	if vhost != "" {
		return vhost
	}
	a := ep.Addr().WithZone("")
	port := strconv.Itoa(int(ep.Port()))
	if a.Is6() {
		return "[" + a.String() + "]:" + port
	}
	return a.String() + ":" + port
}

// buildRequest returns keepalived's request_template filled in:
//
//	GET <path> HTTP/1.<0|1>\r\n
//	User-Agent: KeepAliveClient\r\n
//	[Connection: close\r\n]        (http_protocol 1.0C and 1.1)
//	Host: <host>\r\n
//	\r\n
func buildRequest(path, proto, host string) []byte {
	minor, conn := "0", ""
	switch proto {
	case "1.1":
		minor, conn = "1", "Connection: close\r\n"
	case "1.0C", "1.0c":
		conn = "Connection: close\r\n"
	}
	return []byte("GET " + path + " HTTP/1." + minor + "\r\n" +
		"User-Agent: KeepAliveClient\r\n" +
		conn +
		"Host: " + host + "\r\n\r\n")
}

// Probe implements Prober.
func (p *httpProber) Probe(ctx context.Context) Result {
	start := time.Now()
	var r Result
	for i := range p.urls {
		r = p.get(ctx, &p.urls[i])
		r.URL = p.urls[i].path
		if !r.OK {
			break
		}
	}
	r.Start, r.Duration = start, time.Since(start)
	return r
}

// get checks one url.
func (p *httpProber) get(ctx context.Context, u *httpURL) Result {
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

	conn := c
	if u.tls != nil {
		tc := tls.Client(c, u.tls)
		if err := tc.HandshakeContext(pctx); err != nil {
			return fail(fmt.Errorf("TLS handshake with %s: %w", p.addr, err))
		}
		conn = tc
	}
	if _, err := conn.Write(u.request); err != nil {
		return fail(fmt.Errorf("send GET %s to %s: %w", u.path, p.addr, err))
	}
	keep := 0
	if u.re != nil {
		keep = maxKeptBody
	}
	resp, err := readResponse(conn, keep)
	if err != nil {
		r := fail(fmt.Errorf("read response to GET %s from %s: %w", u.path, p.addr, err))
		r.HTTPStatus = resp.status
		return r
	}
	r := Result{HTTPStatus: resp.status}
	if err := u.verify(&resp); err != nil {
		r.Err = fmt.Errorf("GET %s from %s: %w", u.path, p.addr, err)
		return r
	}
	r.OK = true
	return r
}

// verify applies the url's tests in keepalived's order
// (http_handle_response): status code, digest, regex.
func (u *httpURL) verify(resp *httpResponse) error {
	if !statusAccepted(resp.status, u.codes) {
		return fmt.Errorf("%w: %d", ErrStatus, resp.status)
	}
	if u.hasDigest && resp.digest != u.digest {
		return fmt.Errorf("%w: got %x, want %x", ErrDigest, resp.digest, u.digest)
	}
	if u.re != nil && u.re.Match(resp.body) == u.noMatch {
		if u.noMatch {
			return fmt.Errorf("%w: body matches %q (regex_no_match)", ErrRegex, u.re)
		}
		return fmt.Errorf("%w: body does not match %q", ErrRegex, u.re)
	}
	return nil
}

// statusAccepted reports whether code is in one of the ranges (200-299
// when there are none: HTTP_DEFAULT_STATUS_CODE_MIN/MAX).
func statusAccepted(code int, ranges []StatusRange) bool {
	if len(ranges) == 0 {
		return code >= 200 && code <= 299
	}
	for _, r := range ranges {
		if code >= r.Lo && code <= r.Hi {
			return true
		}
	}
	return false
}
