package jpegscale

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/avatarproxy/avatarproxy/internal/testkit"
)

var updateSeeds = flag.Bool("update-seeds", false, "rewrite testdata/fuzz/FuzzDecodeScaled seed files")

func fuzzSeeds(tb testing.TB) map[string][]byte {
	tb.Helper()
	read := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			tb.Fatal(err)
		}
		return b
	}
	c420 := encode(tb, synth(16, 16, 5), 75)
	return map[string][]byte{
		"go-420-16x16":        c420,
		"go-420-9x7":          encode(tb, synth(9, 7, 6), 90),
		"go-gray-8x8":         encode(tb, gray(synth(8, 8, 7)), 75),
		"go-420-truncated":    c420[:len(c420)-40],
		"q50-444":             read("video-001.q50.444.jpeg"),
		"q50-420-progressive": read("video-001.q50.420.progressive.jpeg"),
		"many-scans-gray":     manyScans(16, 16, []byte{0x11}, []int{0}, maxScanVisits+1),
		"many-scans-410":      manyScans(32, 16, []byte{0x42, 0x11, 0x11}, []int{1, 2}, maxScans+1),
	}
}

// TestFuzzSeeds keeps testdata/fuzz/FuzzDecodeScaled in step with
// fuzzSeeds: run `go test -run TestFuzzSeeds -update-seeds` after changing it.
func TestFuzzSeeds(t *testing.T) {
	dir := filepath.Join("testdata", "fuzz", "FuzzDecodeScaled")
	for name, data := range fuzzSeeds(t) {
		body := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\nuint8(%d)\n", data, len(data)%4)
		testkit.SeedFile(t, dir, "seed-"+name, body, *updateSeeds)
	}
}
