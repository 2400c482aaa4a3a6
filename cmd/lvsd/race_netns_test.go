//go:build race

package main

// raceEnabled: the tests run with the race detector, and build lvsd with
// it too.
const raceEnabled = true
