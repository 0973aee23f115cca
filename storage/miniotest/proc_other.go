//go:build !linux

package miniotest

import "os/exec"

// dieWithParent is a no-op where the kernel has no parent-death signal; a
// test binary killed without cleanups may leave its MinIO running.
func dieWithParent(*exec.Cmd) {}
