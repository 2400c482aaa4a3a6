package api

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http/httptest"
	"strings"
	"testing"

	"golvs/internal/control"
	"golvs/internal/engine"
)

// restoreBody is a /v1/commands body with the load: 1000 services
// with 10 real servers each (11000 commands).
func restoreBody(b *testing.B) string {
	var req CommandsRequest
	for i := range 1000 {
		vip := fmt.Sprintf("198.18.%d.%d", i/250, i%250+1)
		req.Commands = append(req.Commands, FromCommand(mustParse(b, "-A -t "+vip+":80 -s wlc")))
		for j := range 10 {
			req.Commands = append(req.Commands, FromCommand(mustParse(b,
				fmt.Sprintf("-a -t %s:80 -r 198.19.%d.%d:8080 -m -w %d", vip, i/25, (i%25)*10+j+1, j+1))))
		}
	}
	body, err := json.Marshal(req)
	if err != nil {
		b.Fatal(err)
	}
	return string(body)
}

func newBenchServer(b *testing.B) *Server {
	ctl := control.New(control.Config{})
	eng, err := engine.New(engine.Config{Control: ctl, MaxConns: 1024})
	if err != nil {
		b.Fatal(err)
	}
	return New(Config{Control: ctl, Engine: eng})
}

// BenchmarkRestore1000x10 is one POST /v1/commands of 11000 commands on
// an empty director (what ipvsadm -R sends, minus the socket).
func BenchmarkRestore1000x10(b *testing.B) {
	body := restoreBody(b)
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		srv := newBenchServer(b)
		b.StartTimer()
		w := httptest.NewRecorder()
		srv.ServeHTTP(w, httptest.NewRequest("POST", "/v1/commands", strings.NewReader(body)))
		if w.Code != 200 {
			b.Fatal(w.Code, w.Body)
		}
	}
}

// BenchmarkState1000x10 is GET /v1/state of that configuration (what
// ipvsadm -L reads).
func BenchmarkState1000x10(b *testing.B) {
	srv := newBenchServer(b)
	w := httptest.NewRecorder()
	srv.ServeHTTP(w, httptest.NewRequest("POST", "/v1/commands", strings.NewReader(restoreBody(b))))
	b.ReportAllocs()
	for b.Loop() {
		w := httptest.NewRecorder()
		srv.ServeHTTP(w, httptest.NewRequest("GET", "/v1/state", nil))
		if w.Code != 200 {
			b.Fatal(w.Code)
		}
		io.Copy(io.Discard, w.Body)
	}
}
