package datapath_test

import (
	"golvs/internal/datapath"
	"testing"

	"golvs/internal/forward"
	"golvs/internal/header"
	"golvs/internal/proto"
	"golvs/internal/service"
)

// FuzzProcess feeds arbitrary frames to a director with NAT, DR and TUN
// services and established flows: whatever the bytes, the pipeline must
// not panic, must not write outside the buffer, and must return a valid
// verdict.
func FuzzProcess(f *testing.F) {
	seed := make([]byte, 2048)
	n := frame4(seed, header.ProtoTCP, benchClient(1), vip4, benchPort(1), 80, proto.FlagSYN, 10)
	f.Add(append([]byte(nil), seed[forward.Headroom:forward.Headroom+n]...))
	n = frame4(seed, header.ProtoUDP, benchClient(2), vip4, 53, 80, 0, 10)
	f.Add(append([]byte(nil), seed[forward.Headroom:forward.Headroom+n]...))
	f.Add([]byte{})
	f.Add(make([]byte, 14))
	rigs := []*benchRig{}
	for _, fwd := range []service.FwdMethod{service.Masq, service.Route, service.Tunnel} {
		r := newBenchRig(f, fwd, header.ProtoTCP)
		r.flows(f, 4)
		rigs = append(rigs, r)
	}
	f.Fuzz(func(t *testing.T, frame []byte) {
		for _, r := range rigs {
			// Guard bytes around the frame catch writes out of bounds.
			buf := make([]byte, forward.Headroom+len(frame)+16)
			for i := range buf {
				buf[i] = 0xA5
			}
			copy(buf[forward.Headroom:], frame)
			fr := []datapath.Frame{{Buf: forward.Buf{B: buf[:forward.Headroom+len(frame)], Off: forward.Headroom, Len: len(frame)}, Ifindex: 2}}
			res := make([]datapath.Result, 1)
			r.w.Process(fr, res)
			if res[0].Action > datapath.ToHost || res[0].Reason >= datapath.NumReasons {
				t.Fatalf("bad result %+v", res[0])
			}
			for i := forward.Headroom + len(frame); i < len(buf); i++ {
				if buf[i] != 0xA5 {
					t.Fatalf("wrote past the frame at %d", i-forward.Headroom)
				}
			}
			b := fr[0].Buf
			if b.Off < 0 || b.Off+b.Len > forward.Headroom+len(frame) {
				t.Fatalf("frame moved out of its buffer: off %d len %d", b.Off, b.Len)
			}
		}
	})
}
