package conntable

import (
	"testing"
	"time"
)

// TestCountIn: a master's per-packet count, and the sync bookkeeping it
// reads: a new entry's SyncEndtime is its creation time, its OldState
// the one inserted.
func TestCountIn(t *testing.T) {
	tab, _ := newTable(t, 16)
	now := at(1234 * time.Millisecond)
	c := tcpConn(cli, 1000, rs1, time.Minute)
	c.State, c.OldState, c.InPkts = 3, 2, 7
	ref := insert(t, tab, c, now)
	var out Conn
	si, ok := tab.CountIn(ref, now+int64(time.Second), &out)
	want := SyncInfo{State: 3, OldState: 2, Flags: FlagMasq | FlagInactive, Timeout: time.Minute, InPkts: 8,
		SyncEndtime: at(1230 * time.Millisecond)}
	if !ok || si != want {
		t.Errorf("CountIn = %+v %v, want %+v", si, ok, want)
	}
	if out.CAddr != cli || out.CPort != 1000 || out.InPkts != 8 || out.Ref != ref || out.Control != 0 {
		t.Errorf("CountIn copy: %+v", out)
	}
	if si, _ = tab.CountIn(ref, now, nil); si.InPkts != 9 {
		t.Errorf("second CountIn: InPkts %d, want 9", si.InPkts)
	}
	// The timer is not re-armed: at its expiry the entry is gone.
	if _, ok := tab.CountIn(ref, now+int64(time.Minute)+2*tickNs, nil); ok {
		t.Error("CountIn succeeded past the entry's expiry")
	}
	if _, ok := tab.CountIn(0, now, nil); ok {
		t.Error("CountIn of the zero Ref succeeded")
	}
}

// TestSetSynced: the state and expiry time last synced, with the retries,
// come back from CountIn, and are invisible in the entry's flags.
func TestSetSynced(t *testing.T) {
	tab, _ := newTable(t, 16)
	now := at(0)
	ref := insert(t, tab, tcpConn(cli, 1000, rs1, time.Minute), now)
	for _, tt := range []struct {
		old uint8
		end int64
	}{
		{5, at(61 * time.Second)},
		{7, at(100*time.Second) | 2},
		{1, at(5*time.Second) | 3},
		{0, at(0)},
	} {
		if !tab.SetSynced(ref, tt.old, tt.end) {
			t.Fatal("SetSynced failed")
		}
		si, ok := tab.CountIn(ref, now, nil)
		if !ok || si.OldState != tt.old || si.SyncEndtime != tt.end || si.State != 0 || si.Flags != FlagMasq|FlagInactive {
			t.Errorf("after SetSynced(%d, %d): %+v", tt.old, tt.end, si)
		}
		if c, _ := tab.Get(ref); c.Flags != FlagMasq|FlagInactive || c.OldState != tt.old {
			t.Errorf("Get after SetSynced: flags %#x old state %d", c.Flags, c.OldState)
		}
	}
	// The retries survive SetState, whose flags cannot touch them.
	tab.SetSynced(ref, 2, at(10*time.Second)|1)
	tab.SetState(ref, 4, FlagMasq|0x18, time.Minute, now)
	if si, _ := tab.CountIn(ref, now, nil); si.SyncEndtime != at(10*time.Second)|1 || si.OldState != 0 || si.Flags != FlagMasq {
		t.Errorf("after SetState: %+v", si)
	}
	if tab.SetSynced(ref, MaxState+1, now) {
		t.Error("SetSynced accepted a state above MaxState")
	}
	tab.ExpireNow(ref)
	if tab.SetSynced(ref, 1, now) {
		t.Error("SetSynced of a removed entry succeeded")
	}
}

// TestUpdateSynced: a backup's update of an entry it has: flags but the
// table's own, states, timeout (the timer re-armed with it), packet count,
// and a real server only for an unbound entry.
func TestUpdateSynced(t *testing.T) {
	tab, rec := newTable(t, 16)
	now := at(0)
	c := tcpConn(cli, 1000, rs1, time.Minute)
	c.DestID = 0
	c.Flags |= FlagNoCPort
	c.CPort = 0
	ref := insert(t, tab, c, now)

	upd := Conn{Flags: FlagRoute | FlagNoOutput | FlagSync | FlagTemplate | FlagOnePacket, State: 3, OldState: 3,
		Timeout: 2 * time.Minute, InPkts: 3, DestID: 9}
	later := at(30 * time.Second)
	bound, ok := tab.UpdateSynced(ref, &upd, later)
	if !ok || !bound {
		t.Fatalf("UpdateSynced = %v %v, want bound", bound, ok)
	}
	got, _ := tab.Get(ref)
	if got.Flags != FlagRoute|FlagNoOutput|FlagSync|FlagNoCPort || got.State != 3 || got.OldState != 3 ||
		got.Timeout != 2*time.Minute || got.InPkts != 3 || got.DestID != 9 || got.Expires != later+int64(2*time.Minute) {
		t.Errorf("after UpdateSynced: %+v", got)
	}
	// Bound already: the real server stays.
	upd.DestID = 4
	if bound, ok := tab.UpdateSynced(ref, &upd, later); !ok || bound {
		t.Errorf("second UpdateSynced = %v %v, want not bound", bound, ok)
	}
	if got, _ := tab.Get(ref); got.DestID != 9 {
		t.Errorf("DestID %d after a second binding, want 9", got.DestID)
	}
	for _, bad := range []Conn{{State: MaxState + 1}, {OldState: MaxState + 1}, {DestID: 1 << 24}} {
		if _, ok := tab.UpdateSynced(ref, &bad, later); ok {
			t.Errorf("UpdateSynced accepted %+v", bad)
		}
	}
	// The timer runs with the new timeout.
	if n := tab.Expire(later+int64(2*time.Minute)-tickNs, 100); n != 0 {
		t.Errorf("expired %d before the synced timeout", n)
	}
	if n := tab.Expire(later+int64(2*time.Minute)+tickNs, 100); n != 1 || len(rec.take()) != 1 {
		t.Errorf("expired %d at the synced timeout, want 1", n)
	}
	if _, ok := tab.UpdateSynced(ref, &upd, later); ok {
		t.Error("UpdateSynced of a removed entry succeeded")
	}
}

func TestSyncAllocs(t *testing.T) {
	tab, _ := newTable(t, 64)
	now := at(0)
	ref := insert(t, tab, tcpConn(cli, 1000, rs1, time.Hour), now)
	var out Conn
	upd := Conn{Flags: FlagMasq, State: 3, OldState: 3, Timeout: time.Hour, InPkts: 3}
	for name, f := range map[string]func(){
		"CountIn":      func() { tab.CountIn(ref, now, nil) },
		"CountIn copy": func() { tab.CountIn(ref, now, &out) },
		"SetSynced":    func() { tab.SetSynced(ref, 3, now|1) },
		"UpdateSynced": func() { tab.UpdateSynced(ref, &upd, now) },
	} {
		if n := testing.AllocsPerRun(1000, f); n != 0 {
			t.Errorf("%s: %v allocations per run, want 0", name, n)
		}
	}
}
