package config

import (
	"os"
	"strings"
	"testing"
)

const (
	tableBegin = "<!-- settings:begin (generated from config.Settings; AVATAR_UPDATE_README=1 go test ./config rewrites it) -->\n"
	tableEnd   = "<!-- settings:end -->"
)

// TestREADMETable keeps the README's configuration table in step with the
// code: it fails when they differ, and rewrites the table when asked to.
func TestREADMETable(t *testing.T) {
	const path = "../README.md"
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	readme := string(b)
	i, j := strings.Index(readme, tableBegin), strings.Index(readme, tableEnd)
	if i < 0 || j < i {
		t.Fatalf("README.md has no settings table markers")
	}
	got := readme[i+len(tableBegin) : j]
	want := MarkdownTable()
	if got == want {
		return
	}
	if os.Getenv("AVATAR_UPDATE_README") == "1" {
		if err := os.WriteFile(path, []byte(readme[:i+len(tableBegin)]+want+readme[j:]), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	t.Errorf("README.md settings table is out of date; run AVATAR_UPDATE_README=1 go test ./config")
}
