package check

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// dnsProber is DNS_CHECK (keepalived/check/check_dns.c): one UDP query
// with RD set, of the configured type and name (class IN); the check
// succeeds on a response with the query's ID, QR set and RCODE 0. Replies
// with another ID, and queries (QR clear), are ignored and the probe
// keeps waiting, as keepalived's dns_recv_thread does; any RCODE other
// than 0 fails at once.
type dnsProber struct {
	addr    string
	timeout time.Duration
	dialer  *net.Dialer
	qtype   uint16
	name    string
}

// dnsTypes are the query types DNS_CHECK accepts (check_dns.c
// DNS_TYPE table: the man page's list plus RRSIG and DNSKEY).
var dnsTypes = map[string]uint16{
	"A": dns.TypeA, "NS": dns.TypeNS, "CNAME": dns.TypeCNAME, "SOA": dns.TypeSOA,
	"MX": dns.TypeMX, "TXT": dns.TypeTXT, "AAAA": dns.TypeAAAA,
	"RRSIG": dns.TypeRRSIG, "DNSKEY": dns.TypeDNSKEY,
}

func newDNSProber(s *Spec, t Target) (*dnsProber, error) {
	ep, err := endpoint(s, t, true)
	if err != nil {
		return nil, err
	}
	typ := strings.ToUpper(s.DNSType)
	if typ == "" {
		typ = "SOA" // DNS_DEFAULT_TYPE
	}
	qtype, ok := dnsTypes[typ]
	if !ok {
		return nil, fmt.Errorf("check: DNS_CHECK: unknown type %q", s.DNSType)
	}
	name := s.DNSName
	if name == "" {
		name = "." // DNS_DEFAULT_NAME
	}
	if _, ok := dns.IsDomainName(name); !ok {
		return nil, fmt.Errorf("check: DNS_CHECK: invalid name %q", s.DNSName)
	}
	return &dnsProber{addr: ep.String(), timeout: connectTimeout(s), dialer: dialer(s, "udp", false),
		qtype: qtype, name: dns.Fqdn(name)}, nil
}

// Probe implements Prober.
func (p *dnsProber) Probe(ctx context.Context) Result {
	start := time.Now()
	r := p.query(ctx)
	r.Start, r.Duration = start, time.Since(start)
	return r
}

func (p *dnsProber) query(ctx context.Context) Result {
	pctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	fail := func(err error) Result { return failure(pctx, p.timeout, err) }

	m := new(dns.Msg)
	m.SetQuestion(p.name, p.qtype) // sets a random ID and RD
	m.RecursionDesired = true
	q, err := m.Pack()
	if err != nil {
		return fail(fmt.Errorf("DNS query %s: %w", p.name, err))
	}

	c, err := p.dialer.DialContext(pctx, "udp", p.addr)
	if err != nil {
		return fail(fmt.Errorf("connect %s: %w", p.addr, err))
	}
	defer c.Close()
	stop := abortOnDone(pctx, c)
	defer stop()
	if _, err := c.Write(q); err != nil {
		return fail(fmt.Errorf("send DNS query to %s: %w", p.addr, err))
	}
	// dns.MaxMsgSize: the largest datagram a reply can be.
	buf := make([]byte, dns.MaxMsgSize)
	for {
		n, err := c.Read(buf)
		if err != nil {
			return fail(fmt.Errorf("read DNS reply from %s: %w", p.addr, err))
		}
		switch err := dnsVerdict(buf[:n], m.Id); {
		case errors.Is(err, errDNSIgnore):
		case err != nil:
			return Result{Err: fmt.Errorf("DNS reply from %s: %w", p.addr, err)}
		default:
			return Result{OK: true}
		}
	}
}

// errDNSIgnore is a datagram the probe ignores: too short for a header,
// another ID, or a query.
var errDNSIgnore = errors.New("not a reply to the query")

// dnsVerdict judges a datagram from the header alone, as keepalived does
// (RFC 1035 §4.1.1):
//
//	                                1  1  1  1  1  1
//	  0  1  2  3  4  5  6  7  8  9  0  1  2  3  4  5
//	+--+--+--+--+--+--+--+--+--+--+--+--+--+--+--+--+
//	|                      ID                       |
//	+--+--+--+--+--+--+--+--+--+--+--+--+--+--+--+--+
//	|QR|   Opcode  |AA|TC|RD|RA|   Z    |   RCODE   |
//	+--+--+--+--+--+--+--+--+--+--+--+--+--+--+--+--+
//	|            QDCOUNT, ANCOUNT, NSCOUNT, ARCOUNT |
//
// nil is success; errDNSIgnore a datagram to skip; an ErrReply the
// failure of a non-zero RCODE. The rest of the message is not parsed: a
// reply keepalived accepts is accepted even if it would not unpack.
func dnsVerdict(b []byte, id uint16) error {
	const headerLen = 12
	if len(b) < headerLen || binary.BigEndian.Uint16(b[0:2]) != id {
		return errDNSIgnore
	}
	flags := binary.BigEndian.Uint16(b[2:4])
	if flags&(1<<15) == 0 { // QR
		return errDNSIgnore
	}
	if rcode := int(flags & 0xf); rcode != dns.RcodeSuccess {
		return fmt.Errorf("%w: RCODE %d (%s)", ErrReply, rcode, dns.RcodeToString[rcode])
	}
	return nil
}
