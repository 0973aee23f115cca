//go:build race

package jpegscale

// raceEnabled thins the slowest differential tests: the race detector
// slows the decoder ten-fold, and they run on a single goroutine.
const raceEnabled = true
