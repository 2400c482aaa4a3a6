package check

import (
	"net/netip"
	"time"
)

// Kind is the type of a checker: the keepalived block that configures it.
type Kind uint8

// The checkers of keepalived's check process.
const (
	KindTCP  Kind = iota + 1 // TCP_CHECK
	KindHTTP                 // HTTP_GET
	KindSSL                  // SSL_GET
	KindSMTP                 // SMTP_CHECK
	KindDNS                  // DNS_CHECK
	KindMisc                 // MISC_CHECK
	KindUDP                  // UDP_CHECK
	KindPing                 // PING_CHECK
	KindFile                 // FILE_CHECK
)

var kindNames = [...]string{
	KindTCP: "TCP_CHECK", KindHTTP: "HTTP_GET", KindSSL: "SSL_GET", KindSMTP: "SMTP_CHECK",
	KindDNS: "DNS_CHECK", KindMisc: "MISC_CHECK", KindUDP: "UDP_CHECK", KindPing: "PING_CHECK",
	KindFile: "FILE_CHECK",
}

// String returns the keepalived block name of k.
func (k Kind) String() string {
	if int(k) < len(kindNames) && kindNames[k] != "" {
		return kindNames[k]
	}
	return "CHECK_" + string(rune('0'+k))
}

// StatusRange is an inclusive range of HTTP status codes (status_code
// N or N-M).
type StatusRange struct{ Lo, Hi int }

// URL is one url { } block of HTTP_GET or SSL_GET. Every URL of a checker
// must pass for the check to succeed.
type URL struct {
	Path string
	// Digest is the MD5 of the body in lower-case hex ("" = not checked),
	// as genhash prints it.
	Digest string
	// StatusCodes are the accepted codes; empty means 200-299.
	StatusCodes []StatusRange
	// Virtualhost overrides the checker's Host header for this URL.
	Virtualhost string
	// Regex, when set, must match the body (RegexNoMatch inverts it).
	Regex        string
	RegexNoMatch bool
}

// Spec is one checker's configuration after keepalived's inheritance
// (virtual_server -> real_server -> checker) and defaults (§7.3-7.5 of
// the spec) have been applied by the configuration parser: a Spec is
// complete, and the checker uses it as it is.
type Spec struct {
	Kind Kind

	// Target of the probe: the real server's address and port unless
	// connect_ip / connect_port say otherwise. ConnectPort 0 for a
	// checker that needs a port is a configuration error the parser
	// reports.
	ConnectIP   netip.Addr
	ConnectPort uint16
	// Source: bindto, bind_port, bind_if (zero: the kernel chooses).
	BindTo   netip.Addr
	BindPort uint16
	BindIf   string
	// FWMark is SO_MARK on the probe's socket (fwmark); 0 = none.
	FWMark uint32

	// Timing: delay_loop (the interval between checks), connect_timeout
	// (the whole of one probe), retry (further attempts after a failure
	// before the server is declared down), delay_before_retry, warmup
	// (a random delay up to this before the first check; 0 = none).
	DelayLoop        time.Duration
	ConnectTimeout   time.Duration
	Retry            int
	DelayBeforeRetry time.Duration
	Warmup           time.Duration
	// Alpha: the server starts down and is up only after a first
	// successful check (otherwise it starts up).
	Alpha bool
	// LogAllFailures logs every failed probe, not only transitions.
	LogAllFailures bool

	// HTTP_GET, SSL_GET.
	URLs         []URL
	Virtualhost  string // Host header; "" = the target's address[:port]
	HTTPProtocol string // "1.0" (default), "1.0C" or "1.1"
	FastRecovery bool
	EnableSNI    bool
	SNIName      string

	// SMTP_CHECK.
	HeloName string // default: the machine's host name

	// DNS_CHECK.
	DNSType string // A, NS, CNAME, SOA (default), MX, TXT, AAAA
	DNSName string // default "."

	// MISC_CHECK.
	MiscPath    string // the command line, run with /bin/sh -c
	MiscTimeout time.Duration
	MiscDynamic bool
	User        string // user[:group] to run the script as; "" = lvsd's

	// UDP_CHECK.
	Payload []byte // sent as is; nil = a random payload
	// RequireReply, when RequireReplySet, is the reply's expected prefix;
	// RequireReplyMask holds, per byte, the bits that must match: 0xff
	// for two hex digits, 0xf0 or 0x0f with one X wildcard nibble, 0 for
	// "XX". A nil or short mask: the remaining bytes must match whole.
	RequireReply     []byte
	RequireReplyMask []byte
	RequireReplySet  bool
	MinReplyLength   int
	MaxReplyLength   int // default 255

	// FILE_CHECK: the tracked file's path (from the global track_file
	// block), the weight multiplier, and whether it is reversed.
	FilePath    string
	FileWeight  int
	FileReverse bool
	FileDynamic bool
}
