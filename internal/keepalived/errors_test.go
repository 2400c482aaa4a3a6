package keepalived

import (
	"errors"
	"strings"
	"testing"
	"testing/fstest"
)

// vsWrap puts real-server lines into a valid virtual server.
func vsWrap(rs string) string {
	return "virtual_server 192.0.2.1 80 {\n lvs_sched rr\n lvs_method NAT\n protocol TCP\n" + rs + "}\n"
}

// TestErrors: every bad configuration is refused with an error naming
// the file, the line and the keyword.
func TestErrors(t *testing.T) {
	tests := []struct {
		name, conf string
		line       int
		kw, msg    string
	}{
		{"unterminated quote", "global_defs {\n router_id \"abc\n}\n", 2, "router_id", "unterminated quote"},
		{"extra brace", "global_defs {\n}\n}\n", 3, "}", "extra '}'"},
		{"missing brace", "global_defs {\n router_id x\n", 1, "global_defs", "missing '}'"},
		{"missing block", "vrrp_instance VI\n", 1, "vrrp_instance", "missing '{'"},
		{"unexpected brace", "{\n}\n", 1, "{", "unexpected '{'"},
		{"bad vs address", "virtual_server 192.0.2.300 80 {\n}\n", 1, "virtual_server", "invalid virtual server IP"},
		{"bad vs port", "virtual_server 192.0.2.1 70000 {\n}\n", 1, "virtual_server", "invalid virtual server port"},
		{"no port no persistence", "virtual_server 192.0.2.1 {\n lvs_sched rr\n lvs_method NAT\n protocol TCP\n real_server 10.0.0.1 80 {\n }\n}\n", 1, "virtual_server", "must be persistent"},
		{"unknown scheduler", vsWrap(" lvs_sched foo\n real_server 10.0.0.1 80 {\n }\n"), 5, "lvs_sched", "invalid lvs_scheduler"},
		{"bad method", vsWrap(" real_server 10.0.0.1 80 {\n lvs_method FOO\n }\n"), 6, "lvs_method", "unknown forwarding method"},
		{"gue without port", vsWrap(" real_server 10.0.0.1 80 {\n lvs_method TUN type gue\n }\n"), 6, "lvs_method", "gue tunnels require a port"},
		{"ipip csum", vsWrap(" real_server 10.0.0.1 80 {\n lvs_method TUN csum\n }\n"), 6, "lvs_method", "ipip tunnels do not support"},
		{"gre remcsum", vsWrap(" real_server 10.0.0.1 80 {\n lvs_method TUN type gre remcsum\n }\n"), 6, "lvs_method", "remote checksum"},
		{"negative weight", vsWrap(" real_server 10.0.0.1 80 {\n weight -1\n }\n"), 6, "weight", "invalid number"},
		{"weight too big", vsWrap(" real_server 10.0.0.1 80 {\n weight 2147483648\n }\n"), 6, "weight", "invalid number"},
		{"bad rs address", vsWrap(" real_server 10.0.0.x 80 {\n }\n"), 5, "real_server", "invalid IP address"},
		{"mixed families", vsWrap(" real_server 2001:db8::1 80 {\n }\n"), 5, "real_server", "don't match"},
		{"unknown protocol", vsWrap(" protocol ICMP\n real_server 10.0.0.1 80 {\n }\n"), 5, "protocol", "unknown protocol"},
		{"bad timer", vsWrap(" delay_loop fast\n real_server 10.0.0.1 80 {\n }\n"), 5, "delay_loop", "invalid time"},
		{"retry zero", vsWrap(" real_server 10.0.0.1 80 {\n TCP_CHECK {\n retry 0\n }\n }\n"), 7, "retry", "invalid number"},
		{"checker without port", "virtual_server fwmark 1 {\n lvs_sched rr\n lvs_method DR\n real_server 10.0.0.1 {\n TCP_CHECK {\n }\n }\n}\n", 5, "TCP_CHECK", "needs a port"},
		{"bad digest", vsWrap(" real_server 10.0.0.1 80 {\n HTTP_GET {\n url {\n path /\n digest 1234\n }\n }\n }\n"), 9, "digest", "invalid digest"},
		{"bad status code", vsWrap(" real_server 10.0.0.1 80 {\n HTTP_GET {\n url {\n path /\n status_code 300-200\n }\n }\n }\n"), 9, "status_code", "invalid status code"},
		{"bad regex", vsWrap(" real_server 10.0.0.1 80 {\n HTTP_GET {\n url {\n path /\n regex (?<=a)b\n }\n }\n }\n"), 9, "regex", "RE2"},
		{"bad hex", vsWrap(" real_server 10.0.0.1 80 {\n UDP_CHECK {\n payload 0g\n }\n }\n"), 7, "payload", "invalid hex"},
		{"unknown track_file", vsWrap(" real_server 10.0.0.1 80 {\n FILE_CHECK {\n track_file nope\n }\n }\n"), 6, "FILE_CHECK", "not defined"},
		{"undefined group", "virtual_server group NOPE {\n lvs_sched rr\n}\n", 1, "virtual_server", "not defined"},
		{"bad range", "virtual_server_group G {\n 192.0.2.10-5 80\n}\n", 2, "192.0.2.10-5", "not greater"},
		{"range host bits", "virtual_server_group G {\n 192.0.2.9/29 80\n}\n", 2, "192.0.2.9/29", "mask bits"},
		{"vrid out of range", "vrrp_instance V {\n interface eth0\n virtual_router_id 256\n}\n", 3, "virtual_router_id", "invalid number"},
		{"vrid missing", "vrrp_instance V {\n interface eth0\n virtual_ipaddress {\n 192.0.2.1\n }\n}\n", 1, "vrrp_instance", "virtual_router_id must be set"},
		{"priority zero", "vrrp_instance V {\n interface eth0\n virtual_router_id 1\n priority 0\n}\n", 4, "priority", "invalid number"},
		{"bad state", "vrrp_instance V {\n interface eth0\n virtual_router_id 1\n state PRIMARY\n}\n", 4, "state", "unknown state"},
		{"bad vip", "vrrp_instance V {\n interface eth0\n virtual_router_id 1\n virtual_ipaddress {\n 192.0.2.300/24\n }\n}\n", 5, "192.0.2.300/24", "invalid IP address"},
		{"mixed vips", "vrrp_instance V {\n interface eth0\n virtual_router_id 1\n virtual_ipaddress {\n 192.0.2.1\n 2001:db8::1\n }\n}\n", 1, "vrrp_instance", "address family must match"},
		{"duplicate vrid", "vrrp_instance A {\n interface eth0\n virtual_router_id 1\n}\nvrrp_instance B {\n interface eth0\n virtual_router_id 1\n}\n", 5, "vrrp_instance", "already used"},
		{"script weight", "vrrp_script s {\n script /bin/true\n weight 300\n}\n", 3, "weight", "invalid number"},
		{"sync daemon instance", "global_defs {\n lvs_sync_daemon eth0 NOPE\n}\n", 2, "lvs_sync_daemon", "not defined"},
		{"sync id", "global_defs {\n lvs_sync_daemon eth0 id 300\n}\n", 2, "lvs_sync_daemon", "invalid number"},
		{"strict unicast", "global_defs {\n vrrp_strict\n}\nvrrp_instance V {\n interface eth0\n virtual_router_id 1\n unicast_peer {\n 192.0.2.2\n }\n virtual_ipaddress {\n 192.0.2.1\n }\n}\n", 4, "vrrp_instance", "strict mode"},
		{"bgp no neighbor", "bgp {\n router_id 198.18.0.1\n local_as 65001\n announce 198.18.0.0/24\n}\n", 1, "bgp", "at least one neighbor"},
		{"bgp host bits", "bgp {\n router_id 198.18.0.1\n local_as 65001\n neighbor 198.18.0.2 {\n remote_as 1\n }\n announce 198.18.0.1/24\n}\n", 7, "announce", "host bits"},
		{"bgp hold", "bgp {\n router_id 198.18.0.1\n local_as 65001\n neighbor 198.18.0.2 {\n remote_as 1\n hold_time 2\n }\n}\n", 6, "hold_time", "at least 3"},
		{"bgp remote_as", "bgp {\n router_id 198.18.0.1\n local_as 65001\n neighbor 198.18.0.2 {\n }\n}\n", 4, "neighbor", "remote_as"},
		{"include loop", "include main.conf\n", 1, "include", "include loop"},
		{"includea missing", "includea nothing/*.conf\n", 1, "includea", "no configuration file matches"},
		{"seq", "~SEQ(X, 1, -1, 5) a\n", 1, "~SEQ", "invalid ~SEQ"},
		{"lst", "~LST(X, 1, 2) a\n", 1, "~LST", "not supported"},
		{"recursive definition", "$A=$A x\n$A\n", 2, "$A", "does not end"},
		{"duplicate service", vsWrap(" real_server 10.0.0.1 80 {\n }\n") + vsWrap(" real_server 10.0.0.2 80 {\n }\n"), 8, "virtual_server", "already defined"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fsys := fstest.MapFS{"main.conf": {Data: []byte(tc.conf)}}
			_, diags, err := ParseBytes("main.conf", []byte(tc.conf), Options{FS: fsys})
			var perr *Error
			if !errors.As(err, &perr) {
				t.Fatalf("err = %v, want an *Error; diagnostics:\n%s", err, joinDiags(diags))
			}
			for _, d := range perr.Errors {
				if d.File == "main.conf" && d.Line == tc.line && d.Keyword == tc.kw && strings.Contains(d.Msg, tc.msg) {
					want := "main.conf:" + itoa(tc.line) + ": " + tc.kw + ": "
					if !strings.HasPrefix(d.String(), want) {
						t.Errorf("String() = %q, want prefix %q", d.String(), want)
					}
					if !strings.Contains(err.Error(), d.String()) {
						t.Errorf("the error does not list %q", d.String())
					}
					return
				}
			}
			t.Errorf("no error at main.conf:%d %s containing %q; got:\n%s", tc.line, tc.kw, tc.msg, joinDiags(diags))
		})
	}
}

func joinDiags(ds []Diagnostic) string {
	var b strings.Builder
	for _, d := range ds {
		b.WriteString("  " + d.String() + "\n")
	}
	return b.String()
}
