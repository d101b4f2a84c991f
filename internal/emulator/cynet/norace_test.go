//go:build !race

package cynet

// raceEnabled scales the large tests down under the race detector.
const raceEnabled = false
