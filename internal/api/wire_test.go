package api

import (
	"encoding/json"
	"reflect"
	"testing"

	"golvs/internal/ipvsadm"
)

// TestWireRoundTrip checks that a parsed command survives its wire form:
// FromCommand, JSON, decoding, Parsed give back the same Command.
func TestWireRoundTrip(t *testing.T) {
	lines := append([]string{
		"-A -u 198.18.0.1:80 -s wlc -p 60 -M 255.255.255.0 --pe sip -o",
		"-a -t [2001:db8::1]:80 -r [::ffff:198.19.0.1]:80 -i --tun-type gre --tun-csum",
		"-L -n --stats --exact --nosort",
		"-L -n -c --persistent-conn",
		"--start-daemon master --mcast-interface lo --syncid 7 --sync-maxlen 1400 --mcast-group 239.1.1.1 --mcast-port 9000 --mcast-ttl 3",
	}, fuzzSeeds...)
	for _, l := range lines {
		c := mustParse(t, l)
		b, err := json.Marshal(FromCommand(c))
		if err != nil {
			t.Fatal(err)
		}
		var w Command
		if err := json.Unmarshal(b, &w); err != nil {
			t.Fatalf("%s: %v", l, err)
		}
		if got := w.Parsed(); got != c {
			t.Errorf("%s: round trip through %s:\n got %+v\nwant %+v", l, b, got, c)
		}
	}
	// FromCommand and Parsed name every field of ipvsadm.Command; the
	// nested types are converted as struct types, which the compiler
	// checks field by field.
	if n := reflect.TypeFor[ipvsadm.Command]().NumField(); n != reflect.TypeFor[Command]().NumField() {
		t.Errorf("ipvsadm.Command has %d fields, the wire form %d: update wire.go", n, reflect.TypeFor[Command]().NumField())
	}
}
