package check

import (
	"bytes"
	"net"
	"net/netip"
	"syscall"
	"testing"
	"time"
)

// startUDP answers each datagram with reply(payload) (nil: no answer) and
// records the payloads.
func startUDP(t *testing.T, addr netip.Addr, reply func([]byte) []byte) (Target, chan []byte) {
	t.Helper()
	pc, err := net.ListenPacket("udp", netip.AddrPortFrom(addr, 0).String())
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan []byte, 64)
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 2048)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			p := append([]byte(nil), buf[:n]...)
			select {
			case got <- p:
			default:
			}
			if r := reply(p); r != nil {
				pc.WriteTo(r, from)
			}
		}
	}()
	t.Cleanup(func() {
		pc.Close()
		<-done
	})
	return targetOf(t, pc.LocalAddr()), got
}

func TestUDPCheck(t *testing.T) {
	for _, addr := range loopbacks(t) {
		t.Run(addr.String(), func(t *testing.T) {
			echo, payloads := startUDP(t, addr, func(p []byte) []byte { return p })
			silent, _ := startUDP(t, addr, func([]byte) []byte { return nil })
			fixed, _ := startUDP(t, addr, func([]byte) []byte { return []byte{0xAB, 0x12, 0x0F, 0x03, 0x99} })
			closed := Target{Addr: addr, Port: closedUDPPort(t, addr)}
			const timeout = 300 * time.Millisecond
			base := Spec{Kind: KindUDP, ConnectTimeout: timeout}
			with := func(f func(*Spec)) Spec { s := base; f(&s); return s }

			t.Run("payload sent as is, any reply is success", func(t *testing.T) {
				s := with(func(s *Spec) { s.Payload = []byte("ping") })
				start := time.Now()
				wantOK(t, probeOnce(t, s, echo))
				if p := <-payloads; string(p) != "ping" {
					t.Errorf("payload %q", p)
				}
				if el := time.Since(start); el >= timeout {
					t.Errorf("a reply did not end the probe (%v)", el)
				}
			})
			t.Run("random payload when none", func(t *testing.T) {
				wantOK(t, probeOnce(t, base, echo))
				p1 := <-payloads
				wantOK(t, probeOnce(t, base, echo))
				p2 := <-payloads
				if len(p1) != randomPayloadLen || bytes.Equal(p1, p2) {
					t.Errorf("payloads %x, %x", p1, p2)
				}
			})
			t.Run("silence is success without require_reply", func(t *testing.T) {
				start := time.Now()
				wantOK(t, probeOnce(t, base, silent))
				if el := time.Since(start); el < timeout-50*time.Millisecond {
					t.Errorf("success after %v, before connect_timeout", el)
				}
			})
			t.Run("port unreachable fails", func(t *testing.T) {
				wantFail(t, probeOnce(t, base, closed), syscall.ECONNREFUSED)
			})
			t.Run("require_reply without data: silence fails", func(t *testing.T) {
				s := with(func(s *Spec) { s.RequireReplySet = true })
				wantFail(t, probeOnce(t, s, silent), ErrTimeout)
			})
			t.Run("require_reply without data: any reply", func(t *testing.T) {
				s := with(func(s *Spec) { s.RequireReplySet = true })
				wantOK(t, probeOnce(t, s, fixed))
			})
			// keepalived's example: "Ab12f 3 456 546443123" with X nibbles.
			reply := func(want []byte, mask []byte) Spec {
				return with(func(s *Spec) { s.RequireReplySet, s.RequireReply, s.RequireReplyMask = true, want, mask })
			}
			t.Run("require_reply matches", func(t *testing.T) {
				wantOK(t, probeOnce(t, reply([]byte{0xAB, 0x12, 0x0F}, nil), fixed))
			})
			t.Run("require_reply with a wildcard byte", func(t *testing.T) {
				wantOK(t, probeOnce(t, reply([]byte{0xAB, 0x00, 0x0F}, []byte{0xff, 0, 0xff}), fixed))
			})
			t.Run("require_reply mismatch", func(t *testing.T) {
				wantFail(t, probeOnce(t, reply([]byte{0xAB, 0x13}, nil), fixed), ErrReply)
			})
			t.Run("reply too long", func(t *testing.T) {
				s := reply([]byte{0xAB}, nil)
				s.MaxReplyLength = 4
				wantFail(t, probeOnce(t, s, fixed), ErrReply)
			})
			t.Run("reply too short", func(t *testing.T) {
				s := reply([]byte{0xAB}, nil)
				s.MinReplyLength = 6
				wantFail(t, probeOnce(t, s, fixed), ErrReply)
			})
			t.Run("require_reply and port unreachable", func(t *testing.T) {
				wantFail(t, probeOnce(t, reply([]byte{1}, nil), closed), syscall.ECONNREFUSED)
			})
		})
	}
}

