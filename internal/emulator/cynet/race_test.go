//go:build race

package cynet

// raceEnabled scales the large tests down under the race detector, which
// slows rendering and decoding about tenfold.
const raceEnabled = true
