// Package check holds the health checkers of keepalived's check process
// (keepalived/check/check_{tcp,http,ssl,smtp,dns,misc,udp,ping,file}.c,
// check_api.c, lib/layer4.c, lib/html.c, keepalived/core/track_file.c):
// the probes that decide whether a real server is up, and the loop that
// runs them with keepalived's timing (delay_loop, retry,
// delay_before_retry, warmup, alpha). Spec, filled by the keepalived.conf
// parser, configures one checker; spec §7.4-7.6 is the behaviour.
//
// # Probes
//
// NewProber turns a Spec into a Prober; Probe runs one check and returns a
// Result. Every probe is bounded by connect_timeout as a whole (connect,
// TLS handshake, request and response together; keepalived times each
// step instead), returns at once when its context is cancelled, and sets
// bindto, bind_port, bind_if (SO_BINDTODEVICE, and the zone of an IPv6
// link-local address) and fwmark (SO_MARK) on its socket. SO_MARK needs
// CAP_NET_ADMIN (or CAP_NET_RAW since Linux 5.17): without it the probe
// fails with ErrSockopt rather than go out unmarked. Socket options go
// through the standard syscall package, not golang.org/x/sys/unix, which
// the repository guard keeps to the host-side packages.
//
//   - TCP_CHECK (tcp.go): connect, close.
//   - HTTP_GET, SSL_GET (http.go, httpresp.go): for each url, keepalived's
//     request written byte for byte on the connection (buildRequest: the
//     Host header is the virtualhost without a port, or else the connect
//     address with its port always appended, IPv6 in brackets, as
//     check_http.c does), then the response read as keepalived reads it:
//     header up to the first CRLFCRLF, status code, body to the
//     Content-Length, the last chunk, or the close; then status_code
//     (default 200-299), the MD5 digest of the body as received (chunk
//     framing included, as genhash computes it), regex / regex_no_match
//     (Go RE2 syntax over the first MiB of the body). All urls must pass.
//     SSL_GET uses crypto/tls without certificate verification (keepalived
//     verifies nothing by default) and sends SNI only with enable_sni
//     (sni_name, else the virtualhost).
//   - SMTP_CHECK (smtp.go): 220 greeting, HELO, 250, QUIT, 221; multi-line
//     replies are read whole.
//   - DNS_CHECK (dns.go): a UDP query with RD set built with
//     github.com/miekg/dns; success on a reply with the query's ID, QR and
//     RCODE 0; other datagrams are skipped.
//   - MISC_CHECK (misc.go): /bin/sh -c misc_path in its own process group,
//     as user[:group] when set (root only); exit 0 up, 1 down, 2-255 up
//     with weight status-2 under misc_dynamic; after misc_timeout the
//     group gets SIGTERM, then SIGKILL.
//   - UDP_CHECK (udp.go): the payload (or 32 random bytes) on a connected
//     socket with IP_RECVERR; with require_reply, a reply within the
//     length bounds matching the wanted bytes; without, no ICMP error
//     within connect_timeout.
//   - PING_CHECK (ping.go): ICMP or ICMPv6 echo with golang.org/x/net/icmp
//     on an unprivileged datagram socket (net.ipv4.ping_group_range), or a
//     raw one when that is refused.
//   - FILE_CHECK (file.go): the number in the tracked file, with
//     track_file.c's semantics (see fileProber): weight 0 makes it a
//     state, another weight a weight adjustment; reverse inverts.
//
// # Monitor
//
// A Monitor runs the checkers of one real server and reports through
// Config.OnEvent each change of the server's state (up only when every
// checker is up) or of its dynamic weight adjustment (misc_dynamic,
// weighted FILE_CHECK). The per-checker logic is machine, a pure state
// machine stepped by probe results that returns the delay to the next
// check; its transcript tests cover retries, alpha and recovery, and the
// Monitor's goroutines are tested under testing/synctest's fake clock.
//
// Scheduling: each checker has one goroutine that sleeps on its own
// time.Timer, probes, and sleeps again. Go's runtime already keeps timers
// in per-P heaps, so a sleeping checker costs a parked goroutine (a few
// KiB of stack) and no CPU; a probe blocks (connect, read, a child
// process), so a central timer heap would still have to hand every due
// probe to a goroutine, and with a bounded pool of them a hanging server
// could hold up the others. With one goroutine per checker no server can
// delay another, and Stop cancels one context and waits for them all.
// Measured (TestLoad1000, 2026-11-22, 2 shared cores): 1000 TCP_CHECK
// monitors at delay_loop 1 s over loopback cost 80-200 ms of CPU per
// second (8-20% of a core, 80-200 µs per check, depending on the other
// load on the machine), about 80% of it in the connection's own system
// calls and the kernel's handshake (which a different scheduler cannot
// save), with 1003 goroutines and a 3.5 MiB heap. Rounding the timers up to a
// 20 ms grid, to batch wake-ups, made no difference that stood out of
// the noise of the shared machine, and shifted every check.
//
// # Differences from keepalived (as of 2026-11-22, keepalived 2.2.7)
//
//   - The initial state follows check_data.c: a checker that is not alpha
//     starts up with its retries used up, so the first failed check takes
//     the server down at once; afterwards a failure is followed by retry
//     checks delay_before_retry apart.
//   - A down checker is checked every delay_loop (udp_epilog's and
//     MISC_CHECK's behaviour; tcp_epilog keeps spacing retries of a dead
//     server delay_before_retry apart).
//   - HTTP_GET checks every url in each probe (fast_recovery's behaviour
//     whether set or not); regexes are RE2, without regex_options,
//     regex_stack and the offsets (the Spec has none of them).
//   - FILE_CHECK polls its file every second instead of inotify; a
//     missing or unreadable file reads as 0, as in keepalived (so with
//     weight 0 it is up, and down only with reverse).
//   - UDP_CHECK applies min/max_reply_length whenever require_reply is
//     set (the man page), not only when it has data (check_udp.c).
//   - The delay to the next check runs from the end of a probe for every
//     checker (keepalived's MISC_CHECK counts from the script's start).
//
// No metrics yet; the API reads Monitor.Status.
package check
