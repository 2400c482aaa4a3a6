package ipvssync

import (
	"fmt"
	"testing"
	"time"

	"golvs/internal/conntable"
	"golvs/internal/proto"
)

const sec = int64(time.Second)

// TestNeededStates is the eligibility table of ip_vs_sync_conn_needed,
// cell by cell: every TCP and SCTP state, unchanged since the last sync
// (not forced) at the threshold packet, and changed (forced unless the
// new state is ESTABLISHED) at a packet count the period rule refuses.
func TestNeededStates(t *testing.T) {
	s := DefaultSysctls()
	tcpOK := map[proto.State]bool{proto.TCPEstablished: true, proto.TCPFinWait: true, proto.TCPClose: true, proto.TCPCloseWait: true, proto.TCPTimeWait: true}
	sctpOK := map[proto.State]bool{proto.SCTPEstablished: true, proto.SCTPShutdownSent: true, proto.SCTPShutdownReceived: true, proto.SCTPShutdownAckSent: true, proto.SCTPClosed: true}
	for _, pc := range []struct {
		p   uint8
		n   int
		ok  map[proto.State]bool
		est proto.State
	}{{proto.TCP, 11, tcpOK, proto.TCPEstablished}, {proto.SCTP, 14, sctpOK, proto.SCTPEstablished}} {
		for st := range pc.n {
			state := proto.State(st)
			name := proto.StateName(pc.p, state, false)
			t.Run(fmt.Sprintf("%d/%s/unchanged at threshold", pc.p, name), func(t *testing.T) {
				c := ConnInfo{Proto: pc.p, State: uint8(st), OldState: uint8(st), Timeout: 60 * time.Second}
				if got := Needed(&c, 3, 100*sec, &s); got != pc.ok[state] {
					t.Errorf("Needed = %v, want %v", got, pc.ok[state])
				}
			})
			t.Run(fmt.Sprintf("%d/%s/changed at packet 4", pc.p, name), func(t *testing.T) {
				old := uint8(pc.est)
				if state == pc.est {
					old = 0 // NONE -> ESTABLISHED is not forced
				}
				c := ConnInfo{Proto: pc.p, State: uint8(st), OldState: old, Timeout: 60 * time.Second}
				want := pc.ok[state] && state != pc.est
				got := Needed(&c, 4, 100*sec, &s)
				if got != want {
					t.Errorf("Needed = %v, want %v", got, want)
				}
				if wantOld := map[bool]uint8{true: uint8(st), false: old}[want]; c.OldState != wantOld {
					t.Errorf("OldState = %d, want %d (only a sync records the state)", c.OldState, wantOld)
				}
			})
		}
	}
}

func TestNeededRules(t *testing.T) {
	def := DefaultSysctls()
	once := Sysctls{Version: 1, Threshold: 3} // "3 0"
	pmode := DefaultSysctls()
	pmode.PersistMode = true
	est := uint8(proto.TCPEstablished)
	tcp := ConnInfo{Proto: proto.TCP, State: est, OldState: est, Timeout: 900 * time.Second}
	udp := ConnInfo{Proto: proto.UDP, Timeout: 300 * time.Second}
	tpl := ConnInfo{Proto: proto.TCP, Flags: conntable.FlagTemplate, Timeout: 300 * time.Second}
	with := func(c ConnInfo, f func(*ConnInfo)) ConnInfo { f(&c); return c }

	tests := []struct {
		name string
		c    ConnInfo
		pkts int
		s    Sysctls
		want bool
	}{
		{"TCP packet 3 (threshold)", tcp, 3, def, true},
		{"TCP packet 2", tcp, 2, def, false},
		{"TCP packet 4", tcp, 4, def, false},
		{"TCP packet 53 (3 + period)", tcp, 53, def, true},
		{"TCP packet 103", tcp, 103, def, true},
		{"TCP packet 50", tcp, 50, def, false},
		{"UDP packet 3", udp, 3, def, true},
		{"UDP packet 4", udp, 4, def, false},
		{"UDP packet 53", udp, 53, def, true},
		{"UDP never forced (state 0 = old state)", with(udp, func(c *ConnInfo) { c.OldState = 5 }), 4, def, false},
		{"unknown protocol like UDP", with(udp, func(c *ConnInfo) { c.Proto = 47 }), 53, def, true},
		{"template at any packet", tpl, 4, def, true},
		{"template at packet 1", tpl, 1, def, true},
		{"template in any state", with(tpl, func(c *ConnInfo) { c.State, c.OldState = 1, 0 }), 7, def, true},
		{"fwmark template (protocol 0)", with(tpl, func(c *ConnInfo) { c.Proto = 0 }), 9, def, true},
		{"period 0: packet 3 once", tcp, 3, once, true},
		{"period 0: not packet 53", tcp, 53, once, false},
		{"period 0: template only at 3", tpl, 4, once, false},
		{"period 0: template at 3", tpl, 3, once, true},
		{"period 0: forced change still syncs", with(tcp, func(c *ConnInfo) { c.State = uint8(proto.TCPTimeWait) }), 99, once, true},
		{"persist mode: controlled conn never", with(tcp, func(c *ConnInfo) { c.InPersistence = true }), 3, pmode, false},
		{"persist mode: controlled conn not even forced", with(tcp, func(c *ConnInfo) { c.InPersistence = true; c.State = uint8(proto.TCPClose) }), 3, pmode, false},
		{"persist mode: free conn as usual", tcp, 3, pmode, true},
		{"persist mode: template as usual", with(tpl, func(c *ConnInfo) { c.InPersistence = true }), 4, pmode, true},
		{"no persist mode: controlled conn as usual", with(tcp, func(c *ConnInfo) { c.InPersistence = true }), 3, def, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := tt.c
			if got := Needed(&c, tt.pkts, 1000*sec, &tt.s); got != tt.want {
				t.Errorf("Needed = %v, want %v", got, tt.want)
			}
			if tt.want {
				if c.OldState != c.State || c.SyncEndtime != (1000*sec+int64(c.Timeout))&^3 {
					t.Errorf("after a sync: old state %d, endtime %d", c.OldState, c.SyncEndtime)
				}
			} else if c != tt.c {
				t.Errorf("changed without a sync: %+v", c)
			}
		})
	}
}

