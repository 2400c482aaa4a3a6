package datapath_test

import (
	"testing"

	"golvs/internal/checksum"
	"golvs/internal/datapath"
	"golvs/internal/forward"
	"golvs/internal/header"
	"golvs/internal/proto"
	"golvs/internal/service"
)

// TestPartialChecksumCompleted: a frame whose TCP checksum was left
// partial by its sender (a veth peer with tx offload, the feasibility
// note's caveat) leaves the director with a full, valid checksum, for
// every method.
func TestPartialChecksumCompleted(t *testing.T) {
	for _, fwd := range []service.FwdMethod{service.Masq, service.Route, service.Tunnel} {
		r := newBenchRig(t, fwd, header.ProtoTCP)
		r.flows(t, 1)
		buf := make([]byte, 2048)
		n := frame4(buf, header.ProtoTCP, benchClient(0), vip4, benchPort(0), 80, proto.FlagACK, 300)
		f := buf[forward.Headroom : forward.Headroom+n]
		ip := header.IPv4(f[14:])
		tcp := header.TCP(f[34:])
		// The partial form: the field holds the un-complemented
		// pseudo-header sum (CHECKSUM_PARTIAL).
		tcp.SetChecksum(checksum.PseudoHeaderIPv4(ip.SourceAddress(), ip.DestinationAddress(), header.ProtoTCP, uint16(len(tcp))))
		fr := []datapath.Frame{{Buf: forward.Buf{B: buf, Off: forward.Headroom, Len: n}, Ifindex: 2, PartialCsum: true}}
		res := make([]datapath.Result, 1)
		r.w.Process(fr, res)
		if res[0].Action != datapath.Transmit {
			t.Fatalf("%v: %v %v", fwd, res[0].Action, res[0].Reason)
		}
		out := fr[0].Buf.Frame()[14:]
		if fwd == service.Tunnel {
			out = out[20:] // the inner packet
		}
		oip := header.IPv4(out)
		otcp := header.TCP(out[20:])
		if !otcp.IsChecksumValid(oip.PseudoHeaderSum()) {
			t.Errorf("%v: TCP checksum not valid after the director", fwd)
		}
	}
}
