//go:build race

package conntable

// raceEnabled scales the long randomised tests down under the race
// detector, which slows them about twentyfold.
const raceEnabled = true
