package tier

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"unsafe"

	"github.com/pc1-tiered/pc1-tiered/blockio"
	"github.com/pc1-tiered/pc1-tiered/measure"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// cachedPages counts the pages of path in the page cache.
func cachedPages(t *testing.T, path string) int {
	t.Helper()
	n, err := measure.PageCacheBytes(path)
	require.NoError(t, err)
	return int(n / PageSize)
}

// TestFileMapSpillsReallyLeaveMemory reads pages of a mapped file and checks
// with mincore that Evict and AdvisePages(MADV_PAGEOUT) really take them
// out of the page cache, and that ReadAt leaves nothing cached behind.
func TestFileMapSpillsReallyLeaveMemory(t *testing.T) {
	path := filepath.Join(t.TempDir(), "layer")
	want := bytes.Repeat([]byte("0123456789abcdef"), 64*PageSize/16)
	require.NoError(t, os.WriteFile(path, want, 0o644))
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	require.NoError(t, err)
	require.NoError(t, blockio.WriteBackAndDrop(f, 0, int64(len(want))))
	f.Close()
	require.Zero(t, cachedPages(t, path), "written back and dropped")

	m, err := MapFile(path, int64(len(want)))
	require.NoError(t, err)
	defer m.Close()
	_, err = MapFile(path, int64(len(want))+1)
	require.ErrorContains(t, err, "want at least")

	// Touch pages 0..15 through the mapping.
	for pg := range 16 {
		require.Equal(t, want[pg*PageSize], m.Bytes()[pg*PageSize])
	}
	require.Equal(t, want[:PageSize], m.Bytes()[:PageSize])
	require.GreaterOrEqual(t, cachedPages(t, path), 16)
	require.NoError(t, m.Evict(0, 8*PageSize))
	require.NoError(t, m.AdvisePages([]int64{8, 9, 10, 11, 12, 13, 14, 15}, unix.MADV_PAGEOUT))
	require.Zero(t, cachedPages(t, path), "evicted pages left the page cache")

	require.NoError(t, m.AdvisePages([]int64{20, 40}, unix.MADV_WILLNEED))
	require.NoError(t, m.WillNeed(50*PageSize, 32))
	buf := make([]byte, 4*PageSize)
	require.NoError(t, m.ReadAt(buf, 4*PageSize))
	require.Equal(t, want[4*PageSize:8*PageSize], buf)
	require.NoError(t, m.Evict(0, int64(len(want))))
	require.Zero(t, cachedPages(t, path))

	require.NoError(t, m.Close())
	require.NoError(t, m.Close())
}

func uintptrOf(b []byte) uintptr { return uintptr(unsafe.Pointer(&b[0])) }

// TestFileMapPromotionLeavesNothingCached promotes a whole 64 MiB layer file
// front to back in block-sized reads, as a layer turnover does: kernel
// read-ahead past each block must not stay behind in the page cache.
func TestFileMapPromotionLeavesNothingCached(t *testing.T) {
	const size, block = 64 << 20, 1 << 20
	path := filepath.Join(t.TempDir(), "layer")
	want := bytes.Repeat([]byte("0123456789abcdef"), size/16)
	require.NoError(t, os.WriteFile(path, want, 0o644))
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	require.NoError(t, err)
	require.NoError(t, blockio.WriteBackAndDrop(f, 0, size))
	f.Close()

	m, err := MapFile(path, size)
	require.NoError(t, err)
	defer m.Close()
	buf := make([]byte, block)
	for off := 0; off < size; off += block {
		require.NoError(t, m.ReadAt(buf, int64(off)))
		require.Equal(t, want[off:off+block], buf)
	}
	require.Zero(t, cachedPages(t, path), "promotion leaves nothing cached")
}
