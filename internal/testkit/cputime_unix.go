//go:build unix

package testkit

import (
	"syscall"
	"time"
)

// processCPU is the CPU time (user+system, all threads, GC included) the
// test process has used. Benchmarks report it per op next to wall time
// because on a shared machine wall time mostly measures the neighbours.
func processCPU() (time.Duration, bool) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, false
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), true
}
