package keepalived

import (
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"golvs/internal/check"
	"golvs/internal/service"
)

func mustParse(t *testing.T, conf string, opts Options) (*Config, []Diagnostic) {
	t.Helper()
	if opts.FS == nil {
		opts.FS = fstest.MapFS{}
	}
	cfg, diags, err := ParseBytes("t.conf", []byte(conf), opts)
	if err != nil {
		t.Fatal(err)
	}
	return cfg, diags
}

func warnings(ds []Diagnostic) []string {
	var out []string
	for _, d := range ds {
		if d.Warning {
			out = append(out, d.String())
		}
	}
	return out
}

func TestWarnings(t *testing.T) {
	conf := `global_defs {
    smtp_server 192.0.2.1
    snmp_socket udp:1.2.3.4:705
    snmp_socket udp:1.2.3.4:706
    frobnicate 1
}
virtual_server 192.0.2.1 80 {
    lb_algo rr
    lvs_method NAT
    real_server 10.0.0.1 80 {
    }
    real_server 10.0.0.1 80 {
    }
}
include /nothing/here/*.conf
`
	_, diags := mustParse(t, conf, Options{})
	want := []string{
		"t.conf:15: include: warning: config files missing /nothing/here/*.conf",
		"t.conf:2: smtp_server: warning: not acted on by GoLVS (parsed and ignored)",
		"t.conf:3: snmp_socket: warning: not acted on by GoLVS (parsed and ignored)",
		"t.conf:5: frobnicate: warning: unknown keyword, ignored",
		"t.conf:8: lb_algo: warning: deprecated, use lvs_sched",
		"t.conf:7: virtual_server: warning: no protocol set - defaulting to UDP",
		"t.conf:12: real_server: warning: real server 10.0.0.1:80 is duplicated (first at t.conf:10) - removing this one",
	}
	if got := warnings(diags); !reflect.DeepEqual(got, want) {
		t.Errorf("warnings:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestReaderSyntax(t *testing.T) {
	conf := `! comment
# comment
$HOST=web1   
global_defs { router_id "a b # c" ! trailing comment
  script_user   x\#y }
@lb1 $HOST=web2
@^lb1 $OTHER=1
virtual_server 192.0.2.1 80
{
    lvs_sched rr
    lvs_method NAT
    protocol TCP
    virtualhost ${HOST}.example.com
    real_server 10.0.0.1 80 { weight 2 }
}
`
	cfg, _ := mustParse(t, conf, Options{ConfigID: "lb1"})
	if cfg.Global.RouterID != "a b # c" || cfg.Global.ScriptUser != "x#y" {
		t.Errorf("router_id %q script_user %q", cfg.Global.RouterID, cfg.Global.ScriptUser)
	}
	if len(cfg.VirtualServers) != 1 {
		t.Fatalf("%d virtual servers", len(cfg.VirtualServers))
	}
	vs := cfg.VirtualServers[0]
	if vs.Virtualhost != "web2.example.com" || vs.RealServers[0].Weight != 2 {
		t.Errorf("virtualhost %q weight %d", vs.Virtualhost, vs.RealServers[0].Weight)
	}
	// Without a configuration id, @lb1 lines are dropped and @^lb1 kept.
	cfg, _ = mustParse(t, conf, Options{})
	if got := cfg.VirtualServers[0].Virtualhost; got != "web1.example.com" {
		t.Errorf("virtualhost without id = %q", got)
	}
}

func TestDefinitionsAndSeq(t *testing.T) {
	conf := `$RS= \
    real_server 10.0.0.${N} 80 { \
        weight ${N} \
    }
$X=${_HASH}x${_BANG}
virtual_server 192.0.2.1 80 {
    lvs_sched rr
    lvs_method NAT
    protocol TCP
    virtualhost $X
    ~SEQ(N, 3) $RS
}
vrrp_instance V {
    interface eth0
    virtual_router_id 1
    virtual_ipaddress {
        ~SEQx(M, 10, 12) 2001:db8::${M}
    }
}
`
	cfg, _ := mustParse(t, conf, Options{})
	vs := cfg.VirtualServers[0]
	if vs.Virtualhost != "#x!" {
		t.Errorf("virtualhost %q", vs.Virtualhost)
	}
	var got []string
	for _, rs := range vs.RealServers {
		got = append(got, rs.Addr.String()+"/"+itoa(int(rs.Weight)))
	}
	if want := []string{"10.0.0.1/1", "10.0.0.2/2", "10.0.0.3/3"}; !reflect.DeepEqual(got, want) {
		t.Errorf("real servers %v, want %v", got, want)
	}
	// ~SEQx writes the variable in hexadecimal.
	got = nil
	for _, v := range cfg.VRRPInstances[0].VIPs {
		got = append(got, v.Prefix.String())
	}
	if want := []string{"2001:db8::a/128", "2001:db8::b/128", "2001:db8::c/128"}; !reflect.DeepEqual(got, want) {
		t.Errorf("VIPs %v, want %v", got, want)
	}
}

func TestIncludes(t *testing.T) {
	fsys := fstest.MapFS{
		"etc/k/main.conf":     {Data: []byte("include conf.d/*.conf\ninclude /etc/k/{a,b}.inc\n")},
		"etc/k/conf.d/1.conf": {Data: []byte("global_defs {\n router_id from-1\n}\n")},
		"etc/k/conf.d/sub":    {Mode: 0o755 | 1<<31}, // a directory: skipped
		"etc/k/a.inc":         {Data: []byte("vrrp_script s {\n script /bin/true\n}\n")},
		"etc/k/b.inc":         {Data: []byte("include self.inc\n")},
		"etc/k/self.inc":      {Data: []byte("include self.inc\n")},
		"etc/k/exec.conf":     {Data: []byte("x\n"), Mode: 0o755},
	}
	cfg, diags, err := Parse("/etc/k/main.conf", Options{FS: fsys})
	if err == nil || !strings.Contains(err.Error(), "include loop") {
		t.Fatalf("err = %v, want an include loop", err)
	}
	if cfg.Global.RouterID != "from-1" || len(cfg.VRRPScripts) != 1 {
		t.Errorf("router_id %q, %d scripts; diags %v", cfg.Global.RouterID, len(cfg.VRRPScripts), diags)
	}
	want := []string{"/etc/k/main.conf", "/etc/k/conf.d/1.conf", "/etc/k/a.inc", "/etc/k/b.inc", "/etc/k/self.inc"}
	if !reflect.DeepEqual(cfg.Files, want) {
		t.Errorf("files %v, want %v", cfg.Files, want)
	}
	// An executable file is skipped with a warning.
	_, diags, err = ParseBytes("/etc/k/x.conf", []byte("include exec.conf\n"), Options{FS: fsys})
	if err != nil || len(diags) != 1 || !strings.Contains(diags[0].Msg, "not a regular non-executable") {
		t.Errorf("exec include: %v %v", err, diags)
	}
}

func TestSplitQuotedEscaped(t *testing.T) {
	for in, want := range map[string][]string{
		`notify "/x.sh 'a b'" user`: {"notify", "/x.sh 'a b'", "user"},
		`/x.sh 'a b' c\ d "e\"f"`:   {"/x.sh", "a b", "c d", `e"f`},
		`a\tb \x41\101\cA`:          {"a\tb", "AA\x01"},
		``:                          nil,
	} {
		if got := splitQuotedEscaped(in); !reflect.DeepEqual(got, want) {
			t.Errorf("splitQuotedEscaped(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestHexWords(t *testing.T) {
	b, bits, err := parseHexWords([]string{"Ab12f", "3", "456", "546443123"}, false)
	if err != "" || !reflect.DeepEqual(b, []byte{0xab, 0x12, 0x0f, 0x03, 0x45, 0x06, 0x54, 0x64, 0x43, 0x12, 0x03}) || len(bits) != 11 {
		t.Errorf("keepalived's example: % x %v", b, err)
	}
	b, bits, err = parseHexWords([]string{"1X", "xx", "ff"}, true)
	if err != "" || !reflect.DeepEqual(b, []byte{0x10, 0, 0xff}) || !reflect.DeepEqual(bits, []byte{0xf0, 0, 0xff}) {
		t.Errorf("wildcards: % x % x %v", b, bits, err)
	}
	if _, _, err := parseHexWords([]string{"1X"}, false); err == "" {
		t.Error("X accepted in a payload")
	}
}

func TestRanges(t *testing.T) {
	for _, tc := range []struct{ in, start, end string }{
		{"192.0.2.1-10", "192.0.2.1", "192.0.2.10"},
		{"192.0.2.250-192.0.3.10", "192.0.2.250", "192.0.3.10"},
		{"192.0.2.8/29", "192.0.2.8", "192.0.2.15"},
		{"2001:db8::a-1f", "2001:db8::a", "2001:db8::1f"},
		{"2001:db8::/126", "2001:db8::", "2001:db8::3"},
		{"192.0.2.7", "192.0.2.7", "192.0.2.7"},
	} {
		s, e, err := parseRange(tc.in)
		if err != "" || s.String() != tc.start || e.String() != tc.end {
			t.Errorf("parseRange(%q) = %v %v %q", tc.in, s, e, err)
		}
	}
	for _, bad := range []string{"192.0.2.10-10", "192.0.2.1-256", "2001:db8::1-10000", "192.0.2.3-192.0.2.1", "192.0.2.1/0", "x"} {
		if _, _, err := parseRange(bad); err == "" {
			t.Errorf("parseRange(%q) accepted", bad)
		}
	}
}

// TestInheritance: VS -> RS -> checker, then the per-checker defaults.
func TestInheritance(t *testing.T) {
	conf := `global_defs {
    checker_log_all_failures
}
track_file tf {
    file /run/x
    weight 3 reverse
}
virtual_server 192.0.2.1 80 {
    lvs_sched rr
    lvs_method DR
    protocol TCP
    delay_loop 20
    retry 4
    real_server 10.0.0.1 8080 {
        connect_timeout 2
        warmup 0
        HTTP_GET { url { path / } }
        DNS_CHECK { delay_loop 7 }
        MISC_CHECK { misc_path /bin/true }
        FILE_CHECK { track_file tf }
        TCP_CHECK {
            retry 9
            delay_before_retry 0.25
            log_all_failures off
            alpha
        }
    }
}
`
	cfg, diags := mustParse(t, conf, Options{})
	rs := cfg.VirtualServers[0].RealServers[0]
	if rs.Port != 80 {
		t.Errorf("DR real server port %d, want the virtual server's 80", rs.Port)
	}
	sec := func(f float64) time.Duration { return time.Duration(f * float64(time.Second)) }
	want := []check.Spec{
		{Kind: check.KindHTTP, ConnectIP: rs.Addr, ConnectPort: 80, DelayLoop: sec(20), ConnectTimeout: sec(2), Retry: 4, DelayBeforeRetry: sec(3), LogAllFailures: true,
			URLs: []check.URL{{Path: "/"}}, HTTPProtocol: "1.0"},
		{Kind: check.KindDNS, ConnectIP: rs.Addr, ConnectPort: 80, DelayLoop: sec(7), ConnectTimeout: sec(2), Retry: 4, DelayBeforeRetry: sec(7), LogAllFailures: true,
			DNSType: "SOA", DNSName: "."},
		{Kind: check.KindMisc, DelayLoop: sec(20), ConnectTimeout: sec(2), Retry: 4, DelayBeforeRetry: sec(1), LogAllFailures: true,
			MiscPath: "/bin/true", MiscTimeout: sec(20)},
		{Kind: check.KindFile, FilePath: "/run/x", FileWeight: 3, FileReverse: true},
		{Kind: check.KindTCP, ConnectIP: rs.Addr, ConnectPort: 80, DelayLoop: sec(20), ConnectTimeout: sec(2), Retry: 9, DelayBeforeRetry: sec(0.25), Alpha: true},
	}
	if len(rs.Checkers) != len(want) {
		t.Fatalf("%d checkers; %v", len(rs.Checkers), diags)
	}
	for i, w := range want {
		if got := rs.Checkers[i].Spec; !reflect.DeepEqual(got, w) {
			t.Errorf("checker %d:\n got %+v\nwant %+v", i, got, w)
		}
	}
}

func TestConversions(t *testing.T) {
	conf := `virtual_server_group G {
    192.0.2.1-2 80
    fwmark 9 inet6
}
virtual_server group G {
    lvs_sched sh
    sh-port
    sh-fallback
    flag-3
    lvs_method TUN type gue port 5555 csum
    protocol UDP
    ops
    persistence_timeout 100
    persistence_granularity 255.255.0.0
    persistence_engine sip
    real_server 2001:db8::9 {
        uthreshold 10
        lthreshold 5
        weight 0
    }
}
`
	cfg, _ := mustParse(t, conf, Options{})
	vs := cfg.VirtualServers[0]
	wantKeys := []service.Key{
		{Family: service.IPv4, Proto: service.ProtoUDP, Addr: netip.MustParseAddr("192.0.2.1"), Port: 80},
		{Family: service.IPv4, Proto: service.ProtoUDP, Addr: netip.MustParseAddr("192.0.2.2"), Port: 80},
		{Family: service.IPv6, FWMark: 9},
	}
	if !reflect.DeepEqual(vs.Keys, wantKeys) {
		t.Errorf("keys %v", vs.Keys)
	}
	wantCfg := service.Config{Sched: "sh", Flags: service.FlagPersistent | service.FlagOnePacket | service.FlagSHPort | service.FlagSHFallback | service.FlagSched3,
		Timeout: 100, Netmask: 0xffff0000, PE: "sip"}
	if got := vs.ServiceConfig(); got != wantCfg {
		t.Errorf("ServiceConfig() = %+v, want %+v", got, wantCfg)
	}
	rs := vs.RealServers[0]
	wantDest := service.DestConfig{Fwd: service.Tunnel, Weight: 0, UThreshold: 10, LThreshold: 5, TunType: service.TunGUE, TunPort: 5555, TunFlags: service.TunCsum}
	if got := rs.DestConfig(); got != wantDest {
		t.Errorf("DestConfig() = %+v, want %+v", got, wantDest)
	}
	if p := rs.PortFor(wantKeys[0]); p != 0 {
		t.Errorf("tunnel PortFor = %d", p)
	}
}

// TestSchedulersKnown keeps the scheduler list in step with package sched.
func TestSchedulersKnown(t *testing.T) {
	for _, n := range []string{"rr", "wrr", "lc", "wlc", "lblc", "lblcr", "dh", "sh", "mh", "sed", "nq", "fo", "ovf", "twos"} {
		if !schedulers[n] {
			t.Errorf("scheduler %s not accepted", n)
		}
	}
}
