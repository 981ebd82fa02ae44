package tier

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// UncachedFile reads parts of a committed layer file into DRAM blocks (a
// resumed job's previous layer, a spilling job's promotions) and leaves
// nothing of them in the page cache: those labels then live in the arena
// only, not twice.
type UncachedFile struct {
	f *os.File
}

// OpenUncached opens the file at path for ReadAt.
func OpenUncached(path string) (*UncachedFile, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("spill: %w", err)
	}
	// Kernel read-ahead past each block would stay cached (measured with
	// mappings: 34 of 64 MiB promoted stayed, read-ahead on).
	_ = unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_RANDOM)
	return &UncachedFile{f: f}, nil
}

// ReadAt reads len(p) bytes at off and drops them from the page cache.
func (u *UncachedFile) ReadAt(p []byte, off int64) error {
	if _, err := u.f.ReadAt(p, off); err != nil {
		return fmt.Errorf("reading %d bytes at offset %d of %s: %w", len(p), off, u.f.Name(), err)
	}
	_ = unix.Fadvise(int(u.f.Fd()), off, int64(len(p)), unix.FADV_DONTNEED)
	return nil
}

// Close closes the file.
func (u *UncachedFile) Close() error { return u.f.Close() }
