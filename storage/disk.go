package storage

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

const (
	// tempDirName is the staging folder for writes in progress, inside the
	// store's folder so a rename from it stays on one file system (atomic).
	// Staging in one folder rather than next to each object means the
	// start-up sweep reads one directory, not the whole tree, and Get, which
	// opens only hex names under the fan-out folders, can never serve one.
	tempDirName = ".tmp"
	// staleTemp is how old a staged file must be before the start-up sweep
	// deletes it: younger ones may belong to a live writer (another replica
	// on a shared volume, or the old process during a rolling restart).
	staleTemp = time.Minute
)

// Disk stores objects as files under one folder, named by objectName. It is
// safe for concurrent use, also by several processes sharing the folder.
//
// File I/O cannot be interrupted: Disk checks ctx before starting work, but a
// read or write already under way finishes even if ctx expires meanwhile.
type Disk struct {
	// MaxObjectSize caps the bytes of one object, on Get and on Put; zero
	// means DefaultMaxObjectSize. Set it before first use.
	MaxObjectSize int64
	// NameKey, when not empty, keys object names (HMAC-SHA256) so they
	// cannot be traced back to phone numbers; see objectName. It is a
	// secret. Every handle on one folder must use the same key, or they
	// miss each other's objects. Set it before first use.
	NameKey []byte

	dir string // cleaned root folder
	tmp string // staging folder, dir/.tmp
}

// NewDisk opens a store in dir, creating it (mode 0o750) if missing, and
// deletes staged files left behind by a crash (older than a minute).
func NewDisk(dir string) (*Disk, error) {
	if dir == "" {
		return nil, errors.New("storage: disk: empty folder name")
	}
	dir = filepath.Clean(dir)
	d := &Disk{dir: dir, tmp: filepath.Join(dir, tempDirName)}
	if err := os.MkdirAll(d.tmp, 0o750); err != nil {
		return nil, fmt.Errorf("storage: disk: %w", err)
	}
	if err := d.sweep(time.Now().Add(-staleTemp)); err != nil {
		return nil, fmt.Errorf("storage: disk: sweep temp files: %w", err)
	}
	return d, nil
}

// sweep deletes staged files last modified before cutoff.
func (d *Disk) sweep(cutoff time.Time) error {
	entries, err := os.ReadDir(d.tmp)
	if err != nil {
		return err
	}
	var errs []error
	for _, e := range entries {
		info, err := e.Info()
		if errors.Is(err, fs.ErrNotExist) {
			continue // renamed or swept by someone else meanwhile
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if !info.Mode().IsRegular() || !info.ModTime().Before(cutoff) {
			continue
		}
		if err := os.Remove(filepath.Join(d.tmp, e.Name())); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (d *Disk) path(key string) string {
	return filepath.Join(d.dir, filepath.FromSlash(objectName("", key, d.NameKey)))
}

// Get returns the object stored under key. ok=false with a nil error is a
// miss. The caller owns data.
func (d *Disk) Get(ctx context.Context, key string) (data []byte, ok bool, err error) {
	if err := ctx.Err(); err != nil {
		return nil, false, fmt.Errorf("storage: disk get: %w", err)
	}
	f, err := os.Open(d.path(key))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("storage: disk get: %w", err)
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return nil, false, fmt.Errorf("storage: disk get: %w", err)
	}
	// The file behind an open descriptor never changes: writers replace
	// the name with a new file, they never write into an existing one.
	data, err = readCapped(f, limit(d.MaxObjectSize), info.Size())
	if err != nil {
		return nil, false, fmt.Errorf("storage: disk get: %w", err)
	}
	return data, true, nil
}

// Put stores data under key, replacing any previous object. A concurrent Get
// sees the old object or the new one, never a mix: the bytes are written and
// synced to a staged file that is then renamed over the target. Put does not
// keep data.
func (d *Disk) Put(ctx context.Context, key string, data []byte) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("storage: disk put: %w", err)
	}
	if int64(len(data)) > limit(d.MaxObjectSize) {
		return fmt.Errorf("storage: disk put: %w", ErrTooLarge)
	}
	if err := d.put(d.path(key), data); err != nil {
		return fmt.Errorf("storage: disk put: %w", err)
	}
	return nil
}

func (d *Disk) put(target string, data []byte) (err error) {
	folder := filepath.Dir(target)
	if err := d.ensureFolder(folder); err != nil {
		return err
	}
	f, err := os.CreateTemp(d.tmp, "put-*")
	if err != nil {
		return err
	}
	staged := f.Name()
	defer func() {
		if err != nil {
			f.Close()         // may already be closed; the first error is the one that matters
			os.Remove(staged) // gone already if the rename succeeded
		}
	}()
	if _, err := f.Write(data); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(staged, target); err != nil {
		return err
	}
	// The rename is atomic but not yet durable until its folder is synced.
	return syncFolder(folder)
}

// ensureFolder creates a fan-out folder on first use, syncing its parents so
// the new entries survive a crash along with the file about to land in it.
func (d *Disk) ensureFolder(folder string) error {
	if _, err := os.Stat(folder); err == nil {
		return nil
	}
	if err := os.MkdirAll(folder, 0o750); err != nil {
		return err
	}
	if err := syncFolder(filepath.Dir(folder)); err != nil {
		return err
	}
	return syncFolder(d.dir)
}

func syncFolder(name string) error {
	f, err := os.Open(name)
	if err != nil {
		return err
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// Delete removes the object under key. A missing object is not an error.
func (d *Disk) Delete(ctx context.Context, key string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("storage: disk delete: %w", err)
	}
	target := d.path(key)
	err := os.Remove(target)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err == nil {
		// Without the sync a crash could bring the object back.
		err = syncFolder(filepath.Dir(target))
	}
	if err != nil {
		return fmt.Errorf("storage: disk delete: %w", err)
	}
	return nil
}

// Ping reports whether the folder can be written and read back right now,
// by staging a small file, reading it and removing it.
func (d *Disk) Ping(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("storage: disk ping: %w", err)
	}
	if err := d.ping(); err != nil {
		return fmt.Errorf("storage: disk ping: %w", err)
	}
	return nil
}

func (d *Disk) ping() error {
	want := []byte("ping")
	f, err := os.CreateTemp(d.tmp, "ping-*")
	if err != nil {
		return err
	}
	name := f.Name()
	defer os.Remove(name)
	_, err = f.Write(want)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	got, err := os.ReadFile(name)
	if err != nil {
		return err
	}
	if !bytes.Equal(got, want) {
		return errors.New("read back different bytes")
	}
	return os.Remove(name)
}
