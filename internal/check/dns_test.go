package check

import (
	"errors"
	"net"
	"net/netip"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// startDNS serves h on a loopback UDP socket with miekg/dns.
func startDNS(t *testing.T, addr netip.Addr, h dns.HandlerFunc) Target {
	t.Helper()
	pc, err := net.ListenPacket("udp", netip.AddrPortFrom(addr, 0).String())
	if err != nil {
		t.Fatal(err)
	}
	started := make(chan struct{})
	srv := &dns.Server{PacketConn: pc, Handler: h, NotifyStartedFunc: func() { close(started) }}
	done := make(chan struct{})
	go func() {
		defer close(done)
		srv.ActivateAndServe()
	}()
	<-started
	t.Cleanup(func() {
		srv.Shutdown()
		<-done
	})
	return targetOf(t, pc.LocalAddr())
}

func TestDNSCheck(t *testing.T) {
	for _, addr := range loopbacks(t) {
		t.Run(addr.String(), func(t *testing.T) {
			queries := make(chan *dns.Msg, 16)
			tg := startDNS(t, addr, func(w dns.ResponseWriter, q *dns.Msg) {
				queries <- q
				m := new(dns.Msg)
				m.SetReply(q)
				switch q.Question[0].Name {
				case "nxdomain.example.":
					m.Rcode = dns.RcodeNameError
				case "refused.example.":
					m.Rcode = dns.RcodeRefused
				case "silent.example.":
					return
				}
				w.WriteMsg(m)
			})
			base := Spec{Kind: KindDNS, ConnectTimeout: time.Second}

			t.Run("defaults: SOA for the root, RD set", func(t *testing.T) {
				wantOK(t, probeOnce(t, base, tg))
				q := <-queries
				if !q.RecursionDesired || len(q.Question) != 1 {
					t.Fatalf("query %v", q)
				}
				if qq := q.Question[0]; qq.Name != "." || qq.Qtype != dns.TypeSOA || qq.Qclass != dns.ClassINET {
					t.Errorf("question %v", qq)
				}
			})
			t.Run("type and name", func(t *testing.T) {
				s := base
				s.DNSType, s.DNSName = "aaaa", "www.example.org"
				wantOK(t, probeOnce(t, s, tg))
				if qq := (<-queries).Question[0]; qq.Name != "www.example.org." || qq.Qtype != dns.TypeAAAA {
					t.Errorf("question %v", qq)
				}
			})
			for name, rcode := range map[string]string{"nxdomain.example": "NXDOMAIN", "refused.example": "REFUSED"} {
				t.Run(rcode, func(t *testing.T) {
					s := base
					s.DNSType, s.DNSName = "A", name
					r := probeOnce(t, s, tg)
					wantFail(t, r, ErrReply)
					<-queries
				})
			}
			t.Run("no answer", func(t *testing.T) {
				s := base
				s.DNSName, s.ConnectTimeout = "silent.example", 200*time.Millisecond
				wantFail(t, probeOnce(t, s, tg), ErrTimeout)
				<-queries
			})
		})
	}
	t.Run("port unreachable", func(t *testing.T) {
		r := probeOnce(t, Spec{Kind: KindDNS, ConnectTimeout: time.Second}, Target{Addr: lo4, Port: closedUDPPort(t, lo4)})
		wantFail(t, r, syscall.ECONNREFUSED)
	})
}

// TestDNSIgnoresStrangers: a datagram with another ID, and one without QR,
// are skipped; the real answer after them counts.
func TestDNSIgnoresStrangers(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 512)
		n, from, err := pc.ReadFrom(buf)
		if err != nil {
			return
		}
		q := new(dns.Msg)
		if q.Unpack(buf[:n]) != nil {
			return
		}
		other := new(dns.Msg)
		other.SetReply(q)
		other.Id = q.Id + 1
		notReply := q.Copy() // QR clear
		short := []byte{1, 2, 3}
		good := new(dns.Msg)
		good.SetReply(q)
		for _, m := range []*dns.Msg{other, notReply} {
			b, _ := m.Pack()
			pc.WriteTo(b, from)
		}
		pc.WriteTo(short, from)
		b, _ := good.Pack()
		pc.WriteTo(b, from)
	}()
	wantOK(t, probeOnce(t, Spec{Kind: KindDNS, ConnectTimeout: 2 * time.Second}, targetOf(t, pc.LocalAddr())))
	<-done
}

func TestDNSVerdict(t *testing.T) {
	hdr := func(id, flags uint16) []byte {
		return []byte{byte(id >> 8), byte(id), byte(flags >> 8), byte(flags), 0, 1, 0, 0, 0, 0, 0, 0}
	}
	for _, tt := range []struct {
		name string
		b    []byte
		want error
	}{
		{"reply rcode 0", hdr(7, 0x8180), nil},
		{"reply rcode 2", hdr(7, 0x8182), ErrReply},
		{"other id", hdr(8, 0x8180), errDNSIgnore},
		{"query", hdr(7, 0x0100), errDNSIgnore},
		{"short", hdr(7, 0x8180)[:11], errDNSIgnore},
	} {
		err := dnsVerdict(tt.b, 7)
		if (tt.want == nil) != (err == nil) || (tt.want != nil && !errors.Is(err, tt.want)) {
			t.Errorf("%s: %v, want %v", tt.name, err, tt.want)
		}
	}
}

// closedUDPPort returns a loopback UDP port nothing listens on.
func closedUDPPort(t *testing.T, addr netip.Addr) uint16 {
	t.Helper()
	pc, err := net.ListenPacket("udp", netip.AddrPortFrom(addr, 0).String())
	if err != nil {
		t.Fatal(err)
	}
	p := targetOf(t, pc.LocalAddr()).Port
	pc.Close()
	return p
}
