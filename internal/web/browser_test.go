//go:build linux

package web

import (
	"context"
	"errors"
	"math"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// chromiumPath is Debian's chromium package's binary.
const chromiumPath = "/usr/bin/chromium"

// chromium runs headless Chromium on url with extra arguments and returns
// its standard output. Virtual time lets the page's scripts run (fetch
// /api/status, render, poll once more) for 3 s of page time without the test
// waiting that long; the run is bounded by a real-time timeout, and the
// whole process group (Chromium's zygote, renderer and GPU processes) is
// killed if it hangs.
func chromium(t *testing.T, url string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	argv := append([]string{
		"--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
		"--no-first-run", "--no-default-browser-check", "--disable-extensions",
		"--disable-background-networking", "--disable-sync", "--metrics-recording-only",
		"--hide-scrollbars", "--mute-audio",
		"--user-data-dir=" + t.TempDir(),
		"--virtual-time-budget=3000",
	}, args...)
	argv = append(argv, url)
	cmd := exec.CommandContext(ctx, chromiumPath, argv...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	var stderr strings.Builder
	cmd.Stderr = &stderr
	start := time.Now()
	out, err := cmd.Output()
	t.Logf("chromium %v: %v", args, time.Since(start).Round(time.Millisecond))
	// Chromium's helpers may outlive it briefly; end the group we made.
	if cmd.Process != nil {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
	if err != nil {
		t.Fatalf("chromium %v: %v\n%s", args, err, stderr.String())
	}
	return string(out)
}

func artifactDir(t *testing.T) string {
	if d := os.Getenv("GOLVS_ARTIFACTS"); d != "" {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		return d
	}
	return t.TempDir()
}

// TestBrowser loads the status page in headless Chromium against a known
// configuration with changing traffic, and checks in the rendered DOM
// (after the page's script ran) that the services, the real servers, their
// health and the rates appear, and that the rates change between two
// loads. It saves a screenshot as a test artifact.
func TestBrowser(t *testing.T) {
	if _, err := os.Stat(chromiumPath); errors.Is(err, os.ErrNotExist) {
		t.Skipf("%s not found: install Debian's chromium package to run the browser test", chromiumPath)
	}
	l := newLab(t)
	// Wall-clock times near the real time, so that "2m ago" reads right.
	l.setNow(time.Now().Add(-historyLen * 2 * time.Second).Truncate(time.Second))
	h := NewHandler(fullSourceAt(l, l.Now().Add(historyLen*2*time.Second)), Options{Now: l.Now, Token: "t0ken"})

	// Five minutes of history with a daily-looking swell, then steady.
	web1, web2, dns := l.dest(webKey, rs1, 80), l.dest(webKey, rs2, 80), l.dest(dnsKey, rs1, 53)
	for i := range historyLen {
		f := 1 + math.Sin(float64(i)/12)
		l.traffic(web1, int(40*f)+20, 12, 700)
		l.traffic(web2, int(20*f)+10, 8, 1200)
		l.traffic(dns, 30, 1, 80)
		l.steady(1)
		h.Sample()
	}
	l.dest(webKey, rs1, 80).SetCounts(42, 17, false)
	l.dest(webKey, rs2, 80).SetCounts(21, 9, false)

	srv := httptest.NewServer(h)
	defer srv.Close()
	url := srv.URL + "/?token=t0ken"

	art := artifactDir(t)
	shot := filepath.Join(art, "status-page.png")
	dom1 := chromium(t, url, "--dump-dom", "--screenshot="+shot, "--window-size=1280,900")
	for _, want := range []string{
		"TCP 198.18.0.10:80", "UDP 198.18.0.10:53", "FWM 1", "TCP [2001:db8::10]:443",
		`data-server="198.19.0.1:80"`, `data-server="198.19.0.2:80"`, `data-server="198.19.0.3:80"`,
		`data-server="198.19.0.4:80"`, "not in table", "connection refused",
		"wlc", "persistent 300", "VI_1: MASTER", "syncid 7", "HTTP_GET",
		"<polyline",          // the sparklines were drawn
		`<div id="content">`, // and shown (hidden until the first status)
	} {
		if !strings.Contains(dom1, want) {
			t.Errorf("the rendered page lacks %q", want)
		}
	}
	if strings.Contains(dom1, "token needed") || strings.Contains(dom1, "update failed") {
		t.Errorf("the page did not get its status:\n%s", dom1)
	}
	cps1 := rateIn(t, dom1, "tcp:198.18.0.10:80", "cps")

	// Five times the traffic: the page shows new rates.
	for range 10 {
		l.traffic(web1, 300, 12, 700)
		l.traffic(web2, 150, 8, 1200)
		l.steady(1)
		h.Sample()
	}
	// The whole page, in the dark colour scheme this time.
	dark := filepath.Join(art, "status-page-dark.png")
	dom2 := chromium(t, url, "--dump-dom", "--screenshot="+dark, "--window-size=1280,2000", "--force-dark-mode", "--blink-settings=preferredColorScheme=0")
	cps2 := rateIn(t, dom2, "tcp:198.18.0.10:80", "cps")
	if cps1 == cps2 {
		t.Errorf("the web service's conn/s stayed %q after the traffic changed", cps1)
	}
	t.Logf("web service conn/s on the page: %s, then %s", cps1, cps2)
	for _, f := range []string{shot, dark} {
		if fi, err := os.Stat(f); err != nil || fi.Size() < 10_000 {
			t.Fatalf("screenshot %s: %v (%v)", f, err, fi)
		}
		t.Logf("screenshot: %s", f)
	}

	// Without the token the page asks for one instead of showing data.
	dom3 := chromium(t, srv.URL+"/", "--dump-dom")
	if !strings.Contains(dom3, "token needed") || strings.Contains(dom3, `data-server="198.19.0.1:80"`) {
		t.Errorf("without a token the page should ask for one and show nothing")
	}
}

// rateIn returns the text of the rate cell named rate of the service id.
func rateIn(t *testing.T, dom, id, rate string) string {
	t.Helper()
	re := regexp.MustCompile(`data-service="` + regexp.QuoteMeta(id) + `"[\s\S]*?data-rate="` + rate + `">([^<]+)<`)
	m := re.FindStringSubmatch(dom)
	if m == nil {
		t.Fatalf("no %s rate of %s in the rendered page", rate, id)
	}
	return m[1]
}
