package sched

import (
	"math/rand/v2"
	"testing"

	"golvs/internal/service"
)

// pcgRand returns Options.Rand over a PCG seeded with seed, so that two
// schedulers given pcgRand(s) draw the same numbers.
func pcgRand(seed uint64) func(uint32) uint32 {
	return rand.New(rand.NewPCG(seed, 0x7f4a7c159e3779b9)).Uint32N
}

func TestTwoChoicesMatchesKernel(t *testing.T) {
	t.Parallel()
	for seed := uint64(1); seed <= rrFamilySeeds; seed++ {
		// Each pair draws from two PCGs with the same seed.
		runDifferential(t, seed, rrFamilyConfig(seed),
			NewTwoChoices(Options{Rand: pcgRand(seed)}), &twosRef{rand: pcgRand(seed)})
		runOverloadStress(t, seed, NewTwoChoices(Options{Rand: pcgRand(seed)}), &twosRef{rand: pcgRand(seed)})
	}
}

// scriptRand returns the numbers of seq in turn and records the ranges asked.
type scriptRand struct {
	seq    []uint32
	ranges []uint32
}

func (s *scriptRand) draw(n uint32) uint32 {
	s.ranges = append(s.ranges, n)
	v := s.seq[0]
	s.seq = s.seq[1:]
	return v
}

func TestTwoChoicesDraws(t *testing.T) {
	// List order rs3(0) rs2(3) rs1(2): eligible rs2 then rs1, total 5,
	// draws in [0, 5]: 0 and 1..3 pick rs2, 4..5 pick rs1.
	list, byName := rrServers(2, 3, 0)
	byName[1].SetCounts(1, 0, false) // rs2 overhead 256
	byName[0].SetCounts(0, 10, false)
	tests := []struct {
		name   string
		r1, r2 uint32
		want   string
	}{
		{"zero picks the first eligible", 0, 0, "rs2"},
		{"same dest", 3, 1, "rs2"},
		// rs1: 2*256 = 512 vs rs2: 3*10 = 30 -> rs1 (lower overhead per weight).
		{"second draw less loaded", 3, 4, "rs1"},
		{"first draw less loaded", 5, 2, "rs1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sr := &scriptRand{seq: []uint32{tt.r1, tt.r2}}
			s := NewTwoChoices(Options{Rand: sr.draw})
			_ = s.Init(list)
			if got := rrName(byName, s.Schedule(list, &service.Packet{})); got != tt.want {
				t.Errorf("draws %d, %d: got %s, want %s", tt.r1, tt.r2, got, tt.want)
			}
			if len(sr.ranges) != 2 || sr.ranges[0] != 6 || sr.ranges[1] != 6 {
				t.Errorf("ranges asked %v, want [6 6] (total weight + 1)", sr.ranges)
			}
		})
	}
	// Ties keep the first draw.
	// rs2: weight 3, overhead 30; rs1: weight 2, overhead 20: 3*20 == 2*30.
	byName[1].SetCounts(0, 30, false)
	byName[0].SetCounts(0, 20, false)
	for _, draws := range [][2]uint32{{1, 5}, {5, 1}} {
		sr := &scriptRand{seq: draws[:]}
		s := NewTwoChoices(Options{Rand: sr.draw})
		_ = s.Init(list)
		want := "rs2"
		if draws[0] == 5 {
			want = "rs1"
		}
		if got := rrName(byName, s.Schedule(list, &service.Packet{})); got != want {
			t.Errorf("tie, draws %v: got %s, want the first draw's %s", draws, got, want)
		}
	}
}

func TestTwoChoicesIneligible(t *testing.T) {
	list, byName := rrServers(0, 4, 1)
	byName[2].SetCounts(0, 0, true) // rs3 OVERLOADED
	calls := 0
	s := NewTwoChoices(Options{Rand: func(n uint32) uint32 { calls++; return n - 1 }})
	_ = s.Init(list)
	for i, n := range scheduleNames(s, list, byName, 20) {
		if n != "rs2" {
			t.Fatalf("connection %d went to %s, want rs2 (rs3 overloaded, rs1 weight 0)", i, n)
		}
	}
	byName[1].SetCounts(0, 0, true)
	calls = 0
	if d := s.Schedule(list, &service.Packet{}); d != nil || calls != 0 {
		t.Errorf("nothing eligible: chose %s after %d draws, want nil without drawing", rrName(byName, d), calls)
	}
}

// With the default source and idle servers (the draws then decide), picks
// follow the weights roughly: a loose check that Rand nil works.
func TestTwoChoicesDefaultRand(t *testing.T) {
	list, byName := rrServers(1, 3)
	s := NewTwoChoices(Options{})
	_ = s.Init(list)
	count := map[string]int{}
	for range 4000 {
		count[rrName(byName, s.Schedule(list, &service.Packet{}))]++
	}
	// Equal overheads keep the first draw, r1 in [0, 4]: only r1 = 4
	// picks rs1 (0 picks the first eligible, rs2), so 1/5: about 800 of
	// 4000, standard deviation about 25.
	if count["rs1"] < 650 || count["rs1"] > 950 {
		t.Errorf("rs1 got %d of 4000, want about 800 (%v)", count["rs1"], count)
	}
}
