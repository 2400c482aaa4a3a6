package api

import (
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"

	"golvs/internal/service"
)

// TestKernelOrder checks the --nosort order against the oracle's
// transcript a1-formats.out ("ipvsadm -L -n --nosort"), whose services
// were added in the order of adds below.
func TestKernelOrder(t *testing.T) {
	v4 := func(a string, proto uint8, port uint16) service.Key {
		return service.Key{Family: service.IPv4, Proto: proto, Addr: netip.MustParseAddr(a), Port: port}
	}
	v6 := func(a string, proto uint8, port uint16) service.Key {
		return service.Key{Family: service.IPv6, Proto: proto, Addr: netip.MustParseAddr(a), Port: port}
	}
	const tcp, udp, sctp = service.ProtoTCP, service.ProtoUDP, service.ProtoSCTP
	adds := []service.Key{
		v4("198.18.0.100", tcp, 80), v4("198.18.0.100", tcp, 443), v4("198.18.0.101", tcp, 0),
		v4("198.18.0.100", udp, 53), v4("198.18.0.100", udp, 54), v4("198.18.0.100", udp, 55),
		v4("198.18.0.100", udp, 56), v4("198.18.0.100", udp, 5060), v4("198.18.0.100", udp, 5061),
		{Family: service.IPv4, FWMark: 1}, {Family: service.IPv4, FWMark: 2}, {Family: service.IPv6, FWMark: 3},
		{Family: service.IPv4, FWMark: 4294967295},
		v6("2001:db8:c::100", tcp, 80), v6("2001:db8:c::100", udp, 53), v4("198.18.0.100", sctp, 9999),
		v4("198.18.0.100", tcp, 81), v4("198.18.0.100", tcp, 82), v4("198.18.0.100", tcp, 83),
		v4("198.18.0.100", tcp, 90), v4("198.18.0.100", tcp, 8080),
	}
	want := []service.Key{
		v4("198.18.0.101", tcp, 0), v4("198.18.0.100", udp, 53), v4("198.18.0.100", udp, 55),
		v4("198.18.0.100", udp, 54), v4("198.18.0.100", udp, 56), v4("198.18.0.100", tcp, 82),
		v4("198.18.0.100", tcp, 83), v4("198.18.0.100", tcp, 80), v4("198.18.0.100", tcp, 81),
		v4("198.18.0.100", tcp, 90), v4("198.18.0.100", tcp, 8080), v6("2001:db8:c::100", tcp, 80),
		v4("198.18.0.100", sctp, 9999), v4("198.18.0.100", tcp, 443), v4("198.18.0.100", udp, 5060),
		v4("198.18.0.100", udp, 5061), v6("2001:db8:c::100", udp, 53),
		{Family: service.IPv4, FWMark: 1}, {Family: service.IPv4, FWMark: 2}, {Family: service.IPv6, FWMark: 3},
		{Family: service.IPv4, FWMark: 4294967295},
	}
	var svcs []*service.Service
	for _, k := range adds {
		svcs = append(svcs, &service.Service{Key: k})
	}
	var got []service.Key
	for _, s := range kernelOrder(svcs) {
		got = append(got, s.Key)
	}
	if diff := cmp.Diff(want, got, cmp.Comparer(func(a, b netip.Addr) bool { return a == b })); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}

	// One bucket: the most recently added first.
	c := service.Key{Family: service.IPv4, FWMark: 0x100 | 5}
	d := service.Key{Family: service.IPv4, FWMark: 5}
	if svcBucket(c) != svcBucket(d) {
		t.Fatal("marks 5 and 261 should share a bucket")
	}
	got = got[:0]
	for _, s := range kernelOrder([]*service.Service{{Key: d}, {Key: c}}) {
		got = append(got, s.Key)
	}
	if got[0] != c {
		t.Errorf("same bucket: %v first, want the newer %v", got[0], c)
	}
}