// TestNeededRefresh walks the sync_refresh_period and sync_retries rules
// over time for one connection.
func TestNeededRefresh(t *testing.T) {
	type step struct {
		at      int64 // seconds
		timeout int64 // seconds
		want    bool
		retries int64 // low bits of SyncEndtime after the step
	}
	tests := []struct {
		name  string
		s     Sysctls
		steps []step
	}{
		{
			// min(60 s, max(900/2, 10)) = 60 s: a sync when the expiry
			// moved by 60 s or more; packets do not matter (period 0).
			name: "refresh 60 s, no retries",
			s:    Sysctls{Version: 1, Threshold: 3, RefreshPeriod: 60 * time.Second},
			steps: []step{
				{1000, 900, true, 0},  // first sync: far from the creation time
				{1010, 900, false, 0}, // moved 10 s
				{1059, 900, false, 0}, // 59 s
				{1060, 900, true, 0},  // 60 s
				{1061, 900, false, 0},
			},
		},
		{
			// A short timeout: min(60, max(20/2, 10)) = 10 s.
			name: "refresh bounded by half the timeout",
			s:    Sysctls{Version: 1, Threshold: 3, RefreshPeriod: 60 * time.Second},
			steps: []step{
				{1000, 20, true, 0},
				{1009, 20, false, 0},
				{1010, 20, true, 0},
			},
		},
		{
			// The expiry moving back (a template whose timeout became 60 s)
			// counts by its absolute value: min(60, max(30, 10)) = 30.
			name: "expiry moving back",
			s:    Sysctls{Version: 1, Threshold: 3, RefreshPeriod: 60 * time.Second},
			steps: []step{
				{1000, 300, true, 0}, // expiry 1300
				{1230, 60, false, 0}, // 1290: 10 s back
				{1200, 60, true, 0},  // 1260: 40 s back
			},
		},
		{
			// Two retries, refresh/8 = 10 s after the last sync.
			name: "retries",
			s:    Sysctls{Version: 1, Threshold: 3, RefreshPeriod: 80 * time.Second, Retries: 2},
			steps: []step{
				{1000, 900, true, 0},
				{1005, 900, false, 0}, // within 10 s of the sync
				{1011, 900, true, 1},  // first retry
				{1015, 900, false, 1}, // within 10 s of the retry
				{1022, 900, true, 2},  // second retry
				{1040, 900, false, 2}, // retries used up
				{1101, 900, false, 2}, // 79 s since the last retry's expiry
				// 80 s, less the retry count kept in the low bits of the
				// old endtime (2 ns here, 2 jiffies in the kernel)
				{1102, 900, false, 2},
				{1103, 900, true, 0}, // a full sync resets the retries
			},
		},
		{
			// With a period, the packet rule applies as well; the step's
			// packet count is 3 + 50k when want is true, else 4.
			name: "refresh and period",
			s:    Sysctls{Version: 1, Threshold: 3, Period: 50, RefreshPeriod: 60 * time.Second},
			steps: []step{
				{1000, 900, true, 0},
				{1100, 900, true, 0},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := ConnInfo{Proto: proto.UDP, SyncEndtime: InitialSyncEndtime(10 * sec)}
			for i, st := range tt.steps {
				c.Timeout = time.Duration(st.timeout) * time.Second
				pkts := 4
				if st.want || tt.s.Period == 0 {
					pkts = 3 + 50*i
				}
				before := c.SyncEndtime
				got := Needed(&c, pkts, st.at*sec, &tt.s)
				if got != st.want {
					t.Fatalf("step %d (t=%d s): Needed = %v, want %v", i, st.at, got, st.want)
				}
				if got {
					want := (st.at*sec+st.timeout*sec)&^3 | st.retries
					if c.SyncEndtime != want {
						t.Errorf("step %d: endtime %d, want %d", i, c.SyncEndtime, want)
					}
				} else if c.SyncEndtime != before {
					t.Errorf("step %d: endtime changed without a sync", i)
				}
				if c.SyncEndtime&3 != st.retries {
					t.Errorf("step %d: retries %d, want %d", i, c.SyncEndtime&3, st.retries)
				}
			}
		})
	}
}

