// Command coreprobe measures how long a cache line takes to go from one CPU
// to another and back: two threads, each pinned to one CPU, hand a counter to
// each other. scripts/loadtest.sh runs it before each round because on a
// virtual machine the answer changes under it: on this project's 2-core VMs
// the host places the two virtual CPUs either on neighbouring cores (about 50
// ns one way) or on distant ones (about 200-250 ns), and moves between the
// two every few minutes. Everything a server shares between cores costs that
// much more in the second case, so a round's ratio against nginx has to be
// read with the state it ran in. It is a benchmark tool, not part of the
// server.
//
// Usage: coreprobe [-n exchanges]. It prints "coreprobe cpus=A,B ns=N", N
// being the median one-way time of five trials, or "coreprobe ns=-" with
// fewer than two CPUs to run on.
package main

import (
	"flag"
	"fmt"
	"os"
	"runtime"
	"slices"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

func main() {
	n := flag.Int("n", 100_000, "exchanges per trial")
	flag.Parse()
	if *n < 1 {
		fmt.Fprintln(os.Stderr, "coreprobe: -n must be at least 1")
		os.Exit(2)
	}
	// Both threads spin at once: they need a scheduler slot each.
	runtime.GOMAXPROCS(max(2, runtime.GOMAXPROCS(0)))
	a, b, ok := twoCPUs()
	if !ok {
		fmt.Println("coreprobe ns=-")
		return
	}
	ns, err := probe(a, b, *n, 5)
	if err != nil {
		fmt.Fprintln(os.Stderr, "coreprobe:", err)
		os.Exit(1)
	}
	fmt.Printf("coreprobe cpus=%d,%d ns=%.0f\n", a, b, ns)
}

// twoCPUs returns the first two CPUs this process may run on.
func twoCPUs() (a, b int, ok bool) {
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err != nil {
		return 0, 0, false
	}
	var cpus []int
	for cpu := 0; cpu < len(set)*64 && len(cpus) < 2; cpu++ {
		if set.IsSet(cpu) {
			cpus = append(cpus, cpu)
		}
	}
	if len(cpus) < 2 {
		return 0, 0, false
	}
	return cpus[0], cpus[1], true
}

// probe runs trials of n exchanges between CPUs a and b and returns the
// median one-way time in nanoseconds. Both threads spin: a trial keeps both
// CPUs busy for its length (a few tens of milliseconds at the default n).
func probe(a, b, n, trials int) (float64, error) {
	var results []float64
	for range trials {
		ns, err := trial(a, b, n)
		if err != nil {
			return 0, err
		}
		results = append(results, ns)
	}
	slices.Sort(results)
	return results[len(results)/2], nil
}

func trial(a, b, n int) (float64, error) {
	// turn is odd when it is b's turn to answer, even when it is a's.
	var turn atomic.Int64
	var abort atomic.Bool
	pinned := make(chan error, 2)
	start := make(chan struct{})
	elapsed := make(chan time.Duration, 1)
	go func() { // b answers
		err := pin(b)
		pinned <- err
		if err != nil {
			return
		}
		<-start
		for i := int64(1); i <= int64(n); i++ {
			for turn.Load() != 2*i-1 {
				if abort.Load() {
					return
				}
			}
			turn.Store(2 * i)
		}
	}()
	go func() { // a asks, and times the exchanges
		err := pin(a)
		pinned <- err
		if err != nil {
			return
		}
		<-start
		if abort.Load() {
			return
		}
		t := time.Now()
		for i := int64(1); i <= int64(n); i++ {
			turn.Store(2*i - 1)
			for turn.Load() != 2*i {
			}
		}
		elapsed <- time.Since(t)
	}()
	var err error
	for range 2 {
		if e := <-pinned; e != nil && err == nil {
			err = e
		}
	}
	if err != nil {
		abort.Store(true) // a thread that did pin stops at once
	}
	close(start)
	if err != nil {
		return 0, err
	}
	return float64((<-elapsed).Nanoseconds()) / float64(2*n), nil
}

// pin locks the calling goroutine to its thread and the thread to cpu. The
// thread stays locked: it exits with the goroutine, so no other goroutine
// inherits the affinity.
func pin(cpu int) error {
	runtime.LockOSThread()
	var set unix.CPUSet
	set.Set(cpu)
	if err := unix.SchedSetaffinity(0, &set); err != nil {
		return fmt.Errorf("pin to cpu %d: %w", cpu, err)
	}
	return nil
}
