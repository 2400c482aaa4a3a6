package api

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"

	"golvs/internal/control"
	"golvs/internal/engine"
)

// fuzzSeeds are ipvsadm lines whose parsed commands seed the fuzzers.
var fuzzSeeds = []string{
	"-A -t 198.18.0.1:80 -s rr",
	"-A -u [2001:db8::1]:53 -s sh -b sh-port,sh-fallback -p 60 -M 64",
	"-A -f 7 -6 -s mh",
	"-E -t 198.18.0.1:80 -s wlc -p",
	"-a -t 198.18.0.1:80 -r 198.19.0.1:8080 -m -w 3 -x 10 -y 5",
	"-a -u [2001:db8::1]:53 -r [2001:db8::10]:53 -i --tun-type gue --tun-port 6080 --tun-remcsum",
	"-e -t 198.18.0.1:80 -r 198.19.0.1:8080 -g -w 0",
	"-d -t 198.18.0.1:80 -r 198.19.0.1:8080",
	"-D -f 7 -6",
	"-C",
	"-Z",
	"--set 10 20 30",
	"--start-daemon backup --mcast-interface lo --syncid 9",
	"--stop-daemon master",
}

// FuzzCommands feeds arbitrary bodies to POST /v1/commands on a fresh
// server: the daemon never panics, answers 200 or 400 (never 500: there
// is no persistence here), and a body it accepts survives a JSON round
// trip unchanged (decode, encode, decode).
func FuzzCommands(f *testing.F) {
	var all CommandsRequest
	for _, l := range fuzzSeeds {
		c := FromCommand(mustParse(f, l))
		all.Commands = append(all.Commands, c)
		b, _ := json.Marshal(CommandsRequest{Commands: all.Commands[len(all.Commands)-1:]})
		f.Add(string(b))
	}
	b, _ := json.Marshal(all)
	f.Add(string(b))
	f.Add(`{"commands":[]}`)
	f.Add(`{"commands":[{"kind":6,"service":{"family":4,"proto":6,"addr":"198.18.0.1","port":80},"dest":"198.19.0.1","dest_config":{"fwd":2,"tun_type":200,"weight":-5}}]}`)
	f.Add(`{"commands":[{"kind":1,"service":{"family":6,"fwmark":1},"config":{"sched":"mh","flags":4294967295,"netmask":0}}]}`)
	f.Fuzz(func(t *testing.T, body string) {
		ctl := control.New(control.Config{})
		eng, err := engine.New(engine.Config{Control: ctl, MaxConns: 64, TableShards: 1, Seed: 1})
		if err != nil {
			t.Fatal(err)
		}
		srv := New(Config{Control: ctl, Engine: eng})
		// Twice: the second time against the state the first left.
		for range 2 {
			w := httptest.NewRecorder()
			srv.ServeHTTP(w, httptest.NewRequest("POST", "/v1/commands", strings.NewReader(body)))
			switch w.Code {
			case http.StatusOK, http.StatusBadRequest:
			default:
				t.Fatalf("status %d: %s", w.Code, w.Body)
			}
			if w.Code != http.StatusOK {
				return
			}
		}
		// The listing of whatever was configured encodes.
		w := httptest.NewRecorder()
		srv.ServeHTTP(w, httptest.NewRequest("GET", "/v1/state?conns=1", nil))
		if w.Code != http.StatusOK {
			t.Fatalf("state: %d %s", w.Code, w.Body)
		}

		var req1, req2 CommandsRequest
		if err := json.Unmarshal([]byte(body), &req1); err != nil {
			t.Fatalf("accepted by the server, refused by json: %v", err)
		}
		enc, err := json.Marshal(req1)
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(enc, &req2); err != nil {
			t.Fatalf("re-decoding %s: %v", enc, err)
		}
		if !reflect.DeepEqual(req1, req2) {
			t.Fatalf("round trip changed the request:\n%+v\n%+v", req1, req2)
		}
		for _, w := range req1.Commands {
			if back := FromCommand(w.Parsed()); back != w {
				t.Fatalf("wire form not preserved: %+v -> %+v", w, back)
			}
		}
	})
}

// FuzzServiceID checks that a service identifier that parses formats back
// to one that parses to the same key.
func FuzzServiceID(f *testing.F) {
	for _, s := range []string{"tcp:198.18.0.1:80", "udp:[2001:db8::1]:53", "sctp:198.18.0.1:0", "fwmark:1", "fwmark6:4294967295", "tcp:[::ffff:1.2.3.4]:1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		k, err := ParseServiceID(s)
		if err != nil {
			return
		}
		k2, err := ParseServiceID(ServiceID(k))
		if err != nil || k2 != k {
			t.Fatalf("%q -> %v -> %q -> %v, %v", s, k, ServiceID(k), k2, err)
		}
	})
}