func TestSyncChain(t *testing.T) {
	est := uint8(proto.TCPEstablished)
	synRecv := uint8(proto.TCPSynRecv)
	conn := func(state uint8) ConnInfo {
		return ConnInfo{Proto: proto.TCP, State: state, OldState: state, Timeout: 900 * time.Second}
	}
	tpl := ConnInfo{Proto: proto.TCP, Flags: conntable.FlagTemplate, Timeout: 300 * time.Second, InPkts: 10}
	ops := ConnInfo{Proto: proto.UDP, Flags: conntable.FlagOnePacket}
	v6 := conn(est)
	v6.IPv6 = true
	ctl := conn(est) // an FTP control connection controlling a data one
	v0 := DefaultSysctls()
	v0.Version = Version0
	pm := DefaultSysctls()
	pm.PersistMode = true

	tests := []struct {
		name    string
		chain   []ConnInfo
		pkts    int
		s       Sysctls
		want    uint64
		tplPkts uint32 // InPkts of the last link after the walk
	}{
		{"v1: conn not synced, its template is", []ConnInfo{conn(synRecv), tpl}, 1, DefaultSysctls(), 0b10, 11},
		{"v1: conn and template", []ConnInfo{conn(est), tpl}, 3, DefaultSysctls(), 0b11, 11},
		{"v1: one-packet conn skipped, template synced", []ConnInfo{ops, tpl}, 3, DefaultSysctls(), 0b10, 11},
		{"v1: persist mode, template only", []ConnInfo{conn(est), tpl}, 3, pm, 0b10, 11},
		{"v1: control conn gets the threshold", []ConnInfo{conn(synRecv), ctl}, 1, DefaultSysctls(), 0b10, 0},
		{"v1: three links", []ConnInfo{conn(est), ctl, tpl}, 4, DefaultSysctls(), 0b110, 11},
		{"v0: conn not synced ends the walk", []ConnInfo{conn(synRecv), tpl}, 1, v0, 0, 10},
		{"v0: conn synced, then template", []ConnInfo{conn(est), tpl}, 3, v0, 0b11, 11},
		{"v0: one-packet ends the walk", []ConnInfo{ops, tpl}, 3, v0, 0, 10},
		{"v0: IPv6 not synced", []ConnInfo{v6, tpl}, 3, v0, 0, 10},
		{"v1: IPv6 synced", []ConnInfo{v6}, 3, DefaultSysctls(), 0b1, 0},
		{"empty chain", nil, 3, DefaultSysctls(), 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			chain := append([]ConnInfo(nil), tt.chain...)
			got := SyncChain(chain, tt.pkts, 100*sec, &tt.s)
			if got != tt.want {
				t.Errorf("mask %b, want %b", got, tt.want)
			}
			if n := len(chain); n > 0 && chain[n-1].InPkts != tt.tplPkts {
				t.Errorf("last link InPkts %d, want %d", chain[n-1].InPkts, tt.tplPkts)
			}
		})
	}
}

func TestSysctlsValidate(t *testing.T) {
	tests := []struct {
		s  Sysctls
		ok bool
	}{
		{DefaultSysctls(), true},
		{Sysctls{Version: 1, Threshold: 3, Period: 0}, true},
		{Sysctls{Version: 1, Threshold: 0, Period: 1}, true},
		{Sysctls{Version: 1, Threshold: 50, Period: 50}, false}, // threshold < period
		{Sysctls{Version: 1, Threshold: -1}, false},
		{Sysctls{Version: 1, Period: -1}, false},
		{Sysctls{Version: 1, Retries: 3}, true},
		{Sysctls{Version: 1, Retries: 4}, false},
		{Sysctls{Version: 2}, false},
		{Sysctls{Version: 0}, true},
		{Sysctls{Version: 1, RefreshPeriod: -1}, false},
	}
	for _, tt := range tests {
		if err := tt.s.Validate(); (err == nil) != tt.ok {
			t.Errorf("%+v: %v", tt.s, err)
		}
	}
}
