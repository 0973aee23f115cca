//go:build linux && (!race || sockio_raw) && !msan && !asan

package sockio

import "testing"

// The tests of this package exercise the raw calls only if connections get
// them: this build is the one production runs.
func TestRawCallsInUse(t *testing.T) {
	srv, _ := pair(t)
	if srv.rawConn == nil {
		t.Fatal("the connection fell back to the standard calls")
	}
}
