//go:build !unix

package resize

import "time"

func processCPU() (time.Duration, bool) { return 0, false }
