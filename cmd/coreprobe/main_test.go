package main

import (
	"math"
	"testing"
)

func TestProbe(t *testing.T) {
	a, b, ok := twoCPUs()
	if !ok {
		t.Skip("fewer than two CPUs to run on")
	}
	ns, err := probe(a, b, 2000, 3)
	if err != nil {
		t.Fatal(err)
	}
	if !(ns > 0) || math.IsInf(ns, 0) {
		t.Fatalf("one-way time %v ns", ns)
	}
}

// A CPU the thread cannot run on fails the trial instead of leaving the
// other thread spinning.
func TestProbeReportsPinError(t *testing.T) {
	a, _, ok := twoCPUs()
	if !ok {
		t.Skip("fewer than two CPUs to run on")
	}
	if _, err := probe(a, 1<<20, 1000, 1); err == nil {
		t.Fatal("probe on a CPU that does not exist: no error")
	}
}
