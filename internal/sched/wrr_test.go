package sched

import (
	"testing"

	"golvs/internal/service"
)

func TestWeightedRoundRobinMatchesKernel(t *testing.T) {
	t.Parallel()
	for seed := uint64(1); seed <= rrFamilySeeds; seed++ {
		runDifferential(t, seed, rrFamilyConfig(seed), NewWeightedRoundRobin(Options{}), &wrrRef{})
		runOverloadStress(t, seed, NewWeightedRoundRobin(Options{}), &wrrRef{})
	}
}

// Weights 4, 3, 2 with A first in the list give A | A B | A B C | A B C per
// cycle (ipvs-features.md §2.2).
func TestWeightedRoundRobinCycle(t *testing.T) {
	list, byName := rrServers(2, 3, 4) // rs3 (A, 4) rs2 (B, 3) rs1 (C, 2)
	w := NewWeightedRoundRobin(Options{})
	_ = w.Init(list)
	got := scheduleNames(w, list, byName, 18)
	cycle := []string{"rs3", "rs3", "rs2", "rs3", "rs2", "rs1", "rs3", "rs2", "rs1"}
	if want := append(cycle, cycle...); !equalNames(got, want) {
		t.Errorf("got  %v\nwant %v", got, want)
	}
}

func TestWeightedRoundRobinProportions(t *testing.T) {
	list, byName := rrServers(1, 2, 3)
	w := NewWeightedRoundRobin(Options{})
	_ = w.Init(list)
	count := map[string]int{}
	for _, n := range scheduleNames(w, list, byName, 30) {
		count[n]++
	}
	if count["rs1"] != 5 || count["rs2"] != 10 || count["rs3"] != 15 {
		t.Errorf("weights 1/2/3 over 30 connections: %v, want rs1:5 rs2:10 rs3:15", count)
	}
}

// With a gcd of 2 the passes step by 2 (weights 4 and 2 behave as 2 and 1).
func TestWeightedRoundRobinGCD(t *testing.T) {
	list, byName := rrServers(2, 4) // rs2 (4) rs1 (2)
	w := NewWeightedRoundRobin(Options{})
	_ = w.Init(list)
	got := scheduleNames(w, list, byName, 6)
	if want := []string{"rs2", "rs2", "rs1", "rs2", "rs2", "rs1"}; !equalNames(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
}

func TestWeightedRoundRobinQuiescentAndOverloaded(t *testing.T) {
	list, byName := rrServers(0, 2, 1) // rs3 (1) rs2 (2) rs1 (0)
	w := NewWeightedRoundRobin(Options{})
	_ = w.Init(list)
	for i, n := range scheduleNames(w, list, byName, 30) {
		if n == "rs1" {
			t.Fatalf("connection %d went to rs1, which has weight 0", i)
		}
	}
	byName[1].SetCounts(0, 0, true) // rs2 OVERLOADED
	for _, n := range scheduleNames(w, list, byName, 5) {
		if n != "rs3" {
			t.Fatalf("got %s, want only rs3 while rs2 is overloaded", n)
		}
	}
	byName[2].SetCounts(0, 0, true)
	if d := w.Schedule(list, &service.Packet{}); d != nil {
		t.Errorf("all overloaded or quiescent, chose %s", rrName(byName, d))
	}
	// All weights 0: mw = 0, "no destination available".
	for _, d := range byName {
		d.SetCounts(0, 0, false)
		c := d.Config()
		c.Weight = 0
		d.SetConfig(c)
		w.UpdDest(list, d)
	}
	if d := w.Schedule(list, &service.Packet{}); d != nil {
		t.Errorf("all weights 0, chose %s", rrName(byName, d))
	}
}

// An edit restarts from the list head with cw kept when still in range.
func TestWeightedRoundRobinRestartOnEdit(t *testing.T) {
	list, byName := rrServers(2, 3, 4) // A=rs3(4) B=rs2(3) C=rs1(2)
	w := NewWeightedRoundRobin(Options{})
	_ = w.Init(list)
	got := scheduleNames(w, list, byName, 4) // A | A B | A  (cw = 2, cl = A)
	c := byName[0].Config()
	c.Weight = 1 // C: 2 -> 1; gcd 1, mw 4, cw 2 kept, cl = head
	byName[0].SetConfig(c)
	w.UpdDest(list, byName[0])
	got = append(got, scheduleNames(w, list, byName, 4)...)
	// cw = 2 from the head: A B; then cw = 1: A B (C's turn is next).
	if want := []string{"rs3", "rs3", "rs2", "rs3", "rs3", "rs2", "rs3", "rs2"}; !equalNames(got, want) {
		t.Errorf("got  %v\nwant %v", got, want)
	}
}