func TestMatchReply(t *testing.T) {
	want := []byte{0xAB, 0x12, 0x0F, 0x03}
	for _, tt := range []struct {
		name     string
		reply    []byte
		mask     []byte
		min, max int
		ok       bool
	}{
		{"equal", []byte{0xAB, 0x12, 0x0F, 0x03}, nil, 0, 255, true},
		{"longer reply, prefix matches", []byte{0xAB, 0x12, 0x0F, 0x03, 0xFF}, nil, 0, 255, true},
		{"shorter reply matches its length (keepalived)", []byte{0xAB, 0x12}, nil, 0, 255, true},
		{"empty reply", []byte{}, nil, 0, 255, true},
		{"empty reply under min", []byte{}, nil, 1, 255, false},
		{"differs", []byte{0xAB, 0x13}, nil, 0, 255, false},
		{"wildcard", []byte{0xAB, 0x13}, []byte{0xff, 0}, 0, 255, true},
		{"wildcard nibble", []byte{0xAB, 0x1E}, []byte{0xff, 0xf0}, 0, 255, true},
		{"wildcard nibble, other nibble differs", []byte{0xAB, 0x22}, []byte{0xff, 0xf0}, 0, 255, false},
		{"short mask: the rest must match", []byte{0xAB, 0x12, 0x0E}, []byte{0xff, 0}, 0, 255, false},
		{"above max", []byte{0xAB, 0x12, 0x0F, 0x03, 0}, nil, 0, 4, false},
		{"at max", []byte{0xAB, 0x12, 0x0F, 0x03}, nil, 0, 4, true},
	} {
		err := matchReply(tt.reply, want, tt.mask, tt.min, tt.max)
		if (err == nil) != tt.ok {
			t.Errorf("%s: %v, want ok %v", tt.name, err, tt.ok)
		}
	}
}

// FuzzMatchReply compares matchReply with a direct reading of keepalived's
// check_udp_reply (mask as bytes of 0xff for wildcards).
func FuzzMatchReply(f *testing.F) {
	f.Add([]byte{0xAB, 0x12}, []byte{0xAB, 0x12, 0x0F}, []byte{1, 0, 1}, 0, 255)
	f.Add([]byte{}, []byte{1}, []byte{}, 1, 2)
	f.Add([]byte{1, 2, 3}, []byte{}, []byte{}, 0, 2)
	f.Fuzz(func(t *testing.T, reply, want, maskBytes []byte, min, max int) {
		mask := maskBytes
		got := matchReply(reply, want, mask, min, max) == nil

		// check_udp_reply, with reply_mask[i] = 0xff where a byte is a
		// wildcard ("X" nibbles) and 0 where it must match.
		ref := func() bool {
			if len(reply) < min || len(reply) > max {
				return false
			}
			n := min2(len(reply), len(want))
			for i := range n {
				var m byte // reply_mask: the wildcard bits
				if i < len(mask) {
					m = ^mask[i]
				}
				if (reply[i]^want[i])&^m != 0 {
					return false
				}
			}
			return true
		}()
		if got != ref {
			t.Fatalf("matchReply(%x, %x, %v, %d, %d) = %v, reference %v", reply, want, mask, min, max, got, ref)
		}
	})
}

func min2(a, b int) int {
	if a < b {
		return a
	}
	return b
}
