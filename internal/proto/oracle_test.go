package proto

import (
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestOracleListing checks this package against a real kernel 6.1 listing
// (testdata/oracle/a2-listings.txt): every state name in `ipvsadm -L -n -c`
// is one StateName produces; every connection's remaining time fits the
// default timeout of its state (at most the timeout, and not more than a
// few seconds below it: the listing was taken right after the traffic); and
// each real server's ActiveConn/InActConn in `ipvsadm -L -n` equals the
// number of its connections for which IsActive is true/false (templates
// count in PersistConn instead).
func TestOracleListing(t *testing.T) {
	data, err := os.ReadFile("testdata/oracle/a2-listings.txt")
	if err != nil {
		t.Fatal(err)
	}
	// The listing was taken within seconds of the last packets; 20 s is
	// a generous bound for the slow TCG virtual machine.
	const slack = 20 * time.Second
	tm := DefaultTimeouts()
	protos := map[string]uint8{"TCP": TCP, "UDP": UDP}

	type counts struct{ active, inact int }
	listed := map[string]counts{}  // "TCP 198.18.0.100:80 198.19.0.11:80" from -L -n
	counted := map[string]counts{} // the same key, from -L -n -c
	var service string
	conns, templates := 0, 0
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) >= 3 && (f[0] == "TCP" || f[0] == "UDP") && strings.HasPrefix(line, f[0]+"  "):
			service = f[0] + " " + f[1] // "TCP  198.18.0.100:80 rr"
		case len(f) == 6 && f[0] == "->" && service != "":
			a, err1 := strconv.Atoi(f[4])
			i, err2 := strconv.Atoi(f[5])
			if err1 != nil || err2 != nil {
				t.Fatalf("bad dest line %q", line)
			}
			listed[service+" "+f[1]] = counts{a, i}
		case len(f) == 6 && protos[f[0]] != 0 && strings.Contains(f[1], ":"):
			// "TCP 01:52  TIME_WAIT   src  virtual  destination"
			p := protos[f[0]]
			template := strings.HasSuffix(f[3], ":0")
			found := false
			var st State
			for s := 0; s < 256; s++ {
				if ValidState(p, State(s), template) && StateName(p, State(s), template) == f[2] {
					st, found = State(s), true
					break
				}
			}
			if !found {
				t.Errorf("state %q (template %v) of %q is not a name StateName gives", f[2], template, line)
				continue
			}
			if template {
				templates++ // expire is the -p 300 persistence timeout, not ours
				continue
			}
			conns++
			mm, ss, _ := strings.Cut(f[1], ":")
			m, _ := strconv.Atoi(mm)
			s, _ := strconv.Atoi(ss)
			expire := time.Duration(m)*time.Minute + time.Duration(s)*time.Second
			if want := tm.For(p, st); expire > want || expire < want-slack {
				t.Errorf("%q: expire %v does not fit the %s timeout %v", line, expire, f[2], want)
			}
			key := f[0] + " " + f[4] + " " + f[5]
			c := counted[key]
			if IsActive(p, st) {
				c.active++
			} else {
				c.inact++
			}
			counted[key] = c
		}
	}
	if conns != 23 || templates != 2 || len(listed) != 10 {
		t.Fatalf("parsed %d connections, %d templates, %d real servers; want 23, 2, 10", conns, templates, len(listed))
	}
	for key, want := range listed {
		if got := counted[key]; got != want {
			t.Errorf("%s: ActiveConn/InActConn from states %d/%d, kernel listed %d/%d", key, got.active, got.inact, want.active, want.inact)
		}
	}
}
