package web

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

func TestToken(t *testing.T) {
	l := newLab(t)
	open := NewHandler(Source{Control: l.ctl}, Options{})
	locked := NewHandler(Source{Control: l.ctl}, Options{Token: "s3cret"})

	tests := []struct {
		name   string
		h      http.Handler
		target string
		hdr    []string
		want   int
	}{
		{"no token set: metrics", open, "/metrics", nil, 200},
		{"no token set: status", open, "/api/status", nil, 200},
		{"no token set: a token given anyway", open, "/api/status?token=x", nil, 200},
		{"metrics without token", locked, "/metrics", nil, 401},
		{"status without token", locked, "/api/status", nil, 401},
		{"bearer", locked, "/metrics", []string{"Authorization", "Bearer s3cret"}, 200},
		{"bearer, scheme in lower case", locked, "/api/status", []string{"Authorization", "bearer s3cret"}, 200},
		{"bearer, wrong token", locked, "/metrics", []string{"Authorization", "Bearer s3cre"}, 401},
		{"bearer, longer token", locked, "/metrics", []string{"Authorization", "Bearer s3cret2"}, 401},
		{"bearer, empty", locked, "/metrics", []string{"Authorization", "Bearer "}, 401},
		{"basic scheme", locked, "/metrics", []string{"Authorization", "Basic czNjcmV0"}, 401},
		{"bare token", locked, "/metrics", []string{"Authorization", "s3cret"}, 401},
		{"query", locked, "/api/status?token=s3cret", nil, 200},
		{"query, wrong", locked, "/metrics?token=S3CRET", nil, 401},
		{"a wrong header is not rescued by a right query", locked, "/metrics?token=s3cret", []string{"Authorization", "Bearer nope"}, 401},
		// The page's files and the health check hold no data.
		{"page without token", locked, "/", nil, 200},
		{"script without token", locked, "/assets/app.js", nil, 200},
		{"style without token", locked, "/assets/style.css", nil, 200},
		{"healthz without token", locked, "/healthz", nil, 200},
		{"unknown path", locked, "/nope", nil, 404},
		{"unknown asset", locked, "/assets/nope.js", nil, 404},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res, body := get(t, tc.h, tc.target, tc.hdr...)
			if res.StatusCode != tc.want {
				t.Fatalf("%s: %s, want %d\n%s", tc.target, res.Status, tc.want, body)
			}
			if tc.want == 401 {
				if res.Header.Get("WWW-Authenticate") == "" {
					t.Error("401 without WWW-Authenticate")
				}
				if strings.Contains(body, "s3cret") {
					t.Error("the refusal shows the token")
				}
			}
		})
	}
}

func TestMethods(t *testing.T) {
	h := NewHandler(Source{Control: newLab(t).ctl}, Options{})
	for _, target := range []string{"/metrics", "/api/status", "/", "/healthz"} {
		r := httptest.NewRequest(http.MethodPost, target, strings.NewReader("x"))
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != http.StatusMethodNotAllowed {
			t.Errorf("POST %s: %d, want 405", target, w.Code)
		}
		r = httptest.NewRequest(http.MethodHead, target, nil)
		w = httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != http.StatusOK {
			t.Errorf("HEAD %s: %d, want 200", target, w.Code)
		}
	}
}

func TestPageHeaders(t *testing.T) {
	h := NewHandler(Source{Control: newLab(t).ctl}, Options{})
	res, body := get(t, h, "/")
	if ct := res.Header.Get("Content-Type"); ct != "text/html; charset=utf-8" {
		t.Errorf("Content-Type %q", ct)
	}
	csp := res.Header.Get("Content-Security-Policy")
	if !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe") {
		t.Errorf("CSP %q", csp)
	}
	if res.Header.Get("Referrer-Policy") != "no-referrer" {
		t.Error("the page's address may hold the token: it must not be sent as a Referer")
	}
	// Everything the page loads is its own: no CDN, no internet.
	for _, bad := range []string{"http://", "https://", "<script>", "style="} {
		if strings.Contains(body, bad) {
			t.Errorf("index.html contains %q", bad)
		}
	}
	_, js := get(t, h, "/assets/app.js")
	for _, bad := range []string{"http://", "https://", "eval(", "innerHTML"} {
		if strings.Contains(strings.ReplaceAll(js, "http://www.w3.org/2000/svg", ""), bad) {
			t.Errorf("app.js contains %q", bad)
		}
	}
}

