package nslab

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseWeightArgs(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		svc     string
		rs, w   int
		wantErr string
	}{
		{name: "by name", args: []string{"nat", "2", "3"}, svc: "NAT", rs: 2, w: 3},
		{name: "upper case, rs prefix", args: []string{"TUN", "rs3", "0"}, svc: "TUN", rs: 3, w: 0},
		{name: "by VIP:port", args: []string{"198.18.0.101:53", "1", "65535"}, svc: "UDP", rs: 1, w: 65535},
		{name: "unknown service", args: []string{"ftp", "1", "1"}, wantErr: `service "ftp": want one of NAT, DR, TUN, UDP`},
		{name: "real server 0", args: []string{"dr", "0", "1"}, wantErr: `real server "0": want 1 to 3`},
		{name: "real server 4", args: []string{"dr", "4", "1"}, wantErr: `real server "4": want 1 to 3`},
		{name: "negative weight", args: []string{"dr", "1", "-1"}, wantErr: `weight "-1": want 0 to 65535`},
		{name: "weight too big", args: []string{"dr", "1", "65536"}, wantErr: `weight "65536"`},
		{name: "too few", args: []string{"dr", "1"}, wantErr: "want SERVICE RS WEIGHT, got 2 argument(s)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			svc, rs, w, err := ParseWeightArgs(tt.args)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || svc != tt.svc || rs != tt.rs || w != tt.w {
				t.Errorf("got %q %d %d %v, want %q %d %d", svc, rs, w, err, tt.svc, tt.rs, tt.w)
			}
		})
	}
}

// FuzzParseWeightArgs: whatever the user types, an accepted command names
// a lab service, a real server and a weight ipvsadm accepts.
func FuzzParseWeightArgs(f *testing.F) {
	f.Add("nat", "2", "3")
	f.Add("198.18.0.102:80", "rs1", "0")
	f.Add("UDP", "RS3", "65535")
	f.Add("x", "-1", "1e3")
	f.Fuzz(func(t *testing.T, a, b, c string) {
		svc, rs, w, err := ParseWeightArgs([]string{a, b, c})
		if err != nil {
			return
		}
		if _, ok := serviceByName(svc); !ok || rs < 1 || rs > numRS || w < 0 || w > 65535 {
			t.Errorf("accepted %q %q %q as %q %d %d", a, b, c, svc, rs, w)
		}
	})
}

// TestCallNoLab: a subcommand without a running lab says so.
func TestCallNoLab(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "golvs-lab")
	_, err := Call(context.Background(), dir, "stop-rs", nil)
	if !errors.Is(err, ErrNotRunning) || !strings.Contains(err.Error(), "start one with lvslab up") {
		t.Errorf("Call without a lab: %v", err)
	}
	if _, err := QueryStatus(context.Background(), dir); !errors.Is(err, ErrNotRunning) {
		t.Errorf("QueryStatus without a lab: %v", err)
	}
}
