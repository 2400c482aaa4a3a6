package main

import (
	"bytes"
	"strings"
	"testing"
)

// TestSim runs the simulated lab and checks what it shows a user: wrr
// 1/2/3 gives 5/10/15, rr and wlc spread evenly, DR and TUN replies never
// cross the director, and a quiesced server gets nothing new.
func TestSim(t *testing.T) {
	var out bytes.Buffer
	if err := sim(&out, 1, 30, "", false); err != nil {
		t.Fatal(err)
	}
	s := out.String()
	for _, want := range []string{
		"answers by real server: rs1=5 rs2=10 rs3=15",
		"answers by real server: rs1=10 rs2=10 rs3=10",
		"reply frames from real servers seen by the director: 120",
		"reply frames from real servers seen by the director: 0",
		"6 more connections: rs1=2 rs2=4",
		"6 more connections: rs1=3 rs2=3",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("output lacks %q:\n%s", want, s)
		}
	}
	if strings.Count(s, "reply frames from real servers seen by the director: 0") != 2 {
		t.Errorf("DR and TUN replies crossed the director:\n%s", s)
	}
}
