package storage

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func diskBackend(t *testing.T) func(int64) store {
	dir := t.TempDir()
	return func(maxObjectSize int64) store {
		d, err := NewDisk(dir)
		if err != nil {
			t.Fatalf("NewDisk: %v", err)
		}
		d.MaxObjectSize = maxObjectSize
		return d
	}
}

func TestDiskConformance(t *testing.T) {
	conformance(t, diskBackend, 300)
}

func newTestDisk(t *testing.T) (*Disk, string) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "cache") // NewDisk must create it
	d, err := NewDisk(dir)
	if err != nil {
		t.Fatalf("NewDisk: %v", err)
	}
	return d, dir
}

// files lists every regular file under dir, relative, with / separators.
func files(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		out = append(out, filepath.ToSlash(rel))
		return nil
	})
	if err != nil {
		t.Fatalf("walk %s: %v", dir, err)
	}
	return out
}

func TestDiskLayoutHidesKeys(t *testing.T) {
	d, dir := newTestDisk(t)
	const key = "src/79001234567@c.us/full"
	mustPut(t, d, key, []byte("v"))

	got := files(t, dir)
	if want := objectName("", key, nil); len(got) != 1 || got[0] != want {
		t.Fatalf("files = %q, want just %q", got, want)
	}
	if strings.Contains(got[0], "79001234567") {
		t.Fatalf("file name %q reveals the phone number", got[0])
	}
	info, err := os.Stat(filepath.Join(dir, got[0]))
	if err != nil {
		t.Fatal(err)
	}
	if perm := info.Mode().Perm(); perm&0o077 != 0 {
		t.Errorf("object file mode %v: readable beyond its owner", perm)
	}
	for _, folder := range []string{dir, filepath.Dir(filepath.Join(dir, got[0]))} {
		info, err := os.Stat(folder)
		if err != nil {
			t.Fatal(err)
		}
		if perm := info.Mode().Perm(); perm&0o007 != 0 {
			t.Errorf("folder %s mode %v: open to others", folder, perm)
		}
	}
}

// The keyed conformance run: every contract holds with names under a key.
func TestDiskConformanceKeyed(t *testing.T) {
	conformance(t, func(t *testing.T) func(int64) store {
		open := diskBackend(t)
		return func(maxObjectSize int64) store {
			d := open(maxObjectSize).(*Disk)
			d.NameKey = []byte("name-key-0123456789")
			return d
		}
	}, 100)
}

// With a name key the file is named by the keyed hash in the same two-level
// layout, and a handle on the folder finds it only under the same key.
func TestDiskNameKey(t *testing.T) {
	d, dir := newTestDisk(t)
	nameKey := []byte("name-key-0123456789")
	d.NameKey = nameKey
	const key = "src/79001234567@c.us/full"
	mustPut(t, d, key, []byte("v"))

	got := files(t, dir)
	if want := objectName("", key, nameKey); len(got) != 1 || got[0] != want || !nameRE.MatchString(got[0]) {
		t.Fatalf("files = %q, want just %q", got, want)
	}
	if got[0] == objectName("", key, nil) {
		t.Fatalf("file %q has the unkeyed name", got[0])
	}

	same, err := NewDisk(dir)
	if err != nil {
		t.Fatal(err)
	}
	same.NameKey = []byte("name-key-0123456789")
	if g := mustGet(t, same, key); string(g) != "v" {
		t.Fatalf("same key: Get = %q", g)
	}
	for name, other := range map[string][]byte{"no key": nil, "another key": []byte("name-key-0123456780")} {
		o, err := NewDisk(dir)
		if err != nil {
			t.Fatal(err)
		}
		o.NameKey = other
		t.Run(name, func(t *testing.T) { mustMiss(t, o, key) })
	}
}

func TestDiskNoStagedFilesLeftBehind(t *testing.T) {
	d, dir := newTestDisk(t)
	for i, key := range testKeys {
		mustPut(t, d, key, []byte{byte(i)})
	}
	if err := d.Ping(testCtx(t)); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	for _, f := range files(t, dir) {
		if !nameRE.MatchString(f) {
			t.Errorf("unexpected file %q after Puts and a Ping", f)
		}
	}
}

