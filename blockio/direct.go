package blockio

import (
	"context"
	"fmt"
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
	err = writeProbeFile(ctx, f, size)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
		return "", err
	}
	return path, nil
}
