// Package testkit holds helpers that several packages' tests and benchmarks
// share: a goroutine-safe output buffer, a clock that moves when told to,
// CPU time per benchmark iteration, committed fuzz seed files kept in step
// with the code that generates them, and slog's own line for a record. It
// is imported by tests and test servers only.
package testkit

import (
	"os"
	"path/filepath"
	"testing"
)

// CPUPerOp reports the process CPU time per iteration as "cpu-ns/op", next
// to wall time: on a shared machine wall time mostly measures the
// neighbours. Call it with defer at the top of the measured function.
func CPUPerOp(b *testing.B) func() {
	start, ok := processCPU()
	return func() {
		end, ok2 := processCPU()
		if ok && ok2 && b.N > 0 {
			b.ReportMetric(float64((end-start).Nanoseconds())/float64(b.N), "cpu-ns/op")
		}
	}
}

// SeedFile checks that dir/name holds body, a seed in the fuzz corpus
// format; with update set it writes the file instead.
func SeedFile(t *testing.T, dir, name, body string, update bool) {
	t.Helper()
	path := filepath.Join(dir, name)
	if update {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update-seeds)", err)
	}
	if string(got) != body {
		t.Errorf("%s is stale (run with -update-seeds)", path)
	}
}