func TestDiskCrashLeftovers(t *testing.T) {
	d, dir := newTestDisk(t)
	mustPut(t, d, "k", []byte("whole"))

	// What a writer killed between CreateTemp and Rename leaves: a staged
	// file holding part of an object. One is old; one might belong to a
	// writer that is still alive in another process.
	stale := filepath.Join(dir, tempDirName, "put-1111")
	fresh := filepath.Join(dir, tempDirName, "put-2222")
	for _, p := range []string{stale, fresh} {
		if err := os.WriteFile(p, []byte("who"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	old := time.Now().Add(-2 * staleTemp)
	if err := os.Chtimes(stale, old, old); err != nil {
		t.Fatal(err)
	}

	// Never served, whatever key is asked for.
	if got := mustGet(t, d, "k"); string(got) != "whole" {
		t.Fatalf("Get = %q, want the whole object", got)
	}
	for _, key := range []string{"put-1111", tempDirName + "/put-1111", "../" + tempDirName + "/put-1111"} {
		mustMiss(t, d, key)
	}

	// Start-up sweeps the old one only.
	d2, err := NewDisk(dir)
	if err != nil {
		t.Fatalf("NewDisk: %v", err)
	}
	if _, err := os.Stat(stale); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("stale staged file still there after NewDisk (stat err %v)", err)
	}
	if _, err := os.Stat(fresh); err != nil {
		t.Errorf("fresh staged file removed: a live writer would lose it (stat err %v)", err)
	}
	if got := mustGet(t, d2, "k"); string(got) != "whole" {
		t.Fatalf("Get after restart = %q, want the whole object", got)
	}
}

func TestNewDiskErrors(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, dir := range []string{"", file, filepath.Join(file, "under")} {
		if _, err := NewDisk(dir); err == nil {
			t.Errorf("NewDisk(%q): no error", dir)
		}
	}
}

func TestDiskPutErrors(t *testing.T) {
	tests := []struct {
		name string
		// block makes the object's place unusable.
		block func(t *testing.T, dir, object string)
	}{
		{"target is a non-empty folder", func(t *testing.T, dir, object string) {
			if err := os.MkdirAll(filepath.Join(object, "x"), 0o750); err != nil {
				t.Fatal(err)
			}
		}},
		{"fan-out folder is a file", func(t *testing.T, dir, object string) {
			top := filepath.Join(dir, strings.SplitN(filepath.ToSlash(object[len(dir)+1:]), "/", 2)[0])
			if err := os.WriteFile(top, nil, 0o600); err != nil {
				t.Fatal(err)
			}
		}},
		{"staging folder is a file", func(t *testing.T, dir, object string) {
			tmp := filepath.Join(dir, tempDirName)
			if err := os.Remove(tmp); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(tmp, nil, 0o600); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, dir := newTestDisk(t)
			const key = "src/79001234567@c.us/full"
			tt.block(t, dir, d.path(key))
			err := d.Put(testCtx(t), key, []byte("v"))
			if err == nil {
				t.Fatal("Put: no error")
			}
			if strings.Contains(err.Error(), "79001234567") {
				t.Errorf("error %q reveals the key", err)
			}
			if entries, _ := os.ReadDir(filepath.Join(dir, tempDirName)); len(entries) != 0 {
				t.Errorf("failed Put left staged files: %v", entries)
			}
		})
	}
}

func TestDiskPermissionDenied(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root ignores folder permissions; TestDiskPutErrors covers failing writes")
	}
	d, dir := newTestDisk(t)
	for _, p := range []string{dir, filepath.Join(dir, tempDirName)} {
		if err := os.Chmod(p, 0o500); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.Chmod(p, 0o750) })
	}
	if err := d.Put(testCtx(t), "k", []byte("v")); !errors.Is(err, fs.ErrPermission) {
		t.Errorf("Put into a read-only folder: err %v, want fs.ErrPermission", err)
	}
	if err := d.Ping(testCtx(t)); err == nil {
		t.Error("Ping of a read-only folder: no error")
	}
}

func TestDiskPingFails(t *testing.T) {
	d, dir := newTestDisk(t)
	if err := d.Ping(testCtx(t)); err != nil {
		t.Fatalf("Ping of a healthy folder: %v", err)
	}
	tmp := filepath.Join(dir, tempDirName)
	if err := os.Remove(tmp); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(tmp, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := d.Ping(context.Background()); err == nil {
		t.Fatal("Ping with an unusable staging folder: no error")
	}
}
