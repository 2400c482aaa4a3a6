package statefile

import (
	"bytes"
	"testing"
)

// FuzzUnmarshal: any input either is refused or decodes to a document
// whose encoding is stable (decode, encode, decode, encode gives the same
// bytes: an empty list and a missing one are the same document); nothing
// panics.
func FuzzUnmarshal(f *testing.F) {
	for _, g := range []int{0, 1, 2, 5} {
		b, err := Marshal(generation(g))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"version":1,"services":[{"family":6,"fwmark":7,"scheduler":"wlc","netmask":128}],"settings":{"conn_reuse_mode":1}}`))
	f.Add([]byte(`{"version":1,"services":[{"family":4,"protocol":6,"addr":"198.18.0.1","port":80,"scheduler":"rr","netmask":4294967295,"dests":[{"addr":"2001:db8::1","port":80,"fwd":2,"weight":1,"tun_type":1,"tun_port":6080,"tun_flags":2}]}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := Unmarshal(b)
		if err != nil {
			return
		}
		enc, err := Marshal(d)
		if err != nil {
			t.Fatal(err)
		}
		d2, err := Unmarshal(enc)
		if err != nil {
			t.Fatalf("re-decoding %s: %v", enc, err)
		}
		enc2, err := Marshal(d2)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(enc, enc2) {
			t.Fatalf("encoding not stable:\n%s\n%s", enc, enc2)
		}
	})
}
