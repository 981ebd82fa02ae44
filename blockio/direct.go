package blockio

import (
	"context"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"os"

	"golang.org/x/sys/unix"
)

// OpenDirect opens path read-only with O_DIRECT, for reads that bypass the
// page cache into aligned buffers. Filesystems that refuse O_DIRECT (tmpfs
// before Linux 6.6, some FUSE) fail here with EINVAL, not at the first read.
func OpenDirect(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|unix.O_DIRECT, 0)
	if err != nil {
		return nil, fmt.Errorf("opening %s for direct reads: %w", path, err)
	}
	return f, nil
}

// CreateProbeFile writes a file of size bytes (whole MiB) of data no device
// can compress or deduplicate under dir, synced and dropped from the page
// cache, and returns its path. The caller removes it.
func CreateProbeFile(ctx context.Context, dir string, size uint64) (string, error) {
	size = max(size&^(1<<20-1), 1<<20)
	f, err := os.CreateTemp(dir, ".pc1-tiered-probe-*")
	if err != nil {
		return "", err
	}
	path := f.Name()
	err = WriteProbeFile(ctx, f, size)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
		return "", err
	}
	return path, nil
}

// WriteProbeFile reserves and writes size bytes of data no device can
// compress or deduplicate away (every 4 KiB page differs), syncs it and
// drops it from the page cache so that reads go to the device.
func WriteProbeFile(ctx context.Context, f *os.File, size uint64) error {
	if err := Fallocate(f, int64(size)); err != nil {
		return err
	}
	buf := make([]byte, 1<<20)
	rng := rand.NewChaCha8([32]byte{'p', 'c', '1'})
	rng.Read(buf)
	for off := uint64(0); off < size; off += uint64(len(buf)) {
		if err := ctx.Err(); err != nil {
			return err
		}
		for p := 0; p < len(buf); p += 4096 {
			binary.LittleEndian.PutUint64(buf[p:], off+uint64(p))
		}
		if _, err := f.WriteAt(buf, int64(off)); err != nil {
			return fmt.Errorf("writing %s: %w", f.Name(), err)
		}
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("syncing %s: %w", f.Name(), err)
	}
	if err := unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED); err != nil {
		return fmt.Errorf("dropping %s from the page cache: %w", f.Name(), err)
	}
	return nil
}
