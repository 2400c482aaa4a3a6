package forward

import (
	"bytes"
	"testing"

	"golvs/internal/header"
)

func TestSetMACs(t *testing.T) {
	untagged := &pkt{proto: header.ProtoUDP, src: client4, dst: vip4, sport: 1, dport: 2, ttl: 64, payload: []byte("x")}
	tagged := *untagged
	tagged.vlan, tagged.pcp = 100, 5
	out := *untagged
	out.dstMAC, out.srcMAC = macRS, macLB
	retagged := tagged
	retagged.vlan, retagged.dstMAC, retagged.srcMAC = 200, macRS, macLB // PCP 5 kept
	newTag := out
	newTag.vlan = 300

	tests := []struct {
		name    string
		in      *pkt
		room    int
		vlan    uint16 // 0: SetMACs
		res     Result
		want    *pkt
		offMove int
	}{
		{name: "untagged stays untagged", in: untagged, room: Headroom, want: &out},
		{name: "tag stripped", in: &tagged, room: Headroom, want: &out, offMove: 4},
		{name: "tag rewritten, priority kept", in: &tagged, room: Headroom, vlan: 200, want: &retagged},
		{name: "tag pushed", in: untagged, room: Headroom, vlan: 300, want: &newTag, offMove: -4},
		{name: "tag pushed without headroom", in: untagged, room: 3, vlan: 300, res: NoHeadroom},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := tc.in.frame()
			b := loadRoom(in, tc.room)
			off := b.Off
			var r Result
			if tc.vlan == 0 {
				r = SetMACs(&b.Buf, macRS, macLB)
			} else {
				r = SetMACsVLAN(&b.Buf, macRS, macLB, tc.vlan)
			}
			b.untouched(t)
			if r != tc.res {
				t.Fatalf("result %v, want %v", r, tc.res)
			}
			want := in
			if tc.want != nil {
				want = tc.want.frame()
			}
			if !bytes.Equal(b.Frame(), want) {
				t.Fatalf("\n got % x\nwant % x", b.Frame(), want)
			}
			if b.Off-off != tc.offMove {
				t.Fatalf("Off moved by %d, want %d", b.Off-off, tc.offMove)
			}
		})
	}
	// Too short for a header, or for the tag it announces.
	for _, n := range []int{0, 13, 17} {
		f := make([]byte, n)
		if n > 13 {
			f[12], f[13] = 0x81, 0x00
		}
		b := load(f)
		if r := SetMACs(&b.Buf, macRS, macLB); r != Malformed {
			t.Fatalf("%d bytes: %v", n, r)
		}
		if r := SetMACsVLAN(&b.Buf, macRS, macLB, 1); r != Malformed {
			t.Fatalf("%d bytes: %v", n, r)
		}
	}
}

func TestDRExpired(t *testing.T) {
	s := &pkt{proto: header.ProtoTCP, src: client4, dst: vip4, sport: 1, dport: 2, ttl: 1, vlan: 9}
	in := s.frame()
	b := load(in)
	if r := DR(&b.Buf, parse(in), macRS, macLB); r != TTLExpired {
		t.Fatalf("DR: %v", r)
	}
	if !bytes.Equal(b.B, b.before) {
		t.Fatal("an expired packet was changed: ICMPError must quote it as it came")
	}
}
