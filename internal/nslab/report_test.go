package nslab

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestFormatStatus(t *testing.T) {
	st := &Status{PID: 42, Started: time.Now().Add(-time.Minute), RunDir: "/run/golvs-lab",
		Namespaces: []string{"golvs-lab-client"}, Configs: []string{"/run/golvs-lab/director1/keepalived.conf"},
		StatusURL: "http://127.0.0.1:9650/", DirectorURLs: []string{"http://127.0.0.1:9651/", "http://127.0.0.1:9652/"},
		VIPsBy: "lab", VIPHolders: []string{"director2"}, Active: "director2",
		Processes: []ProcStatus{{Name: "director1's lvsd", PID: 7, Exit: "signal: killed"}, {Name: "director2's lvsd", PID: 8, Running: true}},
		Rotation:  map[string][]string{"NAT": {"rs2 w1", "rs3 w1"}},
		Client:    map[string]Window{"NAT": {Answers: map[string]int{"rs2": 5, "rs1": 4}, Errors: 2}},
	}
	var b bytes.Buffer
	FormatStatus(&b, st)
	for _, want := range []string{
		"lab pid 42, up 1m0s",
		"VIPs held by the lab (lvsd runs no VRRP yet), on: director2; active director: director2",
		"status page: http://127.0.0.1:9650/ (director1 http://127.0.0.1:9651/, director2 http://127.0.0.1:9652/)",
		"director1's lvsd             pid 7       exited: signal: killed",
		"director2's lvsd             pid 8       running",
		"NAT  198.18.0.101:80    [rs2 w1, rs3 w1]  answers: rs1 4, rs2 5; failed: 2",
		"DR   198.18.0.102:80    []  answers: none; failed: 0",
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("status lacks %q:\n%s", want, b.String())
		}
	}
}

func TestWindow(t *testing.T) {
	var w Window
	w.add("rs1", nil)
	w.add("rs1", nil)
	w.add("", errors.New("dial tcp 198.18.0.101:80: connect: connection refused"))
	if w.Answers["rs1"] != 2 || w.Errors != 1 || w.LastErr != "connection refused" {
		t.Errorf("window %+v", w)
	}
}

func TestEventFilter(t *testing.T) {
	for _, tt := range []struct {
		line string
		show bool
	}{
		{`time=2026-11-22T05:09:22Z level=INFO msg="real server down" real_server="TCP 198.18.0.103:80 -> 198.18.1.11:80" checker=TCP_CHECK`, true},
		{`time=2026-11-22T05:09:22Z level=INFO msg="real server down" vs="TCP 198.18.0.103:80" rs=198.18.1.11:80 from=up to=down reason="checker 0 down"`, false},
		{`time=2026-11-22T05:09:22Z level=WARN msg=configuration component=lvsd warning="not acted on yet"`, true},
		{`time=2026-11-22T05:09:22Z level=INFO msg="link counters" rx=5`, false},
		{`time=2026-11-22T05:09:22Z level=INFO msg="VRRP state" instance=VI_1 from=BACKUP to=MASTER`, true},
	} {
		got := eventRE.MatchString(tt.line) && !dupEventRE.MatchString(tt.line)
		if got != tt.show {
			t.Errorf("shown %v, want %v: %s", got, tt.show, tt.line)
		}
	}
	if got := noiseRE.ReplaceAllString(`time=2026-11-22T05:09:22Z level=WARN msg=configuration component=lvsd component=keepalived warning="x"`, ""); got != `level=WARN msg=configuration warning="x"` {
		t.Errorf("cleaned line %q", got)
	}
}
