// Package keepalived reads keepalived.conf(5) files into a typed,
// validated Config: the global definitions, the LVS configuration
// (virtual_server_group, virtual_server, real_server and their health
// checkers, resolved into check.Spec values), the VRRP configuration
// (vrrp_script, vrrp_sync_group, vrrp_instance), track files, and the
// GoLVS extension block bgp { }.
//
// It corresponds to keepalived's configuration reader lib/parser.c (line
// reading, comments, quoting, include, conditional lines, $NAME
// definitions, ~SEQ) and to the keyword handlers of
// keepalived/core/global_parser.c, keepalived/check/check_parser.c,
// check_data.c (alloc_vs, alloc_rs, validate_check_config: defaults and
// inheritance), check_{http,tcp,smtp,dns,misc,udp,ping,file}.c and
// keepalived/vrrp/vrrp_parser.c, as of keepalived 2.2.7 (the version the
// tests cross-check against, 2026-11-22).
//
// The package is pure: it reads files (through Options.FS or the OS) and
// nothing else; it never touches the network or IPVS. Problems are
// reported as Diagnostics with file, line and keyword, like keepalived's
// "(FILE: Line N)" messages: errors make Parse fail, warnings (unknown
// keywords, keywords GoLVS reads but does not act on, deprecated forms,
// values keepalived corrects) do not.
package keepalived
