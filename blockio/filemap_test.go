package blockio

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"unsafe"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// cachedPages counts the pages of path in the page cache.
func cachedPages(t *testing.T, path string) int {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	st, err := f.Stat()
	require.NoError(t, err)
	m, err := unix.Mmap(int(f.Fd()), 0, int(st.Size()), unix.PROT_READ, unix.MAP_SHARED)
	require.NoError(t, err)
	defer unix.Munmap(m)
	vec := make([]byte, (len(m)+PageSize-1)/PageSize)
	_, _, e := unix.Syscall(unix.SYS_MINCORE, uintptrOf(m), uintptr(len(m)), uintptrOf(vec))
	require.Zero(t, e)
	n := 0
	for _, v := range vec {
		n += int(v & 1)
	}
	return n
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
	require.NoError(t, writeBackAndDrop(f, 0, int64(len(want))))
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