func TestCheckListenAddr(t *testing.T) {
	tests := []struct {
		addr, token string
		ok          bool
		noToken     bool // the error is ErrNoToken
	}{
		{"127.0.0.1:9100", "", true, false},
		{"127.1.2.3:9100", "", true, false},
		{"[::1]:9100", "", true, false},
		{"localhost:9100", "", true, false},
		{"LOCALHOST:9100", "", true, false},
		{"[::ffff:127.0.0.1]:9100", "", true, false},
		{"127.0.0.1:0", "", true, false},
		{":9100", "", false, true},
		{"0.0.0.0:9100", "", false, true},
		{"[::]:9100", "", false, true},
		{"198.18.0.1:9100", "", false, true},
		{"[2001:db8::1]:9100", "", false, true},
		{"director.example:9100", "", false, true},
		{"localhost.example:9100", "", false, true},
		{":9100", "tok", true, false},
		{"198.18.0.1:9100", "tok", true, false},
		{"127.0.0.1", "", false, false},
		{"127.0.0.1:http", "", false, false},
		{"127.0.0.1:65536", "", false, false},
		{"", "", false, false},
		{"[::1:9100", "tok", false, false},
	}
	for _, tc := range tests {
		err := CheckListenAddr(tc.addr, tc.token)
		if (err == nil) != tc.ok {
			t.Errorf("CheckListenAddr(%q, %q) = %v, want ok %v", tc.addr, tc.token, err, tc.ok)
		}
		if got := errors.Is(err, ErrNoToken); got != tc.noToken {
			t.Errorf("CheckListenAddr(%q, %q) = %v: ErrNoToken %v, want %v", tc.addr, tc.token, err, got, tc.noToken)
		}
	}
}

// FuzzCheckListenAddr: no panic, and an address accepted without a token
// is a loopback address (or localhost).
func FuzzCheckListenAddr(f *testing.F) {
	for _, s := range []string{"127.0.0.1:80", ":80", "[::1]:80", "localhost:1", "[fe80::1%lo]:80", "[::ffff:127.0.0.1]:1", "a:b:c", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, addr string) {
		if CheckListenAddr(addr, "") != nil {
			return
		}
		if err := CheckListenAddr(addr, "t"); err != nil {
			t.Fatalf("%q accepted without a token but not with one: %v", addr, err)
		}
		host := addr[:strings.LastIndex(addr, ":")]
		host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
		if !isLoopback(host) {
			t.Fatalf("%q accepted without a token", addr)
		}
	})
}

// FuzzToken: only the configured token opens /api/status, whether in the
// Authorization header or the query.
func FuzzToken(f *testing.F) {
	f.Add("Bearer s3cret", "")
	f.Add("", "s3cret")
	f.Add("bearer  s3cret ", "")
	f.Add("Basic s3cret", "s3cret")
	f.Add("Bearer", "")
	h := NewHandler(Source{Control: newLab(f).ctl}, Options{Token: "s3cret"})
	f.Fuzz(func(t *testing.T, header, query string) {
		r := httptest.NewRequest(http.MethodGet, "/healthz", nil)
		r.URL.RawQuery = url.Values{"token": {query}}.Encode()
		if header != "" {
			r.Header["Authorization"] = []string{header}
		}
		if !h.tokenOK(r) {
			return
		}
		if header != "" {
			scheme, tok, _ := strings.Cut(header, " ")
			if !strings.EqualFold(scheme, "bearer") || strings.TrimSpace(tok) != "s3cret" {
				t.Fatalf("header %q accepted", header)
			}
		} else if query != "s3cret" {
			t.Fatalf("query %q accepted", query)
		}
	})
}
