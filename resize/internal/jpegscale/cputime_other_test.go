//go:build !unix

package jpegscale

import "time"

func processCPU() (time.Duration, bool) { return 0, false }
