package blockio

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
)

// WriteFileAtomic writes data to path through a temporary file in the same
// directory, synced and renamed, so readers see the old content or the new,
// never a torn mix.
func WriteFileAtomic(path string, data []byte, opts ...FileOption) error {
	a, err := CreateAtomic(path, opts...)
	if err != nil {
		return err
	}
	if _, err := a.WriteAt(data, 0); err != nil {
		a.Abort()
		return err
	}
	return a.Commit()
}

// AtomicFile is a file written under a temporary name in its final
// directory and given its final name only by Commit, synced: readers see
// the old file or the complete new one. For files too large to build in
// memory (tree_d is twice the sector), written in place with WriteAt.
type AtomicFile struct {
	path, tmp string
	f         *os.File
	io        fileIO
}

// CreateAtomic starts a new file that will be named path.
func CreateAtomic(path string, opts ...FileOption) (*AtomicFile, error) {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return nil, fmt.Errorf("writing %s: %w", path, err)
	}
	a := &AtomicFile{path: path, tmp: f.Name(), f: f, io: newFileIO(opts)}
	// CreateTemp makes the file private; outputs are for other tools too.
	if err := f.Chmod(0o644); err != nil {
		a.Abort()
		return nil, fmt.Errorf("writing %s: %w", a.tmp, err)
	}
	return a, nil
}

// WriteAt writes p at off of the temporary file; errors name it.
func (a *AtomicFile) WriteAt(p []byte, off int64) (int, error) {
	n, err := a.io.writeAt(a.f, p, off)
	if err != nil {
		return n, fmt.Errorf("writing %s: %w", a.tmp, err)
	}
	return n, nil
}

// Commit syncs the file, gives it its final name and syncs the directory.
// On failure the temporary file is removed.
func (a *AtomicFile) Commit() error {
	if err := a.io.fsync(a.f); err != nil {
		a.Abort()
		return fmt.Errorf("syncing %s: %w", a.tmp, err)
	}
	err := a.f.Close()
	a.f = nil
	if err != nil {
		os.Remove(a.tmp)
		return fmt.Errorf("closing %s: %w", a.tmp, err)
	}
	if err := a.io.rename(a.tmp, a.path); err != nil {
		os.Remove(a.tmp)
		return fmt.Errorf("renaming %s to %s: %w", a.tmp, a.path, err)
	}
	return SyncDir(filepath.Dir(a.path))
}

// Abort removes the temporary file; the final name is untouched.
func (a *AtomicFile) Abort() {
	if a.f != nil {
		a.f.Close()
		a.f = nil
	}
	os.Remove(a.tmp)
}

// CheckWritable fails early, naming the path, when a file could not be
// created at path; it leaves nothing behind.
func CheckWritable(path string) error {
	dir := filepath.Dir(path)
	st, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("%s: directory %s: %w", path, dir, err)
	}
	if !st.IsDir() {
		return fmt.Errorf("%s: %s is not a directory", path, dir)
	}
	if st, err := os.Stat(path); err == nil && st.IsDir() {
		return fmt.Errorf("%s is a directory", path)
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".probe-*")
	if err != nil {
		return fmt.Errorf("%s is not writable: %w", path, err)
	}
	name := f.Name()
	f.Close()
	return os.Remove(name)
}

// MkdirAll is os.MkdirAll that also returns the directories it created,
// parents first, so that a command refused later can remove exactly those
// (and only if they are still empty).
func MkdirAll(dir string) ([]string, error) {
	var missing []string
	for d := filepath.Clean(dir); ; d = filepath.Dir(d) {
		if _, err := os.Lstat(d); !errors.Is(err, os.ErrNotExist) {
			break
		}
		missing = append(missing, d)
		if filepath.Dir(d) == d {
			break
		}
	}
	slices.Reverse(missing)
	return missing, os.MkdirAll(dir, 0o755)
}
